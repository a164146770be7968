//! A deleted client's refresh tokens, removed a slice at a time (migration 16).
//!
//! Refresh tokens have no index by family, so finding a client's reads every
//! refresh token. Done inside the delete's transaction, that held the single
//! writer for seconds at 10 million tokens. The delete instead notes the
//! client's families in `refresh_sweep` and deletes the client and its families;
//! from its commit on the tokens cannot be used (a refresh token is found
//! through its family). The sweep then walks the refresh tokens in key order, a
//! slice per transaction, deleting those of a noted family, and grants commit
//! between its slices.

use super::{SqliteStore, changed};
use crate::StoreResult;
use crate::sweep::{RefreshSweep, Slice};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, Transaction, params};
use std::time::Instant;

/// Refresh tokens a slice reads: a few milliseconds of the writer.
pub(super) const SLICE: i64 = 10_000;

#[async_trait]
impl RefreshSweep for SqliteStore {
    async fn noted_clients(&self) -> StoreResult<Vec<String>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT DISTINCT client_id FROM refresh_sweep")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn delete_slice(&self, after: String) -> StoreResult<Slice> {
        let keys = self.sweep_slice;
        self.write(move |tx| {
            let start = Instant::now();
            let (deleted, last) = sweep_slice(tx, &after, keys)?;
            Ok(Slice {
                deleted,
                last,
                took: start.elapsed(),
            })
        })
        .await
    }

    async fn forget_noted(&self, clients: Vec<String>) -> StoreResult<()> {
        self.write(move |tx| {
            for c in &clients {
                tx.prepare_cached("DELETE FROM refresh_sweep WHERE client_id = ?1")?
                    .execute([c])?;
            }
            // Their grace answers (migration 15): the few kept since the last pass.
            tx.execute(
                "DELETE FROM refresh_grace WHERE id NOT IN (SELECT id FROM refresh_tokens)",
                [],
            )?;
            Ok(())
        })
        .await
    }
}

/// Deletes the refresh tokens of noted families among the `slice` after `after`
/// in key order (all that are left if fewer); returns the count and the last
/// key read, `None` once the end was reached.
pub(super) fn sweep_slice(
    tx: &Transaction<'_>,
    after: &str,
    slice: i64,
) -> StoreResult<(u64, Option<String>)> {
    let last: Option<String> = tx
        .prepare_cached(
            "SELECT id FROM refresh_tokens WHERE id > ?1 ORDER BY id LIMIT 1 OFFSET ?2",
        )?
        .query_row(params![after, slice - 1], |r| r.get(0))
        .optional()?;
    let n = match &last {
        Some(last) => tx
            .prepare_cached(SWEEP_RANGE)?
            .execute(params![after, last])?,
        None => tx.prepare_cached(SWEEP_REST)?.execute([after])?,
    };
    Ok((changed(n), last))
}

/// One slice: `?1` the key after which it starts, `?2` its last key. A noted
/// family is looked up by `refresh_sweep`'s key (a test checks the plan).
pub(super) const SWEEP_RANGE: &str = "DELETE FROM refresh_tokens WHERE id > ?1 AND id <= ?2 \
     AND family_id IN (SELECT family_id FROM refresh_sweep)";

/// The last slice, from the key after `?1` to the end.
const SWEEP_REST: &str = "DELETE FROM refresh_tokens WHERE id > ?1 \
     AND family_id IN (SELECT family_id FROM refresh_sweep)";
