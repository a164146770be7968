//! Random bytes from aws-lc's generator, drawn a block at a time per thread.
//!
//! Each call into aws-lc's generator costs about 440 ns whatever its size (it
//! mixes fresh `RDRAND` output into its CTR-DRBG and re-keys it on every call),
//! and a token request draws four or five short values (the `jti`, the family's
//! and the refresh token's ids, the refresh token's secret): about 2 µs of a
//! request's CPU. Each thread instead draws [`POOL`] bytes at once and hands
//! them out in order; every byte handed out is zeroed in the pool at once, so
//! the pool never holds a value anybody was given, only bytes not yet drawn.
//! The bytes are the same generator's output, so their quality is its quality.
//! (Portcullis never forks without `exec`, so no two processes share a pool.)
//! Signature nonces (`presign`) are not drawn here: each comes from the
//! generator directly, on the presigning thread.

use crate::CryptoError;
use std::cell::RefCell;
use zeroize::Zeroize;

/// Bytes drawn from the generator at once, per thread: four or five requests'
/// worth (a client-credentials grant draws 61 bytes).
const POOL: usize = 256;

/// Draws longer than this go to the generator directly.
const LONGEST_FROM_POOL: usize = 64;

struct Pool {
    bytes: [u8; POOL],
    /// The first byte not handed out yet; `POOL` when the pool is empty.
    next: usize,
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.bytes.zeroize();
    }
}

thread_local! {
    static THIS_THREAD: RefCell<Pool> = const {
        RefCell::new(Pool::EMPTY)
    };
}

/// Fills `out` with cryptographically secure random bytes.
pub(crate) fn fill(out: &mut [u8]) -> Result<(), CryptoError> {
    if out.len() > LONGEST_FROM_POOL {
        return aws_lc_rs::rand::fill(out).map_err(|_| CryptoError::Rng);
    }
    THIS_THREAD.with_borrow_mut(|pool| pool.take(out))
}

impl Pool {
    const EMPTY: Self = Self {
        bytes: [0; POOL],
        next: POOL,
    };

    fn take(&mut self, out: &mut [u8]) -> Result<(), CryptoError> {
        if POOL - self.next < out.len() {
            // Whatever is left is thrown away, never handed out after a refill.
            self.bytes.zeroize();
            self.next = POOL;
            aws_lc_rs::rand::fill(&mut self.bytes).map_err(|_| CryptoError::Rng)?;
            self.next = 0;
        }
        let taken = &mut self.bytes[self.next..self.next + out.len()];
        out.copy_from_slice(taken);
        taken.zeroize();
        self.next += out.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn draws_do_not_repeat_across_refills() {
        let mut seen = HashSet::new();
        for _ in 0..10 * POOL / 16 {
            let mut b = [0u8; 16];
            fill(&mut b).unwrap();
            assert!(seen.insert(b), "a 128-bit draw repeated");
        }
    }

    #[test]
    fn what_is_handed_out_is_zeroed_in_the_pool() {
        let mut pool = Pool::EMPTY;
        let mut a = [0u8; 32];
        pool.take(&mut a).unwrap();
        assert_eq!(pool.next, 32);
        assert!(pool.bytes[..32].iter().all(|&b| b == 0));
        assert_ne!(a, [0u8; 32]);
        // What remains is the generator's, not zeroes.
        assert!(pool.bytes[32..].iter().any(|&b| b != 0));
        let mut b = [0u8; 32];
        pool.take(&mut b).unwrap();
        assert_ne!(a, b);
        assert!(pool.bytes[..64].iter().all(|&b| b == 0));
    }

    #[test]
    fn a_draw_that_does_not_fit_refills_and_never_reuses_the_rest() {
        let mut pool = Pool::EMPTY;
        let mut first = [0u8; 10];
        pool.take(&mut first).unwrap();
        pool.next = POOL - 5;
        let left: Vec<u8> = pool.bytes[POOL - 5..].to_vec();
        let mut b = [0u8; 10];
        pool.take(&mut b).unwrap();
        assert_eq!(pool.next, 10);
        assert_ne!(&b[..5], &left[..], "the pool's tail was handed out");
        assert!(pool.bytes[..10].iter().all(|&x| x == 0));
    }

    #[test]
    fn long_draws_go_to_the_generator() {
        let mut a = [0u8; 100];
        let mut b = [0u8; 100];
        fill(&mut a).unwrap();
        fill(&mut b).unwrap();
        assert_ne!(a, b);
        assert_ne!(a, [0u8; 100]);
    }
}
