//! The refresh sweep (migration 16), shared by both stores: a deleted client's
//! refresh tokens are removed after the delete has committed, a slice of keys
//! per transaction; a sweep cut short is finished by the next pruning pass.
//! Each store supplies its statements; the order, and the rule for when a note
//! may go, are here.

use crate::StoreResult;
use async_trait::async_trait;
use std::time::Duration;

/// What one slice did.
pub(crate) struct Slice {
    /// Refresh tokens deleted.
    pub(crate) deleted: u64,
    /// The last key it read; `None` once it reached the end.
    pub(crate) last: Option<String>,
    /// The time its statements took (not its wait for the connection).
    pub(crate) took: Duration,
}

#[async_trait]
pub(crate) trait RefreshSweep: Sync {
    /// The clients whose families are noted in `refresh_sweep`.
    async fn noted_clients(&self) -> StoreResult<Vec<String>>;

    /// Deletes the refresh tokens of noted families among one slice of keys
    /// after `after` (all that are left if fewer), in its own transaction.
    async fn delete_slice(&self, after: String) -> StoreResult<Slice>;

    /// Forgets the notes of `clients`, whose sweep has read every key.
    async fn forget_noted(&self, clients: Vec<String>) -> StoreResult<()>;

    /// Walks every refresh token, deleting those of noted families, then
    /// forgets the notes of `clients`. Those must have been noted before this
    /// call: a note goes only after a walk that began once it was written, so a
    /// client deleted meanwhile keeps its notes for its own sweep. Returns the
    /// tokens deleted.
    async fn sweep_refresh_tokens(&self, clients: Vec<String>) -> StoreResult<u64> {
        let mut after = String::new();
        let (mut deleted, mut slices, mut longest) = (0, 0, Duration::ZERO);
        loop {
            let slice = self.delete_slice(std::mem::take(&mut after)).await?;
            deleted += slice.deleted;
            slices += 1;
            longest = longest.max(slice.took);
            match slice.last {
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
        self.forget_noted(clients).await?;
        Ok(deleted)
    }

    /// The sweep of a client just deleted. The client is gone and its refresh
    /// tokens unusable already, so a failure (the database stalled) is not the
    /// delete's: the next pruning pass finishes the sweep.
    async fn sweep_deleted(&self, client: String) {
        if let Err(e) = self.sweep_refresh_tokens(vec![client]).await {
            tracing::warn!(error = %e, "a deleted client's refresh tokens are left for the next pruning pass");
        }
    }

    /// Finishes a sweep cut short (the process stopped during it), if any; for
    /// the pruning pass, whose own work a failure here does not undo (the next
    /// pass tries again).
    async fn finish_cut_short_sweep(&self) {
        let resumed = async {
            let clients = self.noted_clients().await?;
            if clients.is_empty() {
                return Ok(None);
            }
            self.sweep_refresh_tokens(clients).await.map(Some)
        };
        match resumed.await {
            Ok(None) => {}
            Ok(Some(n)) => {
                tracing::info!(
                    refresh_tokens = n,
                    "a deleted client's refresh tokens removed"
                )
            }
            Err(e) => tracing::warn!(
                error = %e,
                "a deleted client's refresh tokens are left for the next pruning pass"
            ),
        }
    }
}
