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
use serde_json::Value;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

/// Body of a rotation.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RotateKeyBody {
    /// `RS256`, `ES256` or `EdDSA`; absent: the current key's algorithm.
    #[serde(default)]
    pub alg: Option<String>,
}

impl PartialSchema for RotateKeyBody {
    fn schema() -> RefOr<Schema> {
        let algs = [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA]
            .map(|a| Value::from(a.as_str()))
            .into_iter()
            .chain([Value::Null]);
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("Body of a rotation (optional)."))
            .property(
                "alg",
                ObjectBuilder::new()
                    .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
                    .description(Some(
                        "The new key's algorithm; absent or `null`: the current key's.",
                    ))
                    .enum_values(Some(algs)),
            )
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .into()
    }
}

impl ToSchema for RotateKeyBody {}

/// Every signing key, current first.
#[utoipa::path(get, path = "/admin/api/v1/keys", tag = "keys", operation_id = "list_keys",
    responses((status = 200, description = "Every signing key, current first.", body = Vec<KeyView>)))]
pub async fn list(
    State(state): State<AppState>,
    _caller: AdminCaller,
) -> Result<Json<Vec<KeyView>>, ApiError> {
    let all = state.store.signing_keys().await?;
    Ok(Json(all.iter().map(KeyView::from).collect()))
}

/// Makes a new key current; the previous one verifies until its tokens expire.
#[utoipa::path(post, path = "/admin/api/v1/keys/rotate", tag = "keys", operation_id = "rotate_key",
    request_body = Option<RotateKeyBody>,
    responses(
        (status = 201, description = "The new current key.", body = RotatedKeyView),
        (status = 400, description = "A malformed body or `alg`, or a malformed bearer request.", body = ErrorView),
        (status = 413, description = "A body over 64 KiB.", body = ErrorView)))]
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
    let now = state.now();
    let kid = keys::rotate(
        &state.store,
        &state.master,
        alg,
        now,
        state.tokens.access_ttl,
        &caller.actor,
    )
    .await?;
    state
        .tokens
        .keys
        .refresh(&state.store, &state.master, now)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(RotatedKeyView {
            kid,
            alg: alg.as_str().into(),
            state: "current".into(),
        }),
    ))
}
