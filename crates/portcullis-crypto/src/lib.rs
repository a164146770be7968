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

/// Fills an array with cryptographically secure random bytes.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], CryptoError> {
    let mut b = [0u8; N];
    aws_lc_rs::rand::fill(&mut b).map_err(|_| CryptoError::Rng)?;
    Ok(b)
}

/// A random identifier: `prefix` + 22 base64url characters (128 bits).
pub fn random_id(prefix: &str) -> Result<String, CryptoError> {
    let b: [u8; 16] = random_bytes()?;
    Ok(format!("{prefix}{}", b64::encode(b)))
}

/// SHA-256 of `data` (request fingerprints; never for secrets, which use HMAC).
pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}
