//! `GET /api/v1/whoami`: who the bearer token says is calling.

use crate::extract::bearer::Caller;
use axum::Json;
use portcullis_core::time::rfc3339;
use serde_json::{Value, json};

/// Any valid token.
pub async fn whoami(caller: Caller) -> Json<Value> {
    Json(json!({
        "client_id": caller.claims.client_id,
        "client_name": caller.client.client.name,
        "sub": caller.claims.sub,
        "label": caller.claims.label,
        "scopes": caller.claims.scopes,
        "expires_at": rfc3339(caller.claims.exp),
    }))
}
