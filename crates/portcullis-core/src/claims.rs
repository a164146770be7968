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

/// An access token's claims as they are signed: [`AccessClaims`] borrowed from
/// what the grant already holds, so that issuing a token copies nothing into
/// owned strings first (eight to a dozen allocations a token). It serializes to
/// the same JSON as [`AccessClaims`], field for field and in the same order.
#[derive(Debug, Clone, Copy)]
pub struct IssuedClaims<'a> {
    /// Issuer URL.
    pub iss: &'a str,
    /// The client id, or the end user's id.
    pub sub: &'a str,
    /// The resource server's identifier (one audience).
    pub aud: &'a str,
    /// The client the token was issued to.
    pub client_id: &'a str,
    /// `<family id>.<random>`.
    pub jti: &'a str,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expires at.
    pub exp: i64,
    /// The granted scopes: the `scope` string and the `scopes` array.
    pub scopes: &'a crate::scope::ScopeSet,
    /// The data access point, when the grant named one.
    pub label: Option<&'a str>,
}

impl Serialize for IssuedClaims<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        /// The `scopes` array, straight from the set.
        struct Names<'a>(&'a crate::scope::ScopeSet);
        impl Serialize for Names<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter())
            }
        }
        let mut st = s.serialize_struct("AccessClaims", 10 + usize::from(self.label.is_some()))?;
        st.serialize_field("iss", self.iss)?;
        st.serialize_field("sub", self.sub)?;
        st.serialize_field("aud", self.aud)?;
        st.serialize_field("client_id", self.client_id)?;
        st.serialize_field("jti", self.jti)?;
        st.serialize_field("iat", &self.iat)?;
        st.serialize_field("nbf", &self.nbf)?;
        st.serialize_field("exp", &self.exp)?;
        st.serialize_field("scope", &format_args!("{}", self.scopes))?;
        st.serialize_field("scopes", &Names(self.scopes))?;
        if let Some(label) = self.label {
            st.serialize_field("label", label)?;
        }
        st.end()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::scope::ScopeSet;

    fn owned(i: &IssuedClaims<'_>) -> AccessClaims {
        AccessClaims {
            iss: i.iss.into(),
            sub: i.sub.into(),
            aud: Audience::One(i.aud.into()),
            client_id: i.client_id.into(),
            jti: i.jti.into(),
            iat: i.iat,
            nbf: i.nbf,
            exp: i.exp,
            scope: i.scopes.to_string(),
            scopes: i.scopes.to_vec(),
            label: i.label.map(str::to_owned),
        }
    }

    #[test]
    fn issued_claims_serialize_as_access_claims_do() {
        for (scopes, label) in [
            ("upload-data view-indicator", Some("home-1 \"north\" é")),
            ("upload-data", None),
            ("", None),
        ] {
            let scopes = if scopes.is_empty() {
                ScopeSet::default()
            } else {
                ScopeSet::parse(scopes).unwrap()
            };
            let issued = IssuedClaims {
                iss: "https://auth.example",
                sub: "pc_abc",
                aud: "https://api.example",
                client_id: "pc_abc",
                jti: "fam_01J.xyz",
                iat: 1_700_000_000,
                nbf: 1_700_000_000,
                exp: 1_700_086_400,
                scopes: &scopes,
                label,
            };
            let json = serde_json::to_string(&issued).unwrap();
            assert_eq!(json, serde_json::to_string(&owned(&issued)).unwrap());
            let back: AccessClaims = serde_json::from_str(&json).unwrap();
            assert_eq!(back, owned(&issued));
        }
    }
}
