//! Presigning: the message-independent half of each signature, done ahead of time
//! on a low-priority thread, for ES256 and EdDSA.
//!
//! Both are signatures of the same shape: a fresh secret nonce, a point made from
//! it by a fixed-base multiplication (nearly all of the cost), then a few scalar
//! operations that bring in the message.
//!
//! - **ES256** ([`ecdsa`]): `(r, s)` with `r = x(k·G) mod n` and
//!   `s = k⁻¹ · (z + r·d) mod n`. `k`, `r` and `k⁻¹` do not depend on the message:
//!   FIPS 186 notes that the per-message secret and its inverse may be computed in
//!   advance, provided their confidentiality and integrity are protected (and, as
//!   always, each is used once).
//! - **EdDSA** ([`eddsa`]): `(R, S)` with `R = r·B` and `S = r + H(R ‖ A ‖ M)·a
//!   mod L`. RFC 8032 derives `r` from the message, so that a signer with a broken
//!   random generator cannot repeat a nonce; a verifier cannot tell how `r` was
//!   chosen, and Ed25519 with a nonce that is uniform, secret and used once is the
//!   Schnorr signature it was built from. Here `r` is drawn from the operating
//!   system's generator and hedged with the key's secret prefix, so `r` and `R`
//!   are made ahead.
//!
//! A [`Presigner`] keeps a stock of such halves, filled by a thread at the lowest
//! CPU priority (`SCHED_IDLE`), so that the work runs in time the request paths
//! leave idle (a token waiting for its group commit's fsync); a signature then
//! costs a hash and a few scalar operations. When the stock is empty the
//! signature is made whole by aws-lc-rs, as without presigning.
//!
//! - Each half goes into the stock as it is made (the stock never reallocates)
//!   and is taken out by the one signature that uses it, its slot overwritten
//!   with zeros; halves are zeroed when dropped, as is the copy of the private
//!   scalar.
//! - The stock is small (at most [`STOCK`] halves, 64 bytes each) and lives only
//!   in memory, like the private key it serves.

mod ecdsa;
mod eddsa;

use crate::keys::Algorithm;
use aws_lc_rs::rand::SystemRandom;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

/// The most halves kept ready.
pub const STOCK: usize = 1024;

/// The thread refills when the stock falls below this.
const LOW: usize = STOCK / 2;

/// How long the thread sleeps on a full stock before it checks that its key is
/// still in use.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Signatures of this process made with a presigned half, and made whole by a key
/// that presigns (its stock was empty).
struct Counts {
    presigned: AtomicU64,
    whole: AtomicU64,
}

impl Counts {
    const fn new() -> Self {
        Self {
            presigned: AtomicU64::new(0),
            whole: AtomicU64::new(0),
        }
    }
}

/// How many signatures of this process's presigning keys of `alg` used a
/// presigned half, and how many were made whole because none was ready (for the
/// server's metrics: a growing share of whole ones means the cores have no idle
/// time left to presign in). RS256 does not presign: always `(0, 0)`.
pub fn counts(alg: Algorithm) -> (u64, u64) {
    let counts = match alg {
        Algorithm::ES256 => ecdsa::P256::counts(),
        Algorithm::EdDSA => eddsa::Ed25519::counts(),
        Algorithm::RS256 => return (0, 0),
    };
    (
        counts.presigned.load(Ordering::Relaxed),
        counts.whole.load(Ordering::Relaxed),
    )
}

/// A signature scheme split in two: the half made ahead, and its finish.
trait Scheme: Send + Sync + 'static {
    /// A message-independent half. `Default` is all zeros; it zeroes itself
    /// when dropped.
    type Half: Default + Send;
    /// This scheme's counts.
    fn counts() -> &'static Counts;
    /// A fresh half; `None` if a generator failed (or in a negligible case).
    fn half(&self, rng: &SystemRandom) -> Option<Self::Half>;
    /// The signature of `msg` with `half`; `None` in a negligible case.
    fn finish(&self, half: &Self::Half, msg: &[u8]) -> Option<[u8; 64]>;
}

struct Shared<S: Scheme> {
    /// The scheme, with the key's private scalar.
    scheme: S,
    stock: Mutex<Vec<S::Half>>,
    /// Wakes the thread when the stock runs low.
    low: Condvar,
    /// The thread waits on `low` (changed under the stock's lock): a signature
    /// wakes it only then, instead of a wake-up call per signature.
    filler_waits: AtomicBool,
}

impl<S: Scheme> Shared<S> {
    fn stock(&self) -> MutexGuard<'_, Vec<S::Half>> {
        self.stock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes halves until the stock is full, each put in the stock as soon as it
    /// is made: no other copy of it is left in memory, and the stock never grows
    /// past its capacity, so it is never copied either. `false` if a half could
    /// not be made (a generator failed).
    fn top_up(&self, rng: &SystemRandom) -> bool {
        while self.stock().len() < STOCK {
            let Some(half) = self.scheme.half(rng) else {
                return false;
            };
            let mut stock = self.stock();
            if stock.len() < STOCK {
                stock.push(half);
            }
        }
        true
    }
}

/// The presigning of one key of one scheme.
struct Stock<S: Scheme> {
    shared: Arc<Shared<S>>,
    started: std::sync::Once,
}

impl<S: Scheme> Stock<S> {
    fn new(scheme: S) -> Self {
        Self {
            shared: Arc::new(Shared {
                scheme,
                stock: Mutex::new(Vec::with_capacity(STOCK)),
                low: Condvar::new(),
                filler_waits: AtomicBool::new(false),
            }),
            started: std::sync::Once::new(),
        }
    }

    fn sign(&self, msg: &[u8]) -> Option<[u8; 64]> {
        self.started
            .call_once(|| spawn_filler(Arc::downgrade(&self.shared)));
        let half = {
            let mut stock = self.shared.stock();
            // Taken out by a swap with zeros, so that the stock's memory does not
            // keep a copy of a half once it is used.
            let half = stock.last_mut().map(std::mem::take);
            stock.pop();
            if stock.len() < LOW && self.shared.filler_waits.swap(false, Ordering::Relaxed) {
                self.shared.low.notify_one();
            }
            half
        };
        let sig = half.and_then(|half| self.shared.scheme.finish(&half, msg));
        let counts = S::counts();
        match sig {
            Some(_) => counts.presigned.fetch_add(1, Ordering::Relaxed),
            None => counts.whole.fetch_add(1, Ordering::Relaxed),
        };
        sig
    }

    fn ready(&self) -> usize {
        self.shared.stock().len()
    }

    fn fill(&self) -> usize {
        let rng = SystemRandom::new();
        self.shared.top_up(&rng);
        self.ready()
    }
}

enum Kind {
    Es256(Stock<ecdsa::P256>),
    EdDsa(Stock<eddsa::Ed25519>),
}

/// The presigning of one ES256 or EdDSA key: its stock of halves and the thread
/// that fills it (started by the first signature; it ends once the key is
/// dropped).
pub struct Presigner(Kind);

impl std::fmt::Debug for Presigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Presigner(<private>)")
    }
}

impl Presigner {
    /// A presigner for the P-256 private key `d` (32 bytes, big-endian); `None`
    /// if `d` is not a valid P-256 private key.
    pub fn es256(d: &[u8]) -> Option<Self> {
        ecdsa::P256::new(d).map(|s| Self(Kind::Es256(Stock::new(s))))
    }

    /// A presigner for the Ed25519 key with private `seed` (32 bytes) and
    /// `public` key (32 bytes); `None` if either has the wrong length or the
    /// public key is not the seed's.
    pub fn eddsa(seed: &[u8], public: &[u8]) -> Option<Self> {
        eddsa::Ed25519::new(seed, public).map(|s| Self(Kind::EdDsa(Stock::new(s))))
    }

    /// Signs `msg` (ES256: `r ‖ s` as JWS wants it; EdDSA: `R ‖ S`) with a
    /// presigned half, if one is ready; `None` otherwise (the caller signs in
    /// full). The first call starts the thread that fills the stock.
    pub fn sign(&self, msg: &[u8]) -> Option<[u8; 64]> {
        match &self.0 {
            Kind::Es256(s) => s.sign(msg),
            Kind::EdDsa(s) => s.sign(msg),
        }
    }

    /// How many halves are ready (for tests and benchmarks).
    pub fn ready(&self) -> usize {
        match &self.0 {
            Kind::Es256(s) => s.ready(),
            Kind::EdDsa(s) => s.ready(),
        }
    }

    /// Fills the stock on the calling thread (for tests and benchmarks); returns
    /// how many halves are ready.
    pub fn fill(&self) -> usize {
        match &self.0 {
            Kind::Es256(s) => s.fill(),
            Kind::EdDsa(s) => s.fill(),
        }
    }
}

/// Starts the thread that keeps the stock of `shared` full while it lives.
fn spawn_filler<S: Scheme>(shared: Weak<Shared<S>>) {
    let started = std::thread::Builder::new()
        .name("portcullis-presign".into())
        .spawn(move || {
            lowest_priority();
            let rng = SystemRandom::new();
            while let Some(shared) = shared.upgrade() {
                {
                    let stock = shared.stock();
                    if stock.len() >= LOW {
                        // Wait for a signature to take it below LOW, or look
                        // again in a while (the key may be gone by then).
                        shared.filler_waits.store(true, Ordering::Relaxed);
                        let (stock, _) = shared
                            .low
                            .wait_timeout_while(stock, IDLE_CHECK, |s| s.len() >= LOW)
                            .unwrap_or_else(PoisonError::into_inner);
                        shared.filler_waits.store(false, Ordering::Relaxed);
                        if stock.len() >= LOW {
                            continue;
                        }
                    }
                }
                // Refill to the top (the lock is held only to add each half).
                if !shared.top_up(&rng) {
                    // Signatures are made whole until a half can be made again.
                    std::thread::sleep(IDLE_CHECK);
                }
            }
        });
    // Without the thread (it could not be started) every signature is made whole.
    drop(started);
}

/// Puts the calling thread under `SCHED_IDLE` (on Linux): it runs only on a
/// core no other thread wants, and any other thread that wakes takes the core
/// from it at once. (`nice` 19 is not enough: the scheduler lets a thread run out
/// its time slice, and a busy `nice` 19 loop beside 16 connections cost 30% of
/// the token rate where a `SCHED_IDLE` one cost nothing; `docs/BENCHMARKS.md`.)
/// Elsewhere the thread keeps its priority.
fn lowest_priority() {
    #[cfg(target_os = "linux")]
    {
        use thread_priority::unix::{
            NormalThreadSchedulePolicy, ThreadSchedulePolicy, set_thread_priority_and_policy,
            thread_native_id,
        };
        let _ = set_thread_priority_and_policy(
            thread_native_id(),
            thread_priority::ThreadPriority::Min,
            ThreadSchedulePolicy::Normal(NormalThreadSchedulePolicy::Idle),
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use aws_lc_rs::encoding::AsBigEndian;
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
        Ed25519KeyPair, KeyPair as _, UnparsedPublicKey,
    };

    /// A presigner and the verification of its key, for each scheme.
    fn keys() -> Vec<(Presigner, UnparsedPublicKey<Vec<u8>>)> {
        vec![es256(), eddsa()]
    }

    fn es256() -> (Presigner, UnparsedPublicKey<Vec<u8>>) {
        let der =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.as_ref()).unwrap();
        let d = pair.private_key().as_be_bytes().unwrap();
        let public = pair.public_key().as_ref().to_vec();
        (
            Presigner::es256(d.as_ref()).unwrap(),
            UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, public),
        )
    }

    fn eddsa() -> (Presigner, UnparsedPublicKey<Vec<u8>>) {
        let pair = Ed25519KeyPair::generate().unwrap();
        let seed = pair.seed().unwrap();
        let seed = seed.as_be_bytes().unwrap();
        let public = pair.public_key().as_ref().to_vec();
        (
            Presigner::eddsa(seed.as_ref(), &public).unwrap(),
            UnparsedPublicKey::new(&ED25519, public),
        )
    }

    #[test]
    fn presigned_signatures_verify_and_never_repeat_a_nonce() {
        for (presigner, public) in keys() {
            assert_eq!(presigner.fill(), STOCK);
            let mut nonces = std::collections::HashSet::new();
            for i in 0..200 {
                let msg = format!("header.payload-{i}");
                let sig = presigner.sign(msg.as_bytes()).expect("a half is ready");
                public.verify(msg.as_bytes(), &sig).expect("verifies");
                // ES256's r, EdDSA's R: one per nonce.
                assert!(nonces.insert(sig[..32].to_vec()), "a nonce used twice");
                // Any other message fails.
                assert!(public.verify(b"another message", &sig).is_err());
            }
            // The same message signed twice: two different valid signatures.
            let (a, b) = (presigner.sign(b"m").unwrap(), presigner.sign(b"m").unwrap());
            assert_ne!(a, b);
            public.verify(b"m", &a).unwrap();
            public.verify(b"m", &b).unwrap();
        }
    }

    #[test]
    fn a_signature_by_another_key_does_not_verify() {
        for ((presigner, _), (_, other)) in keys().into_iter().zip(keys()) {
            presigner.fill();
            let sig = presigner.sign(b"m").unwrap();
            assert!(other.verify(b"m", &sig).is_err());
        }
    }

    #[test]
    fn the_thread_fills_the_stock_that_signatures_use() {
        for ((presigner, public), alg) in
            keys().into_iter().zip([Algorithm::ES256, Algorithm::EdDSA])
        {
            // The first signature (nearly always) finds nothing ready, starts the
            // thread and is counted as whole: the caller signs it in full.
            let whole = counts(alg).1;
            match presigner.sign(b"m") {
                Some(sig) => public.verify(b"m", &sig).unwrap(),
                None => assert!(counts(alg).1 > whole),
            }
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while presigner.ready() == 0 {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the stock was not filled"
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            let sig = presigner.sign(b"m").unwrap();
            public.verify(b"m", &sig).unwrap();
        }
    }

    #[test]
    fn invalid_private_keys_are_refused() {
        assert!(Presigner::es256(&[0u8; 32]).is_none());
        assert!(Presigner::es256(&[0xffu8; 32]).is_none(), "not below n");
        assert!(Presigner::es256(&[1u8; 31]).is_none());
        assert!(Presigner::es256(&[1u8; 33]).is_none());
        let pair = Ed25519KeyPair::generate().unwrap();
        let public = pair.public_key().as_ref();
        let seed = pair.seed().unwrap();
        let seed = seed.as_be_bytes().unwrap();
        assert!(Presigner::eddsa(seed.as_ref(), public).is_some());
        assert!(
            Presigner::eddsa(&[7u8; 32], public).is_none(),
            "not its seed"
        );
        assert!(Presigner::eddsa(&seed.as_ref()[..31], public).is_none());
        assert!(Presigner::eddsa(seed.as_ref(), &public[..31]).is_none());
    }
}
