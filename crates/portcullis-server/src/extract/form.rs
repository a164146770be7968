//! The form-encoded body of `/oauth/*` requests (RFC 6749 §3.2, §4.4.2).
//!
//! - `Content-Type` must be `application/x-www-form-urlencoded`;
//! - the body is at most 64 KiB (413 otherwise);
//! - a parameter sent twice is `invalid_request` (RFC 6749 §3.1);
//! - a parameter sent without a value is treated as omitted (RFC 6749 §3.1);
//! - a name or value that is not UTF-8, raw or once percent-decoded, is
//!   `invalid_request` (never replaced by U+FFFD: what is checked must be what
//!   was sent).

use crate::error::OAuthResponseError;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use portcullis_core::OAuthError;
use std::collections::HashMap;

/// Body limit of SPEC §9.
pub const MAX_BODY: usize = 64 * 1024;

/// Parsed form parameters.
#[derive(Debug, Default)]
pub struct OAuthForm {
    params: HashMap<String, String>,
}

impl OAuthForm {
    /// Parses a body.
    pub fn parse(body: &[u8]) -> Result<Self, OAuthError> {
        let mut params = HashMap::new();
        for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (k, v) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let k = decode(k).ok_or_else(|| {
                OAuthError::invalid_request("a parameter name is not valid UTF-8")
            })?;
            let v = decode(v).ok_or_else(|| {
                OAuthError::invalid_request(format!(
                    "parameter {} is not valid UTF-8",
                    k.chars().take(40).collect::<String>()
                ))
            })?;
            if params.insert(k.clone(), v).is_some() {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {} is repeated",
                    k.chars().take(40).collect::<String>()
                )));
            }
        }
        Ok(Self { params })
    }

    /// A parameter's value; empty values count as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// A required parameter.
    pub fn require(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("missing parameter {name}")))
    }
}

/// Every `name=value` pair of a form body, decoded; `None` if a name or value is
/// not UTF-8.
pub fn pairs(body: &[u8]) -> Option<Vec<(String, String)>> {
    body.split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            Some((decode(k)?, decode(v)?))
        })
        .collect()
}

/// `application/x-www-form-urlencoded` decoding of one name or value (`+` is a
/// space, `%XX` a byte; a `%` not followed by two hex digits stands for itself),
/// then UTF-8: `None` if the bytes are not UTF-8.
fn decode(raw: &[u8]) -> Option<String> {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => match (
                raw.get(i + 1).copied().and_then(hex),
                raw.get(i + 2).copied().and_then(hex),
            ) {
                (Some(h), Some(l)) => {
                    out.push(h << 4 | l);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            _ => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

impl<S: Send + Sync> FromRequest<S> for OAuthForm {
    type Rejection = OAuthResponseError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let form_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|m| {
                m.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form_type {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            )
            .into());
        }
        let declared_too_large = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .is_some_and(|n| n > MAX_BODY);
        if declared_too_large {
            return Err(OAuthResponseError::TooLarge);
        }
        let body = axum::body::to_bytes(req.into_body(), MAX_BODY)
            .await
            .map_err(|_| OAuthResponseError::TooLarge)?;
        Ok(Self::parse(&body)?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn names_and_values_are_decoded() {
        let f =
            OAuthForm::parse(b"grant_type=client_credentials&label=home+1%2Fa&scope=&x").unwrap();
        assert_eq!(f.get("grant_type"), Some("client_credentials"));
        assert_eq!(f.get("label"), Some("home 1/a"));
        assert_eq!(f.get("scope"), None);
        assert_eq!(f.get("x"), None);
        assert_eq!(
            OAuthForm::parse(b"a=%zz%4").unwrap().get("a"),
            Some("%zz%4")
        );
        assert_eq!(
            OAuthForm::parse("a=caf%C3%A9".as_bytes()).unwrap().get("a"),
            Some("café")
        );
    }

    #[test]
    fn a_repeated_parameter_is_refused_by_its_first_repeat_in_short_and_long_forms() {
        for body in [
            "grant_type=a&scope=x&grant_type=b&scope=y".to_owned(),
            format!(
                "{}&grant_type=a&scope=x&grant_type=b&scope=y",
                (0..40)
                    .map(|i| format!("p{i}=v"))
                    .collect::<Vec<_>>()
                    .join("&")
            ),
        ] {
            let err = OAuthForm::parse(body.as_bytes()).unwrap_err();
            assert_eq!(err.code, portcullis_core::OAuthErrorCode::InvalidRequest);
            assert_eq!(err.description, "parameter grant_type is repeated");
        }
        // Forty distinct names and a repeat of none: parsed.
        let many = (0..40).map(|i| format!("p{i}=v{i}")).collect::<Vec<_>>();
        let f = OAuthForm::parse(many.join("&").as_bytes()).unwrap();
        assert_eq!(f.get("p39"), Some("v39"));
    }

    #[test]
    fn invalid_utf8_raw_or_percent_encoded_is_refused() {
        for body in [&b"label=%FF"[..], b"label=\xff", b"%C3=x", b"label=%C3%28"] {
            let err = OAuthForm::parse(body).unwrap_err();
            assert_eq!(
                err.code,
                portcullis_core::OAuthErrorCode::InvalidRequest,
                "{body:?}"
            );
        }
    }
}
