//! The admin web session extractor: the `pc_admin` cookie → a live session, or a
//! redirect to the sign-in page. The session rules live in
//! [`crate::service::admin_auth`].

use crate::error::{Fault, PageError};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};

pub use crate::service::admin_auth::Session as AdminSession;

/// Name of the session cookie.
pub const COOKIE: &str = "pc_admin";

/// A cookie's value from the `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Looks up the session of a request, if any.
pub async fn current(headers: &HeaderMap, state: &AppState) -> Result<Option<AdminSession>, Fault> {
    match cookie(headers, COOKIE) {
        Some(value) => state.admin_auth.session(value).await,
        None => Ok(None),
    }
}

impl FromRequestParts<AppState> for AdminSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match current(&parts.headers, state).await {
            Ok(Some(s)) => Ok(s),
            Ok(None) => Err(Redirect::to("/admin/login").into_response()),
            Err(f) => Err(PageError::Fault(f).into_response()),
        }
    }
}
