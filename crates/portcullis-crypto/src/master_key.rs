//! The master key: 32 random bytes, kept in a file (mode 0600) or given as
//! `PORTCULLIS_MASTER_KEY`. Nothing uses it directly; it derives an AES-256-GCM key
//! that encrypts private signing keys at rest, and an HMAC key that hashes secrets.

use crate::{CryptoError, random_bytes};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// The master key and the subkeys derived from it.
pub struct MasterKey {
    aead: LessSafeKey,
    token_hash_key: [u8; 32],
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// What [`MasterKey::load_or_create`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MasterKeySource {
    /// Read an existing file.
    Loaded,
    /// Created a new file.
    Created,
}

/// HMAC-SHA256 used as a PRF over a uniformly random key: a sound KDF for fixed labels.
fn derive(master: &[u8; 32], label: &str) -> [u8; 32] {
    let k = hmac::Key::new(hmac::HMAC_SHA256, master);
    let tag = hmac::sign(&k, label.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(tag.as_ref());
    out
}

impl MasterKey {
    /// From raw bytes.
    pub fn from_bytes(raw: &[u8; 32]) -> Result<Self, CryptoError> {
        let aead_key = derive(raw, "portcullis/v1/private-key-encryption");
        let unbound = UnboundKey::new(&AES_256_GCM, &aead_key)
            .map_err(|_| CryptoError::MasterKey("cannot build AES key".into()))?;
        Ok(Self {
            aead: LessSafeKey::new(unbound),
            token_hash_key: derive(raw, "portcullis/v1/secret-hashing"),
        })
    }

    /// From standard base64 (what the key file holds and `PORTCULLIS_MASTER_KEY` carries).
    pub fn from_base64(text: &str) -> Result<Self, CryptoError> {
        let raw = STANDARD
            .decode(text.trim())
            .map_err(|_| CryptoError::MasterKey("not valid base64".into()))?;
        let arr: [u8; 32] = raw
            .try_into()
            .map_err(|_| CryptoError::MasterKey("must be exactly 32 bytes".into()))?;
        Self::from_bytes(&arr)
    }

    /// Reads the key file; `None` when it does not exist. A file that others may
    /// read (group or other permission bits) is refused, as ssh refuses a loose
    /// private key: whoever can read it can decrypt the signing keys.
    pub fn load(path: &Path) -> Result<Option<Self>, CryptoError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(CryptoError::MasterKey(format!(
                    "cannot read {}: {e}",
                    path.display()
                )));
            }
        };
        let mode = std::fs::metadata(path)
            .map(|m| m.permissions().mode() & 0o777)
            .map_err(|e| CryptoError::MasterKey(format!("cannot read {}: {e}", path.display())))?;
        if mode & 0o077 != 0 {
            return Err(CryptoError::MasterKey(format!(
                "{} is readable by other users (mode {mode:04o}); run `chmod 600 {}`",
                path.display(),
                path.display()
            )));
        }
        Self::from_base64(&text)
            .map(Some)
            .map_err(|e| CryptoError::MasterKey(format!("{}: {e}", path.display())))
    }

    /// Creates a new random key file (mode 0600; never overwrites one).
    pub fn create(path: &Path) -> Result<Self, CryptoError> {
        let raw: [u8; 32] = random_bytes()?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                CryptoError::MasterKey(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                CryptoError::MasterKey(format!("cannot create {}: {e}", path.display()))
            })?;
        writeln!(f, "{}", STANDARD.encode(raw))
            .and_then(|()| f.sync_all())
            .map_err(|e| CryptoError::MasterKey(format!("cannot write {}: {e}", path.display())))?;
        Self::from_bytes(&raw)
    }

    /// Reads the key file, or creates it when absent.
    pub fn load_or_create(path: &Path) -> Result<(Self, MasterKeySource), CryptoError> {
        match Self::load(path)? {
            Some(k) => Ok((k, MasterKeySource::Loaded)),
            None => Ok((Self::create(path)?, MasterKeySource::Created)),
        }
    }

    /// AES-256-GCM: `nonce || ciphertext || tag`, bound to `aad` (the key id).
    pub fn encrypt(&self, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let nonce_bytes: [u8; NONCE_LEN] = random_bytes()?;
        let mut buf = plaintext.to_vec();
        self.aead
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(aad),
                &mut buf,
            )
            .map_err(|_| CryptoError::Key("encryption failed".into()))?;
        let mut out = Vec::with_capacity(NONCE_LEN + buf.len());
        out.extend_from_slice(&nonce_bytes);
        out.extend_from_slice(&buf);
        Ok(out)
    }

    /// Reverses [`MasterKey::encrypt`]; fails on a wrong key, wrong `aad` or any change.
    pub fn decrypt(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < NONCE_LEN {
            return Err(CryptoError::Decrypt);
        }
        let (n, ct) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(n).map_err(|_| CryptoError::Decrypt)?;
        let mut buf = ct.to_vec();
        let plain = self
            .aead
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .map_err(|_| CryptoError::Decrypt)?;
        Ok(plain.to_vec())
    }

    /// A value that identifies this key without revealing it, recorded in the
    /// database on first use so that a wrong key is refused before it hashes
    /// a secret nobody could ever present.
    pub fn check_value(&self) -> String {
        let h = self.token_hasher().hash(
            crate::TokenKind::ClientSecret,
            "portcullis master key check v1",
        );
        crate::b64::encode(&h.0[..16])
    }

    /// The key that hashes secrets and tokens.
    pub fn token_hasher(&self) -> crate::TokenHasher {
        crate::TokenHasher::new(&self.token_hash_key)
    }
}

/// A fresh master key as base64, for `PORTCULLIS_MASTER_KEY` in tests and set-up scripts.
pub fn generate_base64() -> Result<String, CryptoError> {
    let raw: [u8; 32] = random_bytes()?;
    Ok(STANDARD.encode(raw))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn creates_a_0600_key_file_once_and_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/master.key");
        let (k1, s1) = MasterKey::load_or_create(&path).unwrap();
        assert_eq!(s1, MasterKeySource::Created);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let sealed = k1.encrypt(b"private key", b"kid1").unwrap();
        let (k2, s2) = MasterKey::load_or_create(&path).unwrap();
        assert_eq!(s2, MasterKeySource::Loaded);
        assert_eq!(k2.decrypt(&sealed, b"kid1").unwrap(), b"private key");
    }

    #[test]
    fn decryption_fails_with_another_key_or_aad_or_tampering() {
        let a = MasterKey::from_base64(&generate_base64().unwrap()).unwrap();
        let b = MasterKey::from_base64(&generate_base64().unwrap()).unwrap();
        let mut sealed = a.encrypt(b"secret", b"kid").unwrap();
        assert!(b.decrypt(&sealed, b"kid").is_err());
        assert!(a.decrypt(&sealed, b"other").is_err());
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert!(a.decrypt(&sealed, b"kid").is_err());
        assert!(!sealed.windows(6).any(|w| w == b"secret"));
    }

    #[test]
    fn refuses_short_or_garbage_keys() {
        assert!(MasterKey::from_base64("AAAA").is_err());
        assert!(MasterKey::from_base64("not base64!").is_err());
    }
}
