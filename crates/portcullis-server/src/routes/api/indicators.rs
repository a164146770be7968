//! `GET /api/v1/indicators` (`view-indicator`): the caller's client's totals and,
//! per label, records, batches and last upload, from counters maintained at upload
//! time (never a scan of the records).

use crate::error::{ApiError, BearerError};
use crate::extract::bearer::Caller;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use portcullis_core::time::rfc3339;
use serde_json::{Value, json};

/// The indicators endpoint.
pub async fn indicators(State(state): State<AppState>, caller: Caller) -> Response {
    if let Err(e) = caller.require_scope("view-indicator") {
        return BearerError::into_response(e);
    }
    let sites = match state.store.site_counters(&caller.client.client.id).await {
        Ok(s) => s,
        Err(e) => return ApiError::internal(e).into_response(),
    };
    let total: i64 = sites.iter().map(|s| s.records).sum();
    let sites: Vec<Value> = sites
        .iter()
        .map(|s| {
            json!({
                "label": s.label,
                "records": s.records,
                "batches": s.batches,
                "last_upload_at": s.last_upload_at.map(rfc3339),
            })
        })
        .collect();
    Json(json!({
        "client_id": caller.claims.client_id,
        "total_records": total,
        "sites": sites,
    }))
    .into_response()
}
