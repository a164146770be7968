//! End users: the people who sign in to let applications use their data.

use std::fmt;

/// The longest user name, in characters.
pub const MAX_USER_NAME_CHARS: usize = 64;

/// A user's sign-in name: 1–64 printable characters without spaces (an e-mail
/// address works), in Normalization Form C, so that two names that look the same
/// are the same name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserName(String);

/// Why a user name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "a user name is 1-{MAX_USER_NAME_CHARS} printable characters without spaces \
     (no control, bidi or zero-width characters)"
)]
pub struct UserNameError;

impl UserName {
    /// Parses a user name.
    pub fn parse(s: &str) -> Result<Self, UserNameError> {
        if s.is_empty() || crate::text::has_hidden(s) || s.chars().any(char::is_whitespace) {
            return Err(UserNameError);
        }
        let s = crate::text::nfc(s);
        if s.chars().count() > MAX_USER_NAME_CHARS {
            return Err(UserNameError);
        }
        Ok(Self(s))
    }
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for UserName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The shortest password a user may set.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// The longest password accepted (Argon2id hashes any length; this bounds the work).
pub const MAX_PASSWORD_CHARS: usize = 1024;

/// Why a new password was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a password is {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters")]
pub struct PasswordRuleError;

/// Checks a new end-user password's length (NIST SP 800-63B §5.1.1: length, not
/// composition rules).
pub fn check_new_password(pw: &str) -> Result<(), PasswordRuleError> {
    if (MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS).contains(&pw.chars().count()) {
        Ok(())
    } else {
        Err(PasswordRuleError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_printable_without_spaces() {
        assert!(UserName::parse("alice").is_ok());
        assert!(UserName::parse("alice@example.org").is_ok());
        assert!(UserName::parse(&"a".repeat(64)).is_ok());
        for bad in [
            "",
            " alice",
            "al ice",
            "alice\u{202e}",
            "a\u{200b}b",
            "a\nb",
        ] {
            assert!(UserName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(UserName::parse(&"a".repeat(65)).is_err());
    }
}
