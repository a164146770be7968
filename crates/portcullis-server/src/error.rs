//! Protocol errors as HTTP responses.
//!
//! - [`OAuthResponseError`]: RFC 6749 §5.2 JSON (`invalid_client` is 401 with
//!   `WWW-Authenticate: Basic` when Basic was tried; too many failures is 429).
//! - [`BearerError`]: RFC 6750 §3 (`WWW-Authenticate: Bearer realm="portcullis", …`).
//! - Anything unexpected becomes an opaque 500 whose detail is logged, never sent.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::{OAuthError, OAuthErrorCode};
use portcullis_store::StoreError;
use serde_json::json;

/// Seconds a client is asked to wait when the database is unavailable.
pub const RETRY_AFTER_UNAVAILABLE: u64 = 2;

/// Whether an error's detail says the database could not be reached or did not
/// answer in time ([`StoreError::Unavailable`], carried as text by the `Internal`
/// variants): such a request is answered 503 with `Retry-After`, not 500.
pub fn is_unavailable(detail: &str) -> bool {
    detail.contains(StoreError::UNAVAILABLE)
}

/// 503 with `Retry-After` and the given body, for a request that needs the
/// database while it is unavailable.
pub fn unavailable_response(body: impl IntoResponse) -> Response {
    let mut r = (StatusCode::SERVICE_UNAVAILABLE, body).into_response();
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

/// An OAuth endpoint error.
#[derive(Debug)]
pub enum OAuthResponseError {
    /// A protocol error; `basic_tried` adds `WWW-Authenticate: Basic` to `invalid_client`.
    Protocol {
        /// The error.
        error: OAuthError,
        /// Whether the client tried HTTP Basic.
        basic_tried: bool,
    },
    /// Too many failed authentications: 429 with `Retry-After`.
    TooManyAttempts {
        /// Seconds until the block lifts.
        retry_after: u64,
    },
    /// Body over the limit: 413.
    TooLarge,
    /// Something broke; logged, answered with an opaque 500.
    Internal(String),
}

impl From<OAuthError> for OAuthResponseError {
    fn from(error: OAuthError) -> Self {
        Self::Protocol {
            error,
            basic_tried: false,
        }
    }
}

impl From<StoreError> for OAuthResponseError {
    fn from(e: StoreError) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<portcullis_crypto::CryptoError> for OAuthResponseError {
    fn from(e: portcullis_crypto::CryptoError) -> Self {
        Self::Internal(e.to_string())
    }
}

/// The error body. `error_description` keeps to RFC 6749 §5.2's characters
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

impl IntoResponse for OAuthResponseError {
    fn into_response(self) -> Response {
        let mut resp = match self {
            Self::Protocol { error, basic_tried } => {
                // RFC 6749 §5.2: invalid_client is 401; everything else 400.
                let status = if error.code == OAuthErrorCode::InvalidClient {
                    StatusCode::UNAUTHORIZED
                } else {
                    StatusCode::BAD_REQUEST
                };
                let mut r = (status, body(error.code.as_str(), &error.description)).into_response();
                if error.code == OAuthErrorCode::InvalidClient && basic_tried {
                    r.headers_mut().insert(
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("Basic realm=\"portcullis\""),
                    );
                }
                r
            }
            Self::TooManyAttempts { retry_after } => {
                let mut r = (
                    StatusCode::TOO_MANY_REQUESTS,
                    body(
                        "invalid_client",
                        &format!(
                            "too many failed client authentications; retry in {retry_after} s"
                        ),
                    ),
                )
                    .into_response();
                if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                    r.headers_mut().insert(header::RETRY_AFTER, v);
                }
                r
            }
            Self::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                body("invalid_request", "the request body is larger than 64 KiB"),
            )
                .into_response(),
            Self::Internal(detail) if is_unavailable(&detail) => {
                tracing::warn!(%detail, "an OAuth request found the database unavailable");
                unavailable_response(unavailable_body())
            }
            Self::Internal(detail) => {
                tracing::error!(%detail, "internal error on an OAuth endpoint");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    body("server_error", "internal error"),
                )
                    .into_response()
            }
        };
        no_store(&mut resp);
        resp
    }
}

/// RFC 6750 §3.1 error codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BearerError {
    /// 400: e.g. a token in both the header and the query.
    InvalidRequest(String),
    /// 401: no credentials at all; the challenge carries no error code (RFC 6750
    /// §3.1: the client may not have known that authentication was needed).
    Missing,
    /// 401: missing, malformed, expired, revoked, wrongly signed…
    InvalidToken(String),
    /// 403: the token lacks `scope`.
    InsufficientScope(String),
    /// 500, logged.
    Internal(String),
}

fn quote_safe(s: &str) -> String {
    // RFC 6750 §3: error_description is %x20-21 / %x23-5B / %x5D-7E.
    s.chars()
        .filter(|c| (' '..='~').contains(c) && *c != '"' && *c != '\\')
        .collect()
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let (status, code, desc, scope) = match self {
            Self::Missing => {
                let mut r = (
                    StatusCode::UNAUTHORIZED,
                    body("invalid_token", "no bearer token"),
                )
                    .into_response();
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"portcullis\""),
                );
                return r;
            }
            Self::InvalidRequest(d) => (StatusCode::BAD_REQUEST, "invalid_request", d, None),
            Self::InvalidToken(d) => (StatusCode::UNAUTHORIZED, "invalid_token", d, None),
            Self::InsufficientScope(s) => (
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                format!("this request needs the {s} scope"),
                Some(s),
            ),
            Self::Internal(detail) if is_unavailable(&detail) => {
                tracing::warn!(%detail, "a resource request found the database unavailable");
                return unavailable_response(unavailable_body());
            }
            Self::Internal(detail) => {
                tracing::error!(%detail, "internal error on the resource API");
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    body("server_error", "internal error"),
                )
                    .into_response();
            }
        };
        let mut challenge = format!(
            "Bearer realm=\"portcullis\", error=\"{code}\", error_description=\"{}\"",
            quote_safe(&desc)
        );
        if let Some(s) = scope {
            challenge.push_str(&format!(", scope=\"{}\"", quote_safe(&s)));
        }
        let mut r = (status, body(code, &desc)).into_response();
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
        }
        r
    }
}

/// An error of the resource API that is not about the token: a bad body, say.
/// JSON `{"error", "error_description"}` with the given status.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Short code (`invalid_request`, `conflict`…).
    pub error: &'static str,
    /// What was wrong, for a person.
    pub description: String,
}

impl ApiError {
    /// 400 `invalid_request`.
    pub fn bad_request(d: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_request",
            description: d.into(),
        }
    }
    /// 413 `invalid_request`.
    pub fn too_large(d: impl Into<String>) -> Self {
        Self {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            error: "invalid_request",
            description: d.into(),
        }
    }
    /// 500, logged, opaque (503 `temporarily_unavailable` when the database is
    /// unavailable).
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        let detail = detail.to_string();
        if is_unavailable(&detail) {
            tracing::warn!(%detail, "a request found the database unavailable");
            return Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                error: "temporarily_unavailable",
                description: "the database is unavailable; retry shortly".into(),
            };
        }
        tracing::error!(%detail, "internal error on the resource API");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            error: "server_error",
            description: "internal error".into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            return unavailable_response(body(self.error, &self.description));
        }
        (self.status, body(self.error, &self.description)).into_response()
    }
}
