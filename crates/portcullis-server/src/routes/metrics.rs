//! `GET /metrics`: every metric in the Prometheus text exposition format, for a
//! Prometheus server to scrape. It carries only counts (no client ids, labels or
//! tokens); restrict who may reach it at the network edge if even counts are private.

use crate::metrics::Metrics;
use crate::state::AppState;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

/// The text exposition format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<AppState>) -> Response {
    let metrics = match Metrics::install() {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, "metrics are unavailable");
            return (StatusCode::SERVICE_UNAVAILABLE, "metrics are unavailable\n").into_response();
        }
    };
    crate::metrics::set_denylist_size(state.tokens.denylist.len());
    crate::metrics::set_presigned_signatures();
    let mut resp = metrics.render().into_response();
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    resp
}
