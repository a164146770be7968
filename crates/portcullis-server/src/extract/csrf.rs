//! CSRF protection for admin forms: every form carries the session's token (or, at
//! sign-in, a double-submit cookie), compared in constant time; and a request whose
//! `Origin` (or, failing that, `Referer`) names another origin is refused, whatever
//! it carries. A refusal is 403 and changes nothing.

#![allow(clippy::result_large_err)]

use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

/// 403 for a form that fails the checks.
pub fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "403 Forbidden: this form was not sent from this site's page (missing or wrong CSRF token). Go back, reload the page and try again.",
    )
        .into_response()
}

fn origin_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?;
    let host_end = rest.1.find('/').map_or(url.len(), |i| rest.0.len() + 3 + i);
    url.get(..host_end)
}

/// Whether `Origin`/`Referer`, when present, is this server (its `Host`).
pub fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    // Under `Referrer-Policy: no-referrer` browsers send `Origin: null` even for our
    // own forms; that says nothing, so the token (and SameSite=Strict) decide.
    let claimed = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .filter(|o| *o != "null")
        .map(str::to_owned)
        .or_else(|| {
            headers
                .get(header::REFERER)
                .and_then(|v| v.to_str().ok())
                .and_then(origin_of)
                .map(str::to_owned)
        });
    match (claimed, host) {
        (None, _) => true,
        (Some(o), Some(h)) => o == format!("http://{h}") || o == format!("https://{h}"),
        (Some(_), None) => false,
    }
}

/// Checks a form's token against the expected one, and the origin.
pub fn check(headers: &HeaderMap, expected: &str, presented: Option<&str>) -> Result<(), Response> {
    let ok_token = presented.is_some_and(|p| {
        !expected.is_empty() && bool::from(p.as_bytes().ct_eq(expected.as_bytes()))
    });
    if ok_token && same_origin(headers) {
        Ok(())
    } else {
        Err(forbidden())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn other_origins_and_missing_tokens_are_refused() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(check(&h, "t", Some("t")).is_ok());
        assert!(check(&h, "t", None).is_err());
        assert!(check(&h, "t", Some("u")).is_err());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(check(&h, "t", Some("t")).is_ok());
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(check(&h, "t", Some("t")).is_err());
    }
}
