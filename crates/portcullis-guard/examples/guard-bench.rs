//! How many RS256 access tokens one guard verifies per second on one thread, with
//! the JWKS warm. A fake issuer on `127.0.0.1:0` serves the metadata and the JWKS of
//! a key generated here; then one token is verified in a loop for about 3 s.
//!
//! `cargo run -p portcullis-guard --release --example guard-bench`

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use portcullis_guard::{Guard, GuardConfig};
use serde_json::json;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

type Error = Box<dyn std::error::Error>;

fn rsa_key() -> Result<(EncodingKey, serde_json::Value), Error> {
    let pair = KeyPair::generate(KeySize::Rsa2048).map_err(|_| "RSA key generation")?;
    let der = pair.as_der().map_err(|_| "PKCS#8 encoding")?;
    let body = STANDARD.encode(der.as_ref());
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(std::str::from_utf8)
        .collect::<Result<_, _>>()?;
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    );
    let public = pair.public_key();
    let jwk = json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": "bench",
        "n": URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
        "e": URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero())});
    Ok((EncodingKey::from_rsa_pem(pem.as_bytes())?, jwk))
}

fn main() -> Result<(), Error> {
    // One thread: the issuer task and the loop share it (the issuer is idle once warm).
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(run())
}

async fn run() -> Result<(), Error> {
    let (key, jwk) = rsa_key()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    let metadata = json!({"issuer": url, "jwks_uri": format!("{url}/jwks.json")});
    let jwks = json!({ "keys": [jwk] });
    let app = Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(move || async move { Json(metadata) }),
        )
        .route("/jwks.json", get(move || async move { Json(jwks) }));
    tokio::spawn(async move { axum::serve(listener, app).await });

    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
    let claims = json!({"iss": url, "sub": "pc_bench", "aud": url, "client_id": "pc_bench",
        "jti": "fam_bench.1", "iat": now, "nbf": now, "exp": now + 3600,
        "scope": "upload-data view-indicator", "scopes": ["upload-data", "view-indicator"],
        "label": "care-home-042"});
    let mut header = Header::new(Algorithm::RS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some("bench".into());
    let token = jsonwebtoken::encode(&header, &claims, &key)?;

    for (what, capacity) in [("full verification", 0), ("verified-token cache", 10_000)] {
        let config =
            GuardConfig::new(url.clone(), url.clone()).with_verified_cache_capacity(capacity);
        let guard = Guard::discover(config).await?;
        let (n, secs) = measure(&guard, &token).await?;
        println!(
            "{what}: {n} RS256 tokens in {secs:.2} s on one thread: {:.0} tokens/s ({:.2} µs each)",
            n as f64 / secs,
            secs * 1e6 / n as f64
        );
    }
    Ok(())
}

/// Verifies `token` in a loop for about 3 s after a warm-up; returns (count, seconds).
async fn measure(guard: &Guard, token: &str) -> Result<(u64, f64), Error> {
    for _ in 0..1000 {
        guard.verify(token).await?;
    }
    let start = Instant::now();
    let mut n: u64 = 0;
    while start.elapsed() < Duration::from_secs(3) {
        for _ in 0..256 {
            guard.verify(token).await?;
        }
        n += 256;
    }
    Ok((n, start.elapsed().as_secs_f64()))
}
