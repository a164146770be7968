//! Every wait for the database is bounded: a call that cannot get its work done
//! within [`OP_TIMEOUT`] fails with [`StoreError::Unavailable`], which every HTTP
//! surface answers with 503 and `Retry-After`, so a stalled disk or an unreachable
//! database never hangs a request.

use crate::{StoreError, StoreResult};
use std::future::Future;
use std::time::Duration;

/// The longest any store call waits (a connection, a lock, a statement, a
/// commit) before it fails as unavailable.
pub const OP_TIMEOUT: Duration = Duration::from_millis(4500);

/// Runs `f` within [`OP_TIMEOUT`]; past it, the call fails as unavailable (the
/// work may still complete later: a write that timed out may have committed).
pub(crate) async fn bounded<T>(f: impl Future<Output = StoreResult<T>>) -> StoreResult<T> {
    tokio::time::timeout(OP_TIMEOUT, f)
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the database did not answer in time".into(),
            ))
        })
}
