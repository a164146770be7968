//! Data uploaded at the resource API on PostgreSQL: batches and their records
//! (group-committed by the writers), and the per-site counters indicators read.

use super::writer::HotJob;
use super::{PgStore, bounded};
use crate::{DataStore, NewUpload, SiteCounters, StoreError, StoreResult, UploadOutcome};
use async_trait::async_trait;
use deadpool_postgres::Transaction;
use portcullis_core::ClientId;

#[async_trait]
impl DataStore for PgStore {
    async fn store_upload(&self, upload: NewUpload) -> StoreResult<UploadOutcome> {
        self.submit(|tx| HotJob::Upload(upload, tx)).await
    }

    async fn site_counters(&self, client: &ClientId) -> StoreResult<Vec<SiteCounters>> {
        bounded(async {
            let c = self.conn().await?;
            let stmt = c
                .prepare_cached(
                    "SELECT label, records, batches, last_upload_at FROM indicator_counters \
                     WHERE client_id = $1 ORDER BY label",
                )
                .await?;
            c.query(&stmt, &[&client.as_str()])
                .await?
                .iter()
                .map(|r| {
                    let label: String = r.try_get(0)?;
                    Ok(SiteCounters {
                        label: (!label.is_empty()).then_some(label),
                        records: r.try_get(1)?,
                        batches: r.try_get(2)?,
                        last_upload_at: r.try_get(3)?,
                    })
                })
                .collect()
        })
        .await
    }
}

/// Stores one batch: the batch row (unless its idempotency key was seen), its
/// records, and the counters indicators read.
pub(super) async fn upload(tx: &Transaction<'_>, u: &NewUpload) -> StoreResult<UploadOutcome> {
    let n = i64::try_from(u.records.len()).unwrap_or(i64::MAX);
    let stmt = tx
        .prepare_cached(
            "INSERT INTO data_batches (id, client_id, label, token_id, records, received_at, \
             idempotency_key, body_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT DO NOTHING",
        )
        .await?;
    let inserted = tx
        .execute(
            &stmt,
            &[
                &u.batch_id,
                &u.client_id,
                &u.label,
                &u.token_id,
                &n,
                &u.received_at,
                &u.idempotency_key,
                &u.body_hash.as_slice(),
            ],
        )
        .await?;
    if inserted == 0 {
        let row = tx
            .query_opt(
                "SELECT id, records, body_hash FROM data_batches \
                 WHERE client_id = $1 AND idempotency_key = $2",
                &[&u.client_id, &u.idempotency_key],
            )
            .await?
            .ok_or_else(|| StoreError::Conflict("batch id collision".into()))?;
        let hash: Option<&[u8]> = row.try_get("body_hash")?;
        if hash != Some(u.body_hash.as_slice()) {
            return Ok(UploadOutcome::KeyReused);
        }
        return Ok(UploadOutcome::Replayed {
            batch_id: row.try_get("id")?,
            accepted: row.try_get("records")?,
        });
    }
    let stmt = tx
        .prepare_cached(
            "INSERT INTO data_records (batch_id, seq, body) \
             SELECT $1, n - 1, body FROM unnest($2::text[]) WITH ORDINALITY AS x(body, n)",
        )
        .await?;
    tx.execute(&stmt, &[&u.batch_id, &u.records]).await?;
    let stmt = tx
        .prepare_cached(
            "INSERT INTO indicator_counters (client_id, label, records, batches, last_upload_at) \
             VALUES ($1, $2, $3, 1, $4) ON CONFLICT (client_id, label) DO UPDATE SET \
             records = indicator_counters.records + excluded.records, \
             batches = indicator_counters.batches + 1, \
             last_upload_at = GREATEST(coalesce(indicator_counters.last_upload_at, 0), \
             excluded.last_upload_at)",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &u.client_id,
            &u.label.as_deref().unwrap_or(""),
            &n,
            &u.received_at,
        ],
    )
    .await?;
    if let Some(label) = &u.label {
        let stmt = tx
            .prepare_cached(
                "INSERT INTO labels (client_id, name, created_at, last_used_at, uploads) \
                 VALUES ($1, $2, $3, $3, 1) ON CONFLICT (client_id, name) DO UPDATE SET \
                 uploads = labels.uploads + 1, \
                 last_used_at = GREATEST(coalesce(labels.last_used_at, 0), excluded.last_used_at)",
            )
            .await?;
        tx.execute(&stmt, &[&u.client_id, label, &u.received_at])
            .await?;
    }
    Ok(UploadOutcome::Stored {
        batch_id: u.batch_id.clone(),
        accepted: n,
    })
}
