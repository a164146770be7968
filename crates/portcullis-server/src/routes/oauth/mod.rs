//! The OAuth 2.0 endpoints and discovery.

pub mod grants;
pub mod introspect;
pub mod jwks;
pub mod metadata;
pub mod revoke;
pub mod token;

use crate::state::AppState;
use axum::Router;
use axum::routing::{get, post};

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/oauth/token", post(token::token))
        .route("/oauth/revoke", post(revoke::revoke))
        .route("/oauth/introspect", post(introspect::introspect))
        .route(
            "/.well-known/oauth-authorization-server",
            get(metadata::metadata),
        )
        .route("/.well-known/jwks.json", get(jwks::jwks))
}
