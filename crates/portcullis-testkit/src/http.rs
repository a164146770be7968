//! The HTTP helpers the integration suites share: a client that neither follows
//! redirects nor uses a proxy, the token endpoint with HTTP Basic, `whoami`, the
//! served JWKS, a JWT's header and claims decoded without verification, and the
//! parts of an error answer (status, `WWW-Authenticate`, body).
//!
//! They talk to a [`TestServer`] over real HTTP and fail the calling test with a
//! message when the server does not answer as every caller expects (a helper that
//! needs a token asserts the token endpoint said 200): that is what they are for.
//! Anything a test asserts about the answer itself it gets back whole.

// A helper that cannot do its job fails the test that called it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::TestServer;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::{Client, RequestBuilder, Response};
use serde_json::Value;
use std::future::Future;
use std::time::{Duration, Instant};

/// An HTTP client that never follows redirects (a test sees the 303 itself) or uses
/// a proxy from the environment.
pub fn http() -> Client {
    Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client")
}

/// Like [`http`], but its connections come from `local`, another loopback address
/// (Linux routes all of 127.0.0.0/8 to the loopback interface): a second source.
pub fn http_from(local: &str) -> Client {
    let local: std::net::IpAddr = local.parse().expect("a local IP address");
    Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .local_address(local)
        .build()
        .expect("an HTTP client")
}

/// Sends `req` and splits the answer into (status, `WWW-Authenticate`, JSON body;
/// `null` when the body is not JSON).
pub async fn send(req: RequestBuilder) -> (u16, Option<String>, Value) {
    let r = req.send().await.expect("the request is answered");
    let status = r.status().as_u16();
    let www = challenge(&r);
    let body = r.json().await.unwrap_or(Value::Null);
    (status, www, body)
}

/// The `WWW-Authenticate` header of an answer, if any.
pub fn challenge(r: &Response) -> Option<String> {
    r.headers()
        .get("www-authenticate")
        .map(|v| v.to_str().expect("an ASCII challenge").to_owned())
}

/// Splits an OAuth error answer (RFC 6749 §5.2) into (status, `error`,
/// `error_description`, `WWW-Authenticate`); missing members are empty strings.
pub async fn oauth_error(r: Response) -> (u16, String, String, Option<String>) {
    let status = r.status().as_u16();
    let www = challenge(&r);
    let body: Value = r.json().await.expect("a JSON error body");
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

/// `POST {path}` with HTTP Basic client authentication and a form body: the token,
/// revocation (RFC 7009) and introspection (RFC 7662) endpoints.
pub async fn post_basic(
    s: &TestServer,
    path: &str,
    id: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> Response {
    http()
        .post(format!("{}{path}", s.url))
        .basic_auth(id, Some(secret))
        .form(form)
        .send()
        .await
        .expect("the request is answered")
}

/// `POST /oauth/token` with HTTP Basic and a form body.
pub async fn token_basic(
    s: &TestServer,
    id: &str,
    secret: &str,
    form: &[(&str, &str)],
) -> Response {
    post_basic(s, "/oauth/token", id, secret, form).await
}

/// A `client_credentials` token set (must be issued: 200); returns the response body.
pub async fn get_token(s: &TestServer, id: &str, secret: &str, form: &[(&str, &str)]) -> Value {
    let mut f = vec![("grant_type", "client_credentials")];
    f.extend_from_slice(form);
    let r = token_basic(s, id, secret, &f).await;
    assert_eq!(r.status(), 200);
    r.json().await.expect("a JSON token response")
}

/// A `client_credentials` access token (must be issued: 200).
pub async fn access_token(s: &TestServer, id: &str, secret: &str, form: &[(&str, &str)]) -> String {
    at(&get_token(s, id, secret, form).await)
}

/// `access_token` of a token response.
pub fn at(v: &Value) -> String {
    v["access_token"]
        .as_str()
        .expect("an access_token")
        .to_owned()
}

/// `refresh_token` of a token response.
pub fn rt(v: &Value) -> String {
    v["refresh_token"]
        .as_str()
        .expect("a refresh_token")
        .to_owned()
}

/// The `refresh_token` grant with `token`, asking for `scope` when given.
pub async fn refresh(
    s: &TestServer,
    id: &str,
    secret: &str,
    token: &str,
    scope: Option<&str>,
) -> Response {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    if let Some(sc) = scope {
        form.push(("scope", sc));
    }
    token_basic(s, id, secret, &form).await
}

/// `n` refresh_token grants with the same `token`, all in flight at once, sent to
/// `servers` in turn (the race that rotation must win exactly once); their
/// statuses in the order they were sent.
pub async fn concurrent_refreshes(
    servers: &[&TestServer],
    id: &str,
    secret: &str,
    token: &str,
    n: usize,
) -> Vec<u16> {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let url = servers[i % servers.len()].url.clone();
            let (id, secret, token) = (id.to_owned(), secret.to_owned(), token.to_owned());
            tokio::spawn(async move {
                http()
                    .post(format!("{url}/oauth/token"))
                    .basic_auth(id, Some(secret))
                    .form(&[("grant_type", "refresh_token"), ("refresh_token", &token)])
                    .send()
                    .await
                    .expect("the request is answered")
                    .status()
                    .as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::with_capacity(n);
    for t in tasks {
        statuses.push(t.await.expect("the request task ends"));
    }
    statuses
}

/// An access token carrying the `admin` scope, of a new client created with
/// `--scope admin` (for the admin API).
pub async fn admin_token(s: &TestServer) -> String {
    let (id, secret) = s
        .create_client("Ops robot", &["--scope", "admin"])
        .expect("an admin client");
    access_token(s, &id, &secret, &[]).await
}

/// `GET /api/v1/whoami` with a bearer token.
pub async fn whoami(s: &TestServer, token: &str) -> Response {
    http()
        .get(format!("{}/api/v1/whoami", s.url))
        .bearer_auth(token)
        .send()
        .await
        .expect("the request is answered")
}

/// The server's key set, `GET /.well-known/jwks.json` (must answer 200).
pub async fn jwks(s: &TestServer) -> Value {
    let r = http()
        .get(format!("{}/.well-known/jwks.json", s.url))
        .send()
        .await
        .expect("the request is answered");
    assert_eq!(r.status(), 200, "GET /.well-known/jwks.json");
    r.json().await.expect("a JSON key set")
}

/// The JOSE header of a JWT, decoded but not verified.
pub fn jwt_header(token: &str) -> Value {
    jwt_part(token, 0)
}

/// The claims of a JWT, decoded but not verified.
pub fn jwt_claims(token: &str) -> Value {
    jwt_part(token, 1)
}

/// The `kid` in a JWT's header.
pub fn kid(token: &str) -> String {
    jwt_header(token)["kid"]
        .as_str()
        .expect("a kid in the JWT header")
        .to_owned()
}

/// Part `n` (0: header, 1: claims) of a compact JWS as JSON.
fn jwt_part(token: &str, n: usize) -> Value {
    let part = token.split('.').nth(n).expect("a JWT in compact form");
    let bytes = URL_SAFE_NO_PAD.decode(part).expect("base64url");
    serde_json::from_slice(&bytes).expect("a JSON object")
}

/// Polls `check` every 50 ms until it returns true (true) or `within` passes (false):
/// for a change made by another process or node, which a server honours within a
/// second. Not for waiting out an expiry: [`TestServer::advance_clock`] does that.
pub async fn eventually<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
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
