//! The OAuth 2.0 error codes (RFC 6749 §5.2, RFC 7009 §2.2.1) as data; the server
//! maps them onto HTTP statuses and bodies.

use std::fmt;

/// An RFC 6749 §5.2 error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OAuthErrorCode {
    /// Missing, repeated or malformed parameter.
    InvalidRequest,
    /// Client authentication failed.
    InvalidClient,
    /// The grant (refresh token, code) is invalid, expired, revoked or foreign.
    InvalidGrant,
    /// The client may not use this grant type.
    UnauthorizedClient,
    /// The server does not support this grant type.
    UnsupportedGrantType,
    /// A requested scope is unknown, malformed or beyond what the client may have.
    InvalidScope,
    /// RFC 7009 §2.2.1: the server cannot revoke this token type.
    UnsupportedTokenType,
}

impl OAuthErrorCode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::UnsupportedTokenType => "unsupported_token_type",
        }
    }
}

/// An OAuth error with a human-readable description (never containing secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuthError {
    /// The code.
    pub code: OAuthErrorCode,
    /// `error_description`: printable ASCII, safe to show.
    pub description: String,
}

impl OAuthError {
    /// An error with the given code and description.
    pub fn new(code: OAuthErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }
    /// `invalid_request`.
    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidRequest, d)
    }
    /// `invalid_scope`.
    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidScope, d)
    }
    /// `invalid_grant`.
    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(OAuthErrorCode::InvalidGrant, d)
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.description)
    }
}

impl std::error::Error for OAuthError {}
