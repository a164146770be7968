//! The OAuth endpoints' answers (RFC 6749 §5.2): `invalid_client` is 401 with
//! `WWW-Authenticate: Basic` when Basic was tried; too many failures is 429; every
//! answer carries `Cache-Control: no-store`.

use super::{Fault, body, no_store, unavailable_body, unavailable_response};
use crate::service::tokens::{IssueError, RefreshError};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::{OAuthError, OAuthErrorCode};

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
    /// Something inside failed: 503 or an opaque 500 (see [`Fault`]).
    Internal(Fault),
}

super::faults_into!(OAuthResponseError, |f| OAuthResponseError::Internal(f));

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
            Self::Internal(fault) => {
                fault.log("oauth");
                match fault {
                    Fault::Unavailable(_) => unavailable_response(unavailable_body()),
                    Fault::Broken(_) => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        body("server_error", "internal error"),
                    )
                        .into_response(),
                }
            }
        };
        no_store(&mut resp);
        resp
    }
}

impl From<OAuthError> for OAuthResponseError {
    fn from(error: OAuthError) -> Self {
        Self::Protocol {
            error,
            basic_tried: false,
        }
    }
}

impl From<IssueError> for OAuthResponseError {
    fn from(e: IssueError) -> Self {
        match e {
            // Disabled between authentication and the grant's commit (SPEC §8).
            IssueError::ClientInactive => {
                OAuthError::new(OAuthErrorCode::InvalidClient, "the client is disabled").into()
            }
            other => Self::Internal(other.into()),
        }
    }
}

impl From<RefreshError> for OAuthResponseError {
    fn from(e: RefreshError) -> Self {
        match e {
            RefreshError::Protocol(p) => p.into(),
            RefreshError::Issue(i) => i.into(),
        }
    }
}
