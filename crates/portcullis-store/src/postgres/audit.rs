//! The audit log on PostgreSQL: appended in group commits (one multi-row insert)
//! or with the change it records, its filtered pages, and the dashboard's figures.

use super::writer::HotJob;
use super::{PgStore, bounded, lock};
use crate::{AuditFilter, AuditRecord, AuditStore, DashboardStats, NewAuditEvent, StoreResult};
use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::types::ToSql;

/// Inserts audit events, in order (ids follow it). An event with a gate (a client
/// id) is kept only while that client is active: a grant's event goes with its
/// grant, within one statement.
pub(crate) const INSERT_GATED: &str = "INSERT INTO audit_events (at, kind, actor_kind, \
     actor_id, target, client_id, label, source, detail) SELECT at, kind, actor_kind, actor_id, \
     target, client_id, label, source, detail FROM unnest($1::int8[], $2::text[], $3::text[], \
     $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::text[], $10::text[]) \
     WITH ORDINALITY AS x(at, kind, actor_kind, actor_id, target, client_id, label, source, \
     detail, gate, n) WHERE x.gate IS NULL OR EXISTS (SELECT 1 FROM clients c \
     WHERE c.id = x.gate AND c.status = 'active') ORDER BY n";

/// Audit events as the columns of [`INSERT_GATED`].
#[derive(Default)]
pub(crate) struct AuditColumns<'a> {
    at: Vec<i64>,
    kind: Vec<&'static str>,
    actor_kind: Vec<&'static str>,
    actor_id: Vec<Option<&'a str>>,
    target: Vec<Option<&'a str>>,
    client: Vec<Option<&'a str>>,
    label: Vec<Option<&'a str>>,
    source: Vec<Option<&'a str>>,
    detail: Vec<Option<&'a str>>,
    gate: Vec<Option<&'a str>>,
}

impl<'a> AuditColumns<'a> {
    /// Adds `e`, kept only while client `gate` is active (when given).
    pub(crate) fn push(&mut self, e: &'a NewAuditEvent, gate: Option<&'a str>) {
        self.at.push(e.at);
        self.kind.push(e.kind.as_str());
        self.actor_kind.push(e.actor.kind);
        self.actor_id.push(e.actor.id.as_deref());
        self.target.push(e.target.as_deref());
        self.client.push(e.client_id.as_deref());
        self.label.push(e.label.as_deref());
        self.source.push(e.actor.source.as_deref());
        self.detail.push(e.detail.as_deref());
        self.gate.push(gate);
    }

    fn is_empty(&self) -> bool {
        self.at.is_empty()
    }

    /// The columns, as the ten parameters of [`INSERT_GATED`] in order.
    pub(crate) fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 10] {
        [
            &self.at,
            &self.kind,
            &self.actor_kind,
            &self.actor_id,
            &self.target,
            &self.client,
            &self.label,
            &self.source,
            &self.detail,
            &self.gate,
        ]
    }
}

/// Appends `events`, in order, within the caller's transaction.
pub(crate) async fn insert_many(
    tx: &Transaction<'_>,
    events: &[&NewAuditEvent],
) -> StoreResult<()> {
    let mut cols = AuditColumns::default();
    for e in events {
        cols.push(e, None);
    }
    insert_columns(tx, &cols).await
}

/// Appends the events of `cols` within the caller's transaction.
pub(crate) async fn insert_columns(
    tx: &Transaction<'_>,
    cols: &AuditColumns<'_>,
) -> StoreResult<()> {
    if cols.is_empty() {
        return Ok(());
    }
    let stmt = tx.prepare_cached(INSERT_GATED).await?;
    tx.execute(&stmt, &cols.params()).await?;
    Ok(())
}

/// Appends one event within the caller's transaction.
pub(crate) async fn insert(tx: &Transaction<'_>, e: &NewAuditEvent) -> StoreResult<()> {
    insert_many(tx, &[e]).await
}

/// The audit page's query with only the filters given (`$n` placeholders).
fn audit_query(f: &AuditFilter) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
    let mut sql = String::from(
        "SELECT id, at, kind, actor_kind, actor_id, target, client_id, label, source, detail \
         FROM audit_events WHERE true",
    );
    let mut binds: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let mut push = |clause: &str, v: Box<dyn ToSql + Sync + Send>, sql: &mut String| {
        binds.push(v);
        sql.push_str(&format!(" AND {clause} ${}", binds.len()));
    };
    if let Some(client) = &f.client_id {
        push("client_id =", Box::new(client.clone()), &mut sql);
    }
    if let Some(label) = &f.label {
        push("label =", Box::new(label.clone()), &mut sql);
    }
    if let Some(kind) = &f.kind {
        push("kind =", Box::new(kind.as_str().to_owned()), &mut sql);
    }
    if let Some(since) = f.since {
        push("at >=", Box::new(since), &mut sql);
    }
    if let Some(before) = f.before_id {
        push("id <", Box::new(before), &mut sql);
    }
    binds.push(Box::new(f.limit.clamp(1, 1000)));
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", binds.len()));
    (sql, binds)
}

async fn per_day(c: &impl GenericClient, sql: &str, since: i64) -> StoreResult<Vec<(i64, i64)>> {
    let stmt = c.prepare_cached(sql).await?;
    c.query(&stmt, &[&since])
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

#[async_trait]
impl AuditStore for PgStore {
    async fn append_audit(&self, event: &NewAuditEvent) -> StoreResult<()> {
        let event = event.clone();
        self.submit(|tx| HotJob::Audit(event, tx)).await
    }

    async fn list_audit(&self, f: &AuditFilter) -> StoreResult<Vec<AuditRecord>> {
        let (sql, binds) = audit_query(f);
        bounded(async {
            let c = self.conn().await?;
            let stmt = c.prepare_cached(&sql).await?;
            let params: Vec<&(dyn ToSql + Sync)> = binds
                .iter()
                .map(|b| b.as_ref() as &(dyn ToSql + Sync))
                .collect();
            c.query(&stmt, &params)
                .await?
                .iter()
                .map(|r| {
                    Ok(AuditRecord {
                        id: r.try_get("id")?,
                        at: r.try_get("at")?,
                        kind: r.try_get("kind")?,
                        actor_kind: r.try_get("actor_kind")?,
                        actor_id: r.try_get("actor_id")?,
                        target: r.try_get("target")?,
                        client_id: r.try_get("client_id")?,
                        label: r.try_get("label")?,
                        source: r.try_get("source")?,
                        detail: r.try_get("detail")?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn bump_daily_counters(&self, counts: &[(i64, String, i64)]) -> StoreResult<()> {
        if counts.is_empty() {
            return Ok(());
        }
        // One row per (day, kind), in key order.
        let mut merged: std::collections::BTreeMap<(i64, &str), i64> = Default::default();
        for (day, kind, n) in counts {
            *merged.entry((*day, kind.as_str())).or_default() += n;
        }
        let mut days = Vec::new();
        let mut kinds = Vec::new();
        let mut ns = Vec::new();
        for ((d, k), n) in merged {
            days.push(d);
            kinds.push(k);
            ns.push(n);
        }
        bounded(async {
            self.conn()
                .await?
                .execute(
                    "INSERT INTO daily_counters (day, kind, count) \
                     SELECT * FROM unnest($1::int8[], $2::text[], $3::int8[]) \
                     ON CONFLICT (day, kind) DO UPDATE SET \
                     count = daily_counters.count + excluded.count",
                    &[&days, &kinds, &ns],
                )
                .await?;
            Ok(())
        })
        .await
    }

    async fn dashboard(&self, now: i64, days: i64) -> StoreResult<DashboardStats> {
        let today = portcullis_core::time::day_start(now);
        let since = today - (days - 1) * 86_400;
        bounded(async {
            let c = self.conn().await?;
            let clients: i64 = c
                .query_one("SELECT count(*) FROM clients", &[])
                .await?
                .try_get(0)?;
            let tokens_per_day = per_day(
                &c,
                "SELECT day, count AS n FROM daily_counters \
                 WHERE kind = 'tokens_issued' AND day >= $1 ORDER BY day",
                since,
            )
            .await?;
            let failed_auth_per_day = per_day(
                &c,
                "SELECT day, count AS n FROM daily_counters \
                 WHERE kind = 'client_auth_failed' AND day >= $1 ORDER BY day",
                since,
            )
            .await?;
            let uploads_per_site_day: Vec<(String, i64, i64)> = c
                .query(
                    "SELECT coalesce(label, '') AS label, received_at - (received_at % 86400) AS day, \
                     count(*) AS n FROM data_batches WHERE received_at >= $1 \
                     GROUP BY 1, 2 ORDER BY 1, 2",
                    &[&since],
                )
                .await?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                .collect::<StoreResult<_>>()?;
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
        bounded(async {
            let c = self.conn().await?;
            let live_sites: i64 = c
                .query_one(
                    "SELECT count(*) FROM (SELECT DISTINCT client_id, label FROM token_families \
                     WHERE label IS NOT NULL AND revoked_at IS NULL AND expires_at > $1) s",
                    &[&now],
                )
                .await?
                .try_get(0)?;
            Ok(live_sites)
        })
        .await
    }

    async fn prune_audit(&self, before: i64, batch: u32) -> StoreResult<u64> {
        bounded(async {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            // One node at a time; the others find the lock taken and skip.
            let led: bool = tx
                .query_one(
                    "SELECT pg_try_advisory_xact_lock($1)",
                    &[&lock::AUDIT_RETENTION],
                )
                .await?
                .try_get(0)?;
            if !led {
                return Ok(0);
            }
            // The oldest events are the first ids: a range from the start of the
            // primary key, never a scan of the whole log.
            let n = tx
                .execute(
                    "DELETE FROM audit_events WHERE id IN \
                     (SELECT id FROM audit_events ORDER BY id LIMIT $1) AND at < $2",
                    &[&i64::from(batch), &before],
                )
                .await?;
            tx.commit().await?;
            Ok(n)
        })
        .await
    }
}
