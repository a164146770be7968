//! PKCE (RFC 7636) with the `S256` method, the only one accepted (RFC 9700 §2.1.1:
//! `plain` protects nothing against an attacker who reads the authorization
//! request).
//!
//! A verifier is 43–128 characters of `[A-Za-z0-9-._~]` (§4.1); a challenge is
//! BASE64URL(SHA-256(verifier)), so exactly 43 base64url characters (§4.2). The
//! hash itself is computed by the caller (this crate has no cryptography).

/// A well-formed `S256` code challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeChallenge(String);

/// Why a PKCE parameter was refused (the message is the `error_description`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PkceError {
    /// No `code_challenge`.
    #[error("code_challenge is required (PKCE with S256)")]
    MissingChallenge,
    /// A method other than `S256`.
    #[error("code_challenge_method must be S256")]
    UnsupportedMethod,
    /// Not 43 base64url characters.
    #[error("code_challenge must be 43 base64url characters (BASE64URL(SHA-256(code_verifier)))")]
    MalformedChallenge,
    /// A verifier of the wrong length or characters.
    #[error("code_verifier must be 43-128 characters of A-Z a-z 0-9 - . _ ~")]
    MalformedVerifier,
}

fn is_base64url(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-' || c == b'_'
}

impl CodeChallenge {
    /// The challenge of an authorization request: `method` must be `S256`
    /// (absent means `plain`, RFC 7636 §4.3, and is refused too).
    pub fn parse(challenge: Option<&str>, method: Option<&str>) -> Result<Self, PkceError> {
        let challenge = challenge.ok_or(PkceError::MissingChallenge)?;
        if method != Some("S256") {
            return Err(PkceError::UnsupportedMethod);
        }
        if challenge.len() != 43 || !challenge.bytes().all(is_base64url) {
            return Err(PkceError::MalformedChallenge);
        }
        Ok(Self(challenge.to_owned()))
    }
    /// The challenge text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks a `code_verifier`'s form (RFC 7636 §4.1).
pub fn check_verifier(verifier: &str) -> Result<(), PkceError> {
    let ok = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~'));
    if ok {
        Ok(())
    } else {
        Err(PkceError::MalformedVerifier)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_s256_with_a_well_formed_challenge_passes() {
        let good = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(CodeChallenge::parse(Some(good), Some("S256")).is_ok());
        assert_eq!(
            CodeChallenge::parse(Some(good), None),
            Err(PkceError::UnsupportedMethod)
        );
        assert_eq!(
            CodeChallenge::parse(Some(good), Some("plain")),
            Err(PkceError::UnsupportedMethod)
        );
        assert_eq!(
            CodeChallenge::parse(None, Some("S256")),
            Err(PkceError::MissingChallenge)
        );
        for bad in ["short", &format!("{good}A"), &good.replace('E', "+")] {
            assert_eq!(
                CodeChallenge::parse(Some(bad), Some("S256")),
                Err(PkceError::MalformedChallenge),
                "{bad}"
            );
        }
    }

    #[test]
    fn verifiers_are_43_to_128_unreserved_characters() {
        assert!(check_verifier(&"a".repeat(43)).is_ok());
        assert!(check_verifier(&"a-._~".repeat(25)).is_ok());
        assert!(check_verifier(&"a".repeat(42)).is_err());
        assert!(check_verifier(&"a".repeat(129)).is_err());
        assert!(check_verifier(&format!("{}+", "a".repeat(43))).is_err());
    }
}
