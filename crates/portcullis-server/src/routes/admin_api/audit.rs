//! `/admin/api/v1/audit`: the audit log, newest first, filtered and paged.

use super::ErrorView;
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

/// Filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
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

/// Audit events, newest first.
#[utoipa::path(get, path = "/admin/api/v1/audit", tag = "audit", params(AuditQuery),
    responses((status = 200, body = Vec<AuditView>), (status = 400, body = ErrorView)))]
pub async fn list(
    State(state): State<AppState>,
    _caller: AdminCaller,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Json<Vec<AuditView>>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::bad_request("limit: must be between 1 and 1000"));
    }
    if q.since_secs.is_some_and(|s| s < 0) {
        return Err(ApiError::bad_request("since_secs: must not be negative"));
    }
    let now = state.tokens.clock.now();
    let some = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    let kind = some(q.kind)
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
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(events.iter().map(AuditView::from).collect()))
}
