//! Issuing and verifying access tokens, shared by the token endpoint, the bearer
//! extractor and `portcullis token issue`. Each rule has its file:
//! - [`issue`]: a grant (client credentials, an admin mint) signs an access token
//!   and a refresh token and records the family;
//! - [`verify`]: an access token is checked by signature, issuer, audience, time
//!   and the denylist;
//! - [`refresh`]: a refresh token is spent and replaced (rotation), and a spent one
//!   presented again is reuse (`spent_token_presented`), which revokes its family;
//! - [`code`]: an authorization code is exchanged once (client, redirect URI and
//!   PKCE checked), and one presented again (`code_presented_again`) revokes the
//!   tokens its first use yielded.
//!
//! The claims of an access token are built in one place,
//! [`TokenService::sign_access`].
//!
//! An access token is a JWT verified by signature alone: issuing one writes nothing
//! per access token. What is written (group-committed) is the grant's family and its
//! refresh token hash, so that refresh, listing and revocation have something to act on.

mod code;
mod issue;
mod refresh;
#[cfg(test)]
mod tests;
mod verify;

use crate::keyring::Keyring;
use crate::service::denylist::Denylist;
use crate::service::revocation::Revoker;
use crate::service::verified_cache::VerifiedCache;
pub use code::CodeExchange;
use portcullis_core::OAuthError;
use portcullis_core::{AccessClaims, Client, Clock, GrantType, IssuedClaims, Label, ScopeSet, Ttl};
use portcullis_crypto::{
    CryptoError, JwsError, MasterKey, PlainToken, TokenHasher, TokenKind, ordered_id_now,
};
use portcullis_store::{Actor, DynStore, NewRefresh, StoreError};
use serde::Serialize;
use std::sync::Arc;

/// What issuing needs.
pub struct TokenService {
    /// Persistence.
    pub store: DynStore,
    /// Signing and verifying keys.
    pub keys: Arc<Keyring>,
    /// Hashes refresh tokens (and secrets).
    pub hasher: TokenHasher,
    /// `iss`.
    pub issuer: String,
    /// `aud`.
    pub audience: String,
    /// Server default access token lifetime.
    pub access_ttl: Ttl,
    /// Server default refresh token lifetime.
    pub refresh_ttl: Ttl,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// Revoked families, tokens and clients.
    pub denylist: Arc<Denylist>,
    /// Tokens whose signature was already checked.
    pub verified: VerifiedCache,
    /// Seals the answers kept for refresh retries within grace.
    pub master: Arc<MasterKey>,
}

/// A grant to turn into tokens.
#[derive(Debug)]
pub struct Grant<'a> {
    /// The client.
    pub client: &'a Client,
    /// Already checked against the client's scopes.
    pub scopes: ScopeSet,
    /// The data access point.
    pub label: Option<Label>,
    /// `sub`: the client id, or an end user's id.
    pub subject: String,
    /// How it was obtained.
    pub grant_type: GrantType,
    /// Who asked (audit).
    pub actor: Actor,
}

/// The token endpoint's success body (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct TokenResponse {
    /// The JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Present unless the client was created with `--no-refresh-token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// Granted scopes, space separated.
    pub scope: String,
}

/// Tokens just issued, with the family they belong to.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The family id.
    pub family_id: String,
    /// The response to send.
    pub response: TokenResponse,
}

/// Why issuing failed (all internal: the request was already validated).
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// Signing or randomness failed.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The grant could not be recorded.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The client was disabled or deleted before the grant committed; nothing was
    /// recorded and the tokens signed are thrown away.
    #[error("the client is disabled")]
    ClientInactive,
}

/// A verified access token's claims.
pub type VerifiedClaims = AccessClaims;

/// Why an access token was refused; each maps to RFC 6750 `invalid_token`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenRejection {
    /// Signature-level failure.
    #[error("{0}")]
    Jws(#[from] JwsError),
    /// Payload is not our claims.
    #[error("the token's claims are malformed")]
    Claims,
    /// Another issuer.
    #[error("the token was issued by another server")]
    Issuer,
    /// Another audience.
    #[error("the token is not meant for this resource server")]
    Audience,
    /// `exp` passed.
    #[error("the token has expired")]
    Expired,
    /// `nbf` in the future.
    #[error("the token is not valid yet")]
    NotYetValid,
    /// Revoked (its family, itself, or its client's tokens).
    #[error("{0}")]
    Revoked(&'static str),
}

/// Why a refresh was refused.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// A protocol error for the client.
    #[error(transparent)]
    Protocol(#[from] OAuthError),
    /// Something broke.
    #[error(transparent)]
    Issue(#[from] IssueError),
}

impl From<StoreError> for RefreshError {
    fn from(e: StoreError) -> Self {
        Self::Issue(IssueError::Store(e))
    }
}

impl From<CryptoError> for RefreshError {
    fn from(e: CryptoError) -> Self {
        Self::Issue(IssueError::Crypto(e))
    }
}

impl TokenService {
    /// Lifetime of access tokens for `client`.
    pub fn access_ttl_for(&self, client: &Client) -> Ttl {
        client.access_token_ttl.unwrap_or(self.access_ttl)
    }
    /// Lifetime of refresh tokens for `client`.
    pub fn refresh_ttl_for(&self, client: &Client) -> Ttl {
        client.refresh_token_ttl.unwrap_or(self.refresh_ttl)
    }
    /// When an access token for `client` signed at `now` expires (its `exp`).
    pub(crate) fn access_expiry(&self, client: &Client, now: i64) -> i64 {
        now.saturating_add(self.access_ttl_for(client).secs_i64())
    }
    /// When a refresh token for `client` issued at `now` expires.
    pub(crate) fn refresh_expiry(&self, client: &Client, now: i64) -> i64 {
        now.saturating_add(self.refresh_ttl_for(client).secs_i64())
    }

    /// Signs an access token for a family: the one place its claims are built
    /// (grants and refreshes alike). Returns the token and its lifetime; its `exp`
    /// is [`Self::access_expiry`].
    pub(crate) fn sign_access(
        &self,
        client: &Client,
        family_id: &str,
        subject: &str,
        scopes: &ScopeSet,
        label: Option<String>,
        now: i64,
    ) -> Result<(String, Ttl), CryptoError> {
        let exp = self.access_expiry(client, now);
        let jti_rand: [u8; 9] = portcullis_crypto::random_bytes()?;
        // A family whose grant was narrowed this very second has its tokens until
        // then revoked by `iat`: a token refreshed into the narrower grant in that
        // same second is stamped just after it (valid at once: `nbf` is now).
        let iat = self.denylist.issue_time(family_id, now);
        let mut jti = String::with_capacity(family_id.len() + 13);
        jti.push_str(family_id);
        jti.push('.');
        portcullis_crypto::b64::encode_into(jti_rand, &mut jti);
        let claims = IssuedClaims {
            iss: &self.issuer,
            sub: subject,
            aud: &self.audience,
            client_id: client.id.as_str(),
            jti: &jti,
            iat,
            nbf: now,
            exp,
            scopes,
            label: label.as_deref(),
        };
        let token = self.keys.get().current.sign_jwt(&claims)?;
        Ok((token, self.access_ttl_for(client)))
    }

    /// A new refresh token and what is stored of it: its selector and hash.
    pub(crate) fn new_refresh_token(
        &self,
        expires_at: i64,
    ) -> Result<(PlainToken, NewRefresh), CryptoError> {
        let id = ordered_id_now("")?;
        let token = PlainToken::generate_with_selector(TokenKind::RefreshToken, &id)?;
        let hash = self.hasher.hash(TokenKind::RefreshToken, token.expose());
        Ok((
            token,
            NewRefresh {
                id,
                hash: hash.0,
                expires_at,
            },
        ))
    }

    /// A revoker over this service's store and denylist.
    pub fn revoker(&self) -> Revoker<'_> {
        Revoker {
            store: &self.store,
            denylist: &self.denylist,
            clock: self.clock.as_ref(),
            default_access_ttl: self.access_ttl,
        }
    }
}
