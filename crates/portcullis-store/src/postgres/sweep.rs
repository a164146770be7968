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
use crate::sweep::RefreshSweep;
use async_trait::async_trait;

/// Refresh tokens a slice reads. Larger than SQLite's: a slice holds no lock
/// that a grant waits for, and from about this size PostgreSQL finds the noted
/// families with one hash of them instead of a probe per token (at 10 million
/// tokens the sweep took 11 s in slices of 10,000 and 7 s in slices of 100,000).
const SLICE: i64 = 100_000;

#[async_trait]
impl RefreshSweep for PgStore {
    async fn sweep_refresh_tokens(&self, client: Option<String>) -> StoreResult<u64> {
        // The clients whose notes this sweep ends: those noted before its first
        // slice. A client deleted meanwhile has its own sweep, which reads every
        // token after its families were noted.
        let clients: Vec<String> = match client {
            Some(c) => vec![c],
            None => in_tx!(self, |tx| {
                let rows = tx
                    .query("SELECT DISTINCT client_id FROM refresh_sweep", &[])
                    .await?;
                rows.iter()
                    .map(|r| r.try_get(0).map_err(Into::into))
                    .collect::<StoreResult<Vec<String>>>()
            })?,
        };
        if clients.is_empty() {
            return Ok(0);
        }
        let mut after = String::new();
        let mut deleted = 0;
        loop {
            let last: Option<String> = in_tx!(self, |tx| {
                let last = tx
                    .query_opt(
                        "SELECT id FROM refresh_tokens WHERE id > $1 ORDER BY id LIMIT 1 OFFSET $2",
                        &[&after, &(SLICE - 1)],
                    )
                    .await?
                    .map(|r| r.try_get::<_, String>(0))
                    .transpose()?;
                deleted += match &last {
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
                Ok(last)
            })?;
            match last {
                Some(last) => after = last,
                None => break,
            }
        }
        in_tx!(self, |tx| {
            tx.execute(
                "DELETE FROM refresh_sweep WHERE client_id = ANY($1)",
                &[&clients],
            )
            .await?;
            Ok(())
        })?;
        Ok(deleted)
    }

    async fn sweep_pending(&self) -> StoreResult<bool> {
        in_tx!(self, |tx| {
            Ok(tx
                .query_opt("SELECT 1 FROM refresh_sweep LIMIT 1", &[])
                .await?
                .is_some())
        })
    }
}
