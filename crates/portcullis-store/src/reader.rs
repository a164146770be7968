//! Synchronous read connections for the one read on a hot path: the refresh token
//! lookup that precedes every refresh grant (and revocation or introspection of a
//! refresh token). The async driver took a pool acquire, a hop to its worker thread
//! and a row decoded by column name, which cost the refresh grant more CPU than the
//! lookup itself; so this is a pooled rusqlite connection with its cached prepared
//! statement.
//!
//! The query runs on the calling task's thread: a point lookup by primary key on
//! pages SQLite or the OS already caches takes microseconds, less than signing the
//! token that follows, and handing it to the blocking pool and back cost more than
//! that in thread wake-ups (the scheduler was a tenth of the refresh grant's profile).
//! A read in WAL mode almost never waits for a lock, and it is not allowed to wait
//! here (a busy timeout of zero): if SQLite answers busy, the lookup is run again on
//! the blocking pool, where it may wait as long as the other connections do.

use crate::{FamilyRecord, RefreshLookup, StoreError, StoreResult};
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Most connections open at once; each is kept once opened. Queries beyond this
/// wait for one: opening a connection (and preparing its statement) costs far more
/// than waiting for a point lookup to finish.
const CONNECTIONS: usize = 8;

/// How long a lookup moved to the blocking pool may wait for a lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// A small pool of read-only connections.
pub(crate) struct Readers {
    path: PathBuf,
    permits: tokio::sync::Semaphore,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(crate) fn new(path: &Path) -> Arc<Self> {
        Arc::new(Self {
            path: path.to_owned(),
            permits: tokio::sync::Semaphore::new(CONNECTIONS),
            idle: Mutex::new(Vec::with_capacity(CONNECTIONS)),
        })
    }

    fn open(&self) -> StoreResult<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(Duration::ZERO)?;
        // As the pooled sqlx readers (see `SqliteStore::open`).
        conn.execute_batch("PRAGMA cache_size = -16384; PRAGMA mmap_size = 0;")?;
        Ok(conn)
    }

    fn take(&self) -> StoreResult<Connection> {
        let pooled = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match pooled {
            Some(c) => Ok(c),
            None => self.open(),
        }
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
    }

    /// Runs `f` with a pooled connection on this thread, or, if SQLite answers
    /// busy, again on the blocking pool with a busy timeout.
    async fn with<R: Send + 'static>(
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

    /// A refresh token by its selector, with its family.
    pub(crate) async fn refresh_token(
        self: &Arc<Self>,
        id: &str,
    ) -> StoreResult<Option<RefreshLookup>> {
        let id = id.to_owned();
        let found = self
            .with(move |conn| {
                let mut stmt = conn.prepare_cached(
                    "SELECT r.token_hash, r.scopes, r.expires_at, r.spent_at, r.grace_response, \
                     f.id, f.client_id, f.label, f.subject, f.scopes, f.grant_type, f.created_at, \
                     f.last_used_at, f.expires_at, f.revoked_at, \
                     s.id IS NOT NULL AND s.spent_at IS NULL \
                     FROM refresh_tokens r JOIN token_families f ON f.id = r.family_id \
                     LEFT JOIN refresh_tokens s ON s.id = r.replaced_by \
                     WHERE r.id = ?1",
                )?;
                stmt.query_row([&id], |r| {
                    let hash: Vec<u8> = r.get(0)?;
                    let scopes: String = r.get(1)?;
                    let family_scopes: String = r.get(9)?;
                    Ok((
                        hash,
                        RefreshLookup {
                            id: id.clone(),
                            token_hash: [0; 32],
                            family: FamilyRecord {
                                id: r.get(5)?,
                                client_id: r.get(6)?,
                                label: r.get(7)?,
                                subject: r.get(8)?,
                                scopes: crate::sqlite::split_scopes(&family_scopes),
                                grant_type: r.get(10)?,
                                created_at: r.get(11)?,
                                last_used_at: r.get(12)?,
                                expires_at: r.get(13)?,
                                revoked_at: r.get(14)?,
                            },
                            scopes: crate::sqlite::split_scopes(&scopes),
                            expires_at: r.get(2)?,
                            spent_at: r.get(3)?,
                            grace_response: r.get(4)?,
                            successor_unused: r.get(15)?,
                        },
                    ))
                })
                .optional()
            })
            .await?;
        found
            .map(|(hash, mut lookup)| {
                lookup.token_hash = hash.try_into().map_err(|_| {
                    StoreError::Backend("unreadable stored refresh token hash".into())
                })?;
                Ok(lookup)
            })
            .transpose()
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
            assert_eq!(timeout, 10_000, "the retry waits for locks");
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
        assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
        assert_eq!(readers.idle.lock().unwrap().len(), 1);
        assert_eq!(readers.with(busy_timeout).await.unwrap(), 0);
    }
}
