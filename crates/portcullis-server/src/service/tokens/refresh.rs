//! The refresh token grant (RFC 6749 §6): rotation (the presented token is spent
//! and replaced in one conditional write, so of concurrent refreshes one wins) and
//! reuse detection (RFC 9700 §4.14.2, [`TokenService::spent_token_presented`]).

use super::{RefreshError, TokenResponse, TokenService};
use portcullis_core::grant::granted_scopes;
use portcullis_core::{AuditKind, Client, GrantType, OAuthError, ScopeSet};
use portcullis_crypto::{CryptoError, HashedToken, PlainToken, TokenKind};
use portcullis_store::{Actor, NewAuditEvent, RefreshLookup, Rotation, StoreError};

impl TokenService {
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
            let announced = self.store.announce_grant();
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
                return self
                    .spent_token_presented(client, &found, &hash, spent_at, now, &actor)
                    .await;
            }

            // RFC 6749 §6: the new scope may narrow, never widen, the original grant;
            // scopes the client has lost since, or its user has taken back from the
            // grant (the family's scopes), are dropped.
            let original: ScopeSet = found
                .scopes
                .iter()
                .filter(|s| client.scopes.contains(s) && found.family.scopes.contains(s))
                .cloned()
                .collect();
            let scopes = granted_scopes(requested, &original)?;
            if scopes.is_empty() {
                return Err(RefreshError::Protocol(OAuthError::invalid_scope(
                    "the client is no longer allowed any of this grant's scopes",
                )));
            }
            let (access_token, exp, access_ttl) = self.sign_access(
                client,
                &family.id,
                &family.subject,
                &scopes,
                family.label.clone(),
                now,
            )?;
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
            drop(announced);
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

    /// Reuse detection (RFC 9700 §4.14.2): a spent refresh token presented again.
    /// A retry after a lost answer gets that answer again, but only within the
    /// client's grace and only while nobody has used the token it carried: once the
    /// successor is used, the token presented now is in a thief's hands or the
    /// client's state is broken, and either way it is reuse, which revokes the
    /// whole family.
    async fn spent_token_presented(
        &self,
        client: &Client,
        found: &RefreshLookup,
        hash: &HashedToken,
        spent_at: i64,
        now: i64,
        actor: &Actor,
    ) -> Result<TokenResponse, RefreshError> {
        let family = &found.family;
        let grace = client.refresh_reuse_grace.secs_i64();
        if grace > 0
            && now - spent_at <= grace
            && found.successor_unused
            && let Some(sealed) = &found.grace_response
        {
            let plain = self.master.decrypt(sealed, hash.0.as_slice())?;
            let resp: TokenResponse =
                serde_json::from_slice(&plain).map_err(|e| CryptoError::Key(e.to_string()))?;
            return Ok(resp);
        }
        let revoked = self
            .revoker()
            .family(&family.id, Some(&client.id), actor, "reuse")
            .await?;
        if revoked {
            crate::metrics::reuse_detected();
            tracing::warn!(family = %family.id, client = %client.id,
                "refresh token reuse detected; family revoked");
        }
        Err(RefreshError::Protocol(OAuthError::invalid_grant(
            "the refresh token was already used; its grant is revoked",
        )))
    }
}
