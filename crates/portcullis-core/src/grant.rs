//! Grant types (RFC 6749 §4) and the rules that choose a token's scopes.

use crate::error::OAuthError;
use crate::scope::ScopeSet;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A grant type a client may be allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// RFC 6749 §4.4.
    ClientCredentials,
    /// RFC 6749 §6.
    RefreshToken,
    /// RFC 6749 §4.1 with PKCE (RFC 7636).
    AuthorizationCode,
}

impl GrantType {
    /// Every grant type, in the order metadata lists them.
    pub const ALL: [GrantType; 3] = [
        GrantType::ClientCredentials,
        GrantType::RefreshToken,
        GrantType::AuthorizationCode,
    ];
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientCredentials => "client_credentials",
            Self::RefreshToken => "refresh_token",
            Self::AuthorizationCode => "authorization_code",
        }
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown grant type name.
#[derive(Debug, thiserror::Error)]
#[error(
    "unknown grant type {0:?} (expected client_credentials, refresh_token or authorization_code)"
)]
pub struct UnknownGrantType(pub String);

impl FromStr for GrantType {
    type Err = UnknownGrantType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|g| g.as_str() == s)
            .ok_or_else(|| UnknownGrantType(s.into()))
    }
}

/// RFC 6749 §3.3: the scopes of a new token. Absent means everything the client
/// is allowed; present must be a subset of it, or the request is `invalid_scope`.
pub fn granted_scopes(
    requested: Option<&ScopeSet>,
    allowed: &ScopeSet,
) -> Result<ScopeSet, OAuthError> {
    match requested {
        None => Ok(allowed.clone()),
        Some(req) => {
            let beyond: Vec<&str> = req
                .iter()
                .filter(|s| !allowed.contains(s))
                .map(|s| s.as_str())
                .collect();
            if beyond.is_empty() {
                Ok(req.clone())
            } else {
                Err(OAuthError::invalid_scope(format!(
                    "scope not allowed for this client: {}",
                    beyond.join(" ")
                )))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(s: &str) -> ScopeSet {
        ScopeSet::parse(s).unwrap_or_default()
    }

    #[test]
    fn absent_scope_means_everything_allowed() {
        assert_eq!(granted_scopes(None, &set("a b")), Ok(set("a b")));
    }

    #[test]
    fn a_subset_is_granted_and_a_wider_set_refused() {
        assert_eq!(granted_scopes(Some(&set("a")), &set("a b")), Ok(set("a")));
        let err = granted_scopes(Some(&set("a c")), &set("a b"));
        assert!(matches!(err, Err(e) if e.description.ends_with(": c")));
    }

    #[test]
    fn grant_names_round_trip() {
        for g in GrantType::ALL {
            assert_eq!(g.as_str().parse::<GrantType>().ok(), Some(g));
        }
        assert!("password".parse::<GrantType>().is_err());
    }
}
