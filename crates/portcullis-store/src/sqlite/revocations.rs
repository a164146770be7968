//! Revocations: families revoked (one, a label's, a client's), single access
//! tokens, and the rows every node's denylist is built from.

use super::{SqliteStore, audit};
use crate::{NewAuditEvent, Revocation, RevocationStore, RevokeScope, StoreResult};
use async_trait::async_trait;
use rusqlite::{Transaction, params};

/// Families just marked revoked (id, client, label): a revocation row each, lasting
/// until `deny_until`, and `audit` per family with the family as its target.
/// Returns their ids.
pub(super) fn record_family_revocations(
    tx: &Transaction<'_>,
    revoked: Vec<(String, String, Option<String>)>,
    now: i64,
    deny_until: i64,
    audit: &NewAuditEvent,
) -> StoreResult<Vec<String>> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO revocations (kind, target, created_at, expires_at) \
         VALUES ('family', ?1, ?2, ?3)",
    )?;
    for (id, client, label) in &revoked {
        insert.execute(params![id, now, deny_until])?;
        audit::insert(
            tx,
            &NewAuditEvent {
                target: Some(id.clone()),
                client_id: Some(client.clone()),
                label: label.clone(),
                ..audit.clone()
            },
        )?;
    }
    Ok(revoked.into_iter().map(|(id, _, _)| id).collect())
}

#[async_trait]
impl RevocationStore for SqliteStore {
    async fn revoke_families(
        &self,
        scope: RevokeScope<'_>,
        now: i64,
        reason: &str,
        deny_until: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<Vec<String>> {
        enum Owned {
            Family(String, Option<String>),
            Client(String, Option<String>),
        }
        let scope = match scope {
            RevokeScope::Family { id, client } => {
                Owned::Family(id.to_owned(), client.map(ToString::to_string))
            }
            RevokeScope::Client { client, label } => {
                Owned::Client(client.to_string(), label.map(str::to_owned))
            }
        };
        let (reason, audit) = (reason.to_owned(), audit.clone());
        self.write(move |tx| {
            let revoked: Vec<(String, String, Option<String>)> = match &scope {
                Owned::Family(id, client) => tx
                    .prepare_cached(
                        "UPDATE token_families SET revoked_at = ?1, revoked_reason = ?2 \
                         WHERE id = ?3 AND (?4 IS NULL OR client_id = ?4) AND revoked_at IS NULL \
                         RETURNING id, client_id, label",
                    )?
                    .query_map(params![now, reason, id, client], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })?
                    .collect::<Result<_, _>>()?,
                Owned::Client(client, label) => tx
                    .prepare_cached(
                        "UPDATE token_families SET revoked_at = ?1, revoked_reason = ?2 \
                         WHERE client_id = ?3 AND (?4 IS NULL OR label = ?4) \
                         AND revoked_at IS NULL AND expires_at > ?1 RETURNING id, client_id, label",
                    )?
                    .query_map(params![now, reason, client, label], |r| {
                        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                    })?
                    .collect::<Result<_, _>>()?,
            };
            record_family_revocations(tx, revoked, now, deny_until, &audit)
        })
        .await
    }

    async fn revoke_access_token(
        &self,
        jti: &str,
        now: i64,
        exp: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<()> {
        let (jti, audit) = (jti.to_owned(), audit.clone());
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO revocations (kind, target, created_at, expires_at) \
                 VALUES ('token', ?1, ?2, ?3)",
                params![jti, now, exp],
            )?;
            audit::insert(tx, &audit)
        })
        .await
    }

    async fn revocations_since(&self, after: i64, now: i64) -> StoreResult<Vec<Revocation>> {
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, kind, target, issued_before, expires_at FROM revocations \
                 WHERE id > ?1 AND expires_at > ?2 ORDER BY id",
            )?;
            let rows = stmt.query_map(params![after, now], |r| {
                Ok(Revocation {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    target: r.get(2)?,
                    issued_before: r.get(3)?,
                    expires_at: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}
