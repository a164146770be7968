//! `/admin/api/v1/keys`: list signing keys, rotate now (through `service::keys`).

use super::{ApiJson, ErrorView};
use crate::error::ApiError;
use crate::extract::admin_auth::AdminCaller;
use crate::service::keys;
use crate::state::AppState;
use crate::views::{KeyView, RotatedKeyView};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use portcullis_crypto::Algorithm;
use serde::Deserialize;
use utoipa::ToSchema;

/// Body of a rotation.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateKeyBody {
    /// `RS256`, `ES256` or `EdDSA`; absent: the current key's algorithm.
    #[serde(default)]
    pub alg: Option<String>,
}

/// Every signing key, current first.
#[utoipa::path(get, path = "/admin/api/v1/keys", tag = "keys",
    responses((status = 200, body = Vec<KeyView>), (status = 401, body = ErrorView)))]
pub async fn list(
    State(state): State<AppState>,
    _caller: AdminCaller,
) -> Result<Json<Vec<KeyView>>, ApiError> {
    let all = state
        .store
        .signing_keys()
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(all.iter().map(KeyView::from).collect()))
}

/// Makes a new key current; the previous one verifies until its tokens expire.
#[utoipa::path(post, path = "/admin/api/v1/keys/rotate", tag = "keys", request_body = RotateKeyBody,
    responses((status = 201, body = RotatedKeyView), (status = 400, body = ErrorView)))]
pub async fn rotate(
    State(state): State<AppState>,
    caller: AdminCaller,
    ApiJson(body): ApiJson<RotateKeyBody>,
) -> Result<(StatusCode, Json<RotatedKeyView>), ApiError> {
    let alg: Algorithm = match body.alg {
        Some(a) => a
            .parse()
            .map_err(|e: String| ApiError::bad_request(format!("alg: {e}")))?,
        None => state.tokens.keys.get().current.alg(),
    };
    let now = state.tokens.clock.now();
    let kid = keys::rotate(
        &state.store,
        &state.master,
        alg,
        now,
        state.tokens.access_ttl,
        &caller.actor,
    )
    .await
    .map_err(ApiError::internal)?;
    state
        .tokens
        .keys
        .refresh(&state.store, &state.master, now)
        .await
        .map_err(ApiError::internal)?;
    Ok((
        StatusCode::CREATED,
        Json(RotatedKeyView {
            kid,
            alg: alg.as_str().into(),
            state: "current".into(),
        }),
    ))
}
