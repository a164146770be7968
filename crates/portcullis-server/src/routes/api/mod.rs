//! The co-located resource API (SPEC §6).

pub mod data;
pub mod indicators;
pub mod whoami;

use crate::state::AppState;
use axum::Router;
use axum::routing::{get, post};

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/whoami", get(whoami::whoami))
        .route("/api/v1/data", post(data::upload))
        .route("/api/v1/indicators", get(indicators::indicators))
}
