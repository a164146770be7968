//! ES256's halves: `r = x(k·G) mod n` and `k⁻¹` ahead, `s = k⁻¹ · (z + r·d)`
//! with the message.
//!
//! - `k` and `k·G` come from aws-lc-rs's P-256 key generation (its seeded
//!   generator, `k` uniform in `[1, n-1]`, constant-time fixed-base
//!   multiplication, as in its own ECDSA); `k⁻¹` is a blinded inversion (see
//!   [`P256::half`]); `r·d` and the rest are the `p256` crate's constant-time
//!   scalar arithmetic.
//! - `k` is zeroed as soon as `k⁻¹` is known.

use super::{Counts, Scheme};
use aws_lc_rs::agreement::{self, ECDH_P256};
use aws_lc_rs::digest::{self, SHA256};
use aws_lc_rs::encoding::{AsBigEndian, EcPrivateKeyBin};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use p256::elliptic_curve::ff::{Field, PrimeField};
use p256::elliptic_curve::ops::{Invert, Reduce};
use p256::elliptic_curve::zeroize::Zeroize;
use p256::{FieldBytes, Scalar, U256};

static COUNTS: Counts = Counts::new();

/// The message-independent half of one signature: `r = x(k·G) mod n` and `k⁻¹`.
#[derive(Default)]
pub(super) struct Presignature {
    r: Scalar,
    k_inv: Scalar,
}

impl Drop for Presignature {
    fn drop(&mut self) {
        self.k_inv.zeroize();
        self.r.zeroize();
    }
}

/// ES256 with the private scalar `d`, zeroed when dropped.
pub(super) struct P256 {
    d: Scalar,
}

impl Drop for P256 {
    fn drop(&mut self) {
        self.d.zeroize();
    }
}

impl P256 {
    /// `d` is 32 bytes, big-endian, in `[1, n-1]`.
    pub(super) fn new(d: &[u8]) -> Option<Self> {
        let mut bytes = FieldBytes::clone_from_slice(d.get(..32).filter(|_| d.len() == 32)?);
        let d = Option::<Scalar>::from(Scalar::from_repr(bytes));
        bytes.zeroize();
        let d = d.filter(|d| !bool::from(d.is_zero()))?;
        Some(Self { d })
    }
}

impl Scheme for P256 {
    type Half = Presignature;

    fn counts() -> &'static Counts {
        &COUNTS
    }

    /// One half: a fresh nonce `k`, `r = x(k·G) mod n` and `k⁻¹`; `None` if a
    /// generator or aws-lc-rs failed (or in the negligible case `r = 0`).
    ///
    /// aws-lc-rs draws `k` uniformly in `[1, n-1]` and multiplies it by `G` in
    /// constant time (as its own ECDSA does), through its ECDH key type. `k⁻¹` is
    /// blinded: `(k·b)⁻¹ · b` for a fresh random `b`, so the fast, variable-time
    /// inversion only ever sees `k·b`, a uniformly random scalar that says nothing
    /// of `k` (a constant-time inversion costs four times as much here, more than
    /// a whole signature).
    fn half(&self, rng: &SystemRandom) -> Option<Presignature> {
        let key = agreement::PrivateKey::generate(&ECDH_P256).ok()?;
        // Uncompressed SEC1: 0x04 ‖ x ‖ y.
        let point = key.compute_public_key().ok()?;
        let r = <Scalar as Reduce<U256>>::reduce_bytes(FieldBytes::from_slice(
            point.as_ref().get(1..33)?,
        ));
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

    /// `s = k⁻¹ · (z + r·d) mod n`; the signature `r ‖ s`, or `None` in the
    /// negligible case `s = 0`.
    fn finish(&self, half: &Presignature, msg: &[u8]) -> Option<[u8; 64]> {
        let hash = digest::digest(&SHA256, msg);
        // For P-256 and SHA-256 the hash is as long as n: z is the hash reduced mod n.
        let z = <Scalar as Reduce<U256>>::reduce_bytes(FieldBytes::from_slice(hash.as_ref()));
        let s = half.k_inv * (z + half.r * self.d);
        if bool::from(s.is_zero()) {
            return None;
        }
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&half.r.to_repr());
        sig[32..].copy_from_slice(&s.to_repr());
        Some(sig)
    }
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
