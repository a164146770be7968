//! Argon2id for people's passwords (admin users, end users). Tokens and client
//! secrets are never hashed this way: they have 256 bits of entropy already.

use crate::CryptoError;
use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

/// Hashes a password to a PHC string (`$argon2id$v=19$…`) with a random salt.
pub fn hash_password(password: &str) -> Result<String, CryptoError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| CryptoError::Key(format!("password hashing failed: {e}")))
}

/// Whether `password` matches the PHC string `stored`.
pub fn verify_password(password: &str, stored: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), stored)
        .is_ok()
}

/// A generated password for a first admin: 20 characters from an unambiguous alphabet.
pub fn generate_password() -> Result<String, CryptoError> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let raw: [u8; 20] = crate::random_bytes()?;
    // 256 is not a multiple of 55: the bias (< 0.4%) costs under 0.1 bit of 115.
    Ok(raw
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn argon2id_round_trip() {
        let pw = generate_password().unwrap();
        let h = hash_password(&pw).unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password(&pw, &h));
        assert!(!verify_password("wrong", &h));
        assert!(!verify_password(&pw, "garbage"));
    }
}
