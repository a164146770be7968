//! Who may call the admin JSON API (`/admin/api/v1/…`): either a signed-in admin
//! (the `pc_admin` session cookie; unsafe methods must also carry the session's
//! CSRF token in `X-CSRF-Token` and come from this origin), or a bearer access token
//! carrying the `admin` scope. Refusals are JSON: 401 without credentials or with a
//! bad token, 403 without the scope or with a bad CSRF token.

use crate::error::ApiError;
use crate::extract::csrf;
use crate::extract::{admin_session, bearer};
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_store::Actor;

/// Header carrying the session's CSRF token on unsafe requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The scope a bearer token needs.
pub const ADMIN_SCOPE: &str = "admin";

/// An authenticated caller of the admin API.
#[derive(Debug, Clone)]
pub struct AdminCaller {
    /// Who to record in the audit log: the admin user, or the bearer's client.
    pub actor: Actor,
}

fn unauthenticated() -> Response {
    let mut r = ApiError::refused(
        StatusCode::UNAUTHORIZED,
        "invalid_token",
        "send an admin session cookie or Authorization: Bearer <token>",
    )
    .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"portcullis\""),
    );
    r
}

fn bad_csrf() -> Response {
    ApiError::refused(
        StatusCode::FORBIDDEN,
        "forbidden",
        "missing or wrong X-CSRF-Token, or a request from another origin",
    )
    .into_response()
}

impl FromRequestParts<AppState> for AdminCaller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let session = admin_session::current(&parts.headers, state)
            .await
            .map_err(|f| ApiError::Fault(f).into_response())?;
        if let Some(session) = session {
            if !parts.method.is_safe() {
                let presented = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
                csrf::check(&parts.headers, &session.csrf, presented).map_err(|_| bad_csrf())?;
            }
            return Ok(Self {
                actor: Actor {
                    kind: "admin",
                    id: Some(session.user),
                    source: None,
                },
            });
        }
        if !bearer::attempted(parts) {
            return Err(unauthenticated());
        }
        let caller = bearer::authenticate(parts, state)
            .await
            .map_err(IntoResponse::into_response)?;
        caller
            .require_scope(ADMIN_SCOPE)
            .map_err(IntoResponse::into_response)?;
        Ok(Self {
            actor: Actor {
                kind: "client",
                id: Some(caller.claims.client_id.clone()),
                source: None,
            },
        })
    }
}
