//! Labels name a data access point (a care home) under a client (SPEC §3, §4).

use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// The longest label, in characters (SPEC §9).
pub const MAX_LABEL_CHARS: usize = 128;

/// 1–128 printable characters, no control characters, no surrounding whitespace.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Label(String);

/// Why a label was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LabelError {
    /// Empty.
    #[error("label is empty")]
    Empty,
    /// Over 128 characters.
    #[error("label is longer than {MAX_LABEL_CHARS} characters")]
    TooLong,
    /// Contains a control or format character (bidi overrides, zero-width
    /// characters), or surrounding whitespace.
    #[error(
        "label must be printable characters (no control, bidi or zero-width characters) \
         without leading or trailing spaces"
    )]
    NotPrintable,
}

impl Label {
    /// Parses a label, in Normalization Form C (see [`crate::text`]).
    pub fn parse(s: &str) -> Result<Self, LabelError> {
        if s.is_empty() {
            return Err(LabelError::Empty);
        }
        if crate::text::has_hidden(s) || s.trim() != s {
            return Err(LabelError::NotPrintable);
        }
        let s = crate::text::nfc(s);
        if s.chars().count() > MAX_LABEL_CHARS {
            return Err(LabelError::TooLong);
        }
        Ok(Self(s))
    }
    /// The label text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Label {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_care_home_names() {
        assert!(Label::parse("care-home-042").is_ok());
        assert!(Label::parse("Maison Sainte-Anne, Lyon").is_ok());
        assert!(Label::parse(&"é".repeat(128)).is_ok());
    }

    #[test]
    fn refuses_empty_long_and_control() {
        assert_eq!(Label::parse(""), Err(LabelError::Empty));
        assert_eq!(Label::parse(&"a".repeat(129)), Err(LabelError::TooLong));
        assert_eq!(Label::parse("a\nb"), Err(LabelError::NotPrintable));
        assert_eq!(Label::parse(" a"), Err(LabelError::NotPrintable));
    }
}
