//! A small cache of tokens already verified, keyed by the token's SHA-256.
//!
//! An RSA-2048 signature check costs tens of microseconds; a client sends the same
//! token with every call until it expires, so the second and later checks can be
//! a hash and a lookup. What a hit still enforces:
//!
//! - `exp` (with the leeway) against the clock at every hit, and entries are dropped
//!   once expired;
//! - the key set: an entry remembers the generation of the key set whose key
//!   verified it, and any change of the key set (refetch, refresh) invalidates it,
//!   so a withdrawn key stops vouching at once;
//! - introspection, when configured, runs after the cache as before.
//!
//! Bounded: at most `capacity` entries; a full cache first drops expired entries,
//! then an arbitrary one. Only successes are cached (a refusal is cheap anyway, and
//! caching refusals would let a flood of junk evict good entries).

use crate::claims::Claims;
use aws_lc_rs::digest;
use std::collections::HashMap;
use std::sync::RwLock;

/// SHA-256 of a token.
pub(crate) type TokenHash = [u8; 32];

/// The SHA-256 of `token`.
pub(crate) fn token_hash(token: &str) -> TokenHash {
    let mut out = [0u8; 32];
    out.copy_from_slice(digest::digest(&digest::SHA256, token.as_bytes()).as_ref());
    out
}

struct Entry {
    claims: Claims,
    generation: u64,
}

/// Verified claims by token hash.
pub(crate) struct VerifiedCache {
    capacity: usize,
    leeway: u64,
    entries: RwLock<HashMap<TokenHash, Entry>>,
}

impl VerifiedCache {
    /// A cache of at most `capacity` tokens (0: never caches).
    pub(crate) fn new(capacity: usize, leeway: u64) -> Self {
        Self {
            capacity,
            leeway,
            entries: RwLock::new(HashMap::new()),
        }
    }

    fn live(&self, exp: u64, now: u64) -> bool {
        // jsonwebtoken's rule: expired when exp < now - leeway.
        exp.saturating_add(self.leeway) >= now
    }

    /// The claims of `hash` if it was verified under key set `generation` and has
    /// not expired at `now` (Unix seconds).
    pub(crate) fn get(&self, hash: &TokenHash, generation: u64, now: u64) -> Option<Claims> {
        if self.capacity == 0 {
            return None;
        }
        let map = match self.entries.read() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let e = map.get(hash)?;
        (e.generation == generation && self.live(e.claims.exp, now)).then(|| e.claims.clone())
    }

    /// Remembers that `hash` verified to `claims` under key set `generation`.
    pub(crate) fn put(&self, hash: TokenHash, claims: &Claims, generation: u64, now: u64) {
        if self.capacity == 0 || !self.live(claims.exp, now) {
            return;
        }
        let mut map = match self.entries.write() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if map.len() >= self.capacity && !map.contains_key(&hash) {
            map.retain(|_, e| e.generation == generation && self.live(e.claims.exp, now));
            if map.len() >= self.capacity
                && let Some(victim) = map.keys().next().copied()
            {
                map.remove(&victim);
            }
        }
        map.insert(
            hash,
            Entry {
                claims: claims.clone(),
                generation,
            },
        );
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        match self.entries.read() {
            Ok(m) => m.len(),
            Err(p) => p.into_inner().len(),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::claims::Audience;

    fn claims(exp: u64) -> Claims {
        Claims {
            iss: "i".into(),
            sub: "s".into(),
            aud: Audience::One("a".into()),
            client_id: "c".into(),
            jti: "j".into(),
            iat: 0,
            nbf: None,
            exp,
            scope: String::new(),
            scopes: None,
            label: None,
        }
    }

    #[test]
    fn a_hit_needs_the_same_key_set_and_an_unexpired_token() {
        let cache = VerifiedCache::new(10, 30);
        let h = token_hash("t");
        cache.put(h, &claims(1000), 7, 900);
        assert_eq!(cache.get(&h, 7, 900).unwrap().exp, 1000);
        assert!(cache.get(&h, 8, 900).is_none(), "another key set");
        assert!(cache.get(&h, 7, 1030).is_some(), "within the leeway");
        assert!(cache.get(&h, 7, 1031).is_none(), "expired");
        assert!(cache.get(&token_hash("u"), 7, 900).is_none());
    }

    #[test]
    fn the_cache_is_bounded_and_a_zero_capacity_disables_it() {
        let cache = VerifiedCache::new(3, 0);
        for i in 0..10 {
            cache.put(token_hash(&i.to_string()), &claims(1000), 1, 900);
            assert!(cache.len() <= 3);
        }
        let off = VerifiedCache::new(0, 0);
        off.put(token_hash("t"), &claims(1000), 1, 900);
        assert!(off.get(&token_hash("t"), 1, 900).is_none());
    }
}
