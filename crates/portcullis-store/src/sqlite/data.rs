//! Data uploaded at the resource API: batches and their records (group-committed
//! by the writer), and the per-site counters indicators read.

use super::SqliteStore;
use crate::sqlite::writer::WriteJob;
use crate::{DataStore, NewUpload, SiteCounters, StoreError, StoreResult, UploadOutcome};
use async_trait::async_trait;
use portcullis_core::ClientId;
use rusqlite::{Connection, params};

#[async_trait]
impl DataStore for SqliteStore {
    async fn store_upload(&self, upload: NewUpload) -> StoreResult<UploadOutcome> {
        self.submit(|tx| WriteJob::Upload(upload, tx)).await
    }

    async fn site_counters(&self, client: &ClientId) -> StoreResult<Vec<SiteCounters>> {
        let client = client.to_string();
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT label, records, batches, last_upload_at FROM indicator_counters \
                 WHERE client_id = ?1 ORDER BY label",
            )?;
            let rows = stmt.query_map([client], |r| {
                let label: String = r.get(0)?;
                Ok(SiteCounters {
                    label: (!label.is_empty()).then_some(label),
                    records: r.get(1)?,
                    batches: r.get(2)?,
                    last_upload_at: r.get(3)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}

/// Stores one batch: the batch row (unless its idempotency key was seen), its
/// records, and the counters indicators read.
pub(super) fn upload(tx: &Connection, u: &NewUpload) -> StoreResult<UploadOutcome> {
    let n = i64::try_from(u.records.len()).unwrap_or(i64::MAX);
    let inserted = tx
        .prepare_cached(
            "INSERT INTO data_batches (id, client_id, label, token_id, records, received_at, \
             idempotency_key, body_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![
            u.batch_id,
            u.client_id,
            u.label,
            u.token_id,
            n,
            u.received_at,
            u.idempotency_key,
            u.body_hash.as_slice()
        ])?;
    if inserted == 0 {
        let mut stmt = tx.prepare_cached(
            "SELECT id, records, body_hash FROM data_batches \
             WHERE client_id = ?1 AND idempotency_key = ?2",
        )?;
        let mut rows = stmt.query(params![u.client_id, u.idempotency_key])?;
        let row = rows
            .next()?
            .ok_or_else(|| StoreError::Conflict("batch id collision".into()))?;
        let hash: Option<Vec<u8>> = row.get("body_hash")?;
        if hash.as_deref() != Some(u.body_hash.as_slice()) {
            return Ok(UploadOutcome::KeyReused);
        }
        return Ok(UploadOutcome::Replayed {
            batch_id: row.get("id")?,
            accepted: row.get("records")?,
        });
    }
    let mut record =
        tx.prepare_cached("INSERT INTO data_records (batch_id, seq, body) VALUES (?1, ?2, ?3)")?;
    for (seq, body) in (0_i64..).zip(&u.records) {
        record.execute(params![u.batch_id, seq, body])?;
    }
    tx.prepare_cached(
        "INSERT INTO indicator_counters (client_id, label, records, batches, last_upload_at) \
         VALUES (?1, ?2, ?3, 1, ?4) ON CONFLICT (client_id, label) DO UPDATE SET \
         records = records + excluded.records, batches = batches + 1, \
         last_upload_at = max(coalesce(last_upload_at, 0), excluded.last_upload_at)",
    )?
    .execute(params![
        u.client_id,
        u.label.as_deref().unwrap_or(""),
        n,
        u.received_at
    ])?;
    if let Some(label) = &u.label {
        tx.prepare_cached(
            "INSERT INTO labels (client_id, name, created_at, last_used_at, uploads) \
             VALUES (?1, ?2, ?3, ?3, 1) ON CONFLICT (client_id, name) DO UPDATE SET \
             uploads = uploads + 1, \
             last_used_at = max(coalesce(last_used_at, 0), excluded.last_used_at)",
        )?
        .execute(params![u.client_id, label, u.received_at])?;
    }
    Ok(UploadOutcome::Stored {
        batch_id: u.batch_id.clone(),
        accepted: n,
    })
}
