//! Clients, their secrets and scopes on PostgreSQL. Every change commits with its
//! audit event and announces itself (`client:<id>`, `scopes`, `revocations`) to
//! the other nodes.

use super::{PgStore, audit, bounded, hash32, notify};
use crate::rows::{ClientColumns, ClientValues};
use crate::sweep::RefreshSweep;
use crate::{ClientAuth, ClientStore, NewAuditEvent, ScopeRecord, StoreError, StoreResult};
use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use portcullis_core::{Client, ClientId, ClientStatus};
use tokio_postgres::Row;

const CLIENT_SELECT: &str = "SELECT c.id, c.name, c.status, c.grant_types, c.redirect_uris, \
     c.access_token_ttl, c.refresh_token_ttl, c.issue_refresh_token, c.refresh_reuse_grace, \
     c.created_at, (SELECT string_agg(scope, ' ' ORDER BY scope) FROM client_scopes s \
     WHERE s.client_id = c.id) AS scopes FROM clients c";

fn client_from_row(row: &Row) -> StoreResult<Client> {
    ClientColumns {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        status: row.try_get("status")?,
        grant_types: row.try_get("grant_types")?,
        redirect_uris: row.try_get("redirect_uris")?,
        access_token_ttl: row.try_get("access_token_ttl")?,
        refresh_token_ttl: row.try_get("refresh_token_ttl")?,
        issue_refresh_token: row.try_get("issue_refresh_token")?,
        refresh_reuse_grace: row.try_get("refresh_reuse_grace")?,
        created_at: row.try_get("created_at")?,
        scopes: row.try_get("scopes")?,
    }
    .into_client()
}

async fn get_client(c: &impl GenericClient, id: &str) -> StoreResult<Option<Client>> {
    let stmt = c
        .prepare_cached(&format!("{CLIENT_SELECT} WHERE c.id = $1"))
        .await?;
    c.query_opt(&stmt, &[&id])
        .await?
        .map(|r| client_from_row(&r))
        .transpose()
}

/// The client's scopes, replacing any it had; an unknown scope is a `Conflict`.
async fn set_scopes(tx: &Transaction<'_>, c: &Client) -> StoreResult<()> {
    tx.execute(
        "DELETE FROM client_scopes WHERE client_id = $1",
        &[&c.id.as_str()],
    )
    .await?;
    let names: Vec<&str> = c.scopes.iter().map(|s| s.as_str()).collect();
    if names.is_empty() {
        return Ok(());
    }
    let known: Vec<String> = tx
        .query("SELECT name FROM scopes WHERE name = ANY($1)", &[&names])
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    if let Some(unknown) = names.iter().find(|n| !known.iter().any(|k| k == *n)) {
        return Err(StoreError::Conflict(format!("unknown scope {unknown}")));
    }
    tx.execute(
        "INSERT INTO client_scopes (client_id, scope) SELECT $1, unnest($2::text[])",
        &[&c.id.as_str(), &names],
    )
    .await?;
    Ok(())
}

/// Takes client `id`'s lock exclusively: waits for every grant or refresh batch
/// that read its status to commit, and keeps new ones waiting until this commits.
async fn lock_client(tx: &Transaction<'_>, id: &str) -> StoreResult<()> {
    tx.execute(
        "SELECT pg_advisory_xact_lock($1::int4, hashtext($2))",
        &[&super::lock::CLIENTS, &id],
    )
    .await?;
    Ok(())
}

async fn set_status(
    tx: &Transaction<'_>,
    id: &str,
    status: ClientStatus,
    now: i64,
) -> StoreResult<()> {
    lock_client(tx, id).await?;
    let n = tx
        .execute(
            "UPDATE clients SET status = $1, updated_at = $2 WHERE id = $3",
            &[&status.as_str(), &now, &id],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("client {id}")));
    }
    Ok(())
}

/// Revokes every token of a client issued up to `now`: its live families, and one
/// revocation that reaches its access tokens on every node.
async fn revoke_all(tx: &Transaction<'_>, id: &str, now: i64, deny_until: i64) -> StoreResult<()> {
    tx.execute(
        "UPDATE token_families SET revoked_at = $1, revoked_reason = 'client' \
         WHERE client_id = $2 AND revoked_at IS NULL",
        &[&now, &id],
    )
    .await?;
    tx.execute(
        "INSERT INTO revocations (kind, target, issued_before, created_at, expires_at) \
         VALUES ('client', $1, $2, $2, $3)",
        &[&id, &now, &deny_until],
    )
    .await?;
    notify(tx, "revocations").await
}

/// Announces a change to client `id`.
async fn changed(tx: &Transaction<'_>, id: &str) -> StoreResult<()> {
    notify(tx, &format!("client:{id}")).await
}

#[async_trait]
impl ClientStore for PgStore {
    async fn create_scope(&self, scope: &ScopeRecord, audit: &NewAuditEvent) -> StoreResult<()> {
        in_tx!(self, |tx| {
            tx.execute(
                "INSERT INTO scopes (name, description, created_at) VALUES ($1, $2, $3)",
                &[&scope.name, &scope.description, &scope.created_at],
            )
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => {
                    StoreError::Conflict(format!("scope {} already exists", scope.name))
                }
                other => other,
            })?;
            audit::insert(tx, audit).await?;
            notify(tx, "scopes").await
        })
    }

    async fn list_scopes(&self) -> StoreResult<Vec<ScopeRecord>> {
        bounded(async {
            let c = self.conn().await?;
            let stmt = c
                .prepare_cached("SELECT name, description, created_at FROM scopes ORDER BY name")
                .await?;
            c.query(&stmt, &[])
                .await?
                .iter()
                .map(|r| {
                    Ok(ScopeRecord {
                        name: r.try_get(0)?,
                        description: r.try_get(1)?,
                        created_at: r.try_get(2)?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn create_client(
        &self,
        c: &Client,
        secret_hash: &[u8; 32],
        audit: &NewAuditEvent,
    ) -> StoreResult<()> {
        in_tx!(self, |tx| {
            let v = ClientValues::of(c);
            tx.execute(
                "INSERT INTO clients (id, name, status, grant_types, redirect_uris, \
                     access_token_ttl, refresh_token_ttl, issue_refresh_token, \
                     refresh_reuse_grace, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
                &[
                    &c.id.as_str(),
                    &c.name,
                    &c.status.as_str(),
                    &v.grant_types,
                    &v.redirect_uris,
                    &v.access_token_ttl,
                    &v.refresh_token_ttl,
                    &c.issue_refresh_token,
                    &v.refresh_reuse_grace,
                    &c.created_at,
                ],
            )
            .await?;
            set_scopes(tx, c).await?;
            tx.execute(
                "INSERT INTO client_secrets (client_id, secret_hash, created_at) \
                     VALUES ($1, $2, $3)",
                &[&c.id.as_str(), &secret_hash.as_slice(), &c.created_at],
            )
            .await?;
            audit::insert(tx, audit).await?;
            changed(tx, c.id.as_str()).await
        })
    }

    async fn get_client(&self, id: &ClientId) -> StoreResult<Option<Client>> {
        bounded(async { get_client(&self.conn().await?, id.as_str()).await }).await
    }

    async fn get_client_auth(&self, id: &ClientId, now: i64) -> StoreResult<Option<ClientAuth>> {
        bounded(async {
            let c = self.conn().await?;
            let Some(client) = get_client(&c, id.as_str()).await? else {
                return Ok(None);
            };
            let stmt = c
                .prepare_cached(
                    "SELECT secret_hash FROM client_secrets WHERE client_id = $1 \
                     AND (expires_at IS NULL OR expires_at > $2)",
                )
                .await?;
            let secret_hashes = c
                .query(&stmt, &[&id.as_str(), &now])
                .await?
                .iter()
                .map(|r| hash32(r.try_get(0)?, "secret hash"))
                .collect::<StoreResult<Vec<_>>>()?;
            Ok(Some(ClientAuth {
                client,
                secret_hashes,
            }))
        })
        .await
    }

    async fn list_clients(&self) -> StoreResult<Vec<Client>> {
        bounded(async {
            let c = self.conn().await?;
            let stmt = c
                .prepare_cached(&format!("{CLIENT_SELECT} ORDER BY c.created_at, c.id"))
                .await?;
            c.query(&stmt, &[])
                .await?
                .iter()
                .map(client_from_row)
                .collect()
        })
        .await
    }

    async fn disable_client(
        &self,
        id: &ClientId,
        now: i64,
        deny_until: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<()> {
        in_tx!(self, |tx| {
            set_status(tx, id.as_str(), ClientStatus::Disabled, now).await?;
            revoke_all(tx, id.as_str(), now, deny_until).await?;
            audit::insert(tx, audit).await?;
            changed(tx, id.as_str()).await
        })
    }

    async fn enable_client(
        &self,
        id: &ClientId,
        now: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<()> {
        in_tx!(self, |tx| {
            set_status(tx, id.as_str(), ClientStatus::Active, now).await?;
            audit::insert(tx, audit).await?;
            changed(tx, id.as_str()).await
        })
    }

    async fn delete_client(
        &self,
        id: &ClientId,
        now: i64,
        deny_until: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<()> {
        in_tx!(self, |tx| {
            let id = id.as_str();
            // Lock the client first, so no grant batch is between its check and
            // its commit while the families go.
            lock_client(tx, id).await?;
            let found = tx
                .query_opt("SELECT 1 FROM clients WHERE id = $1", &[&id])
                .await?;
            if found.is_none() {
                return Err(StoreError::NotFound(format!("client {id}")));
            }
            // The revocation outlives the client, so every node's denylist
            // refuses its access tokens until they expire.
            revoke_all(tx, id, now, deny_until).await?;
            // Refresh tokens have no foreign key to their family (migration 7) and
            // no index by it: the families are noted for the sweep of their
            // refresh tokens below (migration 16).
            tx.execute(
                "INSERT INTO refresh_sweep (family_id, client_id) \
                 SELECT id, client_id FROM token_families WHERE client_id = $1 \
                 ON CONFLICT (family_id) DO NOTHING",
                &[&id],
            )
            .await?;
            // Families have no foreign key to their client (migration 0009).
            tx.execute("DELETE FROM token_families WHERE client_id = $1", &[&id])
                .await?;
            tx.execute("DELETE FROM clients WHERE id = $1", &[&id])
                .await?;
            audit::insert(tx, audit).await?;
            changed(tx, id).await
        })?;
        // The call returns once its refresh tokens are deleted too.
        self.sweep_deleted(id.to_string()).await;
        Ok(())
    }

    async fn rotate_client_secret(
        &self,
        id: &ClientId,
        new_hash: &[u8; 32],
        old_valid_until: i64,
        now: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<()> {
        in_tx!(self, |tx| {
            let id = id.as_str();
            if tx
                .execute(
                    "UPDATE clients SET updated_at = $1 WHERE id = $2",
                    &[&now, &id],
                )
                .await?
                == 0
            {
                return Err(StoreError::NotFound(format!("client {id}")));
            }
            tx.execute(
                "DELETE FROM client_secrets WHERE client_id = $1 AND expires_at <= $2",
                &[&id, &now],
            )
            .await?;
            tx.execute(
                "UPDATE client_secrets SET expires_at = LEAST(coalesce(expires_at, $1), $1) \
                     WHERE client_id = $2",
                &[&old_valid_until, &id],
            )
            .await?;
            tx.execute(
                "INSERT INTO client_secrets (client_id, secret_hash, created_at) \
                     VALUES ($1, $2, $3)",
                &[&id, &new_hash.as_slice(), &now],
            )
            .await?;
            audit::insert(tx, audit).await?;
            changed(tx, id).await
        })
    }

    async fn update_client(&self, c: &Client, now: i64, audit: &NewAuditEvent) -> StoreResult<()> {
        in_tx!(self, |tx| {
            let v = ClientValues::of(c);
            let n = tx
                .execute(
                    "UPDATE clients SET name = $1, grant_types = $2, redirect_uris = $3, \
                         access_token_ttl = $4, refresh_token_ttl = $5, issue_refresh_token = $6, \
                         refresh_reuse_grace = $7, updated_at = $8 WHERE id = $9",
                    &[
                        &c.name,
                        &v.grant_types,
                        &v.redirect_uris,
                        &v.access_token_ttl,
                        &v.refresh_token_ttl,
                        &c.issue_refresh_token,
                        &v.refresh_reuse_grace,
                        &now,
                        &c.id.as_str(),
                    ],
                )
                .await?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("client {}", c.id)));
            }
            set_scopes(tx, c).await?;
            audit::insert(tx, audit).await?;
            changed(tx, c.id.as_str()).await
        })
    }
}
