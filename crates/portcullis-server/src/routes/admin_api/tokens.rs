//! A client's labels and token sets: list labels, list token families, mint a token
//! set (shown once), revoke one family, one label's families or all of them.

use super::{ApiJson, ErrorView, conflict};
use crate::error::ApiError;
use crate::extract::admin_auth::AdminCaller;
use crate::service::clients;
use crate::service::mint::{self, MintError};
use crate::state::AppState;
use crate::views::{FamilyView, LabelView, MintedView};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// `?label=` of the token list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokensQuery {
    /// Only this label's token sets.
    pub label: Option<String>,
}

/// Body of a mint.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintBody {
    /// The data access point the tokens are for.
    #[serde(default)]
    pub label: Option<String>,
    /// Scopes (a subset of the client's); absent: all of them.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

/// Body of a revocation: `family`, or `label`, or neither (everything).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    /// One token family.
    #[serde(default)]
    pub family: Option<String>,
    /// Every token family of one label.
    #[serde(default)]
    pub label: Option<String>,
}

/// What a revocation revoked.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedView {
    /// Family ids revoked now.
    pub revoked: Vec<String>,
}

/// A client's labels.
#[utoipa::path(get, path = "/admin/api/v1/clients/{id}/labels", tag = "tokens",
    params(("id" = String, Path, description = "Client id")),
    responses((status = 200, body = Vec<LabelView>), (status = 404, body = ErrorView)))]
pub async fn labels(
    State(state): State<AppState>,
    _caller: AdminCaller,
    Path(id): Path<String>,
) -> Result<Json<Vec<LabelView>>, ApiError> {
    let client = clients::get(state.store.as_ref(), &id).await?;
    let now = state.tokens.clock.now();
    let labels = state
        .store
        .list_labels(&client.id, now)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(labels.iter().map(LabelView::from).collect()))
}

/// A client's token families, newest first.
#[utoipa::path(get, path = "/admin/api/v1/clients/{id}/tokens", tag = "tokens",
    params(("id" = String, Path, description = "Client id"), TokensQuery),
    responses((status = 200, body = Vec<FamilyView>), (status = 404, body = ErrorView)))]
pub async fn list(
    State(state): State<AppState>,
    _caller: AdminCaller,
    Path(id): Path<String>,
    query: Result<Query<TokensQuery>, QueryRejection>,
) -> Result<Json<Vec<FamilyView>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let client = clients::get(state.store.as_ref(), &id).await?;
    let families = state
        .store
        .list_families(&client.id, q.label.as_deref())
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(families.iter().map(FamilyView::from).collect()))
}

/// Mints a token set for a label (the tokens are in the answer, shown this once).
#[utoipa::path(post, path = "/admin/api/v1/clients/{id}/tokens", tag = "tokens",
    request_body = MintBody,
    params(("id" = String, Path, description = "Client id")),
    responses((status = 201, body = MintedView), (status = 400, body = ErrorView),
        (status = 404, body = ErrorView), (status = 409, body = ErrorView)))]
pub async fn mint(
    State(state): State<AppState>,
    caller: AdminCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<MintBody>,
) -> Result<(StatusCode, Json<MintedView>), ApiError> {
    let client = clients::get(state.store.as_ref(), &id).await?;
    let scopes = body.scopes.map(|s| s.join(" "));
    let issued = mint::mint(
        &state.tokens,
        &client,
        body.label.as_deref(),
        scopes.as_deref(),
        caller.actor,
    )
    .await
    .map_err(|e| match e {
        MintError::Label(_) | MintError::Scopes(_) => ApiError::bad_request(e.to_string()),
        MintError::Disabled => conflict(e.to_string()),
        MintError::Internal(e) => ApiError::internal(e),
    })?;
    Ok((StatusCode::CREATED, Json(MintedView::from(issued))))
}

/// Revokes one family, one label's families, or every family of the client.
#[utoipa::path(post, path = "/admin/api/v1/clients/{id}/revoke", tag = "tokens",
    request_body = RevokeBody,
    params(("id" = String, Path, description = "Client id")),
    responses((status = 200, body = RevokedView), (status = 400, body = ErrorView), (status = 404, body = ErrorView)))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: AdminCaller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RevokeBody>,
) -> Result<Json<RevokedView>, ApiError> {
    let client = clients::get(state.store.as_ref(), &id).await?;
    let revoker = state.tokens.revoker();
    let revoked = match (body.family, body.label) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request(
                "family, label: give one of them, or neither to revoke everything",
            ));
        }
        (Some(fam), None) => {
            let done = revoker
                .family(&fam, Some(&client.id), &caller.actor, "admin")
                .await
                .map_err(ApiError::internal)?;
            if done { vec![fam] } else { Vec::new() }
        }
        (None, label) => revoker
            .label(&client, label.as_deref(), &caller.actor)
            .await
            .map_err(ApiError::internal)?,
    };
    Ok(Json(RevokedView { revoked }))
}
