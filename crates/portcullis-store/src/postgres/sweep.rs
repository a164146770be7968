//! A deleted client's refresh tokens, removed a slice at a time (migration 16).
//!
//! Refresh tokens have no index by family, so finding a client's reads every
//! refresh token. Done inside the delete's transaction, that held the client's
//! exclusive lock (and with it every grant batch that carried one of its grants)
//! for the whole read, and at 10 million tokens could outlast the store's
//! timeout, so that the delete was rolled back. The delete instead notes the
//! client's families in `refresh_sweep` and deletes the client and its
//! families; from its commit on the tokens cannot be used (a refresh token is
//! found through its family). The sweep then walks the refresh tokens in key
//! order, a slice per transaction, deleting those of a noted family.

use super::PgStore;
use crate::StoreResult;
use crate::sweep::{RefreshSweep, Slice};
use async_trait::async_trait;
use std::time::Instant;

/// Refresh tokens a slice reads. Larger than SQLite's: a slice holds no lock
/// that a grant waits for, and from about this size PostgreSQL finds the noted
/// families with one hash of them instead of a probe per token (at 10 million
/// tokens the sweep took 11 s in slices of 10,000 and 7 s in slices of 100,000).
const SLICE: i64 = 100_000;

#[async_trait]
impl RefreshSweep for PgStore {
    async fn noted_clients(&self) -> StoreResult<Vec<String>> {
        in_tx!(self, |tx| {
            let rows = tx
                .query("SELECT DISTINCT client_id FROM refresh_sweep", &[])
                .await?;
            rows.iter()
                .map(|r| r.try_get(0).map_err(Into::into))
                .collect::<StoreResult<Vec<String>>>()
        })
    }

    async fn delete_slice(&self, after: String) -> StoreResult<Slice> {
        in_tx!(self, |tx| {
            let start = Instant::now();
            let last = tx
                .query_opt(
                    "SELECT id FROM refresh_tokens WHERE id > $1 ORDER BY id LIMIT 1 OFFSET $2",
                    &[&after, &(SLICE - 1)],
                )
                .await?
                .map(|r| r.try_get::<_, String>(0))
                .transpose()?;
            let deleted = match &last {
                Some(last) => {
                    tx.execute(
                        "DELETE FROM refresh_tokens WHERE id > $1 AND id <= $2 \
                         AND family_id IN (SELECT family_id FROM refresh_sweep)",
                        &[&after, last],
                    )
                    .await?
                }
                None => {
                    tx.execute(
                        "DELETE FROM refresh_tokens WHERE id > $1 \
                         AND family_id IN (SELECT family_id FROM refresh_sweep)",
                        &[&after],
                    )
                    .await?
                }
            };
            Ok(Slice {
                deleted,
                last,
                took: start.elapsed(),
            })
        })
    }

    async fn forget_noted(&self, clients: Vec<String>) -> StoreResult<()> {
        in_tx!(self, |tx| {
            tx.execute(
                "DELETE FROM refresh_sweep WHERE client_id = ANY($1)",
                &[&clients],
            )
            .await?;
            Ok(())
        })
    }
}
