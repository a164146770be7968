//! The refresh token grant (RFC 6749 §6): rotation on every use, reuse detection,
//! optional narrower `scope`. The rules live in `service::tokens::refresh`.

use crate::error::OAuthResponseError;
use crate::extract::form::OAuthForm;
use crate::service::tokens::TokenResponse;
use crate::state::AppState;
use portcullis_core::{Client, OAuthError, ScopeSet};
use portcullis_store::Actor;

/// Exchanges a refresh token for a new pair.
pub async fn grant(
    state: &AppState,
    client: &Client,
    form: &OAuthForm,
    actor: Actor,
) -> Result<TokenResponse, OAuthResponseError> {
    let presented = form.require("refresh_token")?;
    if presented.len() > 512 {
        return Err(OAuthError::invalid_grant("the refresh token is invalid").into());
    }
    let requested = form
        .get("scope")
        .map(ScopeSet::parse)
        .transpose()
        .map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
    Ok(state
        .tokens
        .refresh(client, presented, requested.as_ref(), actor)
        .await?)
}
