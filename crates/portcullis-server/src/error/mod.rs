//! Errors as HTTP answers: one sink per surface, each reached from the services'
//! errors by `From`, so a handler writes `?` and never decides a status itself.
//!
//! - [`OAuthResponseError`]: the OAuth endpoints (RFC 6749 §5.2 JSON).
//! - [`ApiError`]: the resource API and the admin API (JSON `{"error",
//!   "error_description"}`; a bearer token's problems as RFC 6750 challenges).
//! - [`PageError`]: the admin pages (plain text).
//!
//! Every surface answers a [`Fault`] the same way: 503 with `Retry-After` when the
//! database is unavailable, otherwise an opaque 500 whose detail is logged, never
//! sent.

/// `From` every internal error type (through [`Fault`]) for a surface's sink.
macro_rules! faults_into {
    ($sink:ty, |$f:ident| $make:expr) => {
        impl From<$crate::error::Fault> for $sink {
            fn from($f: $crate::error::Fault) -> Self {
                $make
            }
        }
        impl From<portcullis_store::StoreError> for $sink {
            fn from(e: portcullis_store::StoreError) -> Self {
                $crate::error::Fault::from(e).into()
            }
        }
        impl From<portcullis_crypto::CryptoError> for $sink {
            fn from(e: portcullis_crypto::CryptoError) -> Self {
                $crate::error::Fault::from(e).into()
            }
        }
        impl From<$crate::keyring::KeyringError> for $sink {
            fn from(e: $crate::keyring::KeyringError) -> Self {
                $crate::error::Fault::from(e).into()
            }
        }
    };
}
pub(crate) use faults_into;

mod api;
mod fault;
mod oauth;
mod page;

pub use api::{ApiError, BearerError};
pub use fault::Fault;
pub use oauth::OAuthResponseError;
pub use page::PageError;

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// Seconds a client is asked to wait when the database is unavailable.
pub const RETRY_AFTER_UNAVAILABLE: u64 = 2;

/// 503 with `Retry-After` and the given body, for a request that needs the
/// database while it is unavailable.
pub fn unavailable_response(body: impl IntoResponse) -> Response {
    let mut r = (axum::http::StatusCode::SERVICE_UNAVAILABLE, body).into_response();
    r.headers_mut().insert(
        header::RETRY_AFTER,
        HeaderValue::from(RETRY_AFTER_UNAVAILABLE),
    );
    r
}

/// The JSON body of a 503 (`temporarily_unavailable`, RFC 6749 §4.1.2.1).
pub fn unavailable_body() -> axum::Json<serde_json::Value> {
    body(
        "temporarily_unavailable",
        "the database is unavailable; retry shortly",
    )
}

/// Headers every token endpoint response carries (RFC 6749 §5.1).
pub fn no_store(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}

/// The JSON error body. `error_description` keeps to RFC 6749 §5.2's characters
/// (%x20-21 / %x23-5B / %x5D-7E): anything else a description quoted from the
/// request carries becomes `?`.
fn body(code: &str, description: &str) -> axum::Json<serde_json::Value> {
    let description: String = description
        .chars()
        .map(|c| {
            if (' '..='~').contains(&c) && c != '"' && c != '\\' {
                c
            } else {
                '?'
            }
        })
        .collect();
    axum::Json(json!({"error": code, "error_description": description}))
}
