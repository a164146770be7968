//! `/admin/api/v1/scopes`: list and register scopes through `service::scopes`.

use super::{ApiJson, ErrorView, conflict};
use crate::error::ApiError;
use crate::extract::admin_auth::AdminCaller;
use crate::service::scopes::{self, ScopeOpError};
use crate::state::AppState;
use crate::views::ScopeView;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;

/// Body of a scope creation.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScopeBody {
    /// Name (RFC 6749 scope token).
    pub name: String,
    /// At most 500 printable characters.
    #[serde(default)]
    pub description: String,
}

/// Every registered scope.
#[utoipa::path(get, path = "/admin/api/v1/scopes", tag = "scopes",
    responses((status = 200, body = Vec<ScopeView>), (status = 401, body = ErrorView)))]
pub async fn list(
    State(state): State<AppState>,
    _caller: AdminCaller,
) -> Result<Json<Vec<ScopeView>>, ApiError> {
    let all = state
        .store
        .list_scopes()
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(all.iter().map(ScopeView::from).collect()))
}

/// Registers a scope.
#[utoipa::path(post, path = "/admin/api/v1/scopes", tag = "scopes", request_body = ScopeBody,
    responses((status = 201, body = ScopeView), (status = 400, body = ErrorView), (status = 409, body = ErrorView)))]
pub async fn create(
    State(state): State<AppState>,
    caller: AdminCaller,
    ApiJson(body): ApiJson<ScopeBody>,
) -> Result<(StatusCode, Json<ScopeView>), ApiError> {
    let rec = scopes::create(
        state.store.as_ref(),
        state.tokens.clock.as_ref(),
        &body.name,
        &body.description,
        &caller.actor,
    )
    .await
    .map_err(|e| match e {
        ScopeOpError::Field(..) => ApiError::bad_request(e.to_string()),
        ScopeOpError::Conflict(m) => conflict(m),
        ScopeOpError::Internal(e) => ApiError::internal(e),
    })?;
    Ok((StatusCode::CREATED, Json(ScopeView::from(&rec))))
}
