//! The OAuth 2.0 endpoints and discovery.

pub mod authorize;
pub mod grants;
pub mod introspect;
pub mod jwks;
pub mod metadata;
pub mod revoke;
pub mod token;

use crate::state::AppState;
use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

/// Routes. Another method on an OAuth endpoint is 405 with `Allow` and the JSON
/// error body every other answer of these endpoints has.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/oauth/authorize",
            get(authorize::authorize).post(authorize::submit),
        )
        .route("/oauth/token", post(token::token).fallback(only_post))
        .route("/oauth/revoke", post(revoke::revoke).fallback(only_post))
        .route(
            "/oauth/introspect",
            post(introspect::introspect).fallback(only_post),
        )
        .route(
            "/.well-known/oauth-authorization-server",
            get(metadata::metadata).fallback(only_get),
        )
        .route("/.well-known/jwks.json", get(jwks::jwks).fallback(only_get))
}

fn method_not_allowed(allow: &'static str) -> Response {
    let mut r = (
        StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(serde_json::json!({
            "error": "invalid_request",
            "error_description": format!("this endpoint accepts {allow} only"),
        })),
    )
        .into_response();
    r.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    r
}

async fn only_post() -> Response {
    method_not_allowed("POST")
}

async fn only_get() -> Response {
    method_not_allowed("GET, HEAD")
}
