//! The signing keys in memory: the current private key, parsed once, and a verifying
//! key for every key that still has live tokens. Swapped atomically when keys change
//! (another node or `portcullis keys rotate` may add one), never re-parsed per token.

use portcullis_crypto::{Algorithm, Jwk, MasterKey, SigningKey, VerifyingKey};
use portcullis_store::{DynStore, KeyChange, KeyState, StoreError, StoredKey};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Why keys could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A key could not be decrypted or parsed (usually: the wrong master key).
    #[error("signing key {kid}: {source}")]
    Key {
        /// Which key.
        kid: String,
        /// Why.
        source: portcullis_crypto::CryptoError,
    },
    /// No current key in the database.
    #[error("no current signing key in the database")]
    NoCurrentKey,
}

/// One consistent view of the keys.
#[derive(Debug)]
pub struct KeySet {
    /// Signs new tokens.
    pub current: SigningKey,
    /// Verifies tokens, by `kid`.
    pub verifiers: HashMap<String, VerifyingKey>,
    /// The JWKS document, serialised once.
    pub jwks: String,
    /// The public keys, current first.
    pub jwks_keys: Vec<Jwk>,
}

/// The shared, swappable key set.
#[derive(Debug)]
pub struct Keyring {
    inner: RwLock<Arc<KeySet>>,
    generation: std::sync::atomic::AtomicU64,
}

fn key_err(kid: &str) -> impl Fn(portcullis_crypto::CryptoError) -> KeyringError + '_ {
    move |source| KeyringError::Key {
        kid: kid.to_owned(),
        source,
    }
}

/// Generates a key, encrypts it under the master key and stores it as current.
/// The previous current key keeps verifying for `previous_ttl_secs` (the longest
/// lifetime of a token it may have signed).
pub async fn create_signing_key(
    store: &DynStore,
    master: &MasterKey,
    alg: Algorithm,
    now: i64,
    previous_ttl_secs: i64,
) -> Result<String, KeyringError> {
    let kid = store_new_key(store, master, alg, now, previous_ttl_secs, |_| {
        KeyChange::default()
    })
    .await?;
    kid.ok_or(KeyringError::NoCurrentKey)
}

/// Generates a key and stores it as current with the [`KeyChange`] `change` makes
/// for its kid (its audit event, its condition); `None` when the condition left
/// the current key in place.
pub async fn store_new_key(
    store: &DynStore,
    master: &MasterKey,
    alg: Algorithm,
    now: i64,
    previous_ttl_secs: i64,
    change: impl FnOnce(&str) -> KeyChange,
) -> Result<Option<String>, KeyringError> {
    // Key generation (RSA above all) takes a core for a while: off the async threads.
    let (der, key) = tokio::task::spawn_blocking(move || SigningKey::generate(alg))
        .await
        .map_err(|e| KeyringError::Key {
            kid: "new".into(),
            source: portcullis_crypto::CryptoError::Key(e.to_string()),
        })?
        .map_err(key_err("new"))?;
    let kid = key.kid().to_owned();
    let sealed = master
        .encrypt(&der, kid.as_bytes())
        .map_err(key_err(&kid))?;
    let jwk = serde_json::to_string(key.jwk()).map_err(|e| KeyringError::Key {
        kid: kid.clone(),
        source: portcullis_crypto::CryptoError::Key(e.to_string()),
    })?;
    let stored = store
        .add_signing_key(
            &StoredKey {
                kid: kid.clone(),
                alg: alg.as_str().into(),
                private_key_enc: sealed,
                public_jwk: jwk,
                state: KeyState::Current,
                created_at: now,
                retire_after: None,
            },
            now.saturating_add(previous_ttl_secs),
            &change(&kid),
        )
        .await?;
    Ok(stored.then_some(kid))
}

fn build(stored: &[StoredKey], master: &MasterKey, now: i64) -> Result<KeySet, KeyringError> {
    let current = stored
        .iter()
        .find(|k| k.state == KeyState::Current)
        .ok_or(KeyringError::NoCurrentKey)?;
    let alg: Algorithm = current
        .alg
        .parse()
        .map_err(|e: String| key_err(&current.kid)(portcullis_crypto::CryptoError::Key(e)))?;
    let der = master
        .decrypt(&current.private_key_enc, current.kid.as_bytes())
        .map_err(key_err(&current.kid))?;
    let mut signing = SigningKey::from_pkcs8(alg, &der).map_err(key_err(&current.kid))?;
    // ES256 and EdDSA: the nonce half of each signature is computed ahead, in idle
    // time; without it (the private scalar unreadable) every signature is made whole.
    if let Err(e) = signing.presign_in_background() {
        tracing::warn!(kid = %current.kid, error = %e, "presigning is off for this key");
    }
    let mut verifiers = HashMap::new();
    let mut jwks_keys = Vec::new();
    for k in stored {
        let live = k.state == KeyState::Current || k.retire_after.is_some_and(|t| t > now);
        if !live {
            continue;
        }
        let jwk: Jwk = serde_json::from_str(&k.public_jwk).map_err(|e| KeyringError::Key {
            kid: k.kid.clone(),
            source: portcullis_crypto::CryptoError::Key(e.to_string()),
        })?;
        let vk = VerifyingKey::from_jwk(&jwk).map_err(key_err(&k.kid))?;
        verifiers.insert(k.kid.clone(), vk);
        jwks_keys.push(jwk);
    }
    let jwks = json!({ "keys": jwks_keys }).to_string();
    Ok(KeySet {
        current: signing,
        verifiers,
        jwks,
        jwks_keys,
    })
}

impl Keyring {
    /// Loads the keys from the store.
    pub async fn load(
        store: &DynStore,
        master: &MasterKey,
        now: i64,
    ) -> Result<Self, KeyringError> {
        let stored = store.signing_keys().await?;
        Ok(Self {
            inner: RwLock::new(Arc::new(build(&stored, master, now)?)),
            generation: std::sync::atomic::AtomicU64::new(1),
        })
    }

    /// Changes whenever the key set does (caches of verified tokens compare it).
    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The current key set (cheap: an `Arc` clone).
    pub fn get(&self) -> Arc<KeySet> {
        match self.inner.read() {
            Ok(g) => Arc::clone(&g),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Reloads when the stored keys differ from those in memory; returns whether they did.
    pub async fn refresh(
        &self,
        store: &DynStore,
        master: &MasterKey,
        now: i64,
    ) -> Result<bool, KeyringError> {
        let stored = store.signing_keys().await?;
        let have = self.get();
        let live_kids: Vec<&str> = stored
            .iter()
            .filter(|k| k.state == KeyState::Current || k.retire_after.is_some_and(|t| t > now))
            .map(|k| k.kid.as_str())
            .collect();
        let current_kid = stored
            .iter()
            .find(|k| k.state == KeyState::Current)
            .map(|k| k.kid.as_str());
        let same = current_kid == Some(have.current.kid())
            && live_kids.len() == have.verifiers.len()
            && live_kids.iter().all(|k| have.verifiers.contains_key(*k));
        if same {
            return Ok(false);
        }
        let fresh = Arc::new(build(&stored, master, now)?);
        match self.inner.write() {
            Ok(mut g) => *g = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Ok(true)
    }
}
