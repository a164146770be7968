//! `token`: `POST /oauth/token` with `grant_type=client_credentials`, HTTP Basic
//! client authentication and a label cycling through [`LABELS`] data access
//! points (`bench-001` … `bench-100`). Every request signs an access token and
//! stores a new refresh token family, so it exercises signing and a database write.

use crate::load::{self, Exchange, LevelResult, Plan, Target};
use crate::server::Credentials;
use anyhow::Context;
use base64::Engine;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{HeaderMap, Method, Request, StatusCode};
use std::sync::Arc;

/// How many distinct labels the requests cycle through.
pub const LABELS: usize = 100;

/// Portcullis's token endpoint.
const TOKEN_PATH: &str = "/oauth/token";

/// One worker's token requests.
struct TokenExchange {
    /// The token endpoint's path.
    path: &'static str,
    authorization: HeaderValue,
    bodies: Arc<[Bytes]>,
    next: usize,
}

impl Exchange for TokenExchange {
    fn request(&mut self, target: &Target) -> anyhow::Result<Request<Full<Bytes>>> {
        let body = self
            .bodies
            .get(self.next % self.bodies.len())
            .cloned()
            .context("no request bodies")?;
        self.next = self.next.wrapping_add(1);
        request(target, self.path, self.authorization.clone(), body)
    }

    fn check(&mut self, status: StatusCode, _headers: &HeaderMap, _body: &Bytes) -> bool {
        status == StatusCode::OK
    }
}

/// `POST path` of the form `body` with the client authentication `authorization`.
pub fn request(
    target: &Target,
    path: &str,
    authorization: HeaderValue,
    body: Bytes,
) -> anyhow::Result<Request<Full<Bytes>>> {
    target
        .request(Method::POST, path)
        .header(AUTHORIZATION, authorization)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(body))
        .context("building the token request")
}

/// `Basic base64(id:secret)`; ids and secrets are URL-safe, so no form-encoding first.
pub fn basic_auth(creds: &Credentials) -> anyhow::Result<HeaderValue> {
    let pair = format!("{}:{}", creds.client_id, creds.client_secret);
    let value = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    );
    HeaderValue::from_str(&value).context("client credentials make no valid header")
}

/// The request bodies of Portcullis's client credentials grant, one per label.
pub fn label_bodies() -> Arc<[Bytes]> {
    (1..=LABELS)
        .map(|n| Bytes::from(format!("grant_type=client_credentials&label=bench-{n:03}")))
        .collect()
}

/// Runs one concurrency level of the token scenario, the workers spread over `targets`.
pub async fn run(
    targets: &[Arc<Target>],
    creds: &Credentials,
    plan: &Plan,
) -> anyhow::Result<LevelResult> {
    run_at(TOKEN_PATH, label_bodies(), targets, creds, plan).await
}

/// Runs one concurrency level of client credentials requests to the token
/// endpoint at `path`, with HTTP Basic client authentication and the form
/// `bodies` in turn (each worker starting at its own), the workers spread over
/// `targets`. A success is `200 OK`.
pub async fn run_at(
    path: &'static str,
    bodies: Arc<[Bytes]>,
    targets: &[Arc<Target>],
    creds: &Credentials,
    plan: &Plan,
) -> anyhow::Result<LevelResult> {
    let authorization = basic_auth(creds)?;
    load::run(targets, plan, |worker| TokenExchange {
        path,
        authorization: authorization.clone(),
        bodies: Arc::clone(&bodies),
        // Spread the workers over the labels.
        next: worker.wrapping_mul(37),
    })
    .await
}
