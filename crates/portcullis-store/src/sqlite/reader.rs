//! Read-only connections, pooled: at most [`CONNECTIONS`] open, each kept once
//! opened (opening one and preparing its statements costs far more than waiting
//! for a read to finish).
//!
//! Two ways to read:
//! - [`Readers::with`], for point lookups on a hot path (the refresh token lookup
//!   that precedes every refresh grant): the query runs on the calling task's
//!   thread. A lookup by primary key on cached pages takes microseconds, less than
//!   handing it to the blocking pool and back (the scheduler was a tenth of the
//!   refresh grant's profile when it did). A WAL read almost never waits for a lock,
//!   and here it may not (busy timeout zero): if SQLite answers busy, the lookup is
//!   run again on the blocking pool, where it may wait.
//! - [`Readers::read`], for everything else (lists, pages, the dashboard): on the
//!   blocking pool, allowed to wait for locks, never on an async worker thread.

use super::conn::{self, Role, WRITE_BUSY_TIMEOUT};
use crate::{StoreError, StoreResult};
use rusqlite::{Connection, ErrorCode};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Most connections open at once.
const CONNECTIONS: usize = 8;

/// How long a read on the blocking pool may wait for a lock.
const BUSY_TIMEOUT: Duration = WRITE_BUSY_TIMEOUT;

/// A small pool of read-only connections.
pub(crate) struct Readers {
    path: PathBuf,
    permits: Arc<tokio::sync::Semaphore>,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(crate) fn new(path: &Path) -> Arc<Self> {
        Arc::new(Self {
            path: path.to_owned(),
            permits: Arc::new(tokio::sync::Semaphore::new(CONNECTIONS)),
            idle: Mutex::new(Vec::with_capacity(CONNECTIONS)),
        })
    }

    fn take(&self) -> StoreResult<Connection> {
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match pooled {
            Some(c) => Ok(c),
            None => conn::open(&self.path, Role::Reader),
        }
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
    }

    /// Runs `f` with a pooled connection on this thread, or, if SQLite answers
    /// busy, again on the blocking pool with a busy timeout.
    pub(crate) async fn with<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl Fn(&Connection) -> rusqlite::Result<R> + Send + 'static,
    ) -> StoreResult<R> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Backend("the read pool is closed".into()))?;
        let conn = self.take()?;
        let result = f(&conn);
        let busy = matches!(
            &result,
            Err(rusqlite::Error::SqliteFailure(e, _))
                if matches!(e.code, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
        );
        if !busy {
            self.give_back(conn);
            return Ok(result?);
        }
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            conn.busy_timeout(BUSY_TIMEOUT)?;
            let result = f(&conn);
            conn.busy_timeout(Duration::ZERO)?;
            this.give_back(conn);
            Ok(result?)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("read task failed: {e}")))?
    }

    /// Runs `f` with a pooled connection on the blocking pool, allowed to wait for
    /// locks.
    pub(crate) async fn read<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    ) -> StoreResult<R> {
        let permit = Arc::clone(&self.permits)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Backend("the read pool is closed".into()))?;
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let conn = this.take()?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            let result = f(&conn);
            conn.busy_timeout(Duration::ZERO)?;
            this.give_back(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Backend(format!("read task failed: {e}")))?
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A database file readers can open (WAL, one table).
    fn database(dir: &Path) -> PathBuf {
        let path = dir.join("r.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x INTEGER);")
            .unwrap();
        path
    }

    fn busy(code: i32) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    fn busy_timeout(conn: &Connection) -> rusqlite::Result<i64> {
        conn.query_row("PRAGMA busy_timeout", [], |r| r.get(0))
    }

    /// SQLite answering busy cannot be provoked for a WAL reader (every open
    /// connection holds the shared lock an exclusive locker would need), so the
    /// query itself answers busy once: the lookup must be run again, off the
    /// calling thread, allowed to wait, and the connection go back to the pool
    /// as it was.
    #[tokio::test]
    async fn a_busy_read_is_retried_on_the_blocking_pool_with_a_timeout() {
        for code in [rusqlite::ffi::SQLITE_BUSY, rusqlite::ffi::SQLITE_LOCKED] {
            let dir = tempfile::tempdir().unwrap();
            let readers = Readers::new(&database(dir.path()));
            let calls = Arc::new(AtomicUsize::new(0));
            let caller = std::thread::current().id();
            let seen = Arc::clone(&calls);
            let (timeout, thread) = readers
                .with(move |conn| {
                    if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                        assert_eq!(busy_timeout(conn)?, 0, "the first try may not wait");
                        return Err(busy(code));
                    }
                    Ok((busy_timeout(conn)?, std::thread::current().id()))
                })
                .await
                .unwrap();
            assert_eq!(calls.load(Ordering::SeqCst), 2);
            assert_eq!(
                timeout,
                i64::try_from(BUSY_TIMEOUT.as_millis()).unwrap(),
                "the retry waits for locks"
            );
            assert_ne!(thread, caller, "the retry runs on the blocking pool");

            let pooled = readers.idle.lock().unwrap().len();
            assert_eq!(pooled, 1, "the connection goes back to the pool");
            let again = readers.with(busy_timeout).await.unwrap();
            assert_eq!(again, 0, "and without the retry's timeout");
        }
    }

    #[tokio::test]
    async fn other_errors_are_not_retried_and_still_return_the_connection() {
        let dir = tempfile::tempdir().unwrap();
        let readers = Readers::new(&database(dir.path()));
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&calls);
        let err = readers
            .with(move |conn| {
                seen.fetch_add(1, Ordering::SeqCst);
                conn.query_row("SELECT x FROM missing", [], |r| r.get::<_, i64>(0))
            })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("no such table"), "{err}");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(readers.idle.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_retry_that_is_still_busy_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let readers = Readers::new(&database(dir.path()));
        let err = readers
            .with(|_conn| Err::<(), _>(busy(rusqlite::ffi::SQLITE_BUSY)))
            .await
            .unwrap_err();
        // A lock held too long is the database being unavailable, not a bug.
        assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
        assert_eq!(readers.idle.lock().unwrap().len(), 1);
        assert_eq!(readers.with(busy_timeout).await.unwrap(), 0);
    }
}
