//! The issuer's signing keys (RFC 7517), parsed once per fetch and kept by `kid`.
//!
//! Each usable JWK becomes a [`VerifyKey`]: its algorithm (from the JWK's own `alg`,
//! which must be in the allow-list and fit the key type), a `DecodingKey` and a
//! `Validation` pinned to that one algorithm. A token is verified only with the key
//! its `kid` names and only if its header `alg` equals the key's (RFC 8725 §3.1).
//!
//! Refetching: an unknown `kid` refetches the JWKS (a rotation reached the issuer
//! before us), but at most once per `min_refetch_interval`, counted from the last
//! refetch (the fetch made by `discover` does not count, so a key rotated in just
//! after start is picked up at once). Concurrent misses wait on one tokio mutex and
//! share the refetch in flight. A key set older than `max_age` is refreshed in the
//! background so withdrawn keys stop being trusted. A failed refetch keeps the keys
//! we had.

use crate::error::{BearerError, GuardError};
use crate::fetch;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde::Deserialize;
use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// A public key ready to verify tokens of exactly one algorithm.
pub(crate) struct VerifyKey {
    /// The key's algorithm (the JWK's `alg`).
    pub(crate) alg: Algorithm,
    /// The parsed key.
    pub(crate) key: DecodingKey,
    /// Validation pinned to `alg`, with issuer, audience and leeway.
    pub(crate) validation: Validation,
    /// The generation of the key set this key came from.
    pub(crate) generation: u64,
}

/// One fetched key set.
pub(crate) struct KeySet {
    keys: HashMap<String, Arc<VerifyKey>>,
    fetched_at: Instant,
    /// Unique in the process: which set vouched for a cached verification.
    generation: u64,
}

/// Source of key set generations.
static GENERATIONS: AtomicU64 = AtomicU64::new(1);

impl KeySet {
    /// How many usable keys the set holds.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

/// What every key's `Validation` shares.
pub(crate) struct KeyPolicy {
    /// The allow-list (asymmetric algorithms only).
    pub(crate) algorithms: Vec<Algorithm>,
    /// Issuer, audience, leeway and required claims; `algorithms` is set per key.
    pub(crate) validation: Validation,
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

/// Parses a JWKS, keeping the keys this policy may use. A key that does not parse,
/// has no `kid` or `alg`, is not for signatures, names an algorithm outside the
/// allow-list or one that does not fit its type is skipped (and logged at debug).
pub(crate) fn parse_key_set(bytes: &[u8], policy: &KeyPolicy) -> Result<KeySet, String> {
    let raw: RawJwks = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    let generation = GENERATIONS.fetch_add(1, Ordering::Relaxed);
    let mut keys = HashMap::new();
    for value in raw.keys {
        match usable_key(value, policy, generation) {
            Ok((kid, key)) => match keys.entry(kid) {
                Entry::Occupied(e) => {
                    tracing::warn!(kid = %e.key(), "the JWKS repeats a kid; keeping the first key");
                }
                Entry::Vacant(e) => {
                    e.insert(Arc::new(key));
                }
            },
            Err(why) => tracing::debug!(%why, "skipping a JWK"),
        }
    }
    Ok(KeySet {
        keys,
        fetched_at: Instant::now(),
        generation,
    })
}

fn usable_key(
    value: serde_json::Value,
    policy: &KeyPolicy,
    generation: u64,
) -> Result<(String, VerifyKey), String> {
    let jwk: Jwk = serde_json::from_value(value).map_err(|e| format!("unreadable JWK: {e}"))?;
    let kid = jwk.common.key_id.clone().ok_or("a JWK without kid")?;
    if matches!(&jwk.common.public_key_use, Some(u) if *u != PublicKeyUse::Signature) {
        return Err(format!("{kid}: not a signature key"));
    }
    let alg = Algorithm::try_from(
        jwk.common
            .key_algorithm
            .ok_or_else(|| format!("{kid}: no alg, so the algorithm cannot be pinned"))?,
    )
    .map_err(|_| format!("{kid}: not a signature algorithm"))?;
    if !policy.algorithms.contains(&alg) {
        return Err(format!("{kid}: {alg:?} is not allowed"));
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| format!("{kid}: {e}"))?;
    if key.family() != alg.family() || key.family() == AlgorithmFamily::Hmac {
        return Err(format!("{kid}: the key type does not fit {alg:?}"));
    }
    let mut validation = policy.validation.clone();
    validation.algorithms = vec![alg];
    Ok((
        kid,
        VerifyKey {
            alg,
            key,
            validation,
            generation,
        },
    ))
}

#[derive(Default)]
struct RefetchState {
    /// When the last refetch started (the initial fetch is not counted).
    last_attempt: Option<Instant>,
    /// Whether it failed: unknown kids are then "cannot check" (503), not "unknown" (401).
    last_failed: bool,
}

/// The cached key set and the refetch discipline.
pub(crate) struct JwksCache {
    http: reqwest::Client,
    uri: String,
    policy: KeyPolicy,
    min_refetch_interval: Duration,
    max_age: Duration,
    current: RwLock<Arc<KeySet>>,
    refetch: Arc<Mutex<RefetchState>>,
}

impl JwksCache {
    /// Fetches the key set once; fails when it holds no usable key.
    pub(crate) async fn load(
        http: reqwest::Client,
        uri: String,
        policy: KeyPolicy,
        min_refetch_interval: Duration,
        max_age: Duration,
    ) -> Result<Self, GuardError> {
        let set = fetch_key_set(&http, &uri, &policy).await?;
        if set.len() == 0 {
            return Err(GuardError::NoUsableKeys(uri));
        }
        Ok(Self {
            http,
            uri,
            policy,
            min_refetch_interval,
            max_age,
            current: RwLock::new(Arc::new(set)),
            refetch: Arc::new(Mutex::new(RefetchState::default())),
        })
    }

    /// Whether `alg` is in the allow-list.
    pub(crate) fn allows(&self, alg: Algorithm) -> bool {
        self.policy.algorithms.contains(&alg)
    }

    fn snapshot(&self) -> Arc<KeySet> {
        // A poisoned lock only means a panic elsewhere mid-swap of an Arc: the
        // value is still a whole key set.
        match self.current.read() {
            Ok(g) => Arc::clone(&g),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    fn install(&self, set: KeySet) {
        let set = Arc::new(set);
        match self.current.write() {
            Ok(mut g) => *g = set,
            Err(p) => *p.into_inner() = set,
        }
    }

    /// The current key set's generation (refreshing an old set in the background).
    pub(crate) fn generation(self: &Arc<Self>) -> u64 {
        let set = self.snapshot();
        if set.fetched_at.elapsed() >= self.max_age {
            self.refresh_in_background();
        }
        set.generation
    }

    /// The key named `kid`, refetching the JWKS when it is unknown (rate-limited).
    pub(crate) async fn key(self: &Arc<Self>, kid: &str) -> Result<Arc<VerifyKey>, BearerError> {
        let set = self.snapshot();
        if set.fetched_at.elapsed() >= self.max_age {
            self.refresh_in_background();
        }
        if let Some(k) = set.keys.get(kid) {
            return Ok(Arc::clone(k));
        }
        self.refetch_for(kid).await
    }

    async fn refetch_for(&self, kid: &str) -> Result<Arc<VerifyKey>, BearerError> {
        let mut state = self.refetch.lock().await;
        // Another request may have refetched while we waited for the lock.
        if let Some(k) = self.snapshot().keys.get(kid) {
            return Ok(Arc::clone(k));
        }
        if let Some(at) = state.last_attempt
            && at.elapsed() < self.min_refetch_interval
        {
            return Err(if state.last_failed {
                BearerError::Unavailable("the issuer's signing keys cannot be fetched".into())
            } else {
                unknown_key()
            });
        }
        state.last_attempt = Some(Instant::now());
        match fetch_key_set(&self.http, &self.uri, &self.policy).await {
            Ok(set) => {
                state.last_failed = false;
                let found = set.keys.get(kid).cloned();
                self.install(set);
                found.ok_or_else(unknown_key)
            }
            Err(e) => {
                state.last_failed = true;
                tracing::warn!(error = %e, "JWKS refetch failed; keeping the keys we had");
                Err(BearerError::Unavailable(
                    "the issuer's signing keys cannot be fetched".into(),
                ))
            }
        }
    }

    /// Refreshes an old key set without making the current request wait. Skipped
    /// when a refetch is running or the last one is too recent.
    fn refresh_in_background(self: &Arc<Self>) {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Ok(mut state) = Arc::clone(&self.refetch).try_lock_owned() else {
            return;
        };
        if state
            .last_attempt
            .is_some_and(|at| at.elapsed() < self.min_refetch_interval)
        {
            return;
        }
        state.last_attempt = Some(Instant::now());
        let this = Arc::clone(self);
        handle.spawn(async move {
            match fetch_key_set(&this.http, &this.uri, &this.policy).await {
                Ok(set) => {
                    state.last_failed = false;
                    this.install(set);
                }
                Err(e) => {
                    state.last_failed = true;
                    tracing::warn!(error = %e, "JWKS refresh failed; keeping the keys we had");
                }
            }
        });
    }
}

fn unknown_key() -> BearerError {
    BearerError::InvalidToken("the token is signed with an unknown key".into())
}

async fn fetch_key_set(
    http: &reqwest::Client,
    uri: &str,
    policy: &KeyPolicy,
) -> Result<KeySet, GuardError> {
    let resp = http
        .get(uri)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|source| GuardError::Http {
            url: uri.to_owned(),
            source,
        })?;
    let bytes = fetch::body_limited(resp, uri, fetch::MAX_DOCUMENT).await?;
    parse_key_set(&bytes, policy).map_err(|reason| GuardError::Malformed {
        url: uri.to_owned(),
        reason,
    })
}
