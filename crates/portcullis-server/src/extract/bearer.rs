//! The bearer token extractor every `/api/v1` endpoint shares (RFC 6750).
//!
//! Reads `Authorization: Bearer …` (a token also in the query or the body form is
//! a request sending it twice: 400), refuses tokens over 8 KiB before parsing,
//! verifies the JWT (algorithm pinned to the key, `iss`, `aud`, `exp`, `nbf`), and
//! checks the client still exists and is active.

use crate::error::{ApiError, BearerError};
use crate::service::tokens::VerifiedClaims;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use portcullis_core::{ClientId, ClientStatus};
use portcullis_store::ClientAuth;
use std::sync::Arc;

/// Longest token accepted (SPEC §9).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// The authenticated caller of a resource endpoint.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The verified claims.
    pub claims: VerifiedClaims,
    /// The client the token belongs to.
    pub client: Arc<ClientAuth>,
}

impl Caller {
    /// 403 `insufficient_scope` unless the token carries `scope`.
    pub fn require_scope(&self, scope: &str) -> Result<(), BearerError> {
        if self.claims.scopes.iter().any(|s| s == scope) {
            Ok(())
        } else {
            Err(BearerError::InsufficientScope(scope.into()))
        }
    }
}

fn token_from_parts(parts: &Parts) -> Result<&str, BearerError> {
    let in_query = parts
        .uri
        .query()
        .is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "access_token"));
    let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(BearerError::InvalidRequest(
            "more than one Authorization header".into(),
        ));
    }
    let Some(value) = first else {
        if in_query {
            return Err(BearerError::InvalidRequest(
                "send the token in the Authorization header, not the query".into(),
            ));
        }
        return Err(BearerError::Missing);
    };
    if in_query {
        return Err(BearerError::InvalidRequest(
            "the token was sent both in the header and in the query".into(),
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| BearerError::InvalidToken("malformed Authorization header".into()))?;
    let (scheme, token) = value.split_once(' ').ok_or_else(|| {
        BearerError::InvalidToken("expected Authorization: Bearer <token>".into())
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::InvalidToken(
            "expected the Bearer scheme".into(),
        ));
    }
    let token = token.trim();
    if token.len() > MAX_TOKEN_LEN {
        return Err(BearerError::InvalidToken(
            "the token is larger than 8 KiB".into(),
        ));
    }
    if token.is_empty() {
        return Err(BearerError::InvalidToken("empty bearer token".into()));
    }
    Ok(token)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        authenticate(parts, state).await
    }
}

/// Whether the request tries bearer authentication at all (an `Authorization`
/// header, or `access_token` in the query).
pub fn attempted(parts: &Parts) -> bool {
    parts.headers.contains_key(header::AUTHORIZATION)
        || parts
            .uri
            .query()
            .is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "access_token"))
}

/// Authenticates the request's bearer token: the [`Caller`] extractor, as a function
/// for other extractors (the admin API) to build on.
pub async fn authenticate(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    let token = token_from_parts(parts)?;
    let claims = state.tokens.verify(token).map_err(BearerError::from)?;
    let id = ClientId::parse(&claims.client_id)
        .map_err(|_| BearerError::InvalidToken("the token's client is malformed".into()))?;
    let client =
        state.clients.cached(&id).await?.ok_or_else(|| {
            BearerError::InvalidToken("the token's client no longer exists".into())
        })?;
    if client.client.status != ClientStatus::Active {
        return Err(BearerError::InvalidToken("the token's client is disabled".into()).into());
    }
    if let Some(family) = claims.family_id() {
        state.usage.record(
            family,
            &claims.client_id,
            claims.label.as_deref(),
            state.now(),
        );
    }
    Ok(Caller { claims, client })
}
