//! The refresh token grant (RFC 6749 §6): rotation (the presented token is spent
//! and replaced in one conditional write, so of concurrent refreshes one wins) and
//! reuse detection (RFC 9700 §4.14.2, [`TokenService::spent_token_presented`]).

use super::{RefreshError, TokenResponse, TokenService};
use crate::service::denylist::Denylist;
use portcullis_core::grant::granted_scopes;
use portcullis_core::{AuditKind, Client, GrantType, OAuthError, ScopeSet};
use portcullis_crypto::{CryptoError, HashedToken, PlainToken, TokenKind};
use portcullis_store::{
    Actor, NewAuditEvent, NewRefresh, RefreshKey, RefreshLookup, Rotation, SpendRefresh, StoreError,
};
use std::sync::Arc;

impl TokenService {
    /// The stored refresh token a presented one names, if its hash matches (in
    /// constant time). A token issued before selectors existed is found by its
    /// hash, however the engine kept such tokens.
    pub async fn find_refresh(
        &self,
        presented: &str,
    ) -> Result<Option<(RefreshLookup, HashedToken)>, StoreError> {
        let hash = self.hasher.hash(TokenKind::RefreshToken, presented);
        let found = self.find_by_key(&refresh_key(presented, &hash)).await?;
        Ok(found
            .filter(|f| hash.ct_eq(&HashedToken(f.token_hash)))
            .map(|f| (f, hash)))
    }

    /// The stored refresh token a key names (its hash not compared yet).
    async fn find_by_key(&self, key: &RefreshKey) -> Result<Option<RefreshLookup>, StoreError> {
        match key {
            RefreshKey::Selector(selector) => self.store.find_refresh_token(selector).await,
            RefreshKey::Hash(hash) => self.store.find_refresh_token_by_hash(hash).await,
        }
    }

    /// The refresh token grant (RFC 6749 §6) with rotation and reuse detection
    /// (RFC 9700 §4.14.2): the presented token is spent and replaced atomically; a
    /// spent token presented again revokes its family, unless it is a retry of the
    /// rotation just made within the client's grace, which gets the same answer.
    ///
    /// Without a grace (the default) the grant is one write: the store finds the
    /// token, `Presented::judge` checks it and the store spends it, all in one
    /// group commit; the access token is signed while that commits and sent once
    /// it is durable. With a
    /// grace the answer is sealed into that write, so it is signed first, from a
    /// read of the token, and the write then spends it only if it is still unspent.
    pub async fn refresh(
        &self,
        client: &Client,
        presented: &str,
        requested: Option<&ScopeSet>,
        actor: Actor,
    ) -> Result<TokenResponse, RefreshError> {
        let now = self.clock.now();
        let hash = self.hasher.hash(TokenKind::RefreshToken, presented);
        // Shared with the judge that the store runs: built once per request.
        let checks = Arc::new(Presented {
            client_id: client.id.to_string(),
            client_scopes: client.scopes.clone(),
            hash,
            requested: requested.cloned(),
            now,
        });
        let key = refresh_key(presented, &hash);
        for _attempt in 0..2 {
            let answer = if client.refresh_reuse_grace.secs() > 0 {
                self.refresh_sealed(client, &checks, &key, &actor).await?
            } else {
                self.refresh_in_one_write(client, &checks, &key, &actor)
                    .await?
            };
            match answer {
                Attempt::Rotated(response) => {
                    let alg = self.keys.get().current.alg().as_str();
                    crate::metrics::token_issued(GrantType::RefreshToken.as_str(), alg);
                    crate::metrics::refreshed();
                    return Ok(response);
                }
                Attempt::Refused(found) => match checks.judge(&found, &self.denylist) {
                    Err(Refusal::Protocol(e)) => return Err(RefreshError::Protocol(e)),
                    Err(Refusal::Spent(spent_at)) => {
                        return self
                            .spent_token_presented(client, &found, &hash, spent_at, now, &actor)
                            .await;
                    }
                    // The write's own conditions refused it: spent or revoked
                    // (on another node) between a read and the write, or the
                    // client is no longer active. Look again, which answers as
                    // a retry within grace, or as reuse.
                    Ok(_) => {}
                },
                Attempt::NotFound => break,
            }
        }
        Err(invalid_grant("the refresh token is invalid"))
    }

    /// A refresh without a grace: found, judged and spent in one write of the
    /// store's. The access token is signed as soon as the write has judged the
    /// token, while the write commits (as a client credentials grant signs before
    /// its write), and sent only once the write has committed what was judged.
    async fn refresh_in_one_write(
        &self,
        client: &Client,
        checks: &Arc<Presented>,
        key: &RefreshKey,
        actor: &Actor,
    ) -> Result<Attempt, RefreshError> {
        let next = self.successor(client, checks.now, actor)?;
        // While the key has presigned ES256 or EdDSA halves ready, a signature costs about
        // two microseconds: signing after the commit is cheaper than the task's
        // wake-up that overlapping it costs (refresh +5%, `docs/BENCHMARKS.md`).
        // Without the overlap there is no channel (its allocation and wake-up
        // cost more than nothing) and the request only waits for the spend.
        let (judged_tx, judged) = if self.keys.get().current.signs_at_once() {
            (None, None)
        } else {
            let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
            (Some(tx), Some(rx))
        };
        let judge = {
            let (checks, denylist) = (Arc::clone(checks), Arc::clone(&self.denylist));
            let successor = next.stored;
            Box::new(move |found: &RefreshLookup| {
                let scopes = checks.judge(found, &denylist).ok()?;
                if let Some(judged_tx) = &judged_tx {
                    let _ = judged_tx.send(Claimed::of(found, scopes.clone()));
                }
                Some(successor.rotation(found, &checks, scopes))
            })
        };
        let spend = self.store.spend_refresh_token(SpendRefresh {
            key: key.clone(),
            client_id: checks.client_id.clone(),
            judge,
        });
        let mut signed: Option<(Claimed, TokenResponse)> = None;
        let spent = match judged {
            None => spend.await?,
            Some(mut judged) => {
                tokio::pin!(spend);
                loop {
                    tokio::select! {
                        spent = &mut spend => break spent?,
                        Some(claimed) = judged.recv(), if signed.is_none() => {
                            let response =
                                self.answer(client, &claimed, &next.token, checks.now)?;
                            signed = Some((claimed, response));
                        }
                    }
                }
            }
        };
        let Some(found) = spent.found else {
            return Ok(Attempt::NotFound);
        };
        let Some(scopes) = spent.rotated else {
            return Ok(Attempt::Refused(Box::new(found)));
        };
        let claimed = Claimed::of(&found, scopes);
        let response = match signed_for(signed, &claimed) {
            Some(response) => response,
            None => self.answer(client, &claimed, &next.token, checks.now)?,
        };
        Ok(Attempt::Rotated(response))
    }

    /// A refresh with a grace: the answer, sealed, is stored with the spend, so it
    /// is signed from a read of the token before the write.
    async fn refresh_sealed(
        &self,
        client: &Client,
        checks: &Presented,
        key: &RefreshKey,
        actor: &Actor,
    ) -> Result<Attempt, RefreshError> {
        let announced = self.store.announce_grant();
        let Some(found) = self.find_by_key(key).await? else {
            return Ok(Attempt::NotFound);
        };
        let Ok(scopes) = checks.judge(&found, &self.denylist) else {
            return Ok(Attempt::Refused(Box::new(found)));
        };
        let mut next = self.successor(client, checks.now, actor)?;
        let claimed = Claimed::of(&found, scopes.clone());
        let response = self.answer(client, &claimed, &next.token, checks.now)?;
        let json = serde_json::to_vec(&response).map_err(|e| CryptoError::Key(e.to_string()))?;
        next.stored.grace_response = Some(self.master.encrypt(&json, checks.hash.0.as_slice())?);
        drop(announced);
        let rotated = self
            .store
            .rotate_refresh_token(next.stored.rotation(&found, checks, scopes))
            .await?;
        Ok(if rotated {
            Attempt::Rotated(response)
        } else {
            Attempt::Refused(Box::new(found))
        })
    }

    /// The successor of a refresh token about to be spent: the new token and what
    /// is stored of it.
    fn successor(
        &self,
        client: &Client,
        now: i64,
        actor: &Actor,
    ) -> Result<NewSuccessor, CryptoError> {
        let (token, new) = self.new_refresh_token(self.refresh_expiry(client, now))?;
        Ok(NewSuccessor {
            token,
            stored: Successor {
                new,
                family_expires_at: self.family_expiry(client, now),
                grace_response: None,
                actor: actor.clone(),
            },
        })
    }

    /// When a family refreshed now has its last token expire: its new refresh
    /// token or its new access token, whichever lives longer.
    fn family_expiry(&self, client: &Client, now: i64) -> i64 {
        self.refresh_expiry(client, now)
            .max(self.access_expiry(client, now))
    }

    /// The token endpoint's answer to a rotation: a new access token for the
    /// family, and its new refresh token.
    fn answer(
        &self,
        client: &Client,
        claimed: &Claimed,
        refresh: &PlainToken,
        now: i64,
    ) -> Result<TokenResponse, CryptoError> {
        let (access_token, access_ttl) = self.sign_access(
            client,
            &claimed.family_id,
            &claimed.subject,
            &claimed.scopes,
            claimed.label.clone(),
            now,
        )?;
        Ok(TokenResponse {
            access_token,
            token_type: "Bearer".into(),
            expires_in: access_ttl.secs(),
            refresh_token: Some(refresh.expose().to_owned()),
            scope: claimed.scopes.to_string(),
        })
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

/// The key of a presented refresh token: its selector, or for a token issued
/// before selectors, its hash.
fn refresh_key(presented: &str, hash: &HashedToken) -> RefreshKey {
    match PlainToken::selector(TokenKind::RefreshToken, presented) {
        Some(selector) => RefreshKey::Selector(selector.to_owned()),
        None => RefreshKey::Hash(hash.0),
    }
}

fn invalid_grant(why: &str) -> RefreshError {
    RefreshError::Protocol(OAuthError::invalid_grant(why))
}

/// One try at a refresh.
enum Attempt {
    /// Spent and replaced: the answer.
    Rotated(TokenResponse),
    /// Found but not spent by this try; judged again for the error to give.
    Refused(Box<RefreshLookup>),
    /// No token has this key.
    NotFound,
}

/// Why a refresh token found is not spent.
enum Refusal {
    /// A protocol error for the client.
    Protocol(OAuthError),
    /// Spent before, at this time: a retry within grace, or reuse.
    Spent(i64),
}

/// A presented refresh token and what it is checked against: the rules of the
/// refresh grant, in one place for both ways a refresh is written.
struct Presented {
    client_id: String,
    client_scopes: ScopeSet,
    hash: HashedToken,
    requested: Option<ScopeSet>,
    now: i64,
}

impl Presented {
    /// Whether the token found may be spent, and the successor's scopes.
    fn judge(&self, found: &RefreshLookup, denylist: &Denylist) -> Result<ScopeSet, Refusal> {
        let refuse = |why: &str| Refusal::Protocol(OAuthError::invalid_grant(why));
        let family = &found.family;
        // Compared in constant time: the selector found the row, the hash proves
        // the token. Another client's token: refused, and nothing is spent or
        // revoked.
        if !self.hash.ct_eq(&HashedToken(found.token_hash)) || family.client_id != self.client_id {
            return Err(refuse("the refresh token is invalid"));
        }
        if family.revoked_at.is_some() || denylist.family_revoked(&family.id) {
            return Err(refuse("the refresh token has been revoked"));
        }
        if found.expires_at <= self.now {
            return Err(refuse("the refresh token has expired"));
        }
        if let Some(spent_at) = found.spent_at {
            return Err(Refusal::Spent(spent_at));
        }
        // RFC 6749 §6: the new scope may narrow, never widen, the original grant;
        // scopes the client has lost since, or its user has taken back from the
        // grant (the family's scopes), are dropped.
        let original: ScopeSet = found
            .scopes
            .iter()
            .filter(|s| self.client_scopes.contains(s) && family.scopes.contains(s))
            .cloned()
            .collect();
        let scopes =
            granted_scopes(self.requested.as_ref(), &original).map_err(Refusal::Protocol)?;
        if scopes.is_empty() {
            return Err(Refusal::Protocol(OAuthError::invalid_scope(
                "the client is no longer allowed any of this grant's scopes",
            )));
        }
        Ok(scopes)
    }
}

/// What a rotation's access token is signed for: its family and scopes.
#[derive(Debug, PartialEq, Eq)]
struct Claimed {
    family_id: String,
    subject: String,
    label: Option<String>,
    scopes: ScopeSet,
}

impl Claimed {
    fn of(found: &RefreshLookup, scopes: ScopeSet) -> Self {
        Self {
            family_id: found.family.id.clone(),
            subject: found.family.subject.clone(),
            label: found.family.label.clone(),
            scopes,
        }
    }
}

/// The answer signed while the write committed, if it was signed for what
/// committed: a group commit that fails is retried job by job, and its judge may
/// then decide otherwise than it did first.
fn signed_for(
    signed: Option<(Claimed, TokenResponse)>,
    committed: &Claimed,
) -> Option<TokenResponse> {
    signed.and_then(|(claimed, response)| (claimed == *committed).then_some(response))
}

/// A new refresh token, and what its rotation stores.
struct NewSuccessor {
    token: PlainToken,
    stored: Successor,
}

/// What a rotation stores besides the token it spends, known before that token
/// is read.
struct Successor {
    new: NewRefresh,
    family_expires_at: i64,
    grace_response: Option<Vec<u8>>,
    actor: Actor,
}

impl Successor {
    /// The rotation that spends `found` for this successor.
    fn rotation(&self, found: &RefreshLookup, checks: &Presented, scopes: ScopeSet) -> Rotation {
        let family = &found.family;
        Rotation {
            old_id: found.id.clone(),
            old_hash: checks.hash.0,
            family_id: family.id.clone(),
            client_id: checks.client_id.clone(),
            now: checks.now,
            new: self.new.clone(),
            scopes,
            family_expires_at: self.family_expires_at,
            grace_response: self.grace_response.clone(),
            audit: NewAuditEvent {
                at: checks.now,
                kind: AuditKind::TokenRefresh,
                actor: self.actor.clone(),
                target: Some(family.id.clone()),
                client_id: Some(checks.client_id.clone()),
                label: family.label.clone(),
                detail: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use portcullis_store::FamilyRecord;

    fn scopes(s: &str) -> ScopeSet {
        ScopeSet::parse(s).unwrap()
    }

    fn presented(requested: Option<&str>) -> Presented {
        Presented {
            client_id: "pc_a".into(),
            client_scopes: scopes("upload-data view-indicator"),
            hash: HashedToken([1; 32]),
            requested: requested.map(scopes),
            now: 1000,
        }
    }

    /// An unspent token of `pc_a`'s family `fam_1`, live until 2000.
    fn found() -> RefreshLookup {
        RefreshLookup {
            id: "rt_1".into(),
            token_hash: [1; 32],
            family: FamilyRecord {
                id: "fam_1".into(),
                client_id: "pc_a".into(),
                label: Some("home".into()),
                subject: "pc_a".into(),
                scopes: scopes("upload-data view-indicator"),
                grant_type: "client_credentials".into(),
                created_at: 900,
                last_used_at: None,
                expires_at: 2000,
                revoked_at: None,
            },
            scopes: scopes("upload-data view-indicator"),
            expires_at: 2000,
            spent_at: None,
            grace_response: None,
            successor_unused: false,
        }
    }

    fn refused(r: Result<ScopeSet, Refusal>) -> String {
        match r {
            Err(Refusal::Protocol(e)) => format!("{:?}: {}", e.code, e.description),
            Err(Refusal::Spent(at)) => format!("spent at {at}"),
            Ok(s) => format!("granted {s}"),
        }
    }

    #[test]
    fn an_unspent_live_token_of_the_client_is_granted_its_scopes_narrowed_on_request() {
        let none = Denylist::default();
        assert_eq!(
            refused(presented(None).judge(&found(), &none)),
            "granted upload-data view-indicator"
        );
        assert_eq!(
            refused(presented(Some("upload-data")).judge(&found(), &none)),
            "granted upload-data"
        );
    }

    #[test]
    fn each_rule_refuses_with_its_own_answer() {
        let none = Denylist::default();
        let judge = |f: RefreshLookup| refused(presented(None).judge(&f, &none));
        let forged = RefreshLookup {
            token_hash: [2; 32],
            ..found()
        };
        assert_eq!(judge(forged), "InvalidGrant: the refresh token is invalid");
        let mut foreign = found();
        foreign.family.client_id = "pc_b".into();
        assert_eq!(judge(foreign), "InvalidGrant: the refresh token is invalid");
        let mut revoked = found();
        revoked.family.revoked_at = Some(950);
        assert_eq!(
            judge(revoked),
            "InvalidGrant: the refresh token has been revoked"
        );
        let expired = RefreshLookup {
            expires_at: 1000,
            ..found()
        };
        assert_eq!(
            judge(expired),
            "InvalidGrant: the refresh token has expired"
        );
        let spent = RefreshLookup {
            spent_at: Some(990),
            ..found()
        };
        assert_eq!(judge(spent), "spent at 990");
    }

    #[test]
    fn a_family_revoked_on_this_node_is_refused_before_the_store_knows() {
        let denylist = Denylist::default();
        denylist.add_family("fam_1", 5000);
        assert_eq!(
            refused(presented(None).judge(&found(), &denylist)),
            "InvalidGrant: the refresh token has been revoked"
        );
    }

    #[test]
    fn an_answer_signed_early_is_used_only_for_what_committed() {
        let response = |token: &str| TokenResponse {
            access_token: token.into(),
            token_type: "Bearer".into(),
            expires_in: 60,
            refresh_token: Some("pcr_x".into()),
            scope: "upload-data".into(),
        };
        let judged = Claimed::of(&found(), scopes("upload-data"));
        let same = Claimed::of(&found(), scopes("upload-data"));
        let narrower = Claimed::of(&found(), scopes("view-indicator"));
        assert_eq!(
            signed_for(Some((judged, response("early"))), &same).map(|r| r.access_token),
            Some("early".into())
        );
        let judged = Claimed::of(&found(), scopes("upload-data"));
        assert!(signed_for(Some((judged, response("early"))), &narrower).is_none());
        assert!(signed_for(None, &same).is_none());
    }

    #[test]
    fn scopes_never_widen_and_lost_scopes_are_dropped() {
        let none = Denylist::default();
        let widen = presented(Some("upload-data admin"));
        assert!(
            refused(widen.judge(&found(), &none)).starts_with("InvalidScope"),
            "a scope beyond the grant is refused"
        );
        // The client lost view-indicator, the user took upload-data back from the
        // family: nothing is left.
        let mut lost = presented(None);
        lost.client_scopes = scopes("upload-data");
        let mut taken = found();
        taken.family.scopes = scopes("view-indicator");
        assert_eq!(
            refused(lost.judge(&taken, &none)),
            "InvalidScope: the client is no longer allowed any of this grant's scopes"
        );
    }
}
