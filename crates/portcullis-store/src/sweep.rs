//! What both stores share of the refresh sweep (migration 16): a deleted
//! client's refresh tokens are removed after the delete has committed, a slice
//! of keys per transaction, by [`RefreshSweep::sweep_refresh_tokens`]; a sweep
//! cut short is finished by the next pruning pass.

use crate::StoreResult;
use async_trait::async_trait;

#[async_trait]
pub(crate) trait RefreshSweep: Sync {
    /// Sweeps the refresh tokens of the families noted for `client`, or of every
    /// family noted (a sweep cut short, when `client` is `None`), and forgets
    /// those families when it has read every refresh token. Returns the tokens
    /// deleted.
    async fn sweep_refresh_tokens(&self, client: Option<String>) -> StoreResult<u64>;

    /// Whether a sweep was cut short (the process stopped during it).
    async fn sweep_pending(&self) -> StoreResult<bool>;

    /// The sweep of a client just deleted. The client is gone and its refresh
    /// tokens unusable already, so a failure (the database stalled) is not the
    /// delete's: the next pruning pass finishes the sweep.
    async fn sweep_deleted(&self, client: String) {
        if let Err(e) = self.sweep_refresh_tokens(Some(client)).await {
            tracing::warn!(error = %e, "a deleted client's refresh tokens are left for the next pruning pass");
        }
    }

    /// Finishes a sweep cut short, if any; for the pruning pass, whose own work
    /// a failure here does not undo (the next pass tries again).
    async fn finish_cut_short_sweep(&self) {
        let resumed = async {
            match self.sweep_pending().await? {
                true => self.sweep_refresh_tokens(None).await.map(Some),
                false => Ok(None),
            }
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
