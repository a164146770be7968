//! Clients, their secrets and the scopes they may be given.

use super::{SqliteStore, audit, unreadable};
use crate::rows::{ClientColumns, ClientValues};
use crate::sweep::RefreshSweep;
use crate::{ClientAuth, ClientStore, NewAuditEvent, ScopeRecord, StoreError, StoreResult};
use async_trait::async_trait;
use portcullis_core::{Client, ClientId, ClientStatus};
use rusqlite::{Connection, Row, params};

const CLIENT_SELECT: &str = "SELECT c.*, (SELECT group_concat(scope, ' ') FROM client_scopes s \
     WHERE s.client_id = c.id) AS scopes FROM clients c";

fn client_from_row(row: &Row<'_>) -> StoreResult<Client> {
    ClientColumns {
        id: row.get("id")?,
        name: row.get("name")?,
        status: row.get("status")?,
        grant_types: row.get("grant_types")?,
        redirect_uris: row.get("redirect_uris")?,
        access_token_ttl: row.get("access_token_ttl")?,
        refresh_token_ttl: row.get("refresh_token_ttl")?,
        issue_refresh_token: row.get::<_, i64>("issue_refresh_token")? != 0,
        refresh_reuse_grace: row.get("refresh_reuse_grace")?,
        created_at: row.get("created_at")?,
        scopes: row.get("scopes")?,
    }
    .into_client()
}

fn get_client(c: &Connection, id: &str) -> StoreResult<Option<Client>> {
    let mut stmt = c.prepare_cached(&format!("{CLIENT_SELECT} WHERE c.id = ?1"))?;
    let mut rows = stmt.query([id])?;
    rows.next()?.map(client_from_row).transpose()
}

/// The client's scopes, replacing any it had; an unknown scope is a `Conflict`.
fn set_scopes(tx: &Connection, c: &Client) -> StoreResult<()> {
    tx.execute(
        "DELETE FROM client_scopes WHERE client_id = ?1",
        [c.id.as_str()],
    )?;
    let mut insert =
        tx.prepare_cached("INSERT INTO client_scopes (client_id, scope) VALUES (?1, ?2)")?;
    for s in c.scopes.iter() {
        insert
            .execute(params![c.id.as_str(), s.as_str()])
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => StoreError::Conflict(format!("unknown scope {s}")),
                other => other,
            })?;
    }
    Ok(())
}

fn set_status(tx: &Connection, id: &str, status: ClientStatus, now: i64) -> StoreResult<()> {
    let n = tx.execute(
        "UPDATE clients SET status = ?1, updated_at = ?2 WHERE id = ?3",
        params![status.as_str(), now, id],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound(format!("client {id}")));
    }
    Ok(())
}

/// Revokes every token of a client issued up to `now`: its live families, and one
/// revocation that reaches its access tokens on every node.
fn revoke_all(tx: &Connection, id: &str, now: i64, deny_until: i64) -> StoreResult<()> {
    tx.execute(
        "UPDATE token_families SET revoked_at = ?1, revoked_reason = 'client' \
         WHERE client_id = ?2 AND revoked_at IS NULL",
        params![now, id],
    )?;
    tx.execute(
        "INSERT INTO revocations (kind, target, issued_before, created_at, expires_at) \
         VALUES ('client', ?1, ?2, ?2, ?3)",
        params![id, now, deny_until],
    )?;
    Ok(())
}

#[async_trait]
impl ClientStore for SqliteStore {
    async fn create_scope(&self, scope: &ScopeRecord, audit: &NewAuditEvent) -> StoreResult<()> {
        let (scope, audit) = (scope.clone(), audit.clone());
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO scopes (name, description, created_at) VALUES (?1, ?2, ?3)",
                params![scope.name, scope.description, scope.created_at],
            )
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => {
                    StoreError::Conflict(format!("scope {} already exists", scope.name))
                }
                other => other,
            })?;
            audit::insert(tx, &audit)
        })
        .await
    }

    async fn list_scopes(&self) -> StoreResult<Vec<ScopeRecord>> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached("SELECT name, description, created_at FROM scopes ORDER BY name")?;
            let rows = stmt.query_map([], |r| {
                Ok(ScopeRecord {
                    name: r.get(0)?,
                    description: r.get(1)?,
                    created_at: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn create_client(
        &self,
        c: &Client,
        secret_hash: &[u8; 32],
        audit: &NewAuditEvent,
    ) -> StoreResult<()> {
        let (c, hash, audit) = (c.clone(), *secret_hash, audit.clone());
        self.write(move |tx| {
            let v = ClientValues::of(&c);
            tx.execute(
                "INSERT INTO clients (id, name, status, grant_types, redirect_uris, \
                 access_token_ttl, refresh_token_ttl, issue_refresh_token, refresh_reuse_grace, \
                 created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
                params![
                    c.id.as_str(),
                    c.name,
                    c.status.as_str(),
                    v.grant_types,
                    v.redirect_uris,
                    v.access_token_ttl,
                    v.refresh_token_ttl,
                    i64::from(c.issue_refresh_token),
                    v.refresh_reuse_grace,
                    c.created_at,
                ],
            )?;
            set_scopes(tx, &c)?;
            tx.execute(
                "INSERT INTO client_secrets (client_id, secret_hash, created_at) \
                 VALUES (?1, ?2, ?3)",
                params![c.id.as_str(), hash.as_slice(), c.created_at],
            )?;
            audit::insert(tx, &audit)
        })
        .await
    }

    async fn get_client(&self, id: &ClientId) -> StoreResult<Option<Client>> {
        let id = id.to_string();
        self.read(move |c| get_client(c, &id)).await
    }

    async fn get_client_auth(&self, id: &ClientId, now: i64) -> StoreResult<Option<ClientAuth>> {
        let id = id.to_string();
        self.read(move |c| {
            let Some(client) = get_client(c, &id)? else {
                return Ok(None);
            };
            let mut stmt = c.prepare_cached(
                "SELECT secret_hash FROM client_secrets WHERE client_id = ?1 \
                 AND (expires_at IS NULL OR expires_at > ?2)",
            )?;
            let hashes = stmt
                .query_map(params![id, now], |r| r.get::<_, Vec<u8>>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            let secret_hashes = hashes
                .into_iter()
                .map(|h| <[u8; 32]>::try_from(h.as_slice()).map_err(|_| unreadable("secret hash")))
                .collect::<StoreResult<Vec<_>>>()?;
            Ok(Some(ClientAuth {
                client,
                secret_hashes,
            }))
        })
        .await
    }

    async fn list_clients(&self) -> StoreResult<Vec<Client>> {
        self.read(|c| {
            let mut stmt =
                c.prepare_cached(&format!("{CLIENT_SELECT} ORDER BY c.created_at, c.id"))?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(client_from_row(r)?);
            }
            Ok(out)
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
        let (id, audit) = (id.to_string(), audit.clone());
        self.write(move |tx| {
            set_status(tx, &id, ClientStatus::Disabled, now)?;
            revoke_all(tx, &id, now, deny_until)?;
            audit::insert(tx, &audit)
        })
        .await
    }

    async fn enable_client(
        &self,
        id: &ClientId,
        now: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<()> {
        let (id, audit) = (id.to_string(), audit.clone());
        self.write(move |tx| {
            set_status(tx, &id, ClientStatus::Active, now)?;
            audit::insert(tx, &audit)
        })
        .await
    }

    async fn delete_client(
        &self,
        id: &ClientId,
        now: i64,
        deny_until: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<()> {
        let (id, audit) = (id.to_string(), audit.clone());
        let client = id.clone();
        self.write(move |tx| {
            // The revocation outlives the client, so that every node's denylist
            // refuses its access tokens until they expire.
            revoke_all(tx, &id, now, deny_until)?;
            // Refresh tokens have no foreign key to their family (migration 7) and
            // no index by it: the families go by cascade, and are noted for the
            // sweep of their refresh tokens below (migration 16).
            tx.execute(
                "INSERT OR IGNORE INTO refresh_sweep (family_id, client_id) \
                 SELECT id, client_id FROM token_families WHERE client_id = ?1",
                [&id],
            )?;
            if tx.execute("DELETE FROM clients WHERE id = ?1", [&id])? == 0 {
                return Err(StoreError::NotFound(format!("client {id}")));
            }
            audit::insert(tx, &audit)
        })
        .await?;
        // The call returns once its refresh tokens are deleted too.
        self.sweep_deleted(client).await;
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
        let (id, hash, audit) = (id.to_string(), *new_hash, audit.clone());
        self.write(move |tx| {
            if tx.execute(
                "UPDATE clients SET updated_at = ?1 WHERE id = ?2",
                params![now, id],
            )? == 0
            {
                return Err(StoreError::NotFound(format!("client {id}")));
            }
            tx.execute(
                "DELETE FROM client_secrets WHERE client_id = ?1 AND expires_at <= ?2",
                params![id, now],
            )?;
            tx.execute(
                "UPDATE client_secrets SET expires_at = min(coalesce(expires_at, ?1), ?1) \
                 WHERE client_id = ?2",
                params![old_valid_until, id],
            )?;
            tx.execute(
                "INSERT INTO client_secrets (client_id, secret_hash, created_at) \
                 VALUES (?1, ?2, ?3)",
                params![id, hash.as_slice(), now],
            )?;
            audit::insert(tx, &audit)
        })
        .await
    }

    async fn update_client(&self, c: &Client, now: i64, audit: &NewAuditEvent) -> StoreResult<()> {
        let (c, audit) = (c.clone(), audit.clone());
        self.write(move |tx| {
            let v = ClientValues::of(&c);
            let n = tx.execute(
                "UPDATE clients SET name = ?1, grant_types = ?2, redirect_uris = ?3, \
                 access_token_ttl = ?4, refresh_token_ttl = ?5, issue_refresh_token = ?6, \
                 refresh_reuse_grace = ?7, updated_at = ?8 WHERE id = ?9",
                params![
                    c.name,
                    v.grant_types,
                    v.redirect_uris,
                    v.access_token_ttl,
                    v.refresh_token_ttl,
                    i64::from(c.issue_refresh_token),
                    v.refresh_reuse_grace,
                    now,
                    c.id.as_str(),
                ],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("client {}", c.id)));
            }
            set_scopes(tx, &c)?;
            audit::insert(tx, &audit)
        })
        .await
    }
}
