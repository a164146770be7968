//! `GET /.well-known/jwks.json` (RFC 7517): the current key and every older key
//! whose tokens may still be alive. Serialised once per key change.

use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The JWKS.
pub async fn jwks(State(state): State<AppState>) -> Response {
    let keys = state.tokens.keys.get();
    let mut r = keys.jwks.clone().into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    // Short: a rotated-in key must reach resource servers quickly.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    r
}
