//! `/admin/api/v1/clients[/{id}[/disable|/enable|/rotate-secret]]`: client management
//! through `service::clients`, as the admin pages and `portcullis client …` do it.

use super::{ApiJson, ErrorView, ttl_field};
use crate::error::ApiError;
use crate::extract::admin_auth::AdminCaller;
use crate::service::clients::{self, NewClientSpec};
use crate::state::AppState;
use crate::views::ClientView;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use portcullis_core::ClientStatus;
use serde::Deserialize;
use utoipa::ToSchema;

/// A client's settings (create and replace).
#[derive(Debug, Deserialize, ToSchema)]
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

impl ClientBody {
    fn spec(self) -> Result<NewClientSpec, ApiError> {
        Ok(NewClientSpec {
            access_token_ttl: ttl_field(
                "access_token_ttl",
                self.access_token_ttl.as_deref(),
                false,
            )?,
            refresh_token_ttl: ttl_field(
                "refresh_token_ttl",
                self.refresh_token_ttl.as_deref(),
                false,
            )?,
            refresh_reuse_grace: ttl_field(
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
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateSecretBody {
    /// How long the old secret keeps working (`"1h"`); absent: not at all.
    #[serde(default)]
    pub keep_old_for: Option<String>,
}

/// Lists every client.
#[utoipa::path(get, path = "/admin/api/v1/clients", tag = "clients",
    responses((status = 200, body = Vec<ClientView>), (status = 401, body = ErrorView), (status = 403, body = ErrorView)))]
pub async fn list(
    State(state): State<AppState>,
    _caller: AdminCaller,
) -> Result<Json<Vec<ClientView>>, ApiError> {
    let all = state
        .store
        .list_clients()
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(all.iter().map(ClientView::new).collect()))
}

/// Creates a client; the answer carries its secret, shown this once.
#[utoipa::path(post, path = "/admin/api/v1/clients", tag = "clients", request_body = ClientBody,
    responses((status = 201, body = ClientView), (status = 400, body = ErrorView)))]
pub async fn create(
    State(state): State<AppState>,
    caller: AdminCaller,
    ApiJson(body): ApiJson<ClientBody>,
) -> Result<Response, ApiError> {
    let spec = body.spec()?;
    let (client, secret) = clients::create(
        state.store.as_ref(),
        &state.tokens.hasher,
        state.tokens.clock.as_ref(),
        spec,
        &caller.actor,
    )
    .await?;
    let mut view = ClientView::new(&client);
    view.client_secret = Some(secret.expose().to_owned());
    Ok((StatusCode::CREATED, Json(view)).into_response())
}

/// One client.
#[utoipa::path(get, path = "/admin/api/v1/clients/{id}", tag = "clients",
    params(("id" = String, Path, description = "Client id")),
    responses((status = 200, body = ClientView), (status = 404, body = ErrorView)))]
pub async fn show(
    State(state): State<AppState>,
    _caller: AdminCaller,
    Path(id): Path<String>,
) -> Result<Json<ClientView>, ApiError> {
    let client = clients::get(state.store.as_ref(), &id).await?;
    Ok(Json(ClientView::new(&client)))
}

/// Replaces a client's settings; nothing changes unless all are valid.
#[utoipa::path(put, path = "/admin/api/v1/clients/{id}", tag = "clients", request_body = ClientBody,
    params(("id" = String, Path, description = "Client id")),
    responses((status = 200, body = ClientView), (status = 400, body = ErrorView), (status = 404, body = ErrorView)))]
pub async fn update(
    State(state): State<AppState>,
    caller: AdminCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ClientBody>,
) -> Result<Json<ClientView>, ApiError> {
    let spec = body.spec()?;
    let clock = state.tokens.clock.as_ref();
    let client = clients::update(state.store.as_ref(), clock, &id, spec, &caller.actor).await?;
    state.clients.forget(&client.id);
    Ok(Json(ClientView::new(&client)))
}

/// Revokes everything a client holds, then deletes it.
#[utoipa::path(delete, path = "/admin/api/v1/clients/{id}", tag = "clients",
    params(("id" = String, Path, description = "Client id")),
    responses((status = 204), (status = 404, body = ErrorView)))]
pub async fn delete(
    State(state): State<AppState>,
    caller: AdminCaller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let client = clients::get(state.store.as_ref(), &id).await?;
    clients::delete(&state.tokens.revoker(), &id, &caller.actor).await?;
    state.clients.forget(&client.id);
    Ok(StatusCode::NO_CONTENT)
}

async fn set_status(
    state: &AppState,
    caller: &AdminCaller,
    id: &str,
    status: ClientStatus,
) -> Result<Json<ClientView>, ApiError> {
    let client = clients::set_status(&state.tokens.revoker(), id, status, &caller.actor).await?;
    state.clients.forget(&client.id);
    Ok(Json(ClientView::new(&client)))
}

/// Disables a client, revoking every token it holds.
#[utoipa::path(post, path = "/admin/api/v1/clients/{id}/disable", tag = "clients",
    params(("id" = String, Path, description = "Client id")),
    responses((status = 200, body = ClientView), (status = 404, body = ErrorView)))]
pub async fn disable(
    State(state): State<AppState>,
    caller: AdminCaller,
    Path(id): Path<String>,
) -> Result<Json<ClientView>, ApiError> {
    set_status(&state, &caller, &id, ClientStatus::Disabled).await
}

/// Enables a client again (its revoked tokens stay revoked).
#[utoipa::path(post, path = "/admin/api/v1/clients/{id}/enable", tag = "clients",
    params(("id" = String, Path, description = "Client id")),
    responses((status = 200, body = ClientView), (status = 404, body = ErrorView)))]
pub async fn enable(
    State(state): State<AppState>,
    caller: AdminCaller,
    Path(id): Path<String>,
) -> Result<Json<ClientView>, ApiError> {
    set_status(&state, &caller, &id, ClientStatus::Active).await
}

/// Gives a client a new secret (in the answer, shown this once).
#[utoipa::path(post, path = "/admin/api/v1/clients/{id}/rotate-secret", tag = "clients",
    request_body = RotateSecretBody,
    params(("id" = String, Path, description = "Client id")),
    responses((status = 200, body = ClientView), (status = 400, body = ErrorView), (status = 404, body = ErrorView)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    caller: AdminCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RotateSecretBody>,
) -> Result<Json<ClientView>, ApiError> {
    let keep = ttl_field("keep_old_for", body.keep_old_for.as_deref(), true)?;
    let (client, secret) = clients::rotate_secret(
        state.store.as_ref(),
        &state.tokens.hasher,
        state.tokens.clock.as_ref(),
        &id,
        keep,
        &caller.actor,
    )
    .await?;
    state.clients.forget(&client.id);
    let mut view = ClientView::new(&client);
    view.client_secret = Some(secret.expose().to_owned());
    Ok(Json(view))
}
