//! ES256 presigning: the message-independent half of each ECDSA signature, done
//! ahead of time on a low-priority thread.
//!
//! An ECDSA signature over P-256 is `(r, s)` with `r = x(k·G) mod n` and
//! `s = k⁻¹ · (z + r·d) mod n`, where `k` is a fresh secret nonce, `d` the private
//! key and `z` the message's SHA-256. Nearly all of its cost is `k·G` and `k⁻¹`,
//! and neither depends on the message: FIPS 186 notes that the per-message secret
//! and its inverse may be computed in advance, provided their confidentiality and
//! integrity are protected (and, as always, each is used once). A
//! [`Presigner`] keeps a stock of such `(r, k⁻¹)` pairs, filled by a thread at the
//! lowest CPU priority (`SCHED_IDLE`), so that the work runs in time the request
//! paths leave idle (a token waiting for its group commit's fsync); a signature
//! then costs a SHA-256 and three scalar operations. When the stock is empty the
//! signature is made whole by aws-lc-rs, as without presigning.
//!
//! - `k` and `k·G` come from aws-lc-rs's P-256 key generation (its seeded
//!   generator, `k` uniform in `[1, n-1]`, constant-time fixed-base
//!   multiplication, as in its own ECDSA); `k⁻¹` is a blinded inversion (see
//!   [`presign`]); `r·d` and the rest are the `p256` crate's constant-time scalar
//!   arithmetic.
//! - Each pair goes into the stock as it is made (the stock never reallocates)
//!   and is taken out by the one signature that uses it, its slot overwritten
//!   with zeros; pairs are zeroed when dropped, as is the copy of `d`, and `k` is
//!   zeroed as soon as `k⁻¹` is known.
//! - The stock is small (at most [`STOCK`] pairs, 64 bytes each) and lives only
//!   in memory, like the private key it serves.

use aws_lc_rs::agreement::{self, ECDH_P256};
use aws_lc_rs::digest::{self, SHA256};
use aws_lc_rs::encoding::{AsBigEndian, EcPrivateKeyBin};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use p256::elliptic_curve::ff::{Field, PrimeField};
use p256::elliptic_curve::ops::{Invert, Reduce};
use p256::elliptic_curve::zeroize::Zeroize;
use p256::{FieldBytes, Scalar, U256};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

/// The most pairs kept ready.
pub const STOCK: usize = 1024;

/// The thread refills when the stock falls below this.
const LOW: usize = STOCK / 2;

/// How long the thread sleeps on a full stock before it checks that its key is
/// still in use.
const IDLE_CHECK: Duration = Duration::from_secs(1);

/// Signatures of this process made with a presigned pair, and made whole by a key
/// that presigns (its stock was empty); see [`counts`].
static PRESIGNED: AtomicU64 = AtomicU64::new(0);
static WHOLE: AtomicU64 = AtomicU64::new(0);

/// How many signatures of this process's presigning keys used a presigned pair,
/// and how many were made whole because none was ready (for the server's
/// metrics: a growing share of whole ones means the cores have no idle time left
/// to presign in).
pub fn counts() -> (u64, u64) {
    (
        PRESIGNED.load(Ordering::Relaxed),
        WHOLE.load(Ordering::Relaxed),
    )
}

/// The message-independent half of one signature: `r = x(k·G) mod n` and `k⁻¹`.
struct Presignature {
    r: Scalar,
    k_inv: Scalar,
}

impl Presignature {
    const ZERO: Self = Self {
        r: Scalar::ZERO,
        k_inv: Scalar::ZERO,
    };
}

impl Drop for Presignature {
    fn drop(&mut self) {
        self.k_inv.zeroize();
        self.r.zeroize();
    }
}

/// The private scalar, zeroed when dropped.
struct Secret(Scalar);

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

struct Shared {
    d: Secret,
    stock: Mutex<Vec<Presignature>>,
    /// Wakes the thread when the stock runs low.
    low: Condvar,
    /// The thread waits on `low` (changed under the stock's lock): a signature
    /// wakes it only then, instead of a wake-up call per signature.
    filler_waits: AtomicBool,
}

impl Shared {
    fn stock(&self) -> MutexGuard<'_, Vec<Presignature>> {
        self.stock.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The presigning of one P-256 key: its stock of pairs and the thread that
/// fills it (started by the first signature; it ends once the key is dropped).
pub struct Presigner {
    shared: Arc<Shared>,
    started: std::sync::Once,
}

impl std::fmt::Debug for Presigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Presigner(<private>)")
    }
}

impl Presigner {
    /// A presigner for the P-256 private key `d` (32 bytes, big-endian); `None`
    /// if `d` is not a valid P-256 private key.
    pub fn new(d: &[u8]) -> Option<Self> {
        let mut bytes = FieldBytes::clone_from_slice(d.get(..32).filter(|_| d.len() == 32)?);
        let d = Option::<Scalar>::from(Scalar::from_repr(bytes));
        bytes.zeroize();
        let d = d.filter(|d| !bool::from(d.is_zero()))?;
        Some(Self {
            shared: Arc::new(Shared {
                d: Secret(d),
                stock: Mutex::new(Vec::with_capacity(STOCK)),
                low: Condvar::new(),
                filler_waits: AtomicBool::new(false),
            }),
            started: std::sync::Once::new(),
        })
    }

    /// Signs `msg` (ECDSA P-256 with SHA-256, `r ‖ s` as JWS wants it) with a
    /// presigned pair, if one is ready; `None` otherwise (the caller signs in
    /// full). The first call starts the thread that fills the stock.
    pub fn sign(&self, msg: &[u8]) -> Option<[u8; 64]> {
        self.started
            .call_once(|| spawn_filler(Arc::downgrade(&self.shared)));
        let pair = {
            let mut stock = self.shared.stock();
            // Taken out by a swap with zeros, so that the stock's memory does not
            // keep a copy of a pair once it is used.
            let pair = stock
                .last_mut()
                .map(|last| std::mem::replace(last, Presignature::ZERO));
            stock.pop();
            if stock.len() < LOW && self.shared.filler_waits.swap(false, Ordering::Relaxed) {
                self.shared.low.notify_one();
            }
            pair
        };
        let sig = pair.and_then(|pair| finish(&pair, &self.shared.d.0, msg));
        match sig {
            Some(_) => PRESIGNED.fetch_add(1, Ordering::Relaxed),
            None => WHOLE.fetch_add(1, Ordering::Relaxed),
        };
        sig
    }

    /// How many pairs are ready (for tests and benchmarks).
    pub fn ready(&self) -> usize {
        self.shared.stock().len()
    }

    /// Fills the stock on the calling thread (for tests and benchmarks); returns
    /// how many pairs are ready.
    pub fn fill(&self) -> usize {
        let rng = SystemRandom::new();
        self.shared.top_up(&rng);
        self.ready()
    }
}

impl Shared {
    /// Makes pairs until the stock is full, each put in the stock as soon as it
    /// is made: no other copy of it is left in memory, and the stock never grows
    /// past its capacity, so it is never copied either. `false` if a pair could
    /// not be made (a generator failed).
    fn top_up(&self, rng: &SystemRandom) -> bool {
        while self.stock().len() < STOCK {
            let Some(pair) = presign(rng) else {
                return false;
            };
            let mut stock = self.stock();
            if stock.len() < STOCK {
                stock.push(pair);
            }
        }
        true
    }
}

/// `s = k⁻¹ · (z + r·d) mod n`; the signature `r ‖ s`, or `None` in the
/// negligible case `s = 0`.
fn finish(pair: &Presignature, d: &Scalar, msg: &[u8]) -> Option<[u8; 64]> {
    let hash = digest::digest(&SHA256, msg);
    // For P-256 and SHA-256 the hash is as long as n: z is the hash reduced mod n.
    let z = <Scalar as Reduce<U256>>::reduce_bytes(FieldBytes::from_slice(hash.as_ref()));
    let s = pair.k_inv * (z + pair.r * d);
    if bool::from(s.is_zero()) {
        return None;
    }
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&pair.r.to_repr());
    sig[32..].copy_from_slice(&s.to_repr());
    Some(sig)
}

/// One pair: a fresh nonce `k`, `r = x(k·G) mod n` and `k⁻¹`; `None` if a
/// generator or aws-lc-rs failed (or in the negligible case `r = 0`).
///
/// aws-lc-rs draws `k` uniformly in `[1, n-1]` and multiplies it by `G` in
/// constant time (as its own ECDSA does), through its ECDH key type. `k⁻¹` is
/// blinded: `(k·b)⁻¹ · b` for a fresh random `b`, so the fast, variable-time
/// inversion only ever sees `k·b`, a uniformly random scalar that says nothing of
/// `k` (a constant-time inversion costs four times as much here, more than a
/// whole signature).
fn presign(rng: &SystemRandom) -> Option<Presignature> {
    let key = agreement::PrivateKey::generate(&ECDH_P256).ok()?;
    // Uncompressed SEC1: 0x04 ‖ x ‖ y.
    let point = key.compute_public_key().ok()?;
    let r =
        <Scalar as Reduce<U256>>::reduce_bytes(FieldBytes::from_slice(point.as_ref().get(1..33)?));
    if bool::from(r.is_zero()) {
        return None;
    }
    let mut k = {
        // Zeroed by aws-lc-rs when dropped.
        let bin: EcPrivateKeyBin<'_> = key.as_be_bytes().ok()?;
        let mut bytes = FieldBytes::clone_from_slice(bin.as_ref().get(..32)?);
        let k = Option::<Scalar>::from(Scalar::from_repr(bytes));
        bytes.zeroize();
        k?
    };
    let mut b = random_nonzero(rng);
    let k_inv = b.and_then(|b| {
        let mut kb = k * b;
        let inv = Option::<Scalar>::from(Invert::invert_vartime(&kb));
        kb.zeroize();
        inv.map(|inv| inv * b)
    });
    k.zeroize();
    b.zeroize();
    Some(Presignature { r, k_inv: k_inv? })
}

/// A uniformly random scalar in `[1, n-1]` from the operating system's generator.
fn random_nonzero(rng: &SystemRandom) -> Option<Scalar> {
    let mut bytes = FieldBytes::default();
    // A draw is rejected with probability about 2^-32 (n is just below 2^256).
    for _ in 0..8 {
        rng.fill(&mut bytes).ok()?;
        let s = Option::<Scalar>::from(Scalar::from_repr(bytes));
        if let Some(s) = s.filter(|s| !bool::from(s.is_zero())) {
            bytes.zeroize();
            return Some(s);
        }
    }
    bytes.zeroize();
    None
}

/// Starts the thread that keeps the stock of `shared` full while it lives.
fn spawn_filler(shared: Weak<Shared>) {
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
                // Refill to the top (the lock is held only to add each pair).
                if !shared.top_up(&rng) {
                    // Signatures are made whole until a pair can be made again.
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
        ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _,
        UnparsedPublicKey,
    };

    fn key() -> (EcdsaKeyPair, Presigner) {
        let der =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, der.as_ref()).unwrap();
        let d = pair.private_key().as_be_bytes().unwrap();
        let presigner = Presigner::new(d.as_ref()).unwrap();
        (pair, presigner)
    }

    #[test]
    fn presigned_signatures_verify_and_never_repeat_a_nonce() {
        let (pair, presigner) = key();
        assert_eq!(presigner.fill(), STOCK);
        let public = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, pair.public_key().as_ref());
        let mut rs = std::collections::HashSet::new();
        for i in 0..200 {
            let msg = format!("header.payload-{i}");
            let sig = presigner.sign(msg.as_bytes()).expect("a pair is ready");
            public.verify(msg.as_bytes(), &sig).expect("verifies");
            assert!(rs.insert(sig[..32].to_vec()), "r (and so k) used twice");
            // Any other message fails.
            assert!(public.verify(b"another message", &sig).is_err());
        }
    }

    #[test]
    fn a_signature_by_another_key_does_not_verify() {
        let (_, presigner) = key();
        let (other, _) = key();
        presigner.fill();
        let sig = presigner.sign(b"m").unwrap();
        let public = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, other.public_key().as_ref());
        assert!(public.verify(b"m", &sig).is_err());
    }

    #[test]
    fn the_thread_fills_the_stock_that_signatures_use() {
        let (pair, presigner) = key();
        let public = UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, pair.public_key().as_ref());
        // The first signature finds nothing ready and starts the thread.
        let first = presigner.sign(b"m");
        if let Some(sig) = first {
            public.verify(b"m", &sig).unwrap();
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

    #[test]
    fn invalid_private_keys_are_refused() {
        assert!(Presigner::new(&[0u8; 32]).is_none());
        assert!(Presigner::new(&[0xffu8; 32]).is_none(), "not below n");
        assert!(Presigner::new(&[1u8; 31]).is_none());
        assert!(Presigner::new(&[1u8; 33]).is_none());
    }
}
