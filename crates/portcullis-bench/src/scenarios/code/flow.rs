//! The flow itself: the set-up a browser goes through once (sign-in form,
//! consent form, redirect with a code), minting codes with the session that
//! leaves (`GET /oauth/authorize` with a consent already given answers `302`
//! with a fresh code), and exchanging them at `/oauth/token`.
//!
//! Every code is made from one PKCE challenge, so every exchange sends the one
//! verifier; each code is still single use.

use crate::browser::{
    cookie_header, cookie_value, describe, form_action, form_encode, hidden_field, send,
};
use crate::load::{self, Exchange, LevelResult, Plan, Target};
use crate::server::{Credentials, ServerProcess};
use anyhow::{Context, bail};
use base64::Engine;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HeaderValue, LOCATION};
use hyper::{HeaderMap, Method, Request, StatusCode};
use portcullis_crypto::{b64, sha256};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// The client's one redirect URI (nothing listens there: the bench reads the
/// code from the redirect's `Location`).
const REDIRECT_URI: &str = "http://127.0.0.1:9/cb";

/// The end user's name.
pub(super) const USER: &str = "bench-user";

/// The end user's password (a temporary database; nobody else signs in).
pub(super) const PASSWORD: &str = "correct horse battery staple";

/// The end user's session cookie.
const SESSION_COOKIE: &str = "pc_user";

/// The authorization page's sign-in cookie.
const SIGN_IN_COOKIE: &str = "pc_user_login_csrf";

/// What the rounds need once the user has signed in and consented.
pub(super) struct Flow {
    /// The server.
    pub(super) target: Arc<Target>,
    /// The client: `authorization_code`, `refresh_token` and `client_credentials`.
    pub(super) creds: Credentials,
    /// `Basic …` of the client.
    basic: HeaderValue,
    /// `/oauth/authorize?…`, the same request every time.
    authorize: Arc<str>,
    /// `pc_user=…`, the signed-in user's session.
    session: HeaderValue,
    /// The PKCE verifier every code's challenge was made from.
    verifier: Arc<str>,
}

/// A PKCE pair (RFC 7636 §4.1–4.2): a verifier of 43 base64url characters (256
/// bits from a hash of the time and a random key) and its `S256` challenge.
fn pkce_pair() -> (String, String) {
    let seed = format!(
        "{:?} {}",
        std::time::SystemTime::now(),
        RandomState::new().hash_one(std::process::id())
    );
    let verifier = b64::encode(sha256(seed.as_bytes()));
    let challenge = b64::encode(sha256(verifier.as_bytes()));
    (verifier, challenge)
}

/// The value of `name` in the query of `url` (codes and states are base64url or
/// plain words: nothing to percent-decode).
fn query_param<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    let (_, query) = url.split_once('?')?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
}

/// The `Location` of a response, or why there is none.
fn location(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> anyhow::Result<String> {
    headers
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned)
        .with_context(|| format!("no Location: {}", describe(status, body)))
}

/// A form post with cookies.
fn post(
    target: &Target,
    path: &str,
    cookies: &[(&str, &str)],
    fields: &[(&str, &str)],
) -> anyhow::Result<Request<Full<Bytes>>> {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("{k}={}", form_encode(v)))
        .collect();
    target
        .request(Method::POST, path)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(COOKIE, cookie_header(cookies)?)
        .body(Full::new(Bytes::from(body.join("&"))))
        .context("building a form post")
}

/// A `GET` with cookies.
fn get(
    target: &Target,
    path: &str,
    cookies: &[(&str, &str)],
) -> anyhow::Result<Request<Full<Bytes>>> {
    let mut req = target.request(Method::GET, path);
    if !cookies.is_empty() {
        req = req.header(COOKIE, cookie_header(cookies)?);
    }
    req.body(Full::new(Bytes::new()))
        .context("building a GET request")
}

/// Creates the client and the end user with the CLI, then goes through the flow
/// once as a browser would: the authorization request, its sign-in form, the
/// consent form, the redirect with a code. Checks that the same request then
/// answers `302` with a code at once.
pub(super) async fn set_up(server: &ServerProcess, target: Arc<Target>) -> anyhow::Result<Flow> {
    let creds = server
        .create_client_with(
            "bench-code",
            &[
                "--grant",
                "authorization_code",
                "--grant",
                "refresh_token",
                "--grant",
                "client_credentials",
                "--redirect-uri",
                REDIRECT_URI,
            ],
        )
        .await?;
    server.create_user(USER, PASSWORD).await?;
    let (verifier, challenge) = pkce_pair();
    let authorize = format!(
        "/oauth/authorize?response_type=code&client_id={}&redirect_uri={}&state=bench\
         &code_challenge={challenge}&code_challenge_method=S256",
        creds.client_id,
        form_encode(REDIRECT_URI),
    );
    let mut conn = load::connect_from(&target, None).await?;

    // Signed out: the sign-in page, with its CSRF cookie and field.
    let (status, headers, body) = send(&mut conn, get(&target, &authorize, &[])?).await?;
    if status != StatusCode::OK {
        bail!("GET {authorize}: {}", describe(status, &body));
    }
    let sign_in_cookie = cookie_value(&headers, SIGN_IN_COOKIE)
        .with_context(|| format!("the sign-in page set no {SIGN_IN_COOKIE} cookie"))?;
    let csrf = hidden_field(&body, "csrf").context("the sign-in page has no csrf field")?;
    let action = form_action(&body).context("the sign-in page has no form")?;
    let req = post(
        &target,
        &action,
        &[(SIGN_IN_COOKIE, &sign_in_cookie)],
        &[
            ("csrf", &csrf),
            ("step", "sign_in"),
            ("username", USER),
            ("password", PASSWORD),
        ],
    )?;
    let (status, headers, body) = send(&mut conn, req).await?;
    if status != StatusCode::SEE_OTHER {
        bail!("signing in: {}", describe(status, &body));
    }
    let session = cookie_value(&headers, SESSION_COOKIE)
        .with_context(|| format!("signing in set no {SESSION_COOKIE} cookie"))?;
    let back = location(status, &headers, &body).context("signing in")?;

    // Signed in: the consent page, with the session's CSRF token and the flow.
    let cookies = [(SESSION_COOKIE, session.as_str())];
    let (status, _, body) = send(&mut conn, get(&target, &back, &cookies)?).await?;
    if status != StatusCode::OK {
        bail!("the consent page: {}", describe(status, &body));
    }
    let csrf = hidden_field(&body, "csrf").context("the consent page has no csrf field")?;
    let flow = hidden_field(&body, "flow").context("the consent page has no flow field")?;
    let action = form_action(&body).context("the consent page has no form")?;
    let req = post(
        &target,
        &action,
        &cookies,
        &[
            ("csrf", &csrf),
            ("flow", &flow),
            ("step", "consent"),
            ("decision", "allow"),
        ],
    )?;
    let (status, headers, body) = send(&mut conn, req).await?;
    let back = location(status, &headers, &body).context("allowing")?;
    if !back.starts_with(REDIRECT_URI) || query_param(&back, "code").is_none() {
        bail!("allowing did not redirect to the client with a code: {back}");
    }

    let flow = Flow {
        basic: basic(&creds)?,
        creds,
        authorize: Arc::from(authorize),
        session: cookie_header(&cookies)?,
        verifier: Arc::from(verifier),
        target,
    };
    // The consent exists now: the same request answers with a code at once.
    let req = authorize_request(&flow.target, &flow.authorize, &flow.session)?;
    let (status, headers, body) = send(&mut conn, req).await?;
    if code_of(status, &headers).is_none() {
        bail!(
            "with a session and a consent, /oauth/authorize did not answer 302 with a code: {}",
            describe(status, &body)
        );
    }
    Ok(flow)
}

/// `Basic base64(id:secret)`.
fn basic(creds: &Credentials) -> anyhow::Result<HeaderValue> {
    let pair = format!("{}:{}", creds.client_id, creds.client_secret);
    HeaderValue::from_str(&format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    ))
    .context("client credentials make no valid header")
}

/// The code of a `302` to the client, if that is what the answer is.
fn code_of(status: StatusCode, headers: &HeaderMap) -> Option<String> {
    if status != StatusCode::FOUND {
        return None;
    }
    let to = headers.get(LOCATION)?.to_str().ok()?;
    if !to.starts_with(REDIRECT_URI) {
        return None;
    }
    query_param(to, "code").map(str::to_owned)
}

/// `GET /oauth/authorize` with the session: a fresh code.
fn authorize_request(
    target: &Target,
    authorize: &str,
    session: &HeaderValue,
) -> anyhow::Result<Request<Full<Bytes>>> {
    target
        .request(Method::GET, authorize)
        .header(COOKIE, session.clone())
        .body(Full::new(Bytes::new()))
        .context("building the authorization request")
}

impl Flow {
    /// Mints up to `wanted` codes with `plan.concurrency` workers in parallel,
    /// for at most `plan.duration`; returns what the minting measured and the codes.
    pub(super) async fn mint(
        &self,
        wanted: usize,
        plan: &Plan,
    ) -> anyhow::Result<(LevelResult, Vec<String>)> {
        let claimed = Arc::new(AtomicUsize::new(0));
        let minted = Arc::new(Mutex::new(Vec::with_capacity(wanted)));
        let result = load::run(std::slice::from_ref(&self.target), plan, |_| MintExchange {
            authorize: Arc::clone(&self.authorize),
            session: self.session.clone(),
            claimed: Arc::clone(&claimed),
            wanted,
            minted: Arc::clone(&minted),
        })
        .await?;
        let codes = std::mem::take(
            &mut *minted
                .lock()
                .map_err(|_| anyhow::anyhow!("a minting worker panicked"))?,
        );
        Ok((result, codes))
    }

    /// Exchanges the codes of `pool` with `plan.concurrency` workers until
    /// `plan`'s end or until the pool is used up.
    pub(super) async fn exchange(
        &self,
        pool: Vec<String>,
        plan: &Plan,
    ) -> anyhow::Result<LevelResult> {
        let pool: Arc<[String]> = pool.into();
        let next = Arc::new(AtomicUsize::new(0));
        let redirect_uri: Arc<str> = Arc::from(form_encode(REDIRECT_URI));
        load::run(std::slice::from_ref(&self.target), plan, |_| CodeExchange {
            pool: Arc::clone(&pool),
            next: Arc::clone(&next),
            current: 0,
            basic: self.basic.clone(),
            verifier: Arc::clone(&self.verifier),
            redirect_uri: Arc::clone(&redirect_uri),
        })
        .await
    }
}

/// One minting worker: authorization requests until `wanted` have been claimed
/// by all workers together.
struct MintExchange {
    authorize: Arc<str>,
    session: HeaderValue,
    claimed: Arc<AtomicUsize>,
    wanted: usize,
    minted: Arc<Mutex<Vec<String>>>,
}

impl Exchange for MintExchange {
    fn has_next(&mut self) -> bool {
        self.claimed.fetch_add(1, Ordering::Relaxed) < self.wanted
    }

    fn request(&mut self, target: &Target) -> anyhow::Result<Request<Full<Bytes>>> {
        authorize_request(target, &self.authorize, &self.session)
    }

    fn check(&mut self, status: StatusCode, headers: &HeaderMap, _body: &Bytes) -> bool {
        match (code_of(status, headers), self.minted.lock()) {
            (Some(code), Ok(mut minted)) => {
                minted.push(code);
                true
            }
            _ => false,
        }
    }
}

/// One exchanging worker: takes the next code of the shared pool for each request.
struct CodeExchange {
    pool: Arc<[String]>,
    next: Arc<AtomicUsize>,
    current: usize,
    basic: HeaderValue,
    verifier: Arc<str>,
    redirect_uri: Arc<str>,
}

impl Exchange for CodeExchange {
    fn has_next(&mut self) -> bool {
        self.current = self.next.fetch_add(1, Ordering::Relaxed);
        self.current < self.pool.len()
    }

    fn request(&mut self, target: &Target) -> anyhow::Result<Request<Full<Bytes>>> {
        let code = self.pool.get(self.current).context("no code left")?;
        target
            .request(Method::POST, "/oauth/token")
            .header(AUTHORIZATION, self.basic.clone())
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(format!(
                "grant_type=authorization_code&code={code}&code_verifier={}&redirect_uri={}",
                self.verifier, self.redirect_uri
            ))))
            .context("building the code exchange")
    }

    fn check(&mut self, status: StatusCode, _headers: &HeaderMap, _body: &Bytes) -> bool {
        status == StatusCode::OK
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_pkce_pair_is_a_valid_s256_pair() {
        let (verifier, challenge) = pkce_pair();
        assert_eq!(verifier.len(), 43);
        assert!(portcullis_crypto::pkce_matches(&verifier, &challenge));
    }

    #[test]
    fn the_code_is_read_from_the_redirect() {
        let to = "http://127.0.0.1:9/cb?code=pcc_abc-_1&state=bench&iss=http%3A%2F%2Fx";
        assert_eq!(query_param(to, "code"), Some("pcc_abc-_1"));
        assert_eq!(query_param(to, "state"), Some("bench"));
        assert_eq!(query_param(to, "cod"), None);
        let mut h = HeaderMap::new();
        h.insert(
            LOCATION,
            HeaderValue::from_static("http://127.0.0.1:9/cb?code=pcc_x"),
        );
        assert_eq!(code_of(StatusCode::FOUND, &h).unwrap(), "pcc_x");
        assert!(code_of(StatusCode::SEE_OTHER, &h).is_none());
    }
}
