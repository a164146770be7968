//! Cryptography for Portcullis, all on aws-lc-rs.
//!
//! - [`master_key`]: the 32-byte master key, subkeys derived from it, and
//!   AES-256-GCM encryption of private keys at rest.
//! - [`secret`]: opaque secrets and tokens (client secrets, refresh tokens,
//!   authorization codes): 256 random bits, a readable prefix, stored only as
//!   HMAC-SHA256 and compared in constant time.
//! - [`keys`]: signing keys (RS256, ES256, EdDSA), parsed once, JWS signing,
//!   verification with the algorithm pinned to the key, and JWKs.
//! - [`password`]: Argon2id for people's passwords (never for high-entropy tokens).

pub mod b64;
pub mod keys;
pub mod master_key;
pub mod password;
pub mod presign;
mod random;
pub mod secret;

pub use keys::{Algorithm, Jwk, JwsError, SigningKey, VerifyingKey};
pub use master_key::MasterKey;
pub use secret::{HashedToken, PlainToken, TokenHasher, TokenKind};

/// A failure inside the crypto library (bad key material, RNG failure, wrong master key).
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// Random number generation failed.
    #[error("the system random number generator failed")]
    Rng,
    /// Key material could not be generated, parsed or used.
    #[error("key error: {0}")]
    Key(String),
    /// Decryption failed: the master key does not match, or the data was altered.
    #[error("cannot decrypt: wrong master key or corrupted data")]
    Decrypt,
    /// Master key file problem.
    #[error("master key: {0}")]
    MasterKey(String),
}

/// Fills an array with cryptographically secure random bytes (aws-lc's
/// generator, drawn a block at a time per thread: see `random.rs`).
pub fn random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut b = [0u8; N];
    random::fill(&mut b)?;
    Ok(b)
}

/// A random identifier: `prefix` + 22 base64url characters (128 bits).
pub fn random_id(prefix: &str) -> Result<String, CryptoError> {
    let b: [u8; 16] = random_bytes()?;
    Ok(format!("{prefix}{}", b64::encode(b)))
}

/// Crockford base32, whose alphabet is in ASCII order, so encoded ids sort as
/// their bytes do.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Length of an [`ordered_id`] without its prefix.
pub const ORDERED_ID_LEN: usize = 26;

/// A time-ordered identifier: `prefix` + 26 Crockford base32 characters encoding
/// 48 bits of Unix milliseconds then 80 random bits (the ULID layout).
///
/// New rows keyed by these ids land at the end of their B-tree instead of on a
/// random page, so a group commit of many grants writes a few pages, not one per
/// grant per index. The creation time it reveals is already in the token's `iat`.
pub fn ordered_id(prefix: &str, unix_millis: u64) -> Result<String, CryptoError> {
    let rand: [u8; 10] = random_bytes()?;
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&unix_millis.to_be_bytes()[2..]);
    bytes[6..].copy_from_slice(&rand);
    let n = u128::from_be_bytes(bytes);
    let mut out = String::with_capacity(prefix.len() + ORDERED_ID_LEN);
    out.push_str(prefix);
    for i in (0..ORDERED_ID_LEN).rev() {
        let digit = usize::try_from((n >> (i * 5)) & 31).unwrap_or(0);
        out.push(char::from(CROCKFORD[digit]));
    }
    Ok(out)
}

/// An [`ordered_id`] for the current wall-clock time.
pub fn ordered_id_now(prefix: &str) -> Result<String, CryptoError> {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    ordered_id(prefix, millis)
}

/// Whether `s` is the 26-character body of an [`ordered_id`].
pub fn is_ordered_id(s: &str) -> bool {
    s.len() == ORDERED_ID_LEN
        && s.bytes().all(|b| CROCKFORD.contains(&b))
        // 26 × 5 = 130 bits: the first character carries only the top 3 of 128.
        && s.as_bytes()[0] <= b'7'
}

/// Whether BASE64URL(SHA-256(`verifier`)) is `challenge` (PKCE `S256`, RFC 7636
/// §4.6), compared in constant time.
pub fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let computed = b64::encode(sha256(verifier.as_bytes()));
    subtle::ConstantTimeEq::ct_eq(computed.as_bytes(), challenge.as_bytes()).into()
}

/// SHA-256 of `data` (request fingerprints, PKCE; never for secrets, which use HMAC).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn pkce_matches_the_rfc_7636_example() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        assert!(pkce_matches(
            verifier,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!pkce_matches(
            verifier,
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cN"
        ));
    }

    #[test]
    fn ordered_ids_sort_by_time_and_differ_within_a_millisecond() {
        let a = ordered_id("fam_", 1_700_000_000_000).unwrap();
        let b = ordered_id("fam_", 1_700_000_000_001).unwrap();
        let c = ordered_id("fam_", 1_700_000_000_001).unwrap();
        let later = ordered_id("fam_", 2_000_000_000_000).unwrap();
        assert!(a < b && a < c && b < later && c < later);
        assert_ne!(b, c);
        assert_eq!(a.len(), 4 + ORDERED_ID_LEN);
        assert!(is_ordered_id(&a[4..]));
        assert!(is_ordered_id(&ordered_id("", u64::MAX).unwrap()));
        assert!(!is_ordered_id(&a));
        assert!(!is_ordered_id("8ZZZZZZZZZZZZZZZZZZZZZZZZZ"));
        assert!(!is_ordered_id("0123456789ABCDEFGHJKMNPQRI"));
    }
}
