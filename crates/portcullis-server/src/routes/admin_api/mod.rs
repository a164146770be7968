//! The admin JSON API (`/admin/api/v1/…`, SPEC §7): the operations of the admin
//! pages for programs (clients, tokens, scopes, keys, end users and their grants,
//! the audit log). Handlers authenticate ([`AdminCaller`]), read JSON with
//! [`ApiJson`] (≤ 64 KiB; anything malformed is 400), call the same services as the
//! pages and the CLI, and answer with the CLI's `--json` shapes (`crate::views`).
//! Errors are `{"error", "error_description"}`. The OpenAPI document and a Swagger
//! UI page are served without authentication. The document is exact: every status
//! an operation can answer is listed, and every input limit a handler enforces is in
//! its schema (`rules` holds both sides of each rule); `.ci/openapi-check`
//! validates it and tests a live server against it.
//!
//! [`AdminCaller`]: crate::extract::admin_auth::AdminCaller

mod audit;
mod clients;
mod keys;
mod openapi;
mod rules;
mod scopes;
mod tokens;
mod users;

use crate::error::ApiError;
use crate::state::AppState;
use axum::Router;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header;
use axum::http::request::Parts;
use axum::routing::{delete, get, post};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{Required, Schema};
use utoipa::{IntoParams, ToSchema};

/// Largest request body accepted.
pub const MAX_BODY: usize = 64 * 1024;

/// Routes under `/admin/api`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/admin/api/v1/clients",
            get(clients::list).post(clients::create),
        )
        .route(
            "/admin/api/v1/clients/{id}",
            get(clients::show)
                .put(clients::update)
                .delete(clients::delete),
        )
        .route("/admin/api/v1/clients/{id}/disable", post(clients::disable))
        .route("/admin/api/v1/clients/{id}/enable", post(clients::enable))
        .route(
            "/admin/api/v1/clients/{id}/rotate-secret",
            post(clients::rotate_secret),
        )
        .route("/admin/api/v1/clients/{id}/labels", get(tokens::labels))
        .route(
            "/admin/api/v1/clients/{id}/tokens",
            get(tokens::list).post(tokens::mint),
        )
        .route("/admin/api/v1/clients/{id}/revoke", post(tokens::revoke))
        .route(
            "/admin/api/v1/scopes",
            get(scopes::list).post(scopes::create),
        )
        .route("/admin/api/v1/users", get(users::list).post(users::create))
        .route("/admin/api/v1/users/{id}", get(users::show))
        .route("/admin/api/v1/users/{id}/disable", post(users::disable))
        .route("/admin/api/v1/users/{id}/enable", post(users::enable))
        .route(
            "/admin/api/v1/users/{id}/reset-password",
            post(users::reset_password),
        )
        .route("/admin/api/v1/users/{id}/grants", get(users::grants))
        .route(
            "/admin/api/v1/users/{id}/grants/{client_id}",
            delete(users::revoke_grant),
        )
        .route(
            "/admin/api/v1/users/{id}/grants/{client_id}/remove-scope",
            post(users::remove_scope),
        )
        .route("/admin/api/v1/keys", get(keys::list))
        .route("/admin/api/v1/keys/rotate", post(keys::rotate))
        .route("/admin/api/v1/audit", get(audit::list))
        .route("/admin/api/v1/openapi.json", get(openapi::document))
        .merge(openapi::swagger_ui())
}

/// The error codes of [`ErrorView`].
pub const ERROR_CODES: [&str; 8] = [
    "invalid_request",
    "invalid_token",
    "insufficient_scope",
    "forbidden",
    "not_found",
    "conflict",
    "server_error",
    "temporarily_unavailable",
];

fn error_code_schema() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(
            "`invalid_request` (400, 413), `invalid_token` (401), `insufficient_scope` or \
             `forbidden` (403), `not_found` (404), `conflict` (409), `server_error` (500) or \
             `temporarily_unavailable` (503, with `Retry-After`, when the database is \
             unavailable).",
        ))
        .enum_values(Some(ERROR_CODES))
        .into()
}

/// The error body every refusal carries.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorView {
    /// The error code.
    #[schema(schema_with = error_code_schema)]
    pub error: String,
    /// What was wrong, for a person.
    pub error_description: String,
}

/// The `{id}` of a `/clients/{id}…` path. One that does not even decode is 404, as
/// is a malformed or unknown id (never axum's plain-text 400).
#[derive(Debug)]
pub struct ClientIdPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| Self(id))
            .map_err(|_| ApiError::not_found("no client with that id"))
    }
}

impl IntoParams for ClientIdPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            ParameterBuilder::new()
                .name("id")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some(
                    "Client id (`pc_…`). Any other id is 404, like an unknown one.",
                ))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some(rules::CLIENT_ID_PATTERN)),
                ))
                .build(),
        ]
    }
}

/// A JSON request body: an object of at most [`MAX_BODY`] bytes, `application/json`
/// (or no content type), an empty body read as `{}`; anything else is a JSON 400 (413
/// when too large) naming what was wrong, never axum's plain-text rejection.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, ApiError> {
        if let Some(ct) = req.headers().get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
            let essence = ct.split(';').next().unwrap_or("").trim();
            if essence != "application/json" {
                return Err(ApiError::bad_request(
                    "the body must be JSON (Content-Type: application/json)",
                ));
            }
        }
        let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY)
            .await
            .map_err(|_| ApiError::too_large("the request body is larger than 64 KiB"))?;
        let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"{}"
        } else {
            &bytes
        };
        // Every body is an object: serde would also read a struct from an array of its
        // fields in order (`["label", null]`).
        if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ApiError::bad_request("the body must be a JSON object"));
        }
        serde_json::from_slice(bytes)
            .map(ApiJson)
            .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))
    }
}
