//! Errors: [`GuardError`] when a guard cannot be set up, [`BearerError`] when a
//! request is refused, and [`Rejection`], its HTTP form, which answers exactly as
//! the Portcullis server's own resource API does (RFC 6750 §3):
//!
//! - 400 `invalid_request`, 401 `invalid_token`, 403 `insufficient_scope` with
//!   `WWW-Authenticate: Bearer realm="…", error="…", error_description="…"`
//!   (and `scope="…"` for 403), body `{"error", "error_description"}`;
//! - 503 `temporarily_unavailable` (JSON, `Retry-After`) when the issuer must be
//!   asked and cannot be: the guard fails closed, but does not call a token
//!   invalid that it could not check;
//! - 500 `server_error` for a programming error (no guard installed), logged.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::sync::Arc;

/// Why [`crate::Guard::discover`] failed.
#[derive(Debug, thiserror::Error)]
pub enum GuardError {
    /// The configuration cannot work (empty allow-list, bad issuer…).
    #[error("invalid guard configuration: {0}")]
    Config(String),
    /// The HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    /// A request to the issuer failed.
    #[error("request to {url} failed: {source}")]
    Http {
        /// What was asked.
        url: String,
        /// Why it failed.
        #[source]
        source: reqwest::Error,
    },
    /// The issuer answered with an unexpected status.
    #[error("{url} answered {status}")]
    Status {
        /// What was asked.
        url: String,
        /// The status.
        status: u16,
    },
    /// The answer was not what the RFCs describe.
    #[error("{url} answered something unusable: {reason}")]
    Malformed {
        /// What was asked.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// RFC 8414 §3.3: the metadata's `issuer` must equal the configured one exactly.
    #[error("the metadata names issuer {found:?}, not the configured {expected:?}")]
    IssuerMismatch {
        /// The configured issuer.
        expected: String,
        /// What the metadata says.
        found: String,
    },
    /// Introspection is configured but the metadata has no `introspection_endpoint`.
    #[error("introspection is configured but the issuer advertises no introspection_endpoint")]
    NoIntrospectionEndpoint,
    /// The JWKS has no key this guard may use (none with an allowed `alg`).
    #[error("the JWKS at {0} has no key with an allowed algorithm")]
    NoUsableKeys(String),
}

/// Why a request was refused (RFC 6750 §3.1 codes, plus 503 and 500).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BearerError {
    /// 400: the request itself is malformed (two Authorization headers, the token
    /// also in the query…).
    InvalidRequest(String),
    /// 401: no credentials at all; the challenge names the realm only, with no
    /// error code (RFC 6750 §3.1).
    Missing,
    /// 401: malformed, expired, revoked, wrongly signed, not for us…
    InvalidToken(String),
    /// 403: the token lacks this scope.
    InsufficientScope(String),
    /// 503: the issuer had to be asked (introspection, keys) and could not be.
    Unavailable(String),
    /// 500: a programming error (e.g. no guard installed); logged, never sent.
    Internal(String),
}

impl std::fmt::Display for BearerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidRequest(d) => write!(f, "invalid_request: {d}"),
            Self::Missing => write!(f, "no bearer token"),
            Self::InvalidToken(d) => write!(f, "invalid_token: {d}"),
            Self::InsufficientScope(s) => write!(f, "insufficient_scope: needs {s}"),
            Self::Unavailable(d) => write!(f, "temporarily_unavailable: {d}"),
            Self::Internal(d) => write!(f, "server_error: {d}"),
        }
    }
}

impl std::error::Error for BearerError {}

impl BearerError {
    /// Renders the error with this realm.
    pub fn with_realm(self, realm: impl Into<Arc<str>>) -> Rejection {
        Rejection {
            realm: realm.into(),
            error: self,
        }
    }
}

/// A refused request as an HTTP response: a [`BearerError`] and the realm to name.
#[derive(Debug, Clone)]
pub struct Rejection {
    /// The `realm` of the challenge.
    pub realm: Arc<str>,
    /// What went wrong.
    pub error: BearerError,
}

fn quote_safe(s: &str) -> String {
    // RFC 6750 §3: error_description and scope are %x20-21 / %x23-5B / %x5D-7E.
    s.chars()
        .filter(|c| (' '..='~').contains(c) && *c != '"' && *c != '\\')
        .collect()
}

fn body(code: &str, description: &str) -> Json<serde_json::Value> {
    Json(json!({"error": code, "error_description": description}))
}

/// Seconds a client should wait after a 503.
const RETRY_AFTER_SECS: &str = "5";

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        let (status, code, desc, scope) = match self.error {
            BearerError::Missing => {
                let mut r = (
                    StatusCode::UNAUTHORIZED,
                    body("invalid_token", "no bearer token"),
                )
                    .into_response();
                if let Ok(v) =
                    HeaderValue::from_str(&format!("Bearer realm=\"{}\"", quote_safe(&self.realm)))
                {
                    r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
                }
                return r;
            }
            BearerError::InvalidRequest(d) => (StatusCode::BAD_REQUEST, "invalid_request", d, None),
            BearerError::InvalidToken(d) => (StatusCode::UNAUTHORIZED, "invalid_token", d, None),
            BearerError::InsufficientScope(s) => (
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                format!("this request needs the {s} scope"),
                Some(s),
            ),
            BearerError::Unavailable(d) => {
                tracing::warn!(detail = %d, "bearer token could not be checked with the issuer");
                let mut r = (
                    StatusCode::SERVICE_UNAVAILABLE,
                    body("temporarily_unavailable", &d),
                )
                    .into_response();
                r.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from_static(RETRY_AFTER_SECS),
                );
                return r;
            }
            BearerError::Internal(detail) => {
                tracing::error!(%detail, "internal error in the bearer token guard");
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    body("server_error", "internal error"),
                )
                    .into_response();
            }
        };
        let mut challenge = format!(
            "Bearer realm=\"{}\", error=\"{code}\", error_description=\"{}\"",
            quote_safe(&self.realm),
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
