//! `/admin/api/v1/scopes`: list and register scopes through `service::scopes`.

use super::{ApiJson, ErrorView, rules};
use crate::error::ApiError;
use crate::extract::admin_auth::AdminCaller;
use crate::service::scopes;
use crate::state::AppState;
use crate::views::ScopeView;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

/// Body of a scope creation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeBody {
    /// Name (RFC 6749 scope token).
    pub name: String,
    /// At most 500 printable characters.
    #[serde(default)]
    pub description: String,
}

impl PartialSchema for ScopeBody {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("Body of a scope registration."))
            .property(
                "name",
                rules::scope_name_schema(
                    "1 to 64 characters of a-z 0-9 : . _ -, starting with a letter or a digit.",
                ),
            )
            .required("name")
            .property(
                "description",
                rules::string(
                    "For people: at most 500 characters, none a control or format (bidi, \
                     zero-width) character. Stored in Unicode NFC, where it must also be at \
                     most 500 characters (only a few rare characters are longer in NFC).",
                )
                .pattern(Some(rules::description_pattern()))
                .max_length(Some(rules::MAX_SCOPE_DESCRIPTION_CHARS))
                .default(Some(json!(""))),
            )
            .additional_properties(Some(AdditionalProperties::FreeForm(false)))
            .into()
    }
}

impl ToSchema for ScopeBody {}

/// Every registered scope.
#[utoipa::path(get, path = "/admin/api/v1/scopes", tag = "scopes", operation_id = "list_scopes",
    responses((status = 200, description = "Every registered scope.", body = Vec<ScopeView>)))]
pub async fn list(
    State(state): State<AppState>,
    _caller: AdminCaller,
) -> Result<Json<Vec<ScopeView>>, ApiError> {
    let all = state.store.list_scopes().await?;
    Ok(Json(all.iter().map(ScopeView::from).collect()))
}

/// Registers a scope.
#[utoipa::path(post, path = "/admin/api/v1/scopes", tag = "scopes", operation_id = "create_scope",
    request_body = ScopeBody,
    responses(
        (status = 201, description = "Registered.", body = ScopeView),
        (status = 400, description = "A malformed body, `name` or `description`, or a malformed bearer request.", body = ErrorView),
        (status = 409, description = "A scope of that name exists.", body = ErrorView),
        (status = 413, description = "A body over 64 KiB.", body = ErrorView)))]
pub async fn create(
    State(state): State<AppState>,
    caller: AdminCaller,
    ApiJson(body): ApiJson<ScopeBody>,
) -> Result<(StatusCode, Json<ScopeView>), ApiError> {
    rules::text_length(
        &body.description,
        rules::MAX_SCOPE_DESCRIPTION_CHARS,
        "description: the description must be at most 500 printable characters (no control, \
         bidi or zero-width characters)",
    )?;
    let rec = scopes::create(
        state.store.as_ref(),
        state.clock(),
        &body.name,
        &body.description,
        &caller.actor,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(ScopeView::from(&rec))))
}
