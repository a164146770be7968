//! The legitimate admin's sign-ins, and the requests behind every sign-in: the
//! form's cookie and csrf token, the form-encoded post, and reading the answer.

use super::report::percent;
use super::{LEGIT_SOURCE, RECONNECT_PAUSE};
use crate::load::{self, Target};
use crate::server::AdminCredentials;
use anyhow::{Context, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, COOKIE, HeaderValue, LOCATION, SET_COOKIE};
use hyper::{HeaderMap, Method, Request, StatusCode};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The sign-in form's double-submit cookie.
const LOGIN_CSRF_COOKIE: &str = "pc_login_csrf";

/// How long one legitimate sign-in may take before it counts as failed.
const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(30);

/// How much of an unexpected response body to keep for the report.
const ERROR_BODY_CHARS: usize = 300;

/// The legitimate admin's sign-ins in the window.
#[derive(Debug, Default)]
pub(super) struct SignIns {
    /// Sign-ins started in the window.
    pub(super) attempted: u64,
    /// Of those, the ones that ended in `303` to `/admin`.
    pub(super) succeeded: u64,
    /// Latency of each successful sign-in (form and post), in microseconds, sorted.
    pub(super) latencies_us: Vec<u64>,
    /// The first failure.
    pub(super) first_error: Option<String>,
}

impl SignIns {
    /// Succeeded as a percentage of attempted.
    pub(super) fn success_pct(&self) -> Option<f64> {
        percent(self.succeeded, self.attempted)
    }
}

/// One admin signing in with the right password from [`LEGIT_SOURCE`], one
/// sign-in after another on a keep-alive connection, each starting `interval`
/// after the last one started (or when it ends, if later), from now until `end`;
/// those started after `warm_end` are counted, however long they take (up to
/// [`SIGN_IN_TIMEOUT`]), since a delayed sign-in is what the flood is expected to cause.
pub(super) async fn legit_sign_ins(
    target: Arc<Target>,
    admin: AdminCredentials,
    interval: Duration,
    warm_end: Instant,
    end: Instant,
) -> anyhow::Result<SignIns> {
    let mut out = SignIns::default();
    let mut conn: Option<SendRequest<Full<Bytes>>> = None;
    while Instant::now() < end {
        let started = Instant::now();
        let measured = started >= warm_end;
        let sender = match conn.as_mut() {
            Some(s) => s,
            None => match load::connect_from(&target, Some(IpAddr::V4(LEGIT_SOURCE))).await {
                Ok(s) => conn.insert(s),
                Err(e) => {
                    if measured {
                        out.attempted += 1;
                        out.first_error.get_or_insert_with(|| format!("{e:#}"));
                    }
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            },
        };
        let outcome = tokio::time::timeout(
            SIGN_IN_TIMEOUT,
            sign_in(sender, &target, &admin.user, &admin.password),
        )
        .await;
        let took = started.elapsed();
        let next = (started + interval).min(end);
        let failure = match outcome {
            Ok(Ok((status, headers, body))) => {
                let to_admin = headers
                    .get(LOCATION)
                    .is_some_and(|l| l.as_bytes() == b"/admin");
                if status == StatusCode::SEE_OTHER && to_admin {
                    None
                } else {
                    Some(describe(status, &body))
                }
            }
            Ok(Err(e)) => {
                conn = None;
                Some(format!("{e:#}"))
            }
            Err(_) => {
                conn = None;
                Some(format!("no answer within {}s", SIGN_IN_TIMEOUT.as_secs()))
            }
        };
        if measured {
            out.attempted += 1;
            match failure {
                None => {
                    out.succeeded += 1;
                    out.latencies_us.push(micros(took));
                }
                Some(e) => {
                    out.first_error.get_or_insert(e);
                }
            }
        }
        tokio::time::sleep_until(next).await;
    }
    out.latencies_us.sort_unstable();
    Ok(out)
}

/// One sign-in as a browser does it: `GET /admin/login` for the form's token and
/// its cookie, then `POST /admin/login` with both, the user name and the
/// password. Returns the post's answer; a form that cannot be had is an error.
pub(super) async fn sign_in(
    conn: &mut SendRequest<Full<Bytes>>,
    target: &Target,
    user: &str,
    password: &str,
) -> anyhow::Result<(StatusCode, HeaderMap, Bytes)> {
    let form = target
        .request(Method::GET, "/admin/login")
        .body(Full::new(Bytes::new()))
        .context("building the sign-in form request")?;
    let (status, headers, body) = send(conn, form).await?;
    if status != StatusCode::OK {
        bail!("GET /admin/login: {}", describe(status, &body));
    }
    let cookie = login_cookie(&headers)
        .with_context(|| format!("GET /admin/login set no {LOGIN_CSRF_COOKIE} cookie"))?;
    let field = csrf_field(&body).context("GET /admin/login: no csrf field in the form")?;
    let post_body = format!(
        "csrf={}&username={}&password={}",
        form_encode(&field),
        form_encode(user),
        form_encode(password),
    );
    let post = target
        .request(Method::POST, "/admin/login")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(
            COOKIE,
            HeaderValue::from_str(&format!("{LOGIN_CSRF_COOKIE}={cookie}"))
                .context("the csrf cookie makes no valid header")?,
        )
        .body(Full::new(Bytes::from(post_body)))
        .context("building the sign-in post")?;
    send(conn, post).await
}

/// The value of the `pc_login_csrf` cookie a response sets.
fn login_cookie(headers: &HeaderMap) -> Option<String> {
    headers.get_all(SET_COOKIE).iter().find_map(|v| {
        let v = v.to_str().ok()?;
        let pair = v.split(';').next()?.trim();
        let value = pair.strip_prefix(LOGIN_CSRF_COOKIE)?.strip_prefix('=')?;
        (!value.is_empty()).then(|| value.to_owned())
    })
}

/// The value of the form's hidden `csrf` input.
fn csrf_field(body: &[u8]) -> Option<String> {
    let html = std::str::from_utf8(body).ok()?;
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker)? + marker.len();
    let rest = html.get(start..)?;
    let value = rest.get(..rest.find('"')?)?;
    (!value.is_empty()).then(|| value.to_owned())
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'*') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Sends one request and reads the whole response.
pub(super) async fn send(
    conn: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> anyhow::Result<(StatusCode, HeaderMap, Bytes)> {
    conn.ready().await.context("connection not ready")?;
    let response = conn
        .send_request(request)
        .await
        .context("sending the request")?;
    let status = response.status();
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .context("reading the response body")?
        .to_bytes();
    Ok((status, parts.headers, body))
}

/// `HTTP 401: <the page's error message, or the start of the body>`.
pub(super) fn describe(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    // The admin pages say what went wrong in their `role="alert"` paragraph.
    let alert = text
        .find("role=\"alert\">")
        .and_then(|i| text.get(i + "role=\"alert\">".len()..))
        .and_then(|rest| rest.get(..rest.find('<')?));
    let shown: String = alert
        .unwrap_or(&text)
        .chars()
        .take(ERROR_BODY_CHARS)
        .collect();
    format!("HTTP {status}: {}", shown.trim())
}

/// A duration in whole microseconds.
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_form_token_and_cookie_are_found() {
        let body = br#"<form><input type="hidden" name="csrf" value="abc_DEF-1"><input name="username"></form>"#;
        assert_eq!(csrf_field(body).unwrap(), "abc_DEF-1");
        let mut h = HeaderMap::new();
        h.append(SET_COOKIE, HeaderValue::from_static("other=1; Path=/"));
        h.append(
            SET_COOKIE,
            HeaderValue::from_static(
                "pc_login_csrf=tok123; Path=/admin/login; HttpOnly; SameSite=Strict",
            ),
        );
        assert_eq!(login_cookie(&h).unwrap(), "tok123");
        assert_eq!(form_encode("a b&c=d"), "a%20b%26c%3Dd");
    }
}
