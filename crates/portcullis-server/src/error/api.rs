//! The JSON APIs' answers (the resource API and the admin API): a bearer token's
//! problems as RFC 6750 challenges, refusals as `{"error", "error_description"}`
//! with their status, and faults as 503 or an opaque 500.

use super::{Fault, body, unavailable_body, unavailable_response};
use crate::service::clients::ClientOpError;
use crate::service::mint::MintError;
use crate::service::scopes::ScopeOpError;
use crate::service::users::UserOpError;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

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
}

impl From<crate::service::tokens::TokenRejection> for BearerError {
    fn from(e: crate::service::tokens::TokenRejection) -> Self {
        Self::InvalidToken(e.to_string())
    }
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

/// The JSON APIs' error sink.
#[derive(Debug)]
pub enum ApiError {
    /// The bearer token is missing, bad, or lacks a scope (RFC 6750).
    Bearer(BearerError),
    /// The request was refused: JSON `{"error", "error_description"}` with `status`.
    Refused {
        /// HTTP status.
        status: StatusCode,
        /// Short code (`invalid_request`, `not_found`, `conflict`…).
        error: &'static str,
        /// What was wrong, for a person.
        description: String,
    },
    /// Something inside failed: 503 or an opaque 500 (see [`Fault`]).
    Fault(Fault),
}

impl ApiError {
    /// A refusal with its status and code.
    pub fn refused(status: StatusCode, error: &'static str, d: impl Into<String>) -> Self {
        Self::Refused {
            status,
            error,
            description: d.into(),
        }
    }
    /// 400 `invalid_request`.
    pub fn bad_request(d: impl Into<String>) -> Self {
        Self::refused(StatusCode::BAD_REQUEST, "invalid_request", d)
    }
    /// 413 `invalid_request`.
    pub fn too_large(d: impl Into<String>) -> Self {
        Self::refused(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request", d)
    }
    /// 404 `not_found`.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::refused(StatusCode::NOT_FOUND, "not_found", what)
    }
    /// 409 `conflict`: the request is well formed but the server's state refuses it.
    pub fn conflict(why: impl Into<String>) -> Self {
        Self::refused(StatusCode::CONFLICT, "conflict", why)
    }
    /// The description, for tests and logs.
    pub fn description(&self) -> String {
        match self {
            Self::Bearer(b) => format!("{b:?}"),
            Self::Refused { description, .. } => description.clone(),
            Self::Fault(f) => f.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            Self::Bearer(b) => b.into_response(),
            Self::Refused {
                status,
                error,
                description,
            } => (status, body(error, &description)).into_response(),
            Self::Fault(fault) => {
                fault.log("api");
                match fault {
                    Fault::Unavailable(_) => unavailable_response(unavailable_body()),
                    Fault::Broken(_) => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        body("server_error", "internal error"),
                    )
                        .into_response(),
                }
            }
        }
    }
}

super::faults_into!(ApiError, |f| ApiError::Fault(f));

impl From<BearerError> for ApiError {
    fn from(e: BearerError) -> Self {
        Self::Bearer(e)
    }
}

impl From<ClientOpError> for ApiError {
    fn from(e: ClientOpError) -> Self {
        match e {
            // The API's field is `grant_types`; the service calls it `grants`.
            ClientOpError::Field("grants", m) => Self::bad_request(format!("grant_types: {m}")),
            // The handlers check scope names first (`rules::scope_names`), so what the
            // service still refuses is a well-formed name that is not registered: a
            // conflict with the server's state, not a malformed request.
            ClientOpError::Field("scopes", m) => Self::conflict(format!("scopes: {m}")),
            ClientOpError::Field(f, m) => Self::bad_request(format!("{f}: {m}")),
            ClientOpError::Invalid(m) => Self::conflict(m),
            ClientOpError::NotFound(what) => Self::not_found(format!("no client with id {what}")),
            ClientOpError::Fault(f) => Self::Fault(f),
        }
    }
}

impl From<ScopeOpError> for ApiError {
    fn from(e: ScopeOpError) -> Self {
        match e {
            ScopeOpError::Field(..) => Self::bad_request(e.to_string()),
            ScopeOpError::Conflict(m) => Self::conflict(m),
            ScopeOpError::Fault(f) => Self::Fault(f),
        }
    }
}

impl From<MintError> for ApiError {
    fn from(e: MintError) -> Self {
        match e {
            MintError::Label(_) => Self::bad_request(e.to_string()),
            // The handlers check scope names first: what is left is a scope the
            // client lacks, or a client that is disabled.
            MintError::Scopes(_) | MintError::Disabled => Self::conflict(e.to_string()),
            MintError::Fault(f) => Self::Fault(f),
        }
    }
}

impl From<UserOpError> for ApiError {
    fn from(e: UserOpError) -> Self {
        match e {
            // The handlers check names and passwords first (`rules::user_name`,
            // `rules::password`), naming the field; this is the service's own word.
            UserOpError::Invalid(m) => Self::bad_request(m),
            UserOpError::Conflict(m) => Self::conflict(m),
            UserOpError::NotFound(_) => Self::not_found(e.to_string()),
            UserOpError::Fault(f) => Self::Fault(f),
        }
    }
}
