//! The admin web session extractor: the `pc_admin` cookie → a live session, or a
//! redirect to the sign-in page. Idle sessions expire; activity is recorded at most
//! once a minute, so browsing the admin pages does not write on every request.

use crate::service::admin_auth::{IDLE_SECS, TOUCH_EVERY_SECS, session_hash};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};

/// Name of the session cookie.
pub const COOKIE: &str = "pc_admin";

/// A signed-in admin.
#[derive(Debug, Clone)]
pub struct AdminSession {
    /// User name.
    pub user: String,
    /// CSRF token every form of this session must carry.
    pub csrf: String,
    /// Hash of the cookie (to sign out).
    pub id_hash: [u8; 32],
}

impl AdminSession {
    /// This admin as the actor of audit events.
    pub fn actor(&self) -> portcullis_store::Actor {
        portcullis_store::Actor {
            kind: "admin",
            id: Some(self.user.clone()),
            source: None,
        }
    }
}

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
pub async fn current(parts_headers: &HeaderMap, state: &AppState) -> Option<AdminSession> {
    let value = cookie(parts_headers, COOKIE)?;
    if value.len() > 100 {
        return None;
    }
    let hash = session_hash(&state.tokens.hasher, value);
    let now = state.tokens.clock.now();
    let row = state.store.get_admin_session(&hash, now).await.ok()??;
    if now - row.last_seen_at > IDLE_SECS {
        let _ = state.store.delete_admin_session(&hash).await;
        return None;
    }
    if now - row.last_seen_at >= TOUCH_EVERY_SECS {
        let _ = state.store.touch_admin_session(&hash, now).await;
    }
    Some(AdminSession {
        user: row.user_name,
        csrf: row.csrf_token,
        id_hash: hash,
    })
}

impl FromRequestParts<AppState> for AdminSession {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match current(&parts.headers, state).await {
            Some(s) => Ok(s),
            None => Err(Redirect::to("/admin/login").into_response()),
        }
    }
}
