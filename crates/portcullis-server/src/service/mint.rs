//! Minting a token set for a client by an administrator (admin pages, admin API and
//! `portcullis token issue`): the label and scope rules live here, once.

use crate::service::tokens::{Grant, IssueError, Issued, TokenService};
use portcullis_core::grant::granted_scopes;
use portcullis_core::{Client, ClientStatus, GrantType, Label, ScopeSet};
use portcullis_store::Actor;

/// Why a mint was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// The label is malformed.
    #[error("label: {0}")]
    Label(String),
    /// The client is disabled.
    #[error("the client is disabled")]
    Disabled,
    /// The scopes are malformed or not the client's.
    #[error("scopes: {0}")]
    Scopes(String),
    /// Signing or storage failed.
    #[error(transparent)]
    Fault(#[from] crate::error::Fault),
}

/// Issues a token set (`client_credentials`, subject the client) for `label`, with
/// `requested` scopes (space separated; `None`: all of the client's scopes).
pub async fn mint(
    tokens: &TokenService,
    client: &Client,
    label: Option<&str>,
    requested: Option<&str>,
    actor: Actor,
) -> Result<Issued, MintError> {
    let label = label
        .map(Label::parse)
        .transpose()
        .map_err(|e| MintError::Label(e.to_string()))?;
    if client.status != ClientStatus::Active {
        return Err(MintError::Disabled);
    }
    let requested = requested
        .map(ScopeSet::parse)
        .transpose()
        .map_err(|e| MintError::Scopes(e.to_string()))?;
    let scopes = granted_scopes(requested.as_ref(), &client.scopes)
        .map_err(|e| MintError::Scopes(e.description))?;
    tokens
        .issue(Grant {
            client,
            scopes,
            label,
            subject: client.id.to_string(),
            grant_type: GrantType::ClientCredentials,
            actor,
        })
        .await
        .map_err(|e| match e {
            IssueError::ClientInactive => MintError::Disabled,
            other => MintError::Fault(other.into()),
        })
}
