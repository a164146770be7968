//! A client's labels and token sets: list labels, list token families, mint a token
//! set (shown once), revoke one family, one label's families or all of them.

use super::{ApiJson, ClientIdPath, ErrorView, rules};
use crate::error::ApiError;
use crate::extract::admin_auth::AdminCaller;
use crate::service::mint;
use crate::state::AppState;
use crate::views::{FamilyView, LabelView, MintedView};
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use portcullis_core::label::MAX_LABEL_CHARS;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{IntoParams, PartialSchema, ToSchema};

/// `?label=` of the token list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TokensQuery {
    /// Only this label's token sets (any string; one no token set has matches none).
    pub label: Option<String>,
}

/// Body of a mint.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MintBody {
    /// The data access point the tokens are for.
    #[serde(default)]
    pub label: Option<String>,
    /// Scopes (a subset of the client's); absent: all of them.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
}

impl PartialSchema for MintBody {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("Body of a mint (optional: no body mints all of the client's scopes, without a label)."))
            .property(
                "label",
                rules::label_schema(
                    "The data access point the tokens are for: 1 to 128 characters, none a \
                     control or format (bidi, zero-width) character, no white space at either \
                     end; absent or `null`: none. Stored in Unicode NFC, where it must also be \
                     at most 128 characters (only a few rare characters are longer in NFC).",
                    true,
                ),
            )
            .property(
                "scopes",
                rules::scope_list_schema(
                    "1 to 50 scopes, each one the client is allowed (another is 409 \
                     `conflict`); absent or `null`: all of the client's.",
                    true,
                    true,
                ),
            )
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .into()
    }
}

impl ToSchema for MintBody {}

/// Body of a revocation: `family`, or `label`, or neither (everything).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevokeBody {
    /// One token family.
    #[serde(default)]
    pub family: Option<String>,
    /// Every token family of one label.
    #[serde(default)]
    pub label: Option<String>,
}

impl PartialSchema for RevokeBody {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some(
                "Body of a revocation: `family`, or `label`, not both; neither (or no body) \
                 revokes every token family of the client.",
            ))
            .property(
                "family",
                rules::nullable_string(
                    "One token family (`fam_…`); one that is unknown, another client's or \
                     already revoked revokes nothing.",
                ),
            )
            .property(
                "label",
                rules::nullable_string("Every live token family of this label."),
            )
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .extensions(Some(rules::keywords([(
                "not",
                json!({"required": ["family", "label"],
                       "properties": {"family": {"type": "string"}, "label": {"type": "string"}}}),
            )])))
            .into()
    }
}

impl ToSchema for RevokeBody {}

/// What a revocation revoked.
#[derive(Debug, Serialize, ToSchema)]
pub struct RevokedView {
    /// Family ids revoked now.
    pub revoked: Vec<String>,
}

/// A client's labels.
#[utoipa::path(get, path = "/admin/api/v1/clients/{id}/labels", tag = "tokens", operation_id = "list_labels",
    params(ClientIdPath),
    responses(
        (status = 200, description = "The client's labels.", body = Vec<LabelView>),
        (status = 404, description = "No such client.", body = ErrorView)))]
pub async fn labels(
    State(state): State<AppState>,
    _caller: AdminCaller,
    ClientIdPath(id): ClientIdPath,
) -> Result<Json<Vec<LabelView>>, ApiError> {
    let client = state.clients.get(&id).await?;
    let now = state.now();
    let labels = state.store.list_labels(&client.id, now).await?;
    Ok(Json(labels.iter().map(LabelView::from).collect()))
}

/// A client's token families, newest first.
#[utoipa::path(get, path = "/admin/api/v1/clients/{id}/tokens", tag = "tokens", operation_id = "list_token_families",
    params(ClientIdPath, TokensQuery),
    responses(
        (status = 200, description = "The client's token families, newest first.", body = Vec<FamilyView>),
        (status = 400, description = "A malformed query string (`label` given twice), or a malformed bearer request.", body = ErrorView),
        (status = 404, description = "No such client.", body = ErrorView)))]
pub async fn list(
    State(state): State<AppState>,
    _caller: AdminCaller,
    ClientIdPath(id): ClientIdPath,
    query: Result<Query<TokensQuery>, QueryRejection>,
) -> Result<Json<Vec<FamilyView>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let client = state.clients.get(&id).await?;
    let families = state
        .store
        .list_families(&client.id, q.label.as_deref(), None)
        .await?;
    Ok(Json(families.iter().map(FamilyView::from).collect()))
}

/// Mints a token set for a label (the tokens are in the answer, shown this once).
#[utoipa::path(post, path = "/admin/api/v1/clients/{id}/tokens", tag = "tokens", operation_id = "mint_tokens",
    request_body = Option<MintBody>,
    params(ClientIdPath),
    responses(
        (status = 201, description = "Minted; the tokens are shown this once.", body = MintedView),
        (status = 400, description = "A malformed body, `label` or `scopes`, or a malformed bearer request.", body = ErrorView),
        (status = 404, description = "No such client.", body = ErrorView),
        (status = 409, description = "The client is disabled, or a scope is not one of the client's.", body = ErrorView),
        (status = 413, description = "A body over 64 KiB.", body = ErrorView)))]
pub async fn mint(
    State(state): State<AppState>,
    caller: AdminCaller,
    ClientIdPath(id): ClientIdPath,
    ApiJson(body): ApiJson<MintBody>,
) -> Result<(StatusCode, Json<MintedView>), ApiError> {
    let client = state.clients.get(&id).await?;
    if let Some(l) = &body.label {
        rules::text_length(
            l,
            MAX_LABEL_CHARS,
            "label: label is longer than 128 characters",
        )?;
    }
    if let Some(s) = &body.scopes {
        rules::mint_scopes(s)?;
    }
    let scopes = body.scopes.map(|s| s.join(" "));
    let issued = mint::mint(
        &state.tokens,
        &client,
        body.label.as_deref(),
        scopes.as_deref(),
        caller.actor,
    )
    .await?;
    state.usage.count_token(state.now());
    Ok((StatusCode::CREATED, Json(MintedView::from(issued))))
}

/// Revokes one family, one label's families, or every family of the client.
#[utoipa::path(post, path = "/admin/api/v1/clients/{id}/revoke", tag = "tokens", operation_id = "revoke_tokens",
    request_body = Option<RevokeBody>,
    params(ClientIdPath),
    responses(
        (status = 200, description = "The families revoked now (none is not an error).", body = RevokedView),
        (status = 400, description = "A malformed body, both `family` and `label`, or a malformed bearer request.", body = ErrorView),
        (status = 404, description = "No such client.", body = ErrorView),
        (status = 413, description = "A body over 64 KiB.", body = ErrorView)))]
pub async fn revoke(
    State(state): State<AppState>,
    caller: AdminCaller,
    ClientIdPath(id): ClientIdPath,
    ApiJson(body): ApiJson<RevokeBody>,
) -> Result<Json<RevokedView>, ApiError> {
    let client = state.clients.get(&id).await?;
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
                .await?;
            if done { vec![fam] } else { Vec::new() }
        }
        (None, label) => {
            revoker
                .label(&client, label.as_deref(), &caller.actor)
                .await?
        }
    };
    Ok(Json(RevokedView { revoked }))
}
