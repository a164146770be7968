//! Issuing and verifying access tokens, shared by the token endpoint, the bearer
//! extractor and `portcullis token issue`.
//!
//! An access token is a JWT verified by signature alone: issuing one writes nothing
//! per access token. What is written (group-committed) is the grant's family and its
//! refresh token hash, so that refresh, listing and revocation have something to act on.

use crate::keyring::Keyring;
use crate::service::denylist::Denylist;
use crate::service::revocation::Revoker;
use crate::service::verified_cache::VerifiedCache;
use portcullis_core::grant::granted_scopes;
use portcullis_core::{AccessClaims, Audience, Client, Clock, GrantType, Label, ScopeSet, Ttl};
use portcullis_core::{AuditKind, OAuthError};
use portcullis_crypto::keys::verify_jws;
use portcullis_crypto::{
    CryptoError, HashedToken, JwsError, MasterKey, PlainToken, TokenHasher, TokenKind,
    ordered_id_now,
};
use portcullis_store::{
    Actor, DynStore, NewAuditEvent, NewGrant, NewRefresh, RefreshLookup, Rotation, StoreError,
};
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

    /// Signs an access token and, if the client takes them, a refresh token, and
    /// durably records the new family before returning.
    pub async fn issue(&self, grant: Grant<'_>) -> Result<Issued, IssueError> {
        let now = self.clock.now();
        let client = grant.client;
        let family_id = ordered_id_now("fam_")?;
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
            let rexp = now.saturating_add(self.refresh_ttl_for(client).secs_i64());
            Some(self.new_refresh_token(rexp)?)
        } else {
            None
        };
        let family_expires = refresh.as_ref().map_or(exp, |(_, r)| r.expires_at.max(exp));
        let recorded = self
            .store
            .record_grant(NewGrant {
                family_id: family_id.clone(),
                client_id: client.id.to_string(),
                label: grant.label.map(|l| l.to_string()),
                subject: grant.subject,
                scopes: grant.scopes.clone(),
                grant_type: grant.grant_type.as_str().into(),
                created_at: now,
                expires_at: family_expires,
                refresh_token: refresh.as_ref().map(|(_, r)| r.clone()),
                actor: grant.actor,
            })
            .await?;
        if !recorded {
            return Err(IssueError::ClientInactive);
        }
        let alg = self.keys.get().current.alg().as_str();
        crate::metrics::token_issued(grant.grant_type.as_str(), alg);
        Ok(Issued {
            family_id,
            response: TokenResponse {
                access_token,
                token_type: "Bearer".into(),
                expires_in: access_ttl.secs(),
                refresh_token: refresh.map(|(t, _)| t.expose().to_owned()),
                scope,
            },
        })
    }

    /// A new refresh token and what is stored of it: its selector and hash.
    fn new_refresh_token(&self, expires_at: i64) -> Result<(PlainToken, NewRefresh), CryptoError> {
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

    /// The stored refresh token a presented one names, if its hash matches (in
    /// constant time). A token issued before selectors existed is found by its
    /// hash, however the engine kept such tokens.
    pub async fn find_refresh(
        &self,
        presented: &str,
    ) -> Result<Option<(RefreshLookup, HashedToken)>, StoreError> {
        let hash = self.hasher.hash(TokenKind::RefreshToken, presented);
        let found = match PlainToken::selector(TokenKind::RefreshToken, presented) {
            Some(selector) => self.store.find_refresh_token(selector).await?,
            None => self.store.find_refresh_token_by_hash(&hash.0).await?,
        };
        Ok(found
            .filter(|f| hash.ct_eq(&HashedToken(f.token_hash)))
            .map(|f| (f, hash)))
    }

    /// Verifies an access token: signature with the algorithm pinned to the key,
    /// `iss`, `aud`, `exp` and `nbf` (no leeway: we are the clock that issued it).
    pub fn verify(&self, token: &str) -> Result<VerifiedClaims, TokenRejection> {
        let generation = self.keys.generation();
        let digest = portcullis_crypto::sha256(token.as_bytes());
        let claims = match self.verified.get(&digest, generation) {
            Some(c) => c,
            None => {
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
                self.verified
                    .put(digest, &claims, generation, self.clock.now());
                claims
            }
        };
        let now = self.clock.now();
        if claims.exp <= now {
            return Err(TokenRejection::Expired);
        }
        if claims.nbf > now {
            return Err(TokenRejection::NotYetValid);
        }
        if let Some(why) = self.denylist.revoked(&claims) {
            return Err(TokenRejection::Revoked(why));
        }
        Ok(claims)
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

    /// The refresh token grant (RFC 6749 §6) with rotation and reuse detection
    /// (RFC 9700 §4.14.2): the presented token is spent and replaced atomically; a
    /// spent token presented again revokes its family, unless it is a retry of the
    /// rotation just made within the client's grace, which gets the same answer.
    pub async fn refresh(
        &self,
        client: &Client,
        presented: &str,
        requested: Option<&ScopeSet>,
        actor: Actor,
    ) -> Result<TokenResponse, RefreshError> {
        let now = self.clock.now();
        let invalid = |why: &str| RefreshError::Protocol(OAuthError::invalid_grant(why));
        for _attempt in 0..2 {
            let Some((found, hash)) = self.find_refresh(presented).await? else {
                return Err(invalid("the refresh token is invalid"));
            };
            let family = &found.family;
            // Another client's token: refused, and nothing is spent or revoked.
            if family.client_id != client.id.as_str() {
                return Err(invalid("the refresh token is invalid"));
            }
            if family.revoked_at.is_some() || self.denylist.family_revoked(&family.id) {
                return Err(invalid("the refresh token has been revoked"));
            }
            if found.expires_at <= now {
                return Err(invalid("the refresh token has expired"));
            }
            if let Some(spent_at) = found.spent_at {
                // A retry after a lost answer gets that answer again, but only while
                // nobody has used the token it carried: once the successor is used,
                // the token presented now is in a thief's hands or the client's
                // state is broken, and either way it is reuse.
                let grace = client.refresh_reuse_grace.secs_i64();
                if grace > 0
                    && now - spent_at <= grace
                    && found.successor_unused
                    && let Some(sealed) = &found.grace_response
                {
                    let plain = self.master.decrypt(sealed, hash.0.as_slice())?;
                    let resp: TokenResponse = serde_json::from_slice(&plain)
                        .map_err(|e| CryptoError::Key(e.to_string()))?;
                    return Ok(resp);
                }
                let revoked = self
                    .revoker()
                    .family(&family.id, Some(&client.id), &actor, "reuse")
                    .await?;
                if revoked {
                    crate::metrics::reuse_detected();
                    tracing::warn!(family = %family.id, client = %client.id,
                        "refresh token reuse detected; family revoked");
                }
                return Err(invalid(
                    "the refresh token was already used; its grant is revoked",
                ));
            }

            // RFC 6749 §6: the new scope may narrow, never widen, the original grant;
            // scopes the client has lost since are dropped.
            let original: ScopeSet = found
                .scopes
                .iter()
                .filter(|s| client.scopes.contains(s))
                .cloned()
                .collect();
            let scopes = granted_scopes(requested, &original)?;
            if scopes.is_empty() {
                return Err(RefreshError::Protocol(OAuthError::invalid_scope(
                    "the client is no longer allowed any of this grant's scopes",
                )));
            }
            let access_ttl = self.access_ttl_for(client);
            let exp = now.saturating_add(access_ttl.secs_i64());
            let jti_rand: [u8; 9] = portcullis_crypto::random_bytes()?;
            let claims = AccessClaims {
                iss: self.issuer.clone(),
                sub: family.subject.clone(),
                aud: Audience::One(self.audience.clone()),
                client_id: client.id.to_string(),
                jti: format!("{}.{}", family.id, portcullis_crypto::b64::encode(jti_rand)),
                iat: now,
                nbf: now,
                exp,
                scope: scopes.to_string(),
                scopes: scopes.to_vec(),
                label: family.label.clone(),
            };
            let access_token = self.keys.get().current.sign_jwt(&claims)?;
            let rexp = now.saturating_add(self.refresh_ttl_for(client).secs_i64());
            let (new_refresh, new) = self.new_refresh_token(rexp)?;
            let response = TokenResponse {
                access_token,
                token_type: "Bearer".into(),
                expires_in: access_ttl.secs(),
                refresh_token: Some(new_refresh.expose().to_owned()),
                scope: scopes.to_string(),
            };
            let grace_response = if client.refresh_reuse_grace.secs() > 0 {
                let json =
                    serde_json::to_vec(&response).map_err(|e| CryptoError::Key(e.to_string()))?;
                Some(self.master.encrypt(&json, hash.0.as_slice())?)
            } else {
                None
            };
            let rotated = self
                .store
                .rotate_refresh_token(Rotation {
                    old_id: found.id.clone(),
                    old_hash: hash.0,
                    family_id: family.id.clone(),
                    client_id: client.id.to_string(),
                    now,
                    new,
                    scopes: scopes.clone(),
                    family_expires_at: rexp.max(exp),
                    grace_response,
                    audit: NewAuditEvent {
                        at: now,
                        kind: AuditKind::TokenRefresh,
                        actor: actor.clone(),
                        target: Some(family.id.clone()),
                        client_id: Some(client.id.to_string()),
                        label: family.label.clone(),
                        detail: None,
                    },
                })
                .await?;
            if rotated {
                let alg = self.keys.get().current.alg().as_str();
                crate::metrics::token_issued(GrantType::RefreshToken.as_str(), alg);
                crate::metrics::refreshed();
                return Ok(response);
            }
            // Spent (or revoked) between our read and our write: look again, which
            // answers as a retry within grace, or as reuse.
        }
        Err(invalid("the refresh token is invalid"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::keyring::create_signing_key;
    use portcullis_core::FixedClock;
    use portcullis_crypto::Algorithm;
    use portcullis_store::SqliteStore;

    async fn service(dir: &std::path::Path, clock: Arc<FixedClock>) -> TokenService {
        let store: DynStore = Arc::new(SqliteStore::open(&dir.join("t.db")).await.unwrap());
        store.migrate().await.unwrap();
        let master = Arc::new(MasterKey::from_bytes(&[7; 32]).unwrap());
        create_signing_key(&store, &master, Algorithm::ES256, 0, 60)
            .await
            .unwrap();
        let keys = Keyring::load(&store, &master, 0).await.unwrap();
        TokenService {
            store,
            keys: Arc::new(keys),
            hasher: master.token_hasher(),
            issuer: "https://iss".into(),
            audience: "https://aud".into(),
            access_ttl: Ttl::from_secs(60).unwrap(),
            refresh_ttl: Ttl::from_secs(600).unwrap(),
            clock,
            denylist: Arc::new(Denylist::default()),
            verified: VerifiedCache::default(),
            master,
        }
    }

    fn claims(iat: i64, nbf: i64, exp: i64) -> AccessClaims {
        AccessClaims {
            iss: "https://iss".into(),
            sub: "pc_x".into(),
            aud: Audience::Many(vec!["other".into(), "https://aud".into()]),
            client_id: "pc_x".into(),
            jti: "fam_x.1".into(),
            iat,
            nbf,
            exp,
            scope: "upload-data".into(),
            scopes: vec!["upload-data".into()],
            label: None,
        }
    }

    #[tokio::test]
    async fn time_claims_are_checked_without_leeway_against_the_clock() {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(FixedClock::new(1000));
        let svc = service(dir.path(), clock.clone()).await;
        let sign = |c: &AccessClaims| svc.keys.get().current.sign_jwt(c).unwrap();
        assert!(svc.verify(&sign(&claims(1000, 1000, 1060))).is_ok());
        assert_eq!(
            svc.verify(&sign(&claims(1000, 1001, 1060))).err(),
            Some(TokenRejection::NotYetValid)
        );
        assert_eq!(
            svc.verify(&sign(&claims(900, 900, 1000))).err(),
            Some(TokenRejection::Expired)
        );
        let t = sign(&claims(1000, 1000, 1060));
        clock.advance(59);
        assert!(svc.verify(&t).is_ok());
        clock.advance(1);
        assert_eq!(svc.verify(&t).err(), Some(TokenRejection::Expired));
    }

    #[tokio::test]
    async fn issuer_audience_and_denylist_are_enforced() {
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path(), Arc::new(FixedClock::new(1000))).await;
        let sign = |c: &AccessClaims| svc.keys.get().current.sign_jwt(c).unwrap();
        let mut c = claims(1000, 1000, 1060);
        c.iss = "https://evil".into();
        assert_eq!(svc.verify(&sign(&c)).err(), Some(TokenRejection::Issuer));
        let mut c = claims(1000, 1000, 1060);
        c.aud = Audience::One("https://elsewhere".into());
        assert_eq!(svc.verify(&sign(&c)).err(), Some(TokenRejection::Audience));
        svc.denylist.add_family("fam_x", 2000);
        assert!(matches!(
            svc.verify(&sign(&claims(1000, 1000, 1060))).err(),
            Some(TokenRejection::Revoked(_))
        ));
    }

    #[tokio::test]
    async fn a_refresh_token_from_before_selectors_still_refreshes_once() {
        use portcullis_core::{ClientId, ClientStatus, ScopeName};
        let dir = tempfile::tempdir().unwrap();
        let svc = service(dir.path(), Arc::new(FixedClock::new(1000))).await;
        let client = Client {
            id: ClientId::parse("pc_old").unwrap(),
            name: "old".into(),
            scopes: [ScopeName::parse("upload-data").unwrap()]
                .into_iter()
                .collect(),
            grant_types: vec![GrantType::ClientCredentials, GrantType::RefreshToken],
            redirect_uris: vec![],
            status: ClientStatus::Active,
            created_at: 0,
            access_token_ttl: None,
            refresh_token_ttl: None,
            issue_refresh_token: true,
            refresh_reuse_grace: Ttl::from_secs_allow_zero(0).unwrap(),
        };
        svc.store
            .create_client(
                &client,
                &[9; 32],
                &NewAuditEvent::new(0, AuditKind::ClientCreate, Actor::system()),
            )
            .await
            .unwrap();
        // A token of the old shape (`pcr_` + 256 bits, no selector), stored as
        // migration 5 leaves such rows: keyed by `h` + the hex of its HMAC.
        let old = PlainToken::generate(TokenKind::RefreshToken).unwrap();
        assert_eq!(
            PlainToken::selector(TokenKind::RefreshToken, old.expose()),
            None
        );
        let hash = svc.hasher.hash(TokenKind::RefreshToken, old.expose());
        let id = portcullis_store::sqlite::legacy_refresh_id(&hash.0);
        assert_eq!(id.len(), 65);
        assert_eq!(id, id.to_ascii_uppercase().replacen('H', "h", 1));
        svc.store
            .record_grant(NewGrant {
                family_id: "fam_old".into(),
                client_id: "pc_old".into(),
                label: None,
                subject: "pc_old".into(),
                scopes: ScopeSet::parse("upload-data").unwrap(),
                grant_type: "client_credentials".into(),
                created_at: 900,
                expires_at: 5000,
                refresh_token: Some(NewRefresh {
                    id,
                    hash: hash.0,
                    expires_at: 5000,
                }),
                actor: Actor::system(),
            })
            .await
            .unwrap();
        let (found, _) = svc.find_refresh(old.expose()).await.unwrap().unwrap();
        assert_eq!(found.family.id, "fam_old");
        // A forged token naming the same row by selector-less shape finds nothing.
        assert!(svc.find_refresh("pcr_forged").await.unwrap().is_none());
        let next = svc
            .refresh(&client, old.expose(), None, Actor::system())
            .await
            .unwrap();
        let new = next.refresh_token.unwrap();
        assert!(PlainToken::selector(TokenKind::RefreshToken, &new).is_some());
        assert!(
            svc.refresh(&client, &new, None, Actor::system())
                .await
                .is_ok()
        );
        // The old one is spent: presenting it again is reuse.
        assert!(
            svc.refresh(&client, old.expose(), None, Actor::system())
                .await
                .is_err()
        );
    }
}
