//! Token lifetimes, written by people as `15m`, `1d`, `365d` (humantime).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// The longest lifetime accepted anywhere: ten years. Longer values are almost
/// certainly typos and would overflow nothing, but keep tokens from outliving keys.
pub const MAX_TTL_SECS: u64 = 10 * 366 * 24 * 3600;

/// A positive duration in whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ttl(u64);

/// Why a duration was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TtlError {
    /// Not humantime syntax.
    #[error("invalid duration {0:?}: use a number and a unit, like 15m, 1h or 365d")]
    Syntax(String),
    /// Zero, or more than ten years.
    #[error("duration {0:?} is out of range (1s to 10 years)")]
    Range(String),
}

impl Ttl {
    /// From seconds; `None` unless `1 ..= MAX_TTL_SECS`.
    pub fn from_secs(secs: u64) -> Option<Self> {
        (1..=MAX_TTL_SECS).contains(&secs).then_some(Self(secs))
    }
    /// Like [`Ttl::from_secs`] but allowing zero (a grace period that is off).
    pub fn from_secs_allow_zero(secs: u64) -> Option<Self> {
        (secs <= MAX_TTL_SECS).then_some(Self(secs))
    }
    /// Parses `0s`, `15m`, `1d`, allowing zero.
    pub fn parse_allow_zero(s: &str) -> Result<Self, TtlError> {
        let d = humantime::parse_duration(s.trim()).map_err(|_| TtlError::Syntax(s.into()))?;
        Self::from_secs_allow_zero(d.as_secs()).ok_or_else(|| TtlError::Range(s.into()))
    }
    /// The length in seconds.
    pub fn secs(self) -> u64 {
        self.0
    }
    /// The length in seconds as a signed timestamp offset.
    pub fn secs_i64(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }
}

impl FromStr for Ttl {
    type Err = TtlError;
    fn from_str(s: &str) -> Result<Self, TtlError> {
        let t = Self::parse_allow_zero(s)?;
        if t.0 == 0 {
            return Err(TtlError::Range(s.into()));
        }
        Ok(t)
    }
}

impl fmt::Display for Ttl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}",
            humantime::format_duration(std::time::Duration::from_secs(self.0))
        )
    }
}

impl Serialize for Ttl {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for Ttl {
    /// Accepts either seconds (a number) or humantime text (`"1d"`), as TOML users write both.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Secs(u64),
            Text(String),
        }
        match Raw::deserialize(d)? {
            Raw::Secs(n) => Ttl::from_secs_allow_zero(n)
                .ok_or_else(|| serde::de::Error::custom(TtlError::Range(n.to_string()))),
            Raw::Text(t) => Ttl::parse_allow_zero(&t).map_err(serde::de::Error::custom),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_people_durations() {
        assert_eq!("15m".parse::<Ttl>().map(Ttl::secs), Ok(900));
        assert_eq!("1d".parse::<Ttl>().map(Ttl::secs), Ok(86_400));
        assert_eq!("365d".parse::<Ttl>().map(Ttl::secs), Ok(31_536_000));
    }

    #[test]
    fn refuses_zero_garbage_and_centuries() {
        assert!("0s".parse::<Ttl>().is_err());
        assert!("soon".parse::<Ttl>().is_err());
        assert!("200years".parse::<Ttl>().is_err());
        assert_eq!(Ttl::parse_allow_zero("0s").map(Ttl::secs), Ok(0));
    }
}
