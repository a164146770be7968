//! `/admin/api/v1/audit`: the audit log, newest first, filtered and paged.

use super::{ErrorView, rules};
use crate::error::ApiError;
use crate::extract::admin_auth::AdminCaller;
use crate::state::AppState;
use crate::views::AuditView;
use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use portcullis_core::AuditKind;
use portcullis_store::AuditFilter;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa::openapi::Required;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};

/// Most events one page may ask for.
const MAX_LIMIT: i64 = 1000;

/// Filters.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    /// Only this client.
    pub client: Option<String>,
    /// Only this label.
    pub label: Option<String>,
    /// Only this kind (`token.revoke`, `client.disable`…).
    pub kind: Option<String>,
    /// Only the last this many seconds.
    pub since_secs: Option<i64>,
    /// Only events with a smaller id (paging).
    pub before: Option<i64>,
    /// At most this many (1–1000, default 100).
    pub limit: Option<i64>,
}

impl IntoParams for AuditQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let param = |name: &str, description: &str, schema: ObjectBuilder| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(description))
                .schema(Some(schema))
                .build()
        };
        let int = |min: i64, max: i64| {
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                .minimum(Some(min))
                .maximum(Some(max))
        };
        let text = || ObjectBuilder::new().schema_type(Type::String);
        vec![
            param(
                "client",
                "Only this client's events (empty: every client's).",
                text(),
            ),
            param(
                "label",
                "Only this label's events (empty: every label's).",
                text(),
            ),
            param(
                "kind",
                "Only events of this kind (empty: every kind).",
                rules::audit_kind_schema(),
            ),
            param(
                "since_secs",
                "Only the events of the last this many seconds.",
                int(0, i64::MAX),
            ),
            param(
                "before",
                "Only events with a smaller `id` (paging: the last `id` of the previous page).",
                int(i64::MIN, i64::MAX),
            ),
            param(
                "limit",
                "At most this many events (default 100).",
                int(1, MAX_LIMIT).default(Some(100.into())),
            ),
        ]
    }
}

/// Audit events, newest first.
#[utoipa::path(get, path = "/admin/api/v1/audit", tag = "audit", operation_id = "list_audit_events",
    params(AuditQuery),
    responses(
        (status = 200, description = "Events, newest first.", body = Vec<AuditView>),
        (status = 400, description = "A query parameter of the wrong type or out of range, or a malformed bearer request.", body = ErrorView)))]
pub async fn list(
    State(state): State<AppState>,
    _caller: AdminCaller,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<Vec<AuditView>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request("limit: must be between 1 and 1000"));
    }
    if q.since_secs.is_some_and(|s| s < 0) {
        return Err(ApiError::bad_request("since_secs: must not be negative"));
    }
    let now = state.now();
    let some = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    // Empty is no filter; anything else must be a kind (` ` is not).
    let kind = q
        .kind
        .filter(|k| !k.is_empty())
        .map(|k| k.parse::<AuditKind>())
        .transpose()
        .map_err(|e| ApiError::bad_request(format!("kind: {e}")))?;
    let events = state
        .store
        .list_audit(&AuditFilter {
            client_id: some(q.client),
            label: some(q.label),
            kind,
            since: q.since_secs.map(|s| now.saturating_sub(s)),
            before_id: q.before,
            limit,
        })
        .await?;
    Ok(Json(events.iter().map(AuditView::from).collect()))
}
