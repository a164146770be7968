//! Scopes (RFC 6749 §3.3; SPEC §5): registered names `[a-z0-9][a-z0-9:._-]{0,63}`.

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

/// The most scopes one request may name (SPEC §9).
pub const MAX_SCOPES_PER_REQUEST: usize = 50;

/// Scopes that are never part of a client's defaults and only given by name.
pub const RESERVED: [&str; 2] = ["admin", "introspect"];

/// The scopes a fresh database starts with, with their descriptions.
pub const BUILT_IN: [(&str, &str); 4] = [
    ("upload-data", "Send data records to the resource API"),
    (
        "view-indicator",
        "Read indicators computed from uploaded data",
    ),
    ("introspect", "Introspect any client's tokens (RFC 7662)"),
    ("admin", "Use the admin API"),
];

/// A well-formed scope name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ScopeName(String);

/// Why a scope (or a scope list) was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScopeError {
    /// Not `[a-z0-9][a-z0-9:._-]{0,63}`.
    #[error(
        "invalid scope name {0:?}: use 1-64 characters of a-z 0-9 : . _ - starting with a letter or digit"
    )]
    Malformed(String),
    /// An empty list.
    #[error("scope is empty")]
    Empty,
    /// More than [`MAX_SCOPES_PER_REQUEST`].
    #[error("too many scopes (at most {MAX_SCOPES_PER_REQUEST})")]
    TooMany,
}

impl ScopeName {
    /// Parses one scope name.
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        let b = s.as_bytes();
        let ok_first = b
            .first()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        let ok_rest = b.iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b':' | b'.' | b'_' | b'-')
        });
        if ok_first && ok_rest && b.len() <= 64 {
            Ok(Self(s.to_owned()))
        } else {
            Err(ScopeError::Malformed(truncate_for_message(s)))
        }
    }
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// Whether this is `admin` or `introspect`, which are only granted by name.
    pub fn is_reserved(&self) -> bool {
        RESERVED.contains(&self.0.as_str())
    }
}

fn truncate_for_message(s: &str) -> String {
    s.chars().take(70).collect()
}

impl FromStr for ScopeName {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, ScopeError> {
        Self::parse(s)
    }
}

impl fmt::Display for ScopeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ScopeName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A set of scopes, ordered so that its string form is stable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ScopeSet(BTreeSet<ScopeName>);

impl ScopeSet {
    /// Parses a space-delimited `scope` parameter (RFC 6749 §3.3).
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        let mut set = BTreeSet::new();
        for part in s.split(' ').filter(|p| !p.is_empty()) {
            if set.len() >= MAX_SCOPES_PER_REQUEST {
                return Err(ScopeError::TooMany);
            }
            set.insert(ScopeName::parse(part)?);
        }
        if set.is_empty() {
            return Err(ScopeError::Empty);
        }
        Ok(Self(set))
    }
    /// Whether `s` is in the set.
    pub fn contains(&self, s: &ScopeName) -> bool {
        self.0.contains(s)
    }
    /// Whether a scope of this name is in the set.
    pub fn contains_str(&self, s: &str) -> bool {
        self.0.iter().any(|x| x.as_str() == s)
    }
    /// The scopes in order.
    pub fn iter(&self) -> impl Iterator<Item = &ScopeName> {
        self.0.iter()
    }
    /// Number of scopes.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// The names as strings.
    pub fn to_vec(&self) -> Vec<String> {
        self.0.iter().map(|s| s.0.clone()).collect()
    }
}

impl FromIterator<ScopeName> for ScopeSet {
    fn from_iter<I: IntoIterator<Item = ScopeName>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl fmt::Display for ScopeSet {
    /// Space separated, as in the `scope` claim and parameter.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for s in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(s.as_str())?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_the_seed_scopes() {
        for s in ["upload-data", "view-indicator", "a", "x:y.z_1-2", "0abc"] {
            assert!(ScopeName::parse(s).is_ok(), "{s}");
        }
    }

    #[test]
    fn refuses_malformed_names() {
        let long = "a".repeat(65);
        for s in ["", "Upload", "-a", "a b", "a\"b", "é", long.as_str()] {
            assert!(ScopeName::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn parses_lists_and_limits_them() {
        let set = ScopeSet::parse("b a  a").unwrap_or_default();
        assert_eq!(set.to_string(), "a b");
        assert_eq!(ScopeSet::parse(" "), Err(ScopeError::Empty));
        let many: Vec<String> = (0..51).map(|i| format!("s{i}")).collect();
        assert_eq!(ScopeSet::parse(&many.join(" ")), Err(ScopeError::TooMany));
    }
}
