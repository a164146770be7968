//! `POST /oauth/revoke` (RFC 7009). The client authenticates and may revoke only
//! its own tokens. A refresh token revokes its whole family (access tokens
//! included); an access token revokes itself alone. Unknown, invalid or foreign
//! tokens get the same `200` and nothing happens (RFC 7009 §2.2), so the endpoint
//! tells nobody whether a token exists.

use crate::error::{OAuthResponseError, no_store};
use crate::extract::client_addr::ClientAddr;
use crate::extract::client_auth::authenticate_client;
use crate::extract::form::OAuthForm;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use portcullis_store::Actor;

/// The revocation endpoint.
pub async fn revoke(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<Response, OAuthResponseError> {
    let client = authenticate_client(&state, &headers, &form, peer).await?;
    let token = form.require("token")?;
    let me = &client.auth.client.id;
    let actor = Actor {
        kind: "client",
        id: Some(me.to_string()),
        source: Some(peer.to_string()),
    };
    let revoker = state.tokens.revoker();
    // The hint only orders the search (RFC 7009 §2.1); both kinds are tried.
    let jwt_like = token.split('.').count() == 3;
    if jwt_like {
        if let Ok(claims) = state.tokens.verify(token)
            && claims.client_id == me.as_str()
        {
            revoker
                .access_token(
                    &claims.jti,
                    claims.exp,
                    me.as_str(),
                    claims.label.as_deref(),
                    &actor,
                )
                .await?;
        }
    } else if token.len() <= 512
        && let Some((found, _)) = state.tokens.find_refresh(token).await?
        && found.family.client_id == me.as_str()
    {
        revoker
            .family(&found.family.id, Some(me), &actor, "revoked")
            .await?;
    }
    let mut resp = StatusCode::OK.into_response();
    no_store(&mut resp);
    Ok(resp)
}
