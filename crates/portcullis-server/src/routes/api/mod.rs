//! The co-located resource API (SPEC §6).

pub mod whoami;

use crate::state::AppState;
use axum::Router;
use axum::routing::get;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/whoami", get(whoami::whoami))
}
