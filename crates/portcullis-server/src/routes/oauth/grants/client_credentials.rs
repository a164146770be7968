//! The client credentials grant (RFC 6749 §4.4) with a `label` naming the data
//! access point. Unlike §4.4.3's advice, a refresh token is issued too (the seed
//! asks for one per care home), unless the client was created without them.

use crate::error::OAuthResponseError;
use crate::extract::form::OAuthForm;
use crate::service::tokens::{Grant, Issued};
use crate::state::AppState;
use portcullis_core::grant::granted_scopes;
use portcullis_core::{Client, GrantType, Label, OAuthError, ScopeSet};
use portcullis_store::Actor;

/// Issues a token set for `client`.
pub async fn grant(
    state: &AppState,
    client: &Client,
    form: &OAuthForm,
    actor: Actor,
) -> Result<Issued, OAuthResponseError> {
    let requested = form
        .get("scope")
        .map(ScopeSet::parse)
        .transpose()
        .map_err(|e| OAuthError::invalid_scope(e.to_string()))?;
    let scopes = granted_scopes(requested.as_ref(), &client.scopes)?;
    let label = form
        .get("label")
        .map(Label::parse)
        .transpose()
        .map_err(|e| OAuthError::invalid_request(e.to_string()))?;
    // A client disabled between authentication and the grant's commit is
    // `invalid_client` (SPEC §8; see `From<IssueError>`).
    let issued = state
        .tokens
        .issue(Grant {
            client,
            scopes,
            label,
            subject: client.id.to_string(),
            grant_type: GrantType::ClientCredentials,
            actor,
        })
        .await?;
    Ok(issued)
}
