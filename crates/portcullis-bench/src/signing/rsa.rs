//! `portcullis-bench signing --rsa-implementations`: RS256-2048 signing with each
//! RSA implementation a Rust server can use, on the same signing input (the JWS
//! `header.payload` of a typical access token, from the server's own `SigningKey`).
//! Each implementation parses the same PKCS#8 key once; its threads share that
//! key, as the server's request threads share theirs.
//!
//! - **aws-lc-rs**, as `SigningKey` signs: `rsa::KeyPair::sign` with
//!   `RSA_PKCS1_SHA256`.
//! - **ring** 0.17: `RsaKeyPair::sign` with `RSA_PKCS1_SHA256`.
//! - **openssl**, the `openssl` crate over the system's OpenSSL: a `Signer` per
//!   token (SHA-256 and sign), as a server would use it.
//! - **openssl, digest only**: `EVP_PKEY_sign` of a ready SHA-256 digest through
//!   one context per thread, which is what `openssl speed rsa2048` times (its
//!   "sign/s", and with `-multi N` the sum over N processes).
//!
//! ring and openssl are compiled in only with the bench's `rsa-compare` feature,
//! so the default build needs no system OpenSSL; without it only aws-lc-rs runs.
//!
//! PKCS #1 v1.5 signatures are deterministic, so before timing anything the run
//! checks that every implementation produces exactly the signature in the
//! server's token. Rounds repeat the whole table so that the implementations
//! alternate, and each figure says how busy the rest of the machine was.

use crate::procfs;
use anyhow::{Context, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_crypto::{Algorithm, SigningKey};
use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

/// How long each implementation is timed, per thread count and round.
const RUN: Duration = Duration::from_secs(2);

/// A signer for one thread: signs a message and returns the signature. Whatever
/// state an implementation keeps per thread lives inside it.
type Sign<'a> = Box<dyn FnMut(&[u8]) -> anyhow::Result<Vec<u8>> + Send + 'a>;

/// One RSA implementation, holding the key it parsed once.
trait Implementation: Sync {
    /// Its name in the table.
    fn name(&self) -> &'static str;
    /// A signer for one thread.
    fn signer(&self) -> anyhow::Result<Sign<'_>>;
}

/// aws-lc-rs, as `portcullis_crypto::SigningKey` signs RS256.
struct AwsLc {
    key: aws_lc_rs::rsa::KeyPair,
    rng: aws_lc_rs::rand::SystemRandom,
}

impl AwsLc {
    fn new(der: &[u8]) -> anyhow::Result<Self> {
        Ok(Self {
            key: aws_lc_rs::rsa::KeyPair::from_pkcs8(der)
                .map_err(|e| anyhow!("aws-lc-rs refused the key: {e}"))?,
            rng: aws_lc_rs::rand::SystemRandom::new(),
        })
    }
}

impl Implementation for AwsLc {
    fn name(&self) -> &'static str {
        "aws-lc-rs"
    }
    fn signer(&self) -> anyhow::Result<Sign<'_>> {
        Ok(Box::new(|msg| {
            let mut sig = vec![0u8; self.key.public_modulus_len()];
            self.key
                .sign(
                    &aws_lc_rs::signature::RSA_PKCS1_SHA256,
                    &self.rng,
                    msg,
                    &mut sig,
                )
                .map_err(|_| anyhow!("aws-lc-rs: signing failed"))?;
            Ok(sig)
        }))
    }
}

/// ring 0.17.
#[cfg(feature = "rsa-compare")]
struct Ring {
    key: ring::signature::RsaKeyPair,
    rng: ring::rand::SystemRandom,
}

#[cfg(feature = "rsa-compare")]
impl Ring {
    fn new(der: &[u8]) -> anyhow::Result<Self> {
        Ok(Self {
            key: ring::signature::RsaKeyPair::from_pkcs8(der)
                .map_err(|e| anyhow!("ring refused the key: {e}"))?,
            rng: ring::rand::SystemRandom::new(),
        })
    }
}

#[cfg(feature = "rsa-compare")]
impl Implementation for Ring {
    fn name(&self) -> &'static str {
        "ring"
    }
    fn signer(&self) -> anyhow::Result<Sign<'_>> {
        Ok(Box::new(|msg| {
            let mut sig = vec![0u8; self.key.public().modulus_len()];
            self.key
                .sign(&ring::signature::RSA_PKCS1_SHA256, &self.rng, msg, &mut sig)
                .map_err(|_| anyhow!("ring: signing failed"))?;
            Ok(sig)
        }))
    }
}

/// The `openssl` crate over the system's OpenSSL, a `Signer` per signature.
#[cfg(feature = "rsa-compare")]
struct OpensslSigner {
    key: openssl::pkey::PKey<openssl::pkey::Private>,
}

#[cfg(feature = "rsa-compare")]
impl Implementation for OpensslSigner {
    fn name(&self) -> &'static str {
        "openssl"
    }
    fn signer(&self) -> anyhow::Result<Sign<'_>> {
        Ok(Box::new(|msg| {
            let mut signer =
                openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), &self.key)
                    .context("openssl: Signer::new")?;
            signer
                .sign_oneshot_to_vec(msg)
                .context("openssl: signing failed")
        }))
    }
}

/// The system's OpenSSL signing a ready digest with one `EVP_PKEY_CTX` per thread,
/// as `openssl speed rsa2048` does: the RSA private-key operation and the PKCS #1
/// padding, without hashing the message or setting up a context per signature.
#[cfg(feature = "rsa-compare")]
struct OpensslDigest {
    key: openssl::pkey::PKey<openssl::pkey::Private>,
    /// SHA-256 of the signing input, computed once.
    digest: Vec<u8>,
}

#[cfg(feature = "rsa-compare")]
impl Implementation for OpensslDigest {
    fn name(&self) -> &'static str {
        "openssl, digest only"
    }
    fn signer(&self) -> anyhow::Result<Sign<'_>> {
        use openssl::md::Md;
        use openssl::pkey_ctx::PkeyCtx;
        use openssl::rsa::Padding;
        let mut ctx = PkeyCtx::new(&self.key).context("openssl: EVP_PKEY_CTX_new")?;
        ctx.sign_init().context("openssl: EVP_PKEY_sign_init")?;
        ctx.set_rsa_padding(Padding::PKCS1)
            .context("openssl: setting PKCS #1 v1.5 padding")?;
        ctx.set_signature_md(Md::sha256())
            .context("openssl: setting SHA-256")?;
        Ok(Box::new(move |_msg| {
            let mut sig = Vec::with_capacity(256);
            ctx.sign_to_vec(&self.digest, &mut sig)
                .context("openssl: EVP_PKEY_sign failed")?;
            Ok(sig)
        }))
    }
}

/// Every implementation compiled in, each with `der` parsed once; `input` is
/// what the digest-only signer hashes, once.
fn implementations(der: &[u8], input: &[u8]) -> anyhow::Result<Vec<Box<dyn Implementation>>> {
    let aws_lc: Box<dyn Implementation> = Box::new(AwsLc::new(der)?);
    #[cfg(not(feature = "rsa-compare"))]
    {
        let _ = input;
        Ok(vec![aws_lc])
    }
    #[cfg(feature = "rsa-compare")]
    {
        let key =
            openssl::pkey::PKey::private_key_from_pkcs8(der).context("openssl refused the key")?;
        let digest = openssl::sha::sha256(input).to_vec();
        Ok(vec![
            aws_lc,
            Box::new(Ring::new(der)?),
            Box::new(OpensslSigner { key: key.clone() }),
            Box::new(OpensslDigest { key, digest }),
        ])
    }
}

/// One timed run: signatures per second of all threads together, and the cores
/// other processes used meanwhile.
#[derive(Debug, Clone, Copy)]
struct Sample {
    per_second: f64,
    others: Option<f64>,
}

/// Times `threads` threads signing `input` back to back for [`RUN`], each with
/// its own signer over the shared key, started together.
fn measure(imp: &dyn Implementation, input: &[u8], threads: usize) -> anyhow::Result<Sample> {
    let signers = (0..threads)
        .map(|_| imp.signer())
        .collect::<anyhow::Result<Vec<_>>>()?;
    let barrier = Barrier::new(threads + 1);
    let pid = std::process::id();
    std::thread::scope(|s| {
        let handles: Vec<_> = signers
            .into_iter()
            .map(|mut sign| {
                let barrier = &barrier;
                s.spawn(move || -> anyhow::Result<(u64, Duration)> {
                    // One signature outside the clock: first-use costs (blinding
                    // values, lazily built tables) are not what a server pays per token.
                    let warm = sign(input);
                    barrier.wait();
                    warm?;
                    let started = Instant::now();
                    let mut n = 0u64;
                    while started.elapsed() < RUN {
                        for _ in 0..4 {
                            black_box(sign(black_box(input))?);
                        }
                        n += 4;
                    }
                    Ok((n, started.elapsed()))
                })
            })
            .collect();
        barrier.wait();
        let started = Instant::now();
        let busy = procfs::machine_busy().ok();
        let own = procfs::cpu_time(pid).ok();
        let mut per_second = 0.0;
        let mut failure = None;
        for handle in handles {
            match handle.join() {
                Ok(Ok((n, took))) => per_second += n as f64 / took.as_secs_f64(),
                Ok(Err(e)) => failure = Some(e),
                Err(_) => failure = Some(anyhow!("a signing thread panicked")),
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        let wall = started.elapsed().as_secs_f64();
        let others = match (busy, own, procfs::machine_busy(), procfs::cpu_time(pid)) {
            (Some(b0), Some(o0), Ok(b1), Ok(o1)) => {
                let machine = b1.saturating_sub(b0).as_secs_f64();
                let ours = o1.saturating_sub(o0).as_secs_f64();
                Some(((machine - ours) / wall).max(0.0))
            }
            _ => None,
        };
        Ok(Sample { per_second, others })
    })
}

/// Runs the comparison over `threads` thread counts for `rounds` rounds and prints it.
pub fn run(threads: &[usize], rounds: usize) -> anyhow::Result<()> {
    if threads.is_empty() || threads.contains(&0) {
        bail!("--threads needs thread counts of at least 1");
    }
    if rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let (der, key) = SigningKey::generate(Algorithm::RS256).context("generating an RSA key")?;
    let token = key.sign_jwt(&super::claims())?;
    let (input, sig_b64) = token
        .rsplit_once('.')
        .context("the server's token has no signature")?;
    let expected = URL_SAFE_NO_PAD
        .decode(sig_b64)
        .context("the server's signature is not base64url")?;
    let input = input.as_bytes();
    let all = implementations(&der, input)?;
    for imp in &all {
        let mut sign = imp.signer()?;
        if sign(input)? != expected {
            bail!(
                "{} does not produce the server's RS256 signature",
                imp.name()
            );
        }
    }

    println!(
        "RS256-2048 signing of a {}-byte JWS signing input, key parsed once, {} s a run, \
         {rounds} round(s) alternating the implementations",
        input.len(),
        RUN.as_secs()
    );
    if let Ok(cap) = std::env::var("OPENSSL_ia32cap") {
        println!("OPENSSL_ia32cap={cap} (read by aws-lc and by OpenSSL)");
    }
    #[cfg(feature = "rsa-compare")]
    println!("system OpenSSL: {}", openssl::version::version());
    #[cfg(not(feature = "rsa-compare"))]
    println!("aws-lc-rs only: build with `--features rsa-compare` for ring and openssl");

    // samples[implementation][thread count]
    let mut samples = vec![vec![Vec::new(); threads.len()]; all.len()];
    for round in 1..=rounds {
        for (t, &n) in threads.iter().enumerate() {
            for (i, imp) in all.iter().enumerate() {
                let sample = measure(imp.as_ref(), input, n)?;
                println!(
                    "  round {round}  {:<20}  {n} thread(s)  {:>7.0} signs/s  others {}",
                    imp.name(),
                    sample.per_second,
                    sample
                        .others
                        .map_or("n/a".into(), |c| format!("{c:.2} cores")),
                );
                samples[i][t].push(sample);
            }
        }
    }

    println!();
    println!("median of {rounds} round(s), signatures per second of all threads together:");
    let mut header = format!("  {:<20}", "implementation");
    for n in threads {
        header.push_str(&format!("  {:>9}", format!("{n} thr")));
    }
    header.push_str(&format!("  {:>9}", "µs/sign"));
    println!("{header}");
    for (imp, by_threads) in all.iter().zip(&samples) {
        let mut line = format!("  {:<20}", imp.name());
        let mut one_thread = None;
        for (&n, runs) in threads.iter().zip(by_threads) {
            let rates: Vec<f64> = runs.iter().map(|s| s.per_second).collect();
            let m = crate::report::median(rates).unwrap_or(0.0);
            if n == 1 {
                one_thread = Some(m);
            }
            line.push_str(&format!("  {m:>9.0}"));
        }
        match one_thread {
            Some(r) => line.push_str(&format!("  {:>9.0}", 1e6 / r)),
            None => line.push_str(&format!("  {:>9}", "-")),
        }
        println!("{line}");
    }
    let worst_others = samples
        .iter()
        .flatten()
        .flatten()
        .filter_map(|s| s.others)
        .fold(0.0f64, f64::max);
    println!("  other processes used at most {worst_others:.2} cores during any run");
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn every_implementation_signs_what_the_server_signs() {
        let (der, key) = SigningKey::generate(Algorithm::RS256).unwrap();
        let token = key.sign_jwt(&crate::signing::claims()).unwrap();
        let (input, sig) = token.rsplit_once('.').unwrap();
        let expected = URL_SAFE_NO_PAD.decode(sig).unwrap();
        for imp in implementations(&der, input.as_bytes()).unwrap() {
            let mut sign = imp.signer().unwrap();
            assert_eq!(sign(input.as_bytes()).unwrap(), expected, "{}", imp.name());
        }
    }
}
