//! Shared helpers.

pub use portcullis_testkit::{Engine, TestServer};
use reqwest::{Client, Response};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

/// The binary under test.
pub fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_portcullis"))
}

/// A new server with `extra` serve flags.
pub fn server(extra: &[&str]) -> TestServer {
    TestServer::start(bin(), extra).expect("server starts")
}

/// An HTTP client that never follows redirects or uses a proxy.
pub fn http() -> Client {
    Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// An HTTP client whose connections come from `local`, another loopback address
/// (Linux routes all of 127.0.0.0/8 to the loopback interface): a second source.
pub fn http_from(local: &str) -> Client {
    Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(local.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap()
}

/// The audit events of `kind`, newest first, as `portcullis audit list` prints them.
pub fn audit_of(s: &TestServer, kind: &str) -> Vec<Value> {
    let events = s
        .cli_json(&["audit", "list", "--kind", kind, "--json"])
        .unwrap();
    events.as_array().unwrap().clone()
}

/// `POST /oauth/token` with HTTP Basic and a form body.
pub async fn token_basic(
    s: &TestServer,
    id: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> Response {
    http()
        .post(format!("{}/oauth/token", s.url))
        .basic_auth(id, Some(secret))
        .form(form)
        .send()
        .await
        .unwrap()
}

/// A client_credentials token (must succeed); returns the response body.
pub async fn get_token(s: &TestServer, id: &str, secret: &str, form: &[(&str, &str)]) -> Value {
    let mut f = vec![("grant_type", "client_credentials")];
    f.extend_from_slice(form);
    let r = token_basic(s, id, secret, &f).await;
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

/// `GET /api/v1/whoami` with a bearer token.
pub async fn whoami(s: &TestServer, token: &str) -> Response {
    http()
        .get(format!("{}/api/v1/whoami", s.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Polls `check` until it returns true or `within` passes (for changes made by
/// another process, which the server honours within a second).
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Splits an error response into (status, error, description, WWW-Authenticate).
pub async fn oauth_error(r: Response) -> (u16, String, String, Option<String>) {
    let status = r.status().as_u16();
    let www = r
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = r.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
        body["error_description"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        www,
    )
}
