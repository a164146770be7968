//! Opaque secrets: client secrets, refresh tokens, authorization codes (SPEC §4).
//!
//! 256 random bits, base64url, behind a short prefix that names the kind so a leaked
//! one is recognisable by secret scanners. Stored only as HMAC-SHA256 under a key
//! derived from the master key: with this much entropy a slow hash adds nothing but
//! cost, and a keyed hash means a stolen database alone cannot even test guesses.

use crate::{CryptoError, b64, random_bytes};
use aws_lc_rs::hmac;
use subtle::ConstantTimeEq;

/// What a secret is for; each kind has its own prefix and its own hash domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// `pcs_…`
    ClientSecret,
    /// `pcr_…`
    RefreshToken,
    /// `pcc_…`
    AuthorizationCode,
    /// `pca_…`: an admin web session cookie.
    AdminSession,
    /// `pcu_…`: an end user's web session cookie.
    UserSession,
    /// `pcf_…`: binds a consent form to the session and request it was shown for.
    ConsentFlow,
}

impl TokenKind {
    /// The readable prefix.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::ClientSecret => "pcs_",
            Self::RefreshToken => "pcr_",
            Self::AuthorizationCode => "pcc_",
            Self::AdminSession => "pca_",
            Self::UserSession => "pcu_",
            Self::ConsentFlow => "pcf_",
        }
    }
    fn domain(self) -> u8 {
        match self {
            Self::ClientSecret => 1,
            Self::RefreshToken => 2,
            Self::AuthorizationCode => 3,
            Self::AdminSession => 4,
            Self::UserSession => 5,
            Self::ConsentFlow => 6,
        }
    }
}

/// A secret in clear: shown once, never logged (its `Debug` is redacted).
#[derive(Clone, PartialEq, Eq)]
pub struct PlainToken(String);

impl std::fmt::Debug for PlainToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PlainToken(<redacted>)")
    }
}

impl PlainToken {
    /// A new random secret of `kind`.
    pub fn generate(kind: TokenKind) -> Result<Self, CryptoError> {
        let b: [u8; 32] = random_bytes()?;
        let mut s = String::with_capacity(48);
        s.push_str(kind.prefix());
        b64::encode_into(b, &mut s);
        Ok(Self(s))
    }
    /// A new secret of `kind` that names its stored row: `prefix` + `selector` +
    /// `.` + 256 random bits. The selector (an [`crate::ordered_id`] body) finds
    /// the row; the whole token's HMAC, compared in constant time, proves it. Rows
    /// keyed by time-ordered selectors are appended, not scattered.
    pub fn generate_with_selector(kind: TokenKind, selector: &str) -> Result<Self, CryptoError> {
        let b: [u8; 32] = random_bytes()?;
        let mut s = String::with_capacity(kind.prefix().len() + selector.len() + 44);
        s.push_str(kind.prefix());
        s.push_str(selector);
        s.push('.');
        b64::encode_into(b, &mut s);
        Ok(Self(s))
    }
    /// The selector of a presented token of `kind` made by
    /// [`Self::generate_with_selector`]; `None` for any other shape.
    pub fn selector(kind: TokenKind, presented: &str) -> Option<&str> {
        let rest = presented.strip_prefix(kind.prefix())?;
        let (selector, secret) = rest.split_once('.')?;
        (crate::is_ordered_id(selector) && secret.len() == 43).then_some(selector)
    }
    /// Wraps a presented secret.
    pub fn from_presented(s: &str) -> Self {
        Self(s.to_owned())
    }
    /// The secret itself, for the one response that shows it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// The stored form: HMAC-SHA256 of the secret.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HashedToken(pub [u8; 32]);

impl std::fmt::Debug for HashedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HashedToken({}…)", &b64::encode(&self.0[..4]))
    }
}

impl HashedToken {
    /// From stored bytes; `None` unless 32 bytes.
    pub fn from_slice(b: &[u8]) -> Option<Self> {
        b.try_into().ok().map(Self)
    }
    /// Constant-time equality.
    pub fn ct_eq(&self, other: &HashedToken) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

/// Hashes secrets with the key derived from the master key.
#[derive(Clone)]
pub struct TokenHasher(hmac::Key);

impl std::fmt::Debug for TokenHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenHasher(<redacted>)")
    }
}

impl TokenHasher {
    /// From a 32-byte key.
    pub fn new(key: &[u8; 32]) -> Self {
        Self(hmac::Key::new(hmac::HMAC_SHA256, key))
    }
    /// The stored hash of a secret of `kind`.
    pub fn hash(&self, kind: TokenKind, token: &str) -> HashedToken {
        let mut ctx = hmac::Context::with_key(&self.0);
        ctx.update(&[kind.domain()]);
        ctx.update(token.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.sign().as_ref());
        HashedToken(out)
    }
    /// Whether `presented` hashes to `stored`, compared in constant time.
    pub fn verify(&self, kind: TokenKind, presented: &str, stored: &HashedToken) -> bool {
        self.hash(kind, presented).ct_eq(stored)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn secrets_have_256_bits_and_a_prefix() {
        let t = PlainToken::generate(TokenKind::ClientSecret).unwrap();
        assert!(t.expose().starts_with("pcs_"));
        assert_eq!(b64::decode(&t.expose()[4..]).unwrap().len(), 32);
        assert_ne!(t, PlainToken::generate(TokenKind::ClientSecret).unwrap());
        assert_eq!(format!("{t:?}"), "PlainToken(<redacted>)");
    }

    #[test]
    fn selector_tokens_carry_their_selector_and_256_random_bits() {
        let sel = crate::ordered_id("", 1_700_000_000_000).unwrap();
        let t = PlainToken::generate_with_selector(TokenKind::RefreshToken, &sel).unwrap();
        assert_eq!(
            PlainToken::selector(TokenKind::RefreshToken, t.expose()),
            Some(sel.as_str())
        );
        let secret = t.expose().rsplit_once('.').unwrap().1;
        assert_eq!(b64::decode(secret).unwrap().len(), 32);
        assert_eq!(
            PlainToken::selector(TokenKind::ClientSecret, t.expose()),
            None
        );
        let legacy = PlainToken::generate(TokenKind::RefreshToken).unwrap();
        assert_eq!(
            PlainToken::selector(TokenKind::RefreshToken, legacy.expose()),
            None
        );
        assert_eq!(
            PlainToken::selector(TokenKind::RefreshToken, "pcr_x.y"),
            None
        );
        let short = format!("pcr_{sel}.abc");
        assert_eq!(PlainToken::selector(TokenKind::RefreshToken, &short), None);
    }

    #[test]
    fn hashes_verify_only_the_right_secret_of_the_right_kind() {
        let h = TokenHasher::new(&[7; 32]);
        let t = PlainToken::generate(TokenKind::RefreshToken).unwrap();
        let stored = h.hash(TokenKind::RefreshToken, t.expose());
        assert!(h.verify(TokenKind::RefreshToken, t.expose(), &stored));
        assert!(!h.verify(TokenKind::ClientSecret, t.expose(), &stored));
        assert!(!h.verify(TokenKind::RefreshToken, "pcr_other", &stored));
        let other_key = TokenHasher::new(&[8; 32]);
        assert!(!other_key.verify(TokenKind::RefreshToken, t.expose(), &stored));
    }
}
