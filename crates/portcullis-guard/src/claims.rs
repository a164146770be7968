//! The claims of a Portcullis access token (RFC 9068 §2.2), as the guard reads
//! them after the signature and the registered claims were checked.

use serde::{Deserialize, Serialize};

/// `aud`: one string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    /// A single audience.
    One(String),
    /// Several audiences.
    Many(Vec<String>),
}

impl Audience {
    /// Whether `aud` names `audience`.
    pub fn contains(&self, audience: &str) -> bool {
        match self {
            Self::One(a) => a == audience,
            Self::Many(all) => all.iter().any(|a| a == audience),
        }
    }
}

/// A verified access token's claims.
///
/// RFC 9068 §2.2 requires `iss`, `exp`, `aud`, `sub`, `client_id`, `iat` and `jti`,
/// so a token without one of them is refused. `nbf` is optional there (Portcullis
/// always sets it), `scope` too (absent = no scope), and `scopes` and `label` are
/// Portcullis additions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The issuer.
    pub iss: String,
    /// The subject: the client id, or the end user for the authorization code flow.
    pub sub: String,
    /// The audience(s).
    pub aud: Audience,
    /// The client the token was issued to.
    pub client_id: String,
    /// The token id (`<family id>.<random>` for Portcullis).
    pub jti: String,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Not before (Unix seconds).
    #[serde(default)]
    pub nbf: Option<u64>,
    /// Expires at (Unix seconds).
    pub exp: u64,
    /// Space-separated scopes (RFC 9068 §2.2.3).
    #[serde(default)]
    pub scope: String,
    /// The same scopes as an array (a Portcullis addition).
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// The data access point (care home…) the token was issued for.
    #[serde(default)]
    pub label: Option<String>,
}

impl Claims {
    /// The granted scopes: `scope` (the standard claim) split on spaces, or the
    /// `scopes` array when `scope` is absent or empty.
    pub fn scope_list(&self) -> Vec<String> {
        let from_scope: Vec<String> = self
            .scope
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect();
        if from_scope.is_empty() {
            self.scopes.clone().unwrap_or_default()
        } else {
            from_scope
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn claims(json: serde_json::Value) -> Claims {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn aud_may_be_a_string_or_an_array() {
        let base = serde_json::json!({"iss": "i", "sub": "s", "client_id": "c", "jti": "j",
            "iat": 1, "exp": 2});
        let mut one = base.clone();
        one["aud"] = "api".into();
        assert!(claims(one).aud.contains("api"));
        let mut many = base;
        many["aud"] = serde_json::json!(["x", "api"]);
        let c = claims(many);
        assert!(c.aud.contains("api"));
        assert!(!c.aud.contains("ap"));
    }

    #[test]
    fn scope_wins_over_scopes_and_scopes_fills_in_when_scope_is_absent() {
        let base = serde_json::json!({"iss": "i", "sub": "s", "aud": "a", "client_id": "c",
            "jti": "j", "iat": 1, "exp": 2, "scopes": ["b"]});
        let mut with_scope = base.clone();
        with_scope["scope"] = "a  c".into();
        assert_eq!(claims(with_scope).scope_list(), ["a", "c"]);
        assert_eq!(claims(base).scope_list(), ["b"]);
    }
}
