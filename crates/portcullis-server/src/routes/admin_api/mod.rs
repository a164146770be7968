//! The admin JSON API (`/admin/api/v1/…`, SPEC §7): the operations of the admin
//! pages for programs. Handlers authenticate ([`AdminCaller`]), read JSON with
//! [`ApiJson`] (≤ 64 KiB; anything malformed is 400), call the same services as the
//! pages and the CLI, and answer with the CLI's `--json` shapes (`crate::views`).
//! Errors are `{"error", "error_description"}`. The OpenAPI document and a Swagger
//! UI page are served without authentication.
//!
//! [`AdminCaller`]: crate::extract::admin_auth::AdminCaller

mod audit;
mod clients;
mod keys;
mod openapi;
mod scopes;
mod tokens;

use crate::error::ApiError;
use crate::service::clients::ClientOpError;
use crate::state::AppState;
use axum::Router;
use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::routing::{get, post};
use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::ToSchema;

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
        .route("/admin/api/v1/keys", get(keys::list))
        .route("/admin/api/v1/keys/rotate", post(keys::rotate))
        .route("/admin/api/v1/audit", get(audit::list))
        .route("/admin/api/v1/openapi.json", get(openapi::document))
        .merge(openapi::swagger_ui())
}

/// The error body every refusal carries.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorView {
    /// `invalid_request`, `not_found`, `conflict`, `invalid_token`,
    /// `insufficient_scope`, `forbidden` or `server_error`.
    pub error: String,
    /// What was wrong, for a person.
    pub error_description: String,
}

/// 404 `not_found`.
pub fn not_found(what: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::NOT_FOUND,
        error: "not_found",
        description: what.into(),
    }
}

/// 409 `conflict`.
pub fn conflict(why: impl Into<String>) -> ApiError {
    ApiError {
        status: StatusCode::CONFLICT,
        error: "conflict",
        description: why.into(),
    }
}

impl From<ClientOpError> for ApiError {
    fn from(e: ClientOpError) -> Self {
        match e {
            // The API's field is `grant_types`; the service calls it `grants`.
            ClientOpError::Field("grants", m) => ApiError::bad_request(format!("grant_types: {m}")),
            ClientOpError::Field(f, m) => ApiError::bad_request(format!("{f}: {m}")),
            ClientOpError::Invalid(m) => conflict(m),
            ClientOpError::NotFound(what) => not_found(format!("no client with id {what}")),
            ClientOpError::Internal(e) => ApiError::internal(e),
        }
    }
}

/// A JSON request body: at most [`MAX_BODY`] bytes, `application/json` (or no
/// content type), an empty body read as `{}`; anything else is a JSON 400 (413 when
/// too large) naming what was wrong, never axum's plain-text rejection.
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
        serde_json::from_slice(bytes)
            .map(ApiJson)
            .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))
    }
}

/// Parses an optional humantime duration field (`"1h"`, `"30m"`); 400 names the field.
pub fn ttl_field(
    name: &str,
    value: Option<&str>,
    allow_zero: bool,
) -> Result<Option<portcullis_core::Ttl>, ApiError> {
    value
        .map(|v| {
            if allow_zero {
                portcullis_core::Ttl::parse_allow_zero(v)
            } else {
                v.parse::<portcullis_core::Ttl>()
            }
        })
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("{name}: {e}")))
}
