//! Every route, one router per module, merged here.

pub mod api;
pub mod health;
pub mod oauth;

use crate::middleware::security_headers::security_headers;
use crate::state::AppState;
use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;

/// The whole application.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(oauth::router())
        .merge(api::router())
        .merge(health::router())
        .fallback(not_found)
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        axum::Json(
            serde_json::json!({"error": "not_found", "error_description": "no such endpoint"}),
        ),
    )
}
