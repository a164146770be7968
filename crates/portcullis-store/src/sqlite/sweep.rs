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
use crate::sweep::RefreshSweep;
use async_trait::async_trait;
use rusqlite::{OptionalExtension, Transaction, params};

/// Refresh tokens a slice reads: a few milliseconds of the writer.
pub(super) const SLICE: i64 = 10_000;

#[async_trait]
impl RefreshSweep for SqliteStore {
    async fn sweep_refresh_tokens(&self, client: Option<String>) -> StoreResult<u64> {
        let slice = self.sweep_slice;
        // The clients whose notes this sweep ends: those noted before its first
        // slice. A client deleted meanwhile has its own sweep, which reads every
        // token after its families were noted.
        let clients: Vec<String> = match client {
            Some(c) => vec![c],
            None => {
                self.write(|tx| {
                    let mut stmt = tx.prepare("SELECT DISTINCT client_id FROM refresh_sweep")?;
                    let rows = stmt.query_map([], |r| r.get(0))?;
                    Ok(rows.collect::<Result<_, _>>()?)
                })
                .await?
            }
        };
        if clients.is_empty() {
            return Ok(0);
        }
        let mut after = String::new();
        let (mut deleted, mut slices, mut longest) = (0, 0, std::time::Duration::ZERO);
        loop {
            let from = std::mem::take(&mut after);
            let (n, last, took) = self
                .write(move |tx| {
                    let start = std::time::Instant::now();
                    let (n, last) = sweep_slice(tx, &from, slice)?;
                    Ok((n, last, start.elapsed()))
                })
                .await?;
            (deleted, slices, longest) = (deleted + n, slices + 1, longest.max(took));
            match last {
                Some(last) => after = last,
                None => break,
            }
        }
        tracing::debug!(
            refresh_tokens = deleted,
            slices,
            longest_slice_ms = longest.as_millis(),
            "swept a deleted client's refresh tokens"
        );
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
        .await?;
        Ok(deleted)
    }

    async fn sweep_pending(&self) -> StoreResult<bool> {
        self.read(|c| {
            Ok(c.prepare_cached("SELECT 1 FROM refresh_sweep LIMIT 1")?
                .query_row([], |_| Ok(()))
                .optional()?
                .is_some())
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
