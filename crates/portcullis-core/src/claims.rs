//! JWT access token claims (RFC 9068 §2.2, SPEC §4).

use serde::{Deserialize, Serialize};

/// The `aud` claim: one string when we issue, a string or array when we read (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `aud` names `expected`.
    pub fn contains(&self, expected: &str) -> bool {
        match self {
            Self::One(a) => a == expected,
            Self::Many(v) => v.iter().any(|a| a == expected),
        }
    }
    /// The first (usually only) audience.
    pub fn first(&self) -> &str {
        match self {
            Self::One(a) => a,
            Self::Many(v) => v.first().map(String::as_str).unwrap_or(""),
        }
    }
}

/// The claims of every access token Portcullis issues.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// Issuer URL.
    pub iss: String,
    /// The client id, or the end user's id in the authorization code flow.
    pub sub: String,
    /// The resource server's identifier.
    pub aud: Audience,
    /// The client the token was issued to.
    pub client_id: String,
    /// Unique token id: `<family id>.<random>`, so a family's revocation reaches it.
    pub jti: String,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expires at.
    pub exp: i64,
    /// Space-separated scopes (RFC 9068 §2.2.3).
    pub scope: String,
    /// The same scopes as an array, as the seed's example tokens carry them.
    pub scopes: Vec<String>,
    /// The data access point, when the grant named one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl AccessClaims {
    /// The family this token descends from (the part of `jti` before the last dot).
    pub fn family_id(&self) -> Option<&str> {
        self.jti.rsplit_once('.').map(|(f, _)| f)
    }
}
