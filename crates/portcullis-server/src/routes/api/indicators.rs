//! `GET /api/v1/indicators` (`view-indicator`): the caller's client's totals and,
//! per label, records, batches and last upload, from counters maintained at upload
//! time (never a scan of the records).

use crate::error::ApiError;
use crate::extract::bearer::Caller;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use portcullis_core::time::rfc3339;
use serde_json::{Value, json};

/// The indicators endpoint.
pub async fn indicators(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    caller.require_scope("view-indicator")?;
    let sites = state.store.site_counters(&caller.client.client.id).await?;
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
    Ok(Json(json!({
        "client_id": caller.claims.client_id,
        "total_records": total,
        "sites": sites,
    })))
}
