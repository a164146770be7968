//! Admin form bodies: URL-encoded, at most 64 KiB, multi-valued fields allowed
//! (checkboxes), UTF-8 only, and checked against CSRF by the extractor itself: a
//! handler cannot get an [`AdminForm`] whose `csrf` field did not match the
//! session's token (or, at sign-in, the sign-in cookie's) from a same-origin page,
//! so no handler can forget the check. A refusal is 403 and nothing is read.

use crate::error::PageError;
use crate::extract::admin_session::{cookie, current};
use crate::extract::csrf;
use crate::state::AppState;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The sign-in page's double-submit cookie.
pub const SIGN_IN_CSRF_COOKIE: &str = "pc_login_csrf";

/// Largest admin form.
const MAX: usize = 64 * 1024;

/// A parsed form with its request headers (for the origin check).
#[derive(Debug, Default)]
pub struct PageForm {
    fields: Vec<(String, String)>,
    headers: HeaderMap,
}

impl PageForm {
    /// First value of `name`, trimmed; empty counts as absent.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }
    /// First value of `name` exactly as sent (passwords keep their spaces).
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
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
    /// The request's headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// Reads a form body: URL-encoded, at most 64 KiB, UTF-8.
    pub async fn read(req: Request) -> Result<Self, Response> {
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
        let fields = crate::extract::form::pairs(&body).ok_or_else(|| {
            (StatusCode::BAD_REQUEST, "the form is not valid UTF-8").into_response()
        })?;
        Ok(Self { fields, headers })
    }

    /// Reads a form and checks it against CSRF: its `csrf` field must be the
    /// token of the browser's session (`session`, looked up from the request's
    /// headers) or, on a sign-in form, the value of the double-submit cookie
    /// `sign_in_cookie`; and it must come from this origin. A refusal is 403 (503
    /// when the session cannot be looked up) and nothing is read.
    pub async fn read_checked<F, Fut>(
        req: Request,
        session: F,
        sign_in_cookie: &str,
    ) -> Result<Self, Response>
    where
        F: FnOnce(HeaderMap) -> Fut,
        Fut: std::future::Future<Output = Result<Option<String>, crate::error::Fault>>,
    {
        let form = Self::read(req).await?;
        let session = session(form.headers.clone())
            .await
            .map_err(|f| PageError::Fault(f).into_response())?;
        let sign_in = cookie(form.headers(), sign_in_cookie).map(str::to_owned);
        if !form.csrf_ok(&[session, sign_in]) {
            return Err(csrf::forbidden());
        }
        Ok(form)
    }

    /// Whether the form's `csrf` field is one of `expected` (compared in constant
    /// time) and the request comes from this origin.
    pub fn csrf_ok(&self, expected: &[Option<String>]) -> bool {
        let presented = self.get("csrf");
        expected
            .iter()
            .flatten()
            .any(|e| csrf::check(&self.headers, e, presented).is_ok())
    }
}

/// An admin page's form, checked against CSRF.
#[derive(Debug, Default)]
pub struct AdminForm(PageForm);

impl std::ops::Deref for AdminForm {
    type Target = PageForm;
    fn deref(&self) -> &PageForm {
        &self.0
    }
}

impl FromRequest<AppState> for AdminForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        // The tokens this browser may present: its session's, and at sign-in the
        // sign-in cookie's (sent only to /admin/login).
        let session =
            |headers: HeaderMap| async move { Ok(current(&headers, state).await?.map(|s| s.csrf)) };
        PageForm::read_checked(req, session, SIGN_IN_CSRF_COOKIE)
            .await
            .map(Self)
    }
}
