//! `whoami` and `introspect`: the read paths. One access token is obtained first
//! (client credentials, label `bench-site`); then every request presents it, to
//! `GET /api/v1/whoami` as a bearer token or to `POST /oauth/introspect` with the
//! client's own credentials. No database write happens per request on either path.

use crate::load::{self, Exchange, LevelResult, Plan, Target};
use crate::server::Credentials;
use anyhow::{Context, bail};
use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use std::sync::Arc;

/// Which read path.
#[derive(Debug, Clone, Copy)]
pub enum Path {
    /// `GET /api/v1/whoami`.
    Whoami,
    /// `POST /oauth/introspect`.
    Introspect,
    /// `POST /api/v1/data` with a batch of 100 records (a durable write each).
    Upload,
    /// `POST /oauth/token` with `grant_type=refresh_token`, each worker rotating its own
    /// refresh token (a signature and an atomic rotation each).
    Refresh,
}

fn basic(creds: &Credentials) -> anyhow::Result<HeaderValue> {
    let pair = format!("{}:{}", creds.client_id, creds.client_secret);
    HeaderValue::from_str(&format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    ))
    .context("client credentials make no valid header")
}

/// Gets one token set over a fresh connection: (access token, refresh token).
async fn token_set(target: &Target, creds: &Credentials) -> anyhow::Result<(String, String)> {
    let stream = tokio::net::TcpStream::connect(target.addr)
        .await
        .context("connecting")?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("handshake")?;
    tokio::spawn(conn);
    let req = target
        .request(Method::POST, "/oauth/token")
        .header(AUTHORIZATION, basic(creds)?)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from_static(
            b"grant_type=client_credentials&label=bench-site",
        )))
        .context("building the token request")?;
    let resp = sender.send_request(req).await.context("token request")?;
    if resp.status() != StatusCode::OK {
        bail!("the token endpoint answered {}", resp.status());
    }
    let body = resp
        .into_body()
        .collect()
        .await
        .context("token body")?
        .to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).context("token JSON")?;
    let access = v["access_token"].as_str().context("no access_token")?;
    let refresh = v["refresh_token"].as_str().context("no refresh_token")?;
    Ok((access.to_owned(), refresh.to_owned()))
}

fn refresh_from(body: &Bytes) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    v["refresh_token"].as_str().map(str::to_owned)
}

struct VerifyExchange {
    path: Path,
    bearer: HeaderValue,
    basic: HeaderValue,
    form: Bytes,
    upload: Bytes,
    refresh_token: String,
}

impl Exchange for VerifyExchange {
    fn request(&mut self, target: &Target) -> anyhow::Result<Request<Full<Bytes>>> {
        match self.path {
            Path::Whoami => target
                .request(Method::GET, "/api/v1/whoami")
                .header(AUTHORIZATION, self.bearer.clone())
                .body(Full::new(Bytes::new()))
                .context("building the whoami request"),
            Path::Introspect => target
                .request(Method::POST, "/oauth/introspect")
                .header(AUTHORIZATION, self.basic.clone())
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Full::new(self.form.clone()))
                .context("building the introspection request"),
            Path::Upload => target
                .request(Method::POST, "/api/v1/data")
                .header(AUTHORIZATION, self.bearer.clone())
                .header(CONTENT_TYPE, "application/json")
                .body(Full::new(self.upload.clone()))
                .context("building the upload request"),
            Path::Refresh => target
                .request(Method::POST, "/oauth/token")
                .header(AUTHORIZATION, self.basic.clone())
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Full::new(Bytes::from(format!(
                    "grant_type=refresh_token&refresh_token={}",
                    self.refresh_token
                ))))
                .context("building the refresh request"),
        }
    }

    fn check(&mut self, status: StatusCode, _headers: &HeaderMap, body: &Bytes) -> bool {
        match self.path {
            Path::Whoami => status == StatusCode::OK,
            // An inactive answer is a 200 too: count only active ones as success.
            Path::Introspect => status == StatusCode::OK && body.starts_with(b"{\"active\":true"),
            Path::Upload => status == StatusCode::CREATED,
            Path::Refresh => match (status, refresh_from(body)) {
                (StatusCode::OK, Some(next)) => {
                    self.refresh_token = next;
                    true
                }
                _ => false,
            },
        }
    }
}

/// Runs one concurrency level of `path`, the workers spread over `targets` (the
/// nodes of one server: a token from one is good on all).
pub async fn run(
    path: Path,
    targets: &[Arc<Target>],
    creds: &Credentials,
    plan: &Plan,
) -> anyhow::Result<LevelResult> {
    let (_, first) = load::target_of(targets, 0)?;
    let (token, _) = token_set(first, creds).await?;
    let bearer = HeaderValue::from_str(&format!("Bearer {token}")).context("token header")?;
    let basic = basic(creds)?;
    let form = Bytes::from(format!("token={token}"));
    let records: Vec<String> = (0..100)
        .map(|i| {
            format!(
                r#"{{"resident":"r{i:03}","heart_rate":{},"spo2":97}}"#,
                60 + i % 40
            )
        })
        .collect();
    let upload = Bytes::from(format!(r#"{{"records":[{}]}}"#, records.join(",")));
    // Refresh: one token set per worker, so workers never race for the same token.
    let mut chains = Vec::new();
    // Each chain starts on the node its worker will rotate it on.
    if matches!(path, Path::Refresh) {
        for worker in 0..plan.concurrency {
            let (_, target) = load::target_of(targets, worker)?;
            chains.push(token_set(target, creds).await?.1);
        }
    }
    let chains = Arc::new(chains);
    load::run(targets, plan, |worker| VerifyExchange {
        path,
        bearer: bearer.clone(),
        basic: basic.clone(),
        form: form.clone(),
        upload: upload.clone(),
        refresh_token: chains.get(worker).cloned().unwrap_or_default(),
    })
    .await
}
