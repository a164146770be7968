//! `/admin/api/v1/clients[/{id}[/disable|/enable|/rotate-secret]]`: client management
//! through `service::clients`, as the admin pages and `portcullis client …` do it.

use super::{ApiJson, ClientIdPath, ErrorView, rules};
use crate::error::ApiError;
use crate::extract::admin_auth::AdminCaller;
use crate::service::clients::NewClientSpec;
use crate::state::AppState;
use crate::views::ClientView;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_core::ClientStatus;
use portcullis_core::client::MAX_CLIENT_NAME_CHARS;
use portcullis_core::scope::{MAX_SCOPES_PER_REQUEST, RESERVED};
use serde::Deserialize;
use serde_json::json;
use utoipa::openapi::schema::{AdditionalProperties, ArrayBuilder, ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

/// A client's settings (create and replace).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientBody {
    /// Name.
    pub name: String,
    /// Allowed scopes; empty: every registered scope except `admin` and `introspect`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Allowed grants; empty: `client_credentials` and `refresh_token`.
    #[serde(default)]
    pub grant_types: Vec<String>,
    /// Redirect URIs (needed for `authorization_code`).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Access token lifetime (`"1h"`); absent: the server's default.
    #[serde(default)]
    pub access_token_ttl: Option<String>,
    /// Refresh token lifetime (`"30d"`); absent: the server's default.
    #[serde(default)]
    pub refresh_token_ttl: Option<String>,
    /// Issue no refresh tokens.
    #[serde(default)]
    pub no_refresh_token: bool,
    /// How long a just-spent refresh token may be retried (`"0s"`: never).
    #[serde(default)]
    pub refresh_reuse_grace: Option<String>,
}

impl PartialSchema for ClientBody {
    fn schema() -> RefOr<Schema> {
        let array = |description: &str, items: ObjectBuilder| {
            ArrayBuilder::new()
                .description(Some(description))
                .items(items)
                .default(Some(json!([])))
        };
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "A client's settings (create and replace). A client with the \
                 `authorization_code` grant needs at least one redirect URI.",
            ))
            .property(
                "name",
                rules::string(
                    "1 to 200 characters once white space around it is dropped, none a \
                     control or format (bidi, zero-width) character. Stored without the white \
                     space, in Unicode NFC, where it must also be at most 200 characters (only \
                     a few rare characters, such as U+0958, are longer in NFC).",
                )
                .pattern(Some(rules::client_name_pattern())),
            )
            .required("name")
            .property(
                "scopes",
                rules::scope_list_schema(
                    "Allowed scopes (at most 50), each registered (an unknown scope is 409 \
                     `conflict`); empty: every registered scope except `admin` and \
                     `introspect` (409 `conflict` if that is more than 50).",
                    false,
                    false,
                ),
            )
            .property(
                "grant_types",
                array(
                    "Allowed grants; empty: `client_credentials` and `refresh_token` \
                     (only `client_credentials` with `no_refresh_token`).",
                    rules::grant_type_schema(),
                ),
            )
            .property(
                "redirect_uris",
                array(
                    "Redirect URIs (needed for `authorization_code`).",
                    rules::string(
                        "An absolute ASCII URI without fragment: `https`, `http` on \
                         `localhost`, `127.0.0.1` or `[::1]`, or a private-use scheme with \
                         a dot (`com.example.app:/cb`).",
                    )
                    .pattern(Some(rules::redirect_uri_pattern()))
                    .max_length(Some(rules::MAX_REDIRECT_URI_LEN)),
                ),
            )
            .property(
                "access_token_ttl",
                rules::duration_schema(
                    "Access token lifetime; absent or `null`: the server's default.",
                    false,
                ),
            )
            .property(
                "refresh_token_ttl",
                rules::duration_schema(
                    "Refresh token lifetime; absent or `null`: the server's default.",
                    false,
                ),
            )
            .property(
                "no_refresh_token",
                ObjectBuilder::new()
                    .schema_type(Type::Boolean)
                    .description(Some("Issue no refresh tokens."))
                    .default(Some(json!(false))),
            )
            .property(
                "refresh_reuse_grace",
                rules::duration_schema(
                    "How long a just-spent refresh token may be retried; absent, `null` or \
                     `\"0s\"`: never.",
                    true,
                ),
            )
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .extensions(Some(rules::keywords([
                (
                    "if",
                    json!({"properties": {"grant_types": {"contains": {"const": "authorization_code"}}},
                           "required": ["grant_types"]}),
                ),
                (
                    "then",
                    json!({"properties": {"redirect_uris": {"minItems": 1}},
                           "required": ["redirect_uris"]}),
                ),
            ])))
            .into()
    }
}

impl ToSchema for ClientBody {}

impl ClientBody {
    /// Checks what the service does not ([`rules`]), then makes the service's spec.
    async fn spec(self, state: &AppState) -> Result<NewClientSpec, ApiError> {
        rules::text_length(
            self.name.trim(),
            MAX_CLIENT_NAME_CHARS,
            "name: client name is longer than 200 characters",
        )?;
        rules::client_scopes(&self.scopes)?;
        rules::redirect_uris(&self.redirect_uris)?;
        if self.scopes.is_empty() {
            // The default is every registered scope but the reserved ones: no more
            // than a client may have.
            let registered = state.store.list_scopes().await?;
            let defaults = registered
                .iter()
                .filter(|s| !RESERVED.contains(&s.name.as_str()))
                .count();
            if defaults > MAX_SCOPES_PER_REQUEST {
                return Err(ApiError::conflict(format!(
                    "scopes: {defaults} scopes are registered, more than a client may have \
                     ({MAX_SCOPES_PER_REQUEST}); name the client's scopes"
                )));
            }
        }
        Ok(NewClientSpec {
            access_token_ttl: rules::duration(
                "access_token_ttl",
                self.access_token_ttl.as_deref(),
                false,
            )?,
            refresh_token_ttl: rules::duration(
                "refresh_token_ttl",
                self.refresh_token_ttl.as_deref(),
                false,
            )?,
            refresh_reuse_grace: rules::duration(
                "refresh_reuse_grace",
                self.refresh_reuse_grace.as_deref(),
                true,
            )?,
            name: self.name,
            scopes: self.scopes,
            grant_types: self.grant_types,
            redirect_uris: self.redirect_uris,
            no_refresh_token: self.no_refresh_token,
        })
    }
}

/// Body of `rotate-secret`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretBody {
    /// How long the old secret keeps working (`"1h"`); absent: not at all.
    #[serde(default)]
    pub keep_old_for: Option<String>,
}

impl PartialSchema for RotateSecretBody {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("Body of `rotate-secret` (optional)."))
            .property(
                "keep_old_for",
                rules::duration_schema(
                    "How long the old secret keeps working; absent, `null` or `\"0s\"`: it \
                     stops at once.",
                    true,
                ),
            )
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .into()
    }
}

impl ToSchema for RotateSecretBody {}

/// Lists every client.
#[utoipa::path(get, path = "/admin/api/v1/clients", tag = "clients", operation_id = "list_clients",
    responses((status = 200, description = "Every client (no secrets).", body = Vec<ClientView>)))]
pub async fn list(
    State(state): State<AppState>,
    _caller: AdminCaller,
) -> Result<Json<Vec<ClientView>>, ApiError> {
    let all = state.store.list_clients().await?;
    Ok(Json(all.iter().map(ClientView::new).collect()))
}

/// Creates a client; the answer carries its secret, shown this once.
#[utoipa::path(post, path = "/admin/api/v1/clients", tag = "clients", operation_id = "create_client",
    request_body = ClientBody,
    responses(
        (status = 201, description = "Created; `client_secret` is shown this once.", body = ClientView),
        (status = 400, description = "A malformed body or field (the description names it), or a malformed bearer request.", body = ErrorView),
        (status = 409, description = "A scope that is not registered, more than 50 registered scopes for a client without `scopes`, or a change the database refuses.", body = ErrorView),
        (status = 413, description = "A body over 64 KiB.", body = ErrorView)))]
pub async fn create(
    State(state): State<AppState>,
    caller: AdminCaller,
    ApiJson(body): ApiJson<ClientBody>,
) -> Result<Response, ApiError> {
    let spec = body.spec(&state).await?;
    let (client, secret) = state.clients.create(spec, &caller.actor).await?;
    let mut view = ClientView::new(&client);
    view.client_secret = Some(secret.expose().to_owned());
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// One client.
#[utoipa::path(get, path = "/admin/api/v1/clients/{id}", tag = "clients", operation_id = "show_client",
    params(ClientIdPath),
    responses(
        (status = 200, description = "The client (no secret).", body = ClientView),
        (status = 404, description = "No such client.", body = ErrorView)))]
pub async fn show(
    State(state): State<AppState>,
    _caller: AdminCaller,
    ClientIdPath(id): ClientIdPath,
) -> Result<Json<ClientView>, ApiError> {
    let client = state.clients.get(&id).await?;
    Ok(Json(ClientView::new(&client)))
}

/// Replaces a client's settings; nothing changes unless all are valid.
#[utoipa::path(put, path = "/admin/api/v1/clients/{id}", tag = "clients", operation_id = "update_client",
    request_body = ClientBody,
    params(ClientIdPath),
    responses(
        (status = 200, description = "Replaced: a setting left out takes its default.", body = ClientView),
        (status = 400, description = "A malformed body or field (the description names it), or a malformed bearer request.", body = ErrorView),
        (status = 404, description = "No such client.", body = ErrorView),
        (status = 409, description = "A scope that is not registered, more than 50 registered scopes for a client without `scopes`, or a change the database refuses.", body = ErrorView),
        (status = 413, description = "A body over 64 KiB.", body = ErrorView)))]
pub async fn update(
    State(state): State<AppState>,
    caller: AdminCaller,
    ClientIdPath(id): ClientIdPath,
    ApiJson(body): ApiJson<ClientBody>,
) -> Result<Json<ClientView>, ApiError> {
    let spec = body.spec(&state).await?;
    let client = state.clients.update(&id, spec, &caller.actor).await?;
    Ok(Json(ClientView::new(&client)))
}

/// Revokes everything a client holds, then deletes it.
#[utoipa::path(delete, path = "/admin/api/v1/clients/{id}", tag = "clients", operation_id = "delete_client",
    params(ClientIdPath),
    responses(
        (status = 204, description = "Deleted, with everything it held."),
        (status = 404, description = "No such client.", body = ErrorView)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: AdminCaller,
    ClientIdPath(id): ClientIdPath,
) -> Result<StatusCode, ApiError> {
    state.clients.delete(&id, &caller.actor).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_status(
    state: &AppState,
    caller: &AdminCaller,
    id: &str,
    status: ClientStatus,
) -> Result<Json<ClientView>, ApiError> {
    let client = state.clients.set_status(id, status, &caller.actor).await?;
    Ok(Json(ClientView::new(&client)))
}

/// Disables a client, revoking every token it holds.
#[utoipa::path(post, path = "/admin/api/v1/clients/{id}/disable", tag = "clients", operation_id = "disable_client",
    params(ClientIdPath),
    responses(
        (status = 200, description = "Disabled (also when it already was); its tokens are revoked for good.", body = ClientView),
        (status = 404, description = "No such client.", body = ErrorView)))]
pub async fn disable(
    State(state): State<AppState>,
    caller: AdminCaller,
    ClientIdPath(id): ClientIdPath,
) -> Result<Json<ClientView>, ApiError> {
    set_status(&state, &caller, &id, ClientStatus::Disabled).await
}

/// Enables a client again (its revoked tokens stay revoked).
#[utoipa::path(post, path = "/admin/api/v1/clients/{id}/enable", tag = "clients", operation_id = "enable_client",
    params(ClientIdPath),
    responses(
        (status = 200, description = "Enabled (also when it already was).", body = ClientView),
        (status = 404, description = "No such client.", body = ErrorView)))]
pub async fn enable(
    State(state): State<AppState>,
    caller: AdminCaller,
    ClientIdPath(id): ClientIdPath,
) -> Result<Json<ClientView>, ApiError> {
    set_status(&state, &caller, &id, ClientStatus::Active).await
}

/// Gives a client a new secret (in the answer, shown this once).
#[utoipa::path(post, path = "/admin/api/v1/clients/{id}/rotate-secret", tag = "clients",
    operation_id = "rotate_client_secret",
    request_body = Option<RotateSecretBody>,
    params(ClientIdPath),
    responses(
        (status = 200, description = "The new `client_secret`, shown this once.", body = ClientView),
        (status = 400, description = "A malformed body or `keep_old_for`, or a malformed bearer request.", body = ErrorView),
        (status = 404, description = "No such client.", body = ErrorView),
        (status = 413, description = "A body over 64 KiB.", body = ErrorView)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: AdminCaller,
    ClientIdPath(id): ClientIdPath,
    ApiJson(body): ApiJson<RotateSecretBody>,
) -> Result<Json<ClientView>, ApiError> {
    let keep = rules::duration("keep_old_for", body.keep_old_for.as_deref(), true)?;
    let (client, secret) = state
        .clients
        .rotate_secret(&id, keep, &caller.actor)
        .await?;
    let mut view = ClientView::new(&client);
    view.client_secret = Some(secret.expose().to_owned());
    Ok(Json(view))
}
