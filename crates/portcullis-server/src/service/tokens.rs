//! Issuing and verifying access tokens, shared by the token endpoint, the bearer
//! extractor and `portcullis token issue`.
//!
//! An access token is a JWT verified by signature alone: issuing one writes nothing
//! per access token. What is written (group-committed) is the grant's family and its
//! refresh token hash, so that refresh, listing and revocation have something to act on.

use crate::keyring::Keyring;
use portcullis_core::{AccessClaims, Audience, Client, Clock, GrantType, Label, ScopeSet, Ttl};
use portcullis_crypto::keys::verify_jws;
use portcullis_crypto::{CryptoError, JwsError, PlainToken, TokenHasher, TokenKind, random_id};
use portcullis_store::{DynStore, NewGrant, StoreError};
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
}

/// The token endpoint's success body (RFC 6749 §5.1).
#[derive(Debug, Clone, Serialize)]
pub struct TokenResponse {
    /// The JWT.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
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

    /// Signs an access token and, if the client takes them, a refresh token, and
    /// durably records the new family before returning.
    pub async fn issue(&self, grant: Grant<'_>) -> Result<Issued, IssueError> {
        let now = self.clock.now();
        let client = grant.client;
        let family_id = random_id("fam_")?;
        let access_ttl = self.access_ttl_for(client);
        let exp = now.saturating_add(access_ttl.secs_i64());
        let scope = grant.scopes.to_string();
        let jti_rand: [u8; 9] = portcullis_crypto::random_bytes()?;
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            sub: grant.subject.clone(),
            aud: Audience::One(self.audience.clone()),
            client_id: client.id.to_string(),
            jti: format!("{family_id}.{}", portcullis_crypto::b64::encode(jti_rand)),
            iat: now,
            nbf: now,
            exp,
            scope: scope.clone(),
            scopes: grant.scopes.to_vec(),
            label: grant.label.as_ref().map(|l| l.to_string()),
        };
        let access_token = self.keys.get().current.sign_jwt(&claims)?;

        let refresh = if client.issue_refresh_token {
            let token = PlainToken::generate(TokenKind::RefreshToken)?;
            let hash = self.hasher.hash(TokenKind::RefreshToken, token.expose());
            let rexp = now.saturating_add(self.refresh_ttl_for(client).secs_i64());
            Some((token, hash, rexp))
        } else {
            None
        };
        let family_expires = refresh
            .as_ref()
            .map_or(exp, |(_, _, rexp)| (*rexp).max(exp));
        self.store
            .record_grant(NewGrant {
                family_id: family_id.clone(),
                client_id: client.id.to_string(),
                label: grant.label.map(|l| l.to_string()),
                subject: grant.subject,
                scopes: scope.clone(),
                grant_type: grant.grant_type.as_str().into(),
                created_at: now,
                expires_at: family_expires,
                refresh_token: refresh.as_ref().map(|(_, h, rexp)| (h.0, *rexp)),
            })
            .await?;
        Ok(Issued {
            family_id,
            response: TokenResponse {
                access_token,
                token_type: "Bearer",
                expires_in: access_ttl.secs(),
                refresh_token: refresh.map(|(t, _, _)| t.expose().to_owned()),
                scope,
            },
        })
    }

    /// Verifies an access token: signature with the algorithm pinned to the key,
    /// `iss`, `aud`, `exp` and `nbf` (no leeway: we are the clock that issued it).
    pub fn verify(&self, token: &str) -> Result<VerifiedClaims, TokenRejection> {
        let keys = self.keys.get();
        let payload = verify_jws(token, |kid| keys.verifiers.get(kid))?;
        let claims: AccessClaims =
            serde_json::from_slice(&payload).map_err(|_| TokenRejection::Claims)?;
        if claims.iss != self.issuer {
            return Err(TokenRejection::Issuer);
        }
        if !claims.aud.contains(&self.audience) {
            return Err(TokenRejection::Audience);
        }
        let now = self.clock.now();
        if claims.exp <= now {
            return Err(TokenRejection::Expired);
        }
        if claims.nbf > now {
            return Err(TokenRejection::NotYetValid);
        }
        Ok(claims)
    }
}
