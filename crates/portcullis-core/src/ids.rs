//! Identifiers. Their random parts come from `portcullis-crypto`; here we only
//! decide what a well-formed one looks like.

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// A client identifier: 1–64 characters of `A-Z a-z 0-9 . _ -` (what we generate is
/// `pc_` + 22 base64url characters; imported ids may differ but stay this safe).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ClientId(String);

/// A malformed identifier.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed identifier")]
pub struct BadId;

fn id_chars_ok(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
}

impl ClientId {
    /// Parses a client id.
    pub fn parse(s: &str) -> Result<Self, BadId> {
        if id_chars_ok(s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(BadId)
        }
    }
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ClientId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A token family: one grant and everything that descends from it (its refresh
/// tokens and the access tokens they mint). Revoking a family revokes all of it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct FamilyId(String);

impl FamilyId {
    /// Parses a family id.
    pub fn parse(s: &str) -> Result<Self, BadId> {
        if id_chars_ok(s) {
            Ok(Self(s.to_owned()))
        } else {
            Err(BadId)
        }
    }
    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FamilyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_url_and_shell_safe() {
        assert!(ClientId::parse("pc_AbC-12_x.y").is_ok());
        assert!(ClientId::parse("").is_err());
        assert!(ClientId::parse("a b").is_err());
        assert!(ClientId::parse("a:b").is_err());
        assert!(ClientId::parse(&"a".repeat(65)).is_err());
    }
}
