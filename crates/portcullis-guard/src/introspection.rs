//! Asking the issuer whether a token is still active (RFC 7662), so a revoked
//! token is refused before it expires.
//!
//! The guard authenticates with HTTP Basic, id and secret form-urlencoded first
//! (RFC 6749 §2.3.1). Answers are cached per token, keyed by the token's SHA-256
//! (the token itself is never kept), for `cache_ttl` and never past the token's
//! `exp`; the cache holds at most `cache_capacity` answers.
//!
//! Fail closed: when the endpoint cannot be reached or answers anything but a
//! well-formed `200 {"active": …}`, the request is refused with 503 (not 401: the
//! token may well be valid, and a client that retries later should not throw it
//! away).

use crate::config::IntrospectionConfig;
use crate::error::BearerError;
use crate::fetch;
use crate::verified::{TokenHash, token_hash};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Largest introspection answer read.
const MAX_ANSWER: usize = 64 * 1024;

/// Until when an answer may be reused: `ttl` from now, but not past `exp`.
pub(crate) fn cache_until(now: Instant, now_unix: u64, ttl: Duration, exp: u64) -> Instant {
    let left = Duration::from_secs(exp.saturating_sub(now_unix));
    now + ttl.min(left)
}

/// A bounded map from token hash to (answer, valid until).
pub(crate) struct AnswerCache {
    capacity: usize,
    entries: Mutex<HashMap<TokenHash, (bool, Instant)>>,
}

impl AnswerCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TokenHash, (bool, Instant)>> {
        // Entries are inserted whole: a poisoned map is still consistent.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn get(&self, key: &TokenHash, now: Instant) -> Option<bool> {
        let mut map = self.lock();
        match map.get(key) {
            Some(&(active, until)) if now < until => Some(active),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }
    }

    pub(crate) fn put(&self, key: TokenHash, active: bool, until: Instant, now: Instant) {
        if self.capacity == 0 || until <= now {
            return;
        }
        let mut map = self.lock();
        if map.len() >= self.capacity && !map.contains_key(&key) {
            map.retain(|_, (_, u)| *u > now);
            if map.len() >= self.capacity {
                // Still full of live answers: drop an arbitrary one; it is only asked again.
                if let Some(victim) = map.keys().next().copied() {
                    map.remove(&victim);
                }
            }
        }
        map.insert(key, (active, until));
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

#[derive(Deserialize)]
struct Answer {
    active: bool,
}

/// The introspection client of one guard.
pub(crate) struct Introspector {
    http: reqwest::Client,
    endpoint: String,
    authorization: String,
    ttl: Duration,
    cache: AnswerCache,
}

fn form_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Introspector {
    pub(crate) fn new(
        http: reqwest::Client,
        endpoint: String,
        config: &IntrospectionConfig,
    ) -> Self {
        // RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
        let pair = format!(
            "{}:{}",
            form_encode(&config.client_id),
            form_encode(&config.client_secret)
        );
        Self {
            http,
            endpoint,
            authorization: format!("Basic {}", STANDARD.encode(pair)),
            ttl: config.cache_ttl,
            cache: AnswerCache::new(config.cache_capacity),
        }
    }

    /// Ok when the issuer says the token (already verified, expiring at `exp`) is active.
    pub(crate) async fn check(&self, token: &str, exp: u64) -> Result<(), BearerError> {
        let key = token_hash(token);
        let active = match self.cache.get(&key, Instant::now()) {
            Some(active) => active,
            None => {
                let active = self.ask(token).await?;
                let now = Instant::now();
                let now_unix = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                self.cache
                    .put(key, active, cache_until(now, now_unix, self.ttl, exp), now);
                active
            }
        };
        if active {
            Ok(())
        } else {
            Err(BearerError::InvalidToken(
                "the token is no longer active (revoked?)".into(),
            ))
        }
    }

    async fn ask(&self, token: &str) -> Result<bool, BearerError> {
        let unavailable = |why: String| {
            tracing::warn!(endpoint = %self.endpoint, %why, "introspection failed");
            BearerError::Unavailable("the token cannot be checked with the issuer now".into())
        };
        let resp = self
            .http
            .post(&self.endpoint)
            .header(reqwest::header::AUTHORIZATION, &self.authorization)
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[("token", token), ("token_type_hint", "access_token")])
            .send()
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let bytes = fetch::body_limited(resp, &self.endpoint, MAX_ANSWER)
            .await
            .map_err(|e| unavailable(e.to_string()))?;
        let answer: Answer =
            serde_json::from_slice(&bytes).map_err(|e| unavailable(format!("bad answer: {e}")))?;
        Ok(answer.active)
    }

    #[cfg(test)]
    pub(crate) fn cached(&self) -> usize {
        self.cache.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_kept_for_the_ttl_but_never_past_the_token_expiry() {
        let now = Instant::now();
        let ttl = Duration::from_secs(10);
        assert_eq!(cache_until(now, 1000, ttl, 2000), now + ttl);
        assert_eq!(
            cache_until(now, 1000, ttl, 1003),
            now + Duration::from_secs(3)
        );
        assert_eq!(cache_until(now, 1000, ttl, 900), now);
    }

    #[test]
    fn the_cache_forgets_expired_answers_and_stays_within_its_capacity() {
        let cache = AnswerCache::new(3);
        let now = Instant::now();
        let later = now + Duration::from_secs(5);
        for i in 0..10u8 {
            cache.put([i; 32], true, later, now);
            assert!(cache.len() <= 3);
        }
        cache.put([42; 32], false, later, now);
        assert_eq!(cache.get(&[42; 32], now), Some(false));
        assert_eq!(cache.get(&[42; 32], later), None, "expired at `until`");
        // An answer that would expire at once is not stored at all.
        cache.put([43; 32], true, now, now);
        assert_eq!(cache.get(&[43; 32], now), None);
    }

    #[test]
    fn basic_credentials_are_form_urlencoded_first() {
        let config = IntrospectionConfig::new("a b:c", "p&ss=");
        let i = Introspector::new(reqwest::Client::new(), "http://x".into(), &config);
        let encoded = i.authorization.strip_prefix("Basic ").unwrap_or_default();
        let decoded = STANDARD.decode(encoded).unwrap_or_default();
        assert_eq!(decoded, b"a+b%3Ac:p%26ss%3D");
    }
}
