//! Revocations on PostgreSQL, and the feed every node's denylist reads.
//!
//! Ids come from a sequence in the order transactions ask for them, not the order
//! they commit, so reading `id > last` could skip a revocation that commits late
//! with a lower id. The feed reads by `recorded_at` (the database's clock when the
//! row was written) with an overlap of [`OVERLAP_MS`]: a row written at `t` and
//! committed by `t + OVERLAP_MS` is seen by the first read that starts after its
//! commit. Our sessions cannot hold a transaction open that long (statements and
//! idle transactions end after 10 s, see `SESSION_OPTIONS`). Rows seen twice are
//! applied twice, harmlessly (the denylist's apply is idempotent).

use super::{PgStore, audit, bounded, notify};
use crate::{NewAuditEvent, Revocation, RevocationFeed, RevocationStore, RevokeScope, StoreResult};
use async_trait::async_trait;
use deadpool_postgres::Transaction;
use tokio_postgres::Row;

/// How far back each read of the feed looks, before the previous read began.
pub(crate) const OVERLAP_MS: i64 = 60_000;

fn revocation(r: &Row) -> StoreResult<Revocation> {
    Ok(Revocation {
        id: r.try_get("id")?,
        kind: r.try_get("kind")?,
        target: r.try_get("target")?,
        issued_before: r.try_get("issued_before")?,
        expires_at: r.try_get("expires_at")?,
    })
}

/// Families just marked revoked (rows of id, client, label): a revocation row each,
/// lasting until `deny_until`, and `audit` per family with the family as its
/// target; other nodes are told. Returns their ids.
pub(super) async fn record_family_revocations(
    tx: &Transaction<'_>,
    rows: &[Row],
    now: i64,
    deny_until: i64,
    audit: &NewAuditEvent,
) -> StoreResult<Vec<String>> {
    let mut ids: Vec<String> = Vec::with_capacity(rows.len());
    let mut events = Vec::with_capacity(rows.len());
    for r in rows {
        let id: String = r.try_get(0)?;
        events.push(NewAuditEvent {
            target: Some(id.clone()),
            client_id: Some(r.try_get(1)?),
            label: r.try_get(2)?,
            ..audit.clone()
        });
        ids.push(id);
    }
    if ids.is_empty() {
        return Ok(ids);
    }
    tx.execute(
        "INSERT INTO revocations (kind, target, created_at, expires_at) \
         SELECT 'family', unnest($1::text[]), $2, $3",
        &[&ids, &now, &deny_until],
    )
    .await?;
    let refs: Vec<&NewAuditEvent> = events.iter().collect();
    audit::insert_many(tx, &refs).await?;
    notify(tx, "revocations").await?;
    Ok(ids)
}

#[async_trait]
impl RevocationStore for PgStore {
    async fn revoke_families(
        &self,
        scope: RevokeScope<'_>,
        now: i64,
        reason: &str,
        deny_until: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<Vec<String>> {
        in_tx!(self, |tx| {
            let rows = match scope {
                RevokeScope::Family { id, client } => {
                    let client = client.map(|c| c.as_str());
                    tx.query(
                        "UPDATE token_families SET revoked_at = $1, revoked_reason = $2 \
                         WHERE id = $3 AND ($4::text IS NULL OR client_id = $4) \
                         AND revoked_at IS NULL RETURNING id, client_id, label",
                        &[&now, &reason, &id, &client],
                    )
                    .await?
                }
                RevokeScope::Client { client, label } => {
                    tx.query(
                        "UPDATE token_families SET revoked_at = $1, revoked_reason = $2 \
                         WHERE client_id = $3 AND ($4::text IS NULL OR label = $4) \
                         AND revoked_at IS NULL AND expires_at > $1 \
                         RETURNING id, client_id, label",
                        &[&now, &reason, &client.as_str(), &label],
                    )
                    .await?
                }
            };
            record_family_revocations(tx, &rows, now, deny_until, audit).await
        })
    }

    async fn revoke_access_token(
        &self,
        jti: &str,
        now: i64,
        exp: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<()> {
        in_tx!(self, |tx| {
            tx.execute(
                "INSERT INTO revocations (kind, target, created_at, expires_at) \
                 VALUES ('token', $1, $2, $3)",
                &[&jti, &now, &exp],
            )
            .await?;
            audit::insert(tx, audit).await?;
            notify(tx, "revocations").await
        })
    }

    async fn revocations_since(&self, after: i64, now: i64) -> StoreResult<Vec<Revocation>> {
        bounded(async {
            let c = self.conn().await?;
            let stmt = c
                .prepare_cached(
                    "SELECT id, kind, target, issued_before, expires_at FROM revocations \
                     WHERE id > $1 AND expires_at > $2 ORDER BY id",
                )
                .await?;
            c.query(&stmt, &[&after, &now])
                .await?
                .iter()
                .map(revocation)
                .collect()
        })
        .await
    }

    async fn revocation_feed(&self, cursor: Option<i64>, now: i64) -> StoreResult<RevocationFeed> {
        bounded(async {
            let c = self.conn().await?;
            // The cursor is the database's clock when this read began (ms); the
            // outer row is there even when no revocation is.
            let stmt = c
                .prepare_cached(
                    "SELECT t.at, r.id, r.kind, r.target, r.issued_before, r.expires_at \
                     FROM (SELECT (extract(epoch FROM statement_timestamp()) * 1000)::BIGINT AS at) t \
                     LEFT JOIN revocations r ON r.recorded_at >= $1 AND r.expires_at > $2 \
                     ORDER BY r.id",
                )
                .await?;
            let since = cursor.map_or(i64::MIN, |c| c.saturating_sub(OVERLAP_MS));
            let rows = c.query(&stmt, &[&since, &now]).await?;
            let mut cursor = 0;
            let mut revocations = Vec::with_capacity(rows.len());
            for r in &rows {
                cursor = r.try_get("at")?;
                if r.try_get::<_, Option<i64>>("id")?.is_some() {
                    revocations.push(revocation(r)?);
                }
            }
            Ok(RevocationFeed {
                revocations,
                cursor,
            })
        })
        .await
    }
}
