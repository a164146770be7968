//! Whether this process's writes are getting through, for readiness: a node whose
//! last write failed for want of the database (a full disk, an I/O error, an
//! unreachable server) or whose current write has waited longer than
//! [`OP_TIMEOUT`] (a stalled disk) is not ready, even if reads still work; it is
//! ready again once a write succeeds (readiness itself tries one, so a node that
//! the load balancer stopped sending writes to can still recover).

use crate::{OP_TIMEOUT, Store, StoreError, StoreResult};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// The state of this process's writes.
#[derive(Debug)]
pub(crate) struct WriteHealth {
    epoch: Instant,
    /// When the write under way started (ms since `epoch`, plus one); 0: none.
    busy_since: AtomicU64,
    /// The last write failed as unavailable.
    failed: AtomicBool,
}

impl Default for WriteHealth {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            busy_since: AtomicU64::new(0),
            failed: AtomicBool::new(false),
        }
    }
}

impl WriteHealth {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// A write starts.
    pub(crate) fn start(&self) {
        self.busy_since
            .store(self.now_ms().saturating_add(1), Ordering::Release);
    }

    /// A write ended with `result`.
    pub(crate) fn finish<T>(&self, result: &StoreResult<T>) {
        self.busy_since.store(0, Ordering::Release);
        match result {
            Ok(_) => self.failed.store(false, Ordering::Release),
            Err(StoreError::Unavailable(_)) => self.failed.store(true, Ordering::Release),
            Err(_) => {}
        }
    }

    /// Why writes are not getting through, if they are not: one has waited longer
    /// than [`OP_TIMEOUT`], or the last one failed as unavailable.
    pub(crate) fn problem(&self) -> Option<String> {
        let since = self.busy_since.load(Ordering::Acquire);
        if since > 0 {
            let waited = self.now_ms().saturating_sub(since - 1);
            if u128::from(waited) > OP_TIMEOUT.as_millis() {
                return Some(format!("a write has waited {waited} ms for the database"));
            }
        }
        self.failed
            .load(Ordering::Acquire)
            .then(|| "the last write failed".to_owned())
    }

    /// Whether writes get through, for `ping`: an error while one is stuck (another
    /// would queue behind it); after a failed one, a probe write (a setting) whose
    /// success makes the store ready again.
    pub(crate) async fn check<S: Store + ?Sized>(&self, store: &S) -> StoreResult<()> {
        let Some(problem) = self.problem() else {
            return Ok(());
        };
        if !self.failed.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable(problem));
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let probe = store.put_setting("readiness_probe", &now.to_string()).await;
        self.finish(&probe);
        probe
    }
}
