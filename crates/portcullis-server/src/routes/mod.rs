//! Every route, one router per module, merged here.

pub mod account;
pub mod admin;
pub mod admin_api;
pub mod api;
pub mod health;
pub mod metrics;
pub mod oauth;

use crate::middleware::security_headers::security_headers;
use crate::state::AppState;
use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;

/// The whole application.
pub fn router(state: AppState) -> Router {
    let https = state.secure;
    let router = Router::new()
        .merge(oauth::router())
        .merge(account::router())
        .merge(api::router())
        .merge(admin::router())
        .merge(admin_api::router())
        .merge(health::router())
        .merge(metrics::router())
        .fallback(not_found)
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| {
                security_headers(req, next, https)
            },
        ))
        .layer(axum::middleware::from_fn(crate::middleware::metrics::track));
    // Only when JSON logs asked for request ids: a layer costs every request.
    let router = if crate::middleware::request_id::enabled() {
        router.layer(axum::middleware::from_fn(
            crate::middleware::request_id::request_id,
        ))
    } else {
        router
    };
    router.with_state(state)
}

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        axum::Json(
            serde_json::json!({"error": "not_found", "error_description": "no such endpoint"}),
        ),
    )
}
