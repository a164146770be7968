//! The issuer's signing keys (RFC 7517), parsed once per fetch and kept by `kid`.
//!
//! Each usable JWK becomes a [`VerifyKey`]: its algorithm (from the JWK's own `alg`,
//! which must be in the allow-list and fit the key type) and the public key, parsed
//! once by aws-lc-rs for that one algorithm. (Building an RSA key per token, as a
//! JWK-to-key conversion per call does, costs more than the verification itself.)
//! A token is verified only with the key its `kid` names and only if its header
//! `alg` equals the key's (RFC 8725 §3.1).
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
use aws_lc_rs::rsa::PublicKeyComponents;
use aws_lc_rs::signature::{self, ParsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse};
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
    /// The parsed key, bound to `alg`.
    key: ParsedPublicKey,
    /// The generation of the key set this key came from.
    pub(crate) generation: u64,
}

impl VerifyKey {
    /// Whether `signature` is this key's signature of `message` under its algorithm.
    pub(crate) fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        self.key.verify_sig(message, signature).is_ok()
    }
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

/// Which keys may be used.
pub(crate) struct KeyPolicy {
    /// The allow-list (asymmetric algorithms only).
    pub(crate) algorithms: Vec<Algorithm>,
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
    let key = parse_public_key(&jwk.algorithm, alg).map_err(|why| format!("{kid}: {why}"))?;
    Ok((
        kid,
        VerifyKey {
            alg,
            key,
            generation,
        },
    ))
}

/// The JWK's public key, parsed for exactly `alg`; an error if its type or curve
/// does not fit `alg` (an RSA key never verifies ES256, a symmetric key nothing).
fn parse_public_key(
    params: &AlgorithmParameters,
    alg: Algorithm,
) -> Result<ParsedPublicKey, String> {
    let b64 = |field: &str, name: &str| {
        URL_SAFE_NO_PAD
            .decode(field)
            .map_err(|_| format!("{name} is not base64url"))
    };
    let rejected = |e: aws_lc_rs::error::KeyRejected| format!("unusable key: {e}");
    match (params, alg) {
        (AlgorithmParameters::RSA(rsa), _) => {
            let scheme: &'static signature::RsaParameters = match alg {
                Algorithm::RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                Algorithm::RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                Algorithm::RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                Algorithm::PS256 => &signature::RSA_PSS_2048_8192_SHA256,
                Algorithm::PS384 => &signature::RSA_PSS_2048_8192_SHA384,
                Algorithm::PS512 => &signature::RSA_PSS_2048_8192_SHA512,
                _ => return Err(format!("an RSA key cannot verify {alg:?}")),
            };
            PublicKeyComponents {
                n: b64(&rsa.n, "n")?,
                e: b64(&rsa.e, "e")?,
            }
            .to_parsed_public_key(scheme)
            .map_err(rejected)
        }
        (AlgorithmParameters::EllipticCurve(ec), Algorithm::ES256 | Algorithm::ES384) => {
            let scheme: &'static signature::EcdsaVerificationAlgorithm = match (&ec.curve, alg) {
                (EllipticCurve::P256, Algorithm::ES256) => &signature::ECDSA_P256_SHA256_FIXED,
                (EllipticCurve::P384, Algorithm::ES384) => &signature::ECDSA_P384_SHA384_FIXED,
                (curve, _) => return Err(format!("a {curve:?} key cannot verify {alg:?}")),
            };
            let mut point = vec![4u8];
            point.extend(b64(&ec.x, "x")?);
            point.extend(b64(&ec.y, "y")?);
            ParsedPublicKey::new(scheme, point).map_err(rejected)
        }
        (AlgorithmParameters::OctetKeyPair(okp), Algorithm::EdDSA)
            if okp.curve == EllipticCurve::Ed25519 =>
        {
            ParsedPublicKey::new(&signature::ED25519, b64(&okp.x, "x")?).map_err(rejected)
        }
        _ => Err(format!("the key type does not fit {alg:?}")),
    }
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
