//! The audit log (appended in the writer's group commits, or in the same
//! transaction as the change it records), its filtered pages, and the
//! dashboard's figures.

use super::SqliteStore;
use crate::sqlite::writer::WriteJob;
use crate::{AuditFilter, AuditRecord, AuditStore, DashboardStats, NewAuditEvent, StoreResult};
use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{Connection, params, params_from_iter};

/// Appends `e` within the caller's transaction.
pub(crate) fn insert(tx: &Connection, e: &NewAuditEvent) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO audit_events (at, kind, actor_kind, actor_id, target, client_id, label, \
         source, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        e.at,
        e.kind.as_str(),
        e.actor.kind,
        e.actor.id,
        e.target,
        e.client_id,
        e.label,
        e.actor.source,
        e.detail
    ])?;
    Ok(())
}

/// The audit page's query with only the filters given, so that SQLite can use the
/// index by client (ordered by id within a client, so a page is a range read that
/// stops at its last row). Without a client it reads backwards by id and filters.
/// `+kind` keeps the planner off the index by kind and time, whose order is not the
/// page's: it would read and sort every event of a kind to return the newest few.
/// `select` is what goes before `FROM` (the tests put `EXPLAIN QUERY PLAN` first).
pub(super) fn audit_query(select: &str, f: &AuditFilter) -> (String, Vec<Value>) {
    let mut sql = format!("{select} FROM audit_events WHERE 1");
    let mut binds: Vec<Value> = Vec::new();
    let mut push = |clause: &str, v: Value, sql: &mut String| {
        binds.push(v);
        sql.push_str(&format!(" AND {clause} ?{}", binds.len()));
    };
    if let Some(client) = &f.client_id {
        push("client_id =", Value::Text(client.clone()), &mut sql);
    }
    if let Some(label) = &f.label {
        push("label =", Value::Text(label.clone()), &mut sql);
    }
    if let Some(kind) = &f.kind {
        push("+kind =", Value::Text(kind.as_str().into()), &mut sql);
    }
    if let Some(since) = f.since {
        push("at >=", Value::Integer(since), &mut sql);
    }
    if let Some(before) = f.before_id {
        push("id <", Value::Integer(before), &mut sql);
    }
    binds.push(Value::Integer(f.limit.clamp(1, 1000)));
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ?{}", binds.len()));
    (sql, binds)
}

fn per_day(c: &Connection, sql: &str, since: i64) -> StoreResult<Vec<(i64, i64)>> {
    let mut stmt = c.prepare_cached(sql)?;
    let rows = stmt.query_map([since], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[async_trait]
impl AuditStore for SqliteStore {
    async fn append_audit(&self, event: &NewAuditEvent) -> StoreResult<()> {
        let event = event.clone();
        self.submit(|tx| WriteJob::Audit(event, tx)).await
    }

    async fn list_audit(&self, f: &AuditFilter) -> StoreResult<Vec<AuditRecord>> {
        let (sql, binds) = audit_query("SELECT *", f);
        self.read(move |c| {
            let mut stmt = c.prepare_cached(&sql)?;
            let rows = stmt.query_map(params_from_iter(binds), |r| {
                Ok(AuditRecord {
                    id: r.get("id")?,
                    at: r.get("at")?,
                    kind: r.get("kind")?,
                    actor_kind: r.get("actor_kind")?,
                    actor_id: r.get("actor_id")?,
                    target: r.get("target")?,
                    client_id: r.get("client_id")?,
                    label: r.get("label")?,
                    source: r.get("source")?,
                    detail: r.get("detail")?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn bump_daily_counters(&self, counts: &[(i64, String, i64)]) -> StoreResult<()> {
        if counts.is_empty() {
            return Ok(());
        }
        let counts = counts.to_vec();
        self.write(move |tx| {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO daily_counters (day, kind, count) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (day, kind) DO UPDATE SET count = count + excluded.count",
            )?;
            for (day, kind, n) in &counts {
                stmt.execute(params![day, kind, n])?;
            }
            Ok(())
        })
        .await
    }

    async fn dashboard(&self, now: i64, days: i64) -> StoreResult<DashboardStats> {
        let today = portcullis_core::time::day_start(now);
        let since = today - (days - 1) * 86_400;
        self.read(move |c| {
            let clients: i64 = c.query_row("SELECT count(*) FROM clients", [], |r| r.get(0))?;
            let tokens_per_day = per_day(
                c,
                "SELECT day, count AS n FROM daily_counters \
                 WHERE kind = 'tokens_issued' AND day >= ?1 ORDER BY day",
                since,
            )?;
            let failed_auth_per_day = per_day(
                c,
                "SELECT day, count AS n FROM daily_counters \
                 WHERE kind = 'client_auth_failed' AND day >= ?1 ORDER BY day",
                since,
            )?;
            let mut stmt = c.prepare_cached(
                "SELECT coalesce(label, '') AS label, received_at - (received_at % 86400) AS day, \
                 count(*) AS n FROM data_batches WHERE received_at >= ?1 GROUP BY label, day \
                 ORDER BY label, day",
            )?;
            let uploads_per_site_day: Vec<(String, i64, i64)> = stmt
                .query_map([since], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<Result<_, _>>()?;
            Ok(DashboardStats::from_series(
                today,
                clients,
                tokens_per_day,
                uploads_per_site_day,
                failed_auth_per_day,
            ))
        })
        .await
    }

    async fn count_live_sites(&self, now: i64) -> StoreResult<i64> {
        self.read(move |c| {
            // Every live family is read (from the index by client, which carries
            // the columns, migration 14): the server counts this in the
            // background, not at a view.
            Ok(c.query_row(LIVE_SITES, [now], |r| r.get(0))?)
        })
        .await
    }

    async fn prune_audit(&self, before: i64, batch: u32) -> StoreResult<u64> {
        self.write(move |tx| {
            // The log is appended in time order, so its oldest events are the first
            // rowids: a range from the start, never a scan of the whole log (there
            // is no index by time; see migration 8). An event out of order is kept
            // rather than searched for.
            let n = tx.execute(
                "DELETE FROM audit_events WHERE id IN \
                 (SELECT id FROM audit_events ORDER BY id LIMIT ?1) AND at < ?2",
                params![batch, before],
            )?;
            Ok(super::changed(n))
        })
        .await
    }
}

/// The count of labels with a live family. `?1` now.
pub(super) const LIVE_SITES: &str = "SELECT count(*) FROM (SELECT DISTINCT client_id, label FROM token_families \
     WHERE label IS NOT NULL AND revoked_at IS NULL AND expires_at > ?1)";
