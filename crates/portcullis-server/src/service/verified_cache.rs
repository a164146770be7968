//! A bounded cache of access tokens whose signature was already verified, keyed by
//! the token's SHA-256: a repeat request skips the signature check (about 20 µs for
//! RS256) but never the checks that can change — expiry, not-before, revocation —
//! and any change of the signing keys empties it.

use portcullis_core::AccessClaims;
use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Most tokens kept.
const CAPACITY: usize = 50_000;

/// The cache.
#[derive(Debug, Default)]
pub struct VerifiedCache {
    map: RwLock<HashMap<[u8; 32], AccessClaims>>,
    generation: AtomicU64,
}

impl VerifiedCache {
    /// Claims of a token verified before under key generation `generation`.
    pub fn get(&self, digest: &[u8; 32], generation: u64) -> Option<AccessClaims> {
        if self.generation.load(Ordering::Acquire) != generation {
            if let Ok(mut m) = self.map.write() {
                m.clear();
            }
            self.generation.store(generation, Ordering::Release);
            return None;
        }
        self.map.read().ok()?.get(digest).cloned()
    }

    /// Remembers a verified token; makes room by dropping expired entries, or all.
    pub fn put(&self, digest: [u8; 32], claims: &AccessClaims, generation: u64, now: i64) {
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if let Ok(mut m) = self.map.write() {
            if m.len() >= CAPACITY {
                m.retain(|_, c| c.exp > now);
                if m.len() >= CAPACITY {
                    m.clear();
                }
            }
            m.insert(digest, claims.clone());
        }
    }

    /// Number of cached tokens.
    pub fn len(&self) -> usize {
        self.map.read().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
