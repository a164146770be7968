//! Unit tests against a fake issuer: a local axum server on `127.0.0.1:0` serving
//! metadata, a JWKS of keys generated here, and an introspection endpoint, each
//! counting its requests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod axum_integration;
mod introspection;
mod refetch;
mod validation;

use crate::{Guard, GuardConfig};
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The audience every test token is for (the issuer's URL is the issuer).
pub const AUDIENCE: &str = "https://api.test";

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A signing key and its public JWK.
pub struct TestKey {
    pub kid: String,
    pub alg: Algorithm,
    pub encoding: EncodingKey,
    pub jwk: Value,
    /// For RSA: the public key's DER (the HS256 confusion attack's "secret").
    pub public_der: Vec<u8>,
}

fn pem(der: &[u8]) -> String {
    let b = STANDARD.encode(der);
    let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
    for line in b.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str("-----END PRIVATE KEY-----\n");
    out
}

impl TestKey {
    pub fn rsa(kid: &str) -> Self {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let der = pair.as_der().unwrap();
        let public = pair.public_key();
        let jwk = json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
            "n": b64(public.modulus().big_endian_without_leading_zero()),
            "e": b64(public.exponent().big_endian_without_leading_zero()),
        });
        Self {
            kid: kid.into(),
            alg: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_pem(pem(der.as_ref()).as_bytes()).unwrap(),
            jwk,
            public_der: public.as_der().unwrap().as_ref().to_vec(),
        }
    }

    pub fn ec(kid: &str) -> Self {
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let der = EcdsaKeyPair::generate_pkcs8(alg, &SystemRandom::new()).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(alg, der.as_ref()).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let jwk = json!({
            "kty": "EC", "use": "sig", "alg": "ES256", "kid": kid, "crv": "P-256",
            "x": b64(&point[1..33]), "y": b64(&point[33..65]),
        });
        Self {
            kid: kid.into(),
            alg: Algorithm::ES256,
            encoding: EncodingKey::from_ec_pem(pem(der.as_ref()).as_bytes()).unwrap(),
            jwk,
            public_der: point,
        }
    }

    pub fn ed(kid: &str) -> Self {
        let pair = Ed25519KeyPair::generate().unwrap();
        let der = pair.to_pkcs8v1().unwrap();
        let x = pair.public_key().as_ref().to_vec();
        let jwk = json!({
            "kty": "OKP", "use": "sig", "alg": "EdDSA", "kid": kid, "crv": "Ed25519",
            "x": b64(&x),
        });
        Self {
            kid: kid.into(),
            alg: Algorithm::EdDSA,
            encoding: EncodingKey::from_ed_pem(pem(der.as_ref()).as_bytes()).unwrap(),
            jwk,
            public_der: x,
        }
    }

    /// The RFC 9068 header this key signs with.
    pub fn header(&self) -> Header {
        let mut h = Header::new(self.alg);
        h.typ = Some("at+jwt".into());
        h.kid = Some(self.kid.clone());
        h
    }

    /// Signs `claims` with the key's own header.
    pub fn sign(&self, claims: &Value) -> String {
        self.sign_with(&self.header(), claims)
    }

    /// Signs `claims` with any header.
    pub fn sign_with(&self, header: &Header, claims: &Value) -> String {
        jsonwebtoken::encode(header, claims, &self.encoding).unwrap()
    }
}

/// Claims as Portcullis issues them, valid for an hour.
pub fn claims(issuer: &str) -> Value {
    let now = now();
    json!({
        "iss": issuer, "sub": "pc_client", "aud": AUDIENCE, "client_id": "pc_client",
        "jti": "fam_1.abc", "iat": now, "nbf": now, "exp": now + 3600,
        "scope": "upload-data view-indicator", "scopes": ["upload-data", "view-indicator"],
        "label": "care-home-042",
    })
}

/// What the fake issuer serves and counts.
pub struct FakeState {
    pub url: Mutex<String>,
    /// The `issuer` its metadata names (defaults to its URL).
    pub metadata_issuer: Mutex<Option<String>>,
    pub advertise_introspection: AtomicBool,
    pub jwks: Mutex<Value>,
    pub jwks_status: AtomicU16,
    pub jwks_hits: AtomicUsize,
    /// How long the JWKS endpoint takes to answer, so concurrent misses overlap.
    pub jwks_delay_ms: AtomicU64,
    pub active: AtomicBool,
    pub introspection_status: AtomicU16,
    pub introspection_hits: AtomicUsize,
    /// The last introspection request's Authorization header and form.
    pub introspection_seen: Mutex<Option<(String, String)>>,
}

/// A fake Portcullis issuer on a free loopback port.
pub struct FakeIssuer {
    pub url: String,
    pub state: Arc<FakeState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeIssuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn metadata(State(s): State<Arc<FakeState>>) -> Json<Value> {
    let url = s.url.lock().unwrap().clone();
    let issuer = s
        .metadata_issuer
        .lock()
        .unwrap()
        .clone()
        .unwrap_or_else(|| url.clone());
    let mut m = json!({
        "issuer": issuer,
        "token_endpoint": format!("{url}/oauth/token"),
        "jwks_uri": format!("{url}/jwks.json"),
    });
    if s.advertise_introspection.load(Ordering::SeqCst) {
        m["introspection_endpoint"] = format!("{url}/oauth/introspect").into();
    }
    Json(m)
}

async fn jwks(State(s): State<Arc<FakeState>>) -> Response {
    s.jwks_hits.fetch_add(1, Ordering::SeqCst);
    let delay = s.jwks_delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let status = StatusCode::from_u16(s.jwks_status.load(Ordering::SeqCst)).unwrap();
    let body = s.jwks.lock().unwrap().clone();
    (status, Json(body)).into_response()
}

async fn introspect(State(s): State<Arc<FakeState>>, headers: HeaderMap, form: String) -> Response {
    s.introspection_hits.fetch_add(1, Ordering::SeqCst);
    let auth = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    *s.introspection_seen.lock().unwrap() = Some((auth, form));
    let status = StatusCode::from_u16(s.introspection_status.load(Ordering::SeqCst)).unwrap();
    let active = s.active.load(Ordering::SeqCst);
    (status, Json(json!({"active": active}))).into_response()
}

impl FakeIssuer {
    /// Starts serving `keys` (their public JWKs).
    pub async fn start(keys: &[&TestKey]) -> Self {
        let state = Arc::new(FakeState {
            url: Mutex::new(String::new()),
            metadata_issuer: Mutex::new(None),
            advertise_introspection: AtomicBool::new(true),
            jwks: Mutex::new(Value::Null),
            jwks_status: AtomicU16::new(200),
            jwks_hits: AtomicUsize::new(0),
            jwks_delay_ms: AtomicU64::new(0),
            active: AtomicBool::new(true),
            introspection_status: AtomicU16::new(200),
            introspection_hits: AtomicUsize::new(0),
            introspection_seen: Mutex::new(None),
        });
        let app = Router::new()
            .route("/.well-known/oauth-authorization-server", get(metadata))
            .route("/jwks.json", get(jwks))
            .route("/oauth/introspect", post(introspect))
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        *state.url.lock().unwrap() = url.clone();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        let issuer = Self { url, state, task };
        issuer.publish(keys);
        issuer
    }

    /// Replaces the served JWKS with these keys.
    pub fn publish(&self, keys: &[&TestKey]) {
        let jwks: Vec<Value> = keys.iter().map(|k| k.jwk.clone()).collect();
        self.publish_raw(json!({ "keys": jwks }));
    }

    /// Replaces the served JWKS with any JSON.
    pub fn publish_raw(&self, jwks: Value) {
        *self.state.jwks.lock().unwrap() = jwks;
    }

    pub fn jwks_hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }

    pub fn introspection_hits(&self) -> usize {
        self.state.introspection_hits.load(Ordering::SeqCst)
    }

    /// A configuration for this issuer with the defaults.
    pub fn config(&self) -> GuardConfig {
        GuardConfig::new(self.url.clone(), AUDIENCE)
    }

    /// A guard with the default configuration.
    pub async fn guard(&self) -> Guard {
        Guard::discover(self.config()).await.unwrap()
    }

    /// Valid claims from this issuer.
    pub fn claims(&self) -> Value {
        claims(&self.url)
    }
}

/// Polls `check` every 20 ms until it holds or `within` passes.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
