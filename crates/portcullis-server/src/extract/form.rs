//! The form-encoded body of `/oauth/*` requests (RFC 6749 §3.2, §4.4.2).
//!
//! - `Content-Type` must be `application/x-www-form-urlencoded`;
//! - the body is at most 64 KiB (413 otherwise);
//! - a parameter sent twice is `invalid_request` (RFC 6749 §3.1);
//! - a parameter sent without a value is treated as omitted (RFC 6749 §3.1).

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
        for (k, v) in form_urlencoded::parse(body) {
            if params.insert(k.to_string(), v.into_owned()).is_some() {
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
