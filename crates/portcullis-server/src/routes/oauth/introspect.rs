//! `POST /oauth/introspect` (RFC 7662). The caller authenticates as a client and
//! may introspect its own tokens, or any token when it holds the `introspect`
//! scope. Anything invalid, expired, revoked or foreign is `{"active": false}`,
//! with nothing more said. `token_type_hint` only orders the search.

use crate::error::{OAuthResponseError, no_store};
use crate::extract::client_addr::ClientAddr;
use crate::extract::client_auth::authenticate_client;
use crate::extract::form::OAuthForm;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The introspection endpoint.
pub async fn introspect(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<Response, OAuthResponseError> {
    let client = authenticate_client(&state, &headers, &form, peer).await?;
    let token = form.require("token")?;
    let me = client.auth.client.id.as_str();
    let may_see_all = client.auth.client.scopes.contains_str("introspect");
    let allowed = |owner: &str| owner == me || may_see_all;
    let tokens = &state.tokens;

    let mut answer: Value = json!({"active": false});
    if token.split('.').count() == 3 {
        if let Ok(c) = tokens.verify(token)
            && allowed(&c.client_id)
            && owner_active(&state, &c.client_id).await?
        {
            answer = json!({
                "active": true,
                "scope": c.scope,
                "client_id": c.client_id,
                "sub": c.sub,
                "aud": c.aud,
                "iss": c.iss,
                "exp": c.exp,
                "iat": c.iat,
                "nbf": c.nbf,
                "jti": c.jti,
                "token_type": "Bearer",
                "label": c.label,
            });
        }
    } else if token.len() <= 512 {
        let now = state.now();
        if let Some((found, _)) = tokens.find_refresh(token).await?
            && found.spent_at.is_none()
            && found.expires_at > now
            && found.family.revoked_at.is_none()
            && !tokens.denylist.family_revoked(&found.family.id)
            && allowed(&found.family.client_id)
            && owner_active(&state, &found.family.client_id).await?
        {
            let f = &found.family;
            answer = json!({
                "active": true,
                "scope": found.scopes.to_string(),
                "client_id": f.client_id,
                "sub": f.subject,
                "aud": tokens.issuer,
                "iss": tokens.issuer,
                "exp": found.expires_at,
                "iat": f.created_at,
                "nbf": f.created_at,
                "jti": f.id,
                "token_type": "refresh_token",
                "label": f.label,
            });
        }
    }
    let mut resp = Json(answer).into_response();
    no_store(&mut resp);
    Ok(resp)
}

/// Whether the token's client still exists and is active.
async fn owner_active(state: &AppState, client_id: &str) -> Result<bool, OAuthResponseError> {
    let Ok(id) = portcullis_core::ClientId::parse(client_id) else {
        return Ok(false);
    };
    Ok(state
        .clients
        .cached(&id)
        .await?
        .is_some_and(|c| c.client.status == portcullis_core::ClientStatus::Active))
}
