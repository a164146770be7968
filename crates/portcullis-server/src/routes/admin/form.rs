//! Admin form bodies: URL-encoded, at most 64 KiB, multi-valued fields allowed
//! (checkboxes), and the CSRF check done before anything else is read.

use crate::extract::admin_session::AdminSession;
use crate::middleware::csrf;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Largest admin form.
const MAX: usize = 64 * 1024;

/// A parsed form with its request headers (for the origin check).
#[derive(Debug, Default)]
pub struct AdminForm {
    fields: Vec<(String, String)>,
    headers: HeaderMap,
}

impl AdminForm {
    /// First value of `name`, trimmed; empty counts as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }
    /// First value or "".
    pub fn text(&self, name: &str) -> String {
        self.get(name).unwrap_or_default().to_owned()
    }
    /// Every non-empty value of `name`.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.fields
            .iter()
            .filter(|(k, v)| k == name && !v.trim().is_empty())
            .map(|(_, v)| v.trim().to_owned())
            .collect()
    }
    /// The CSRF check for a signed-in session.
    pub fn check_csrf(&self, session: &AdminSession) -> Result<(), Response> {
        csrf::check(&self.headers, &session.csrf, self.get("csrf"))
    }
    /// The CSRF check against an expected token (the sign-in cookie).
    pub fn check_csrf_token(&self, expected: &str) -> Result<(), Response> {
        csrf::check(&self.headers, expected, self.get("csrf"))
    }
}

impl<S: Send + Sync> FromRequest<S> for AdminForm {
    type Rejection = Response;

    async fn from_request(req: Request, _: &S) -> Result<Self, Response> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if !is_form {
            return Err((StatusCode::UNSUPPORTED_MEDIA_TYPE, "expected a form").into_response());
        }
        let headers = req.headers().clone();
        let body = axum::body::to_bytes(req.into_body(), MAX)
            .await
            .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "form too large").into_response())?;
        let fields = form_urlencoded::parse(&body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        Ok(Self { fields, headers })
    }
}
