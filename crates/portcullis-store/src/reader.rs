//! Synchronous read connections for the one read on a hot path: the refresh token
//! lookup that precedes every refresh grant (and revocation or introspection of a
//! refresh token). A query runs on tokio's blocking pool with a pooled rusqlite
//! connection and its cached prepared statement: one hand-off, where the async
//! driver took a pool acquire, a hop to its worker thread and a row decoded by
//! column name, which cost the refresh grant more CPU than the lookup itself.

use crate::{FamilyRecord, RefreshLookup, StoreError, StoreResult};
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Most connections open at once; each is kept once opened. Queries beyond this
/// wait for one: opening a connection (and preparing its statement) costs far more
/// than waiting for a point lookup to finish.
const CONNECTIONS: usize = 8;

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
        conn.busy_timeout(Duration::from_secs(10))?;
        // As the pooled sqlx readers (see `SqliteStore::open`).
        conn.execute_batch("PRAGMA cache_size = -16384; PRAGMA mmap_size = 0;")?;
        Ok(conn)
    }

    /// Runs `f` with a connection on the blocking pool.
    async fn with<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    ) -> StoreResult<R> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| StoreError::Backend("the read pool is closed".into()))?;
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let pooled = this.idle.lock().ok().and_then(|mut idle| idle.pop());
            let conn = match pooled {
                Some(c) => c,
                None => this.open()?,
            };
            let result = f(&conn);
            if let Ok(mut idle) = this.idle.lock() {
                idle.push(conn);
            }
            result
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
        self.with(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT r.token_hash, r.scopes, r.expires_at, r.spent_at, r.grace_response, \
                 f.id, f.client_id, f.label, f.subject, f.scopes, f.grant_type, f.created_at, \
                 f.last_used_at, f.expires_at, f.revoked_at \
                 FROM refresh_tokens r JOIN token_families f ON f.id = r.family_id \
                 WHERE r.id = ?1",
            )?;
            let found = stmt
                .query_row([&id], |r| {
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
                        },
                    ))
                })
                .optional()?;
            found
                .map(|(hash, mut lookup)| {
                    lookup.token_hash = hash.try_into().map_err(|_| {
                        StoreError::Backend("unreadable stored refresh token hash".into())
                    })?;
                    Ok(lookup)
                })
                .transpose()
        })
        .await
    }
}
