//! Revocation, shared by `/oauth/revoke`, the CLI and client disable/delete.
//!
//! Each revocation is durable (a `revocations` row and, for families, `revoked_at`)
//! before it is acknowledged, applied to this node's denylist at once, and audited.

use crate::service::denylist::Denylist;
use portcullis_core::{Client, ClientId, Clock, Ttl};
use portcullis_store::{Actor, DynStore, NewAuditEvent, RevokeScope, StoreResult};

/// What revoking needs.
#[derive(Clone, Copy)]
pub struct Revoker<'a> {
    /// Persistence.
    pub store: &'a DynStore,
    /// This node's denylist.
    pub denylist: &'a Denylist,
    /// Time.
    pub clock: &'a dyn Clock,
    /// The server's access token lifetime (revocations last at least this long).
    pub default_access_ttl: Ttl,
}

impl Revoker<'_> {
    /// Until when a revocation must be remembered: every access token it covers
    /// was issued before now and lives at most the client's access token lifetime.
    fn deny_until(&self, client: Option<&Client>) -> i64 {
        let ttl = client
            .and_then(|c| c.access_token_ttl)
            .map_or(self.default_access_ttl, |t| t.max(self.default_access_ttl));
        self.clock
            .now()
            .saturating_add(ttl.secs_i64())
            .saturating_add(1)
    }

    async fn audit(
        &self,
        kind: &str,
        actor: &Actor,
        target: &str,
        client: Option<&str>,
        label: Option<&str>,
        detail: Option<String>,
    ) -> StoreResult<()> {
        self.store
            .append_audit(&NewAuditEvent {
                at: self.clock.now(),
                kind: kind.into(),
                actor: actor.clone(),
                target: Some(target.into()),
                client_id: client.map(str::to_owned),
                label: label.map(str::to_owned),
                detail,
            })
            .await
    }

    /// Revokes one family (refresh tokens and access tokens); with `owner`, only if
    /// the family is that client's. Returns whether anything was revoked now.
    pub async fn family(
        &self,
        family_id: &str,
        owner: Option<&ClientId>,
        actor: &Actor,
        reason: &str,
    ) -> StoreResult<bool> {
        let Some(fam) = self.store.get_family(family_id).await? else {
            return Ok(false);
        };
        let client = match ClientId::parse(&fam.client_id) {
            Ok(id) => self.store.get_client(&id).await?,
            Err(_) => None,
        };
        let until = self.deny_until(client.as_ref());
        let ids = self
            .store
            .revoke_families(
                RevokeScope::Family {
                    id: family_id,
                    client: owner,
                },
                self.clock.now(),
                reason,
                until,
            )
            .await?;
        for id in &ids {
            self.denylist.add_family(id, until);
            crate::metrics::revoked("family");
            let kind = if reason == "reuse" {
                "token.reuse_detected"
            } else {
                "token.revoke"
            };
            self.audit(
                kind,
                actor,
                id,
                Some(&fam.client_id),
                fam.label.as_deref(),
                None,
            )
            .await?;
        }
        Ok(!ids.is_empty())
    }

    /// Revokes every live family of a client, or of one of its labels.
    pub async fn label(
        &self,
        client: &Client,
        label: Option<&str>,
        actor: &Actor,
    ) -> StoreResult<Vec<String>> {
        let until = self.deny_until(Some(client));
        let ids = self
            .store
            .revoke_families(
                RevokeScope::Client {
                    client: &client.id,
                    label,
                },
                self.clock.now(),
                "admin",
                until,
            )
            .await?;
        for id in &ids {
            self.denylist.add_family(id, until);
            crate::metrics::revoked("label");
            self.audit(
                "token.revoke",
                actor,
                id,
                Some(client.id.as_str()),
                label,
                None,
            )
            .await?;
        }
        Ok(ids)
    }

    /// Revokes every token a client holds (disable, delete).
    pub async fn client(&self, client: &Client, actor: &Actor, kind: &str) -> StoreResult<()> {
        let now = self.clock.now();
        let until = self.deny_until(Some(client));
        self.store.revoke_client(&client.id, now, until).await?;
        self.denylist.add_client(client.id.as_str(), now, until);
        crate::metrics::revoked("client");
        self.audit(
            kind,
            actor,
            client.id.as_str(),
            Some(client.id.as_str()),
            None,
            None,
        )
        .await
    }

    /// Revokes one access token until it expires.
    pub async fn access_token(
        &self,
        jti: &str,
        exp: i64,
        client: &str,
        label: Option<&str>,
        actor: &Actor,
    ) -> StoreResult<()> {
        self.store
            .revoke_access_token(jti, self.clock.now(), exp)
            .await?;
        self.denylist.add_token(jti, exp);
        crate::metrics::revoked("access_token");
        self.audit("token.revoke", actor, jti, Some(client), label, None)
            .await
    }
}
