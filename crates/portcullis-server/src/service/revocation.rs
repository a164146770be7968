//! Revocation, shared by `/oauth/revoke`, the CLI and client disable/delete.
//!
//! Each revocation is durable (a `revocations` row and, for families, `revoked_at`)
//! with its audit event in the same transaction before it is acknowledged, then
//! applied to this node's denylist at once.

use crate::service::denylist::Denylist;
use portcullis_core::{AuditKind, Client, ClientId, Clock, Ttl};
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

    /// An audit event of `kind` by `actor` now; the store fills in the target (and,
    /// for families, the client and label) when it records the revocation.
    fn event(
        &self,
        kind: AuditKind,
        actor: &Actor,
        target: Option<&str>,
        client: Option<&str>,
        label: Option<&str>,
    ) -> NewAuditEvent {
        NewAuditEvent {
            at: self.clock.now(),
            kind,
            actor: actor.clone(),
            target: target.map(str::to_owned),
            client_id: client.map(str::to_owned),
            label: label.map(str::to_owned),
            detail: None,
        }
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
        let kind = if reason == "reuse" {
            AuditKind::TokenReuseDetected
        } else {
            AuditKind::TokenRevoke
        };
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
                &self.event(kind, actor, None, None, None),
            )
            .await?;
        for id in &ids {
            self.denylist.add_family(id, until);
            crate::metrics::revoked("family");
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
                &self.event(AuditKind::TokenRevoke, actor, None, None, None),
            )
            .await?;
        for id in &ids {
            self.denylist.add_family(id, until);
            crate::metrics::revoked("label");
        }
        Ok(ids)
    }

    /// Disables a client: the status, the revocation of every token it holds and
    /// the audit event commit together; then this node's denylist has it at once.
    pub async fn disable_client(&self, client: &Client, actor: &Actor) -> StoreResult<()> {
        self.end_client(client, actor, AuditKind::ClientDisable)
            .await
    }

    /// Deletes a client and everything it owns; the revocation of its tokens
    /// outlives it (for other nodes), committed with the deletion and its audit event.
    pub async fn delete_client(&self, client: &Client, actor: &Actor) -> StoreResult<()> {
        self.end_client(client, actor, AuditKind::ClientDelete)
            .await
    }

    /// Disables (`ClientDisable`) or deletes a client, revoking all it holds.
    async fn end_client(&self, client: &Client, actor: &Actor, kind: AuditKind) -> StoreResult<()> {
        let now = self.clock.now();
        let until = self.deny_until(Some(client));
        let id = client.id.as_str();
        let event = self.event(kind, actor, Some(id), Some(id), None);
        if kind == AuditKind::ClientDisable {
            self.store
                .disable_client(&client.id, now, until, &event)
                .await?;
        } else {
            self.store
                .delete_client(&client.id, now, until, &event)
                .await?;
        }
        self.denylist.add_client(id, now, until);
        crate::metrics::revoked("client");
        Ok(())
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
            .revoke_access_token(
                jti,
                self.clock.now(),
                exp,
                &self.event(
                    AuditKind::TokenRevoke,
                    actor,
                    Some(jti),
                    Some(client),
                    label,
                ),
            )
            .await?;
        self.denylist.add_token(jti, exp);
        crate::metrics::revoked("access_token");
        Ok(())
    }
}
