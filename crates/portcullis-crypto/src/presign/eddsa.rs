//! EdDSA's halves: a nonce `r` and `R = r·B` ahead, `S = r + H(R ‖ A ‖ M)·a` with
//! the message.
//!
//! RFC 8032 (5.1.6) computes `r = SHA-512(prefix ‖ M)`, where `prefix` is the
//! second half of `SHA-512(seed)`: a deterministic nonce, so that a signer whose
//! random generator fails cannot repeat one. Verification (5.1.7) checks only
//! `[8][S]B = [8]R + [8][k]A`, whatever `r` was. Here
//! `r = SHA-512(prefix ‖ Z) mod L` for 32 fresh bytes `Z` from the operating
//! system's generator: uniform, secret, and used once. The prefix hedges it: a
//! generator whose output an attacker could predict would still not give `r`
//! away.
//!
//! - `r·B` is `curve25519-dalek`'s constant-time fixed-base multiplication, and
//!   the scalar arithmetic its constant-time `Scalar`.
//! - `a`, the clamped first half of `SHA-512(seed)`, is checked against the key's
//!   public key when the presigner is made, and zeroed when it is dropped, as is
//!   the prefix; each `r` is zeroed with its half. The SHA-512 outputs they are
//!   taken from are aws-lc-rs `Digest` values, a `Copy` type this code cannot
//!   zero: they stay on the stack of the call that made them until it is reused.

use super::{Counts, Scheme};
use aws_lc_rs::digest::{self, SHA512};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use p256::elliptic_curve::zeroize::Zeroize;

static COUNTS: Counts = Counts::new();

/// The message-independent half of one signature: `r` and `R = r·B`, encoded.
#[derive(Default)]
pub(super) struct Presignature {
    r: Scalar,
    big_r: [u8; 32],
}

impl Drop for Presignature {
    fn drop(&mut self) {
        self.r.zeroize();
        self.big_r.zeroize();
    }
}

/// Ed25519 with the secret scalar `a`, the nonce prefix and the public key `A`.
pub(super) struct Ed25519 {
    a: Scalar,
    prefix: [u8; 32],
    public: [u8; 32],
}

impl Drop for Ed25519 {
    fn drop(&mut self) {
        self.a.zeroize();
        self.prefix.zeroize();
    }
}

impl Ed25519 {
    /// `seed` is the private key (32 bytes), `public` its public key (32 bytes).
    pub(super) fn new(seed: &[u8], public: &[u8]) -> Option<Self> {
        let public: [u8; 32] = public.try_into().ok()?;
        if seed.len() != 32 {
            return None;
        }
        // RFC 8032 5.1.5: h = SHA-512(seed); a = clamp(h[..32]); prefix = h[32..].
        let h = digest::digest(&SHA512, seed);
        let mut a = [0u8; 32];
        let mut prefix = [0u8; 32];
        a.copy_from_slice(h.as_ref().get(..32)?);
        prefix.copy_from_slice(h.as_ref().get(32..64)?);
        a[0] &= 248;
        a[31] &= 127;
        a[31] |= 64;
        let key = Self {
            a: Scalar::from_bytes_mod_order(a),
            prefix,
            public,
        };
        a.zeroize();
        prefix.zeroize();
        // The scalar must be the public key's.
        (EdwardsPoint::mul_base(&key.a).compress().to_bytes() == key.public).then_some(key)
    }
}

impl Scheme for Ed25519 {
    type Half = Presignature;

    fn counts() -> &'static Counts {
        &COUNTS
    }

    /// One half: `r = SHA-512(prefix ‖ Z) mod L` for 32 random bytes `Z`, and
    /// `R = r·B`; `None` if the generator failed (or in the negligible case
    /// `r = 0`).
    fn half(&self, rng: &SystemRandom) -> Option<Presignature> {
        let mut z = [0u8; 32];
        rng.fill(&mut z).ok()?;
        let mut ctx = digest::Context::new(&SHA512);
        ctx.update(&self.prefix);
        ctx.update(&z);
        z.zeroize();
        let mut wide = [0u8; 64];
        wide.copy_from_slice(ctx.finish().as_ref());
        let r = Scalar::from_bytes_mod_order_wide(&wide);
        wide.zeroize();
        if r == Scalar::ZERO {
            return None;
        }
        let big_r = EdwardsPoint::mul_base(&r).compress().to_bytes();
        Some(Presignature { r, big_r })
    }

    /// `S = r + SHA-512(R ‖ A ‖ M)·a mod L`; the signature `R ‖ S`.
    fn finish(&self, half: &Presignature, msg: &[u8]) -> Option<[u8; 64]> {
        let mut ctx = digest::Context::new(&SHA512);
        ctx.update(&half.big_r);
        ctx.update(&self.public);
        ctx.update(msg);
        let mut wide = [0u8; 64];
        wide.copy_from_slice(ctx.finish().as_ref());
        let k = Scalar::from_bytes_mod_order_wide(&wide);
        let s = half.r + k * self.a;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&half.big_r);
        sig[32..].copy_from_slice(s.as_bytes());
        Some(sig)
    }
}
