//! `portcullis-bench signing`: the signing floor. How many access tokens one
//! thread signs per second with each algorithm, using the server's own
//! `SigningKey` (key parsed once, claims the size the token endpoint signs), and
//! how many it verifies. The token endpoint cannot beat this rate times the cores.
//! With `--rsa-implementations` it compares RSA implementations on RS256
//! instead ([`rsa`]).

mod rsa;

use anyhow::Context;
use portcullis_core::{AccessClaims, Audience};
use portcullis_crypto::keys::verify_jws;
use portcullis_crypto::{Algorithm, SigningKey};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// How long each algorithm is measured, per operation.
const RUN: Duration = Duration::from_secs(2);

fn claims() -> AccessClaims {
    AccessClaims {
        iss: "http://127.0.0.1:8080".into(),
        sub: "pc_bXyX8Pb93CR7B3XEvg2OzA".into(),
        aud: Audience::One("http://127.0.0.1:8080".into()),
        client_id: "pc_bXyX8Pb93CR7B3XEvg2OzA".into(),
        jti: "fam_01KAQ3Z8Y4W7TQ0H6V2C9N5R1M.AbCdEfGhIjKl".into(),
        iat: 1_790_000_000,
        nbf: 1_790_000_000,
        exp: 1_790_086_400,
        scope: "upload-data view-indicator".into(),
        scopes: vec!["upload-data".into(), "view-indicator".into()],
        label: Some("care-home-042".into()),
    }
}

/// Operations per second of `op`, run back to back for [`RUN`].
fn rate(mut op: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < RUN {
        for _ in 0..16 {
            op()?;
        }
        n += 16;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// Runs the measurement `args` ask for and prints it.
pub fn run(args: &crate::SigningArgs) -> anyhow::Result<()> {
    if args.rsa_implementations {
        return rsa::run(&args.threads, args.rounds);
    }
    println!("signing floor: one thread, the server's SigningKey, a typical access token");
    for alg in [Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA] {
        let (_, key) = SigningKey::generate(alg).context("generating a key")?;
        let verifier = key.verifying_key()?;
        let claims = claims();
        let token = key.sign_jwt(&claims)?;
        let signs = rate(|| {
            black_box(key.sign_jwt(black_box(&claims))?);
            Ok(())
        })?;
        let verifies = rate(|| {
            verify_jws(black_box(&token), |_| Some(&verifier))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(())
        })?;
        println!(
            "  {:<5}  sign {signs:>9.0}/s ({:.1} µs)   verify {verifies:>9.0}/s ({:.1} µs)   token {} bytes",
            alg.as_str(),
            1e6 / signs,
            1e6 / verifies,
            token.len()
        );
    }
    presigned()
}

/// ES256 and EdDSA as the server signs them: the message-independent half of
/// each signature computed ahead by a low-priority thread
/// (`portcullis_crypto::presign`). Times that half on this thread (filling the
/// stock, before any signature starts the thread) and a signature that finds one
/// ready.
fn presigned() -> anyhow::Result<()> {
    for alg in [Algorithm::ES256, Algorithm::EdDSA] {
        presigned_one(alg)?;
    }
    Ok(())
}

fn presigned_one(alg: Algorithm) -> anyhow::Result<()> {
    let (_, mut key) = SigningKey::generate(alg).context("generating a key")?;
    key.presign_in_background()?;
    let presigner = key
        .presigner()
        .with_context(|| format!("an {alg} key presigns once asked to"))?;
    let started = Instant::now();
    let pairs = presigner.fill();
    let per_pair = started.elapsed().as_secs_f64() / pairs.max(1) as f64;
    let claims = claims();
    // The first signature starts the presigning thread: not timed. The timed ones
    // stop before the stock falls to half, where that thread would start refilling.
    black_box(key.sign_jwt(&claims)?);
    let started = Instant::now();
    let mut signed = 0usize;
    while presigner.ready() > 0 && signed < (pairs / 2).saturating_sub(2) {
        black_box(key.sign_jwt(black_box(&claims))?);
        signed += 1;
    }
    let per_sign = started.elapsed().as_secs_f64() / signed.max(1) as f64;
    let verifier = key.verifying_key()?;
    verify_jws(&key.sign_jwt(&claims)?, |_| Some(&verifier))
        .map_err(|e| anyhow::anyhow!("a presigned token does not verify: {e}"))?;
    println!(
        "  {:<5} as the server signs: the nonce half ahead {:.1} µs ({:.0}/s), then a signature {:.1} µs ({:.0}/s, {signed} signatures)",
        alg.as_str(),
        per_pair * 1e6,
        1.0 / per_pair,
        per_sign * 1e6,
        1.0 / per_sign
    );
    Ok(())
}
