//! The embedded SQLite store, on one driver (rusqlite): WAL, foreign keys on,
//! `synchronous = FULL` (an acknowledged write survives a crash).
//!
//! - **One writer per file** ([`writer`]): every write of this process goes to one
//!   thread that owns one connection. The hot writes (grants, refresh rotations,
//!   uploads, audit events) are group-committed, many in one transaction and one
//!   fsync; every other change runs there too, in its own `BEGIN IMMEDIATE`
//!   transaction, so no two writers of this process ever compete for the lock and
//!   no transaction reads before it takes it. Another process (the CLI, a second
//!   server on the same file) waits for the lock with a bounded busy timeout.
//! - **Readers** ([`reader`]): a small pool of read-only connections; point lookups
//!   on the hot path run on the calling thread, everything else on the blocking pool.
//! - Connection settings (PRAGMAs) are set in one place, [`conn::open`].
//!
//! The role modules ([`clients`], [`tokens`], [`revocations`], [`keys`], [`admin`],
//! [`audit`], [`data`], [`users`], [`prune`]) each implement one role trait of
//! [`crate::Store`].

mod admin;
mod audit;
mod backup;
mod clients;
mod conn;
mod data;
mod keys;
mod prune;
mod reader;
mod revocations;
mod sweep;
mod tokens;
pub use tokens::legacy_refresh_id;
mod users;
mod writer;

use crate::bound::bounded;
use crate::health::WriteHealth;
use crate::migrate::{Migration, SQLITE};
use crate::sweep::RefreshSweep;
use crate::{Pruned, Store, StoreError, StoreResult};
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use writer::WriteJob;

/// SQLite-backed [`Store`].
pub struct SqliteStore {
    writes: mpsc::Sender<WriteJob>,
    readers: Arc<reader::Readers>,
    path: PathBuf,
    health: Arc<WriteHealth>,
    /// Announced grants and queued hot jobs (see [`writer::Gathering`]).
    gathering: Arc<writer::Gathering>,
    /// Refresh tokens a slice of a deleted client's sweep reads ([`sweep`]).
    sweep_slice: i64,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SqliteStore({})", self.path.display())
    }
}

/// The file path of a `sqlite://path` URL (`sqlite:///abs/path` for absolute paths).
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let rest = rest.split('?').next().unwrap_or(rest);
    (!rest.is_empty()).then(|| PathBuf::from(rest))
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ffi;
        match &e {
            rusqlite::Error::SqliteFailure(f, _) => match f.extended_code {
                ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
                    Self::Conflict("refers to something that does not exist".into())
                }
                ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                    Self::Conflict("already exists".into())
                }
                // The disk, not the request: the same request may succeed later.
                _ if f.code == rusqlite::ErrorCode::DiskFull => {
                    Self::Unavailable("the disk is full".into())
                }
                _ if matches!(
                    f.code,
                    rusqlite::ErrorCode::SystemIoFailure
                        | rusqlite::ErrorCode::DatabaseBusy
                        | rusqlite::ErrorCode::DatabaseLocked
                        | rusqlite::ErrorCode::CannotOpen
                ) =>
                {
                    Self::Unavailable(e.to_string())
                }
                _ => Self::Backend(e.to_string()),
            },
            _ => Self::Backend(e.to_string()),
        }
    }
}

pub(crate) use crate::rows::unreadable;

/// Scopes stored as space-separated text, as a [`portcullis_core::ScopeSet`]; a
/// name that is not a scope fails the row.
pub(crate) fn scopes(text: &str) -> rusqlite::Result<portcullis_core::ScopeSet> {
    portcullis_core::ScopeSet::parse(text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Rows changed, as the `u64` [`crate::Pruned`] counts.
pub(crate) fn changed(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl SqliteStore {
    /// Opens (creating if missing, with its directory) the database at `path`.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Backend(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        // The writer opens first: it creates the file and puts it in WAL mode,
        // which the read-only connections cannot do.
        let health = Arc::new(WriteHealth::default());
        let gathering = Arc::new(writer::Gathering::default());
        let writes = writer::spawn(path, Arc::clone(&health), Arc::clone(&gathering))?;
        Ok(Self {
            writes,
            readers: reader::Readers::new(path),
            path: path.to_owned(),
            health,
            gathering,
            sweep_slice: sweep::SLICE,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Hands a hot write to the group-commit writer and waits for its commit.
    async fn submit<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<StoreResult<T>>) -> WriteJob,
    ) -> StoreResult<T> {
        let (tx, rx) = oneshot::channel();
        bounded(async {
            self.writes
                .send(job(tx))
                .await
                .map_err(|_| writer::stopped())?;
            self.gathering.queued();
            rx.await.map_err(|_| writer::stopped())?
        })
        .await
    }

    /// Runs `f` in its own `BEGIN IMMEDIATE` transaction on the writer thread, and
    /// commits it if `f` succeeds (nothing of it is kept if `f` fails).
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Transaction<'_>) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        self.on_writer(move |conn| writer::in_transaction(conn, f))
            .await
    }

    /// Runs `f` with the writer's connection, on the writer thread, within
    /// [`crate::OP_TIMEOUT`].
    async fn on_writer<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        bounded(self.on_writer_unbounded(f)).await
    }

    /// Runs `f` with the writer's connection, on the writer thread, however long
    /// it takes (migrations).
    async fn on_writer_unbounded<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let (tx, rx) = oneshot::channel();
        let health = Arc::clone(&self.health);
        let job = WriteJob::Txn(Box::new(move |conn: &mut Connection| {
            // Nobody waits any more (the caller was told it timed out): do not
            // make a change it was told failed.
            if tx.is_closed() {
                return;
            }
            health.start();
            let result = f(conn);
            health.finish(&result);
            let _ = tx.send(result);
        }));
        self.writes.send(job).await.map_err(|_| writer::stopped())?;
        rx.await.map_err(|_| writer::stopped())?
    }

    /// Runs a read on a pooled read-only connection on the blocking pool.
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        bounded(self.readers.read(f)).await
    }
}

/// Applies the migrations not yet recorded, each in its own transaction.
fn apply_migrations(conn: &mut Connection, migrations: &[Migration]) -> StoreResult<usize> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, \
         name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )?;
    let applied: Vec<i64> = conn
        .prepare("SELECT version FROM schema_migrations")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let newest_known = migrations.iter().map(|m| m.0).max().unwrap_or(0);
    if let Some(v) = applied.iter().find(|v| **v > newest_known) {
        return Err(StoreError::Backend(format!(
            "the database has schema version {v}, newer than this binary knows ({newest_known}); \
             upgrade portcullis"
        )));
    }
    let mut ran = 0;
    for (version, name, sql) in migrations {
        if applied.contains(version) {
            continue;
        }
        writer::in_transaction(conn, |tx| {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) \
                 VALUES (?1, ?2, unixepoch())",
                params![version, name],
            )?;
            Ok(())
        })?;
        ran += 1;
    }
    Ok(ran)
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> StoreResult<usize> {
        // Not bounded: a migration may rewrite a large table.
        self.on_writer_unbounded(|conn| apply_migrations(conn, SQLITE))
            .await
    }

    async fn schema_version(&self) -> StoreResult<Option<i64>> {
        self.read(|c| {
            let exists: bool = c.query_row(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' \
                 AND name = 'schema_migrations'",
                [],
                |r| r.get(0),
            )?;
            if !exists {
                return Ok(None);
            }
            Ok(
                c.query_row("SELECT max(version) FROM schema_migrations", [], |r| {
                    r.get(0)
                })?,
            )
        })
        .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.health.check(self).await?;
        self.read(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
            .await
    }

    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        let key = key.to_owned();
        self.read(move |c| {
            Ok(
                c.prepare_cached("SELECT value FROM settings WHERE key = ?1")?
                    .query_row([key], |r| r.get(0))
                    .optional()?,
            )
        })
        .await
    }

    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params![key, value],
            )?;
            Ok(())
        })
        .await
    }

    async fn init_setting(&self, key: &str, value: &str) -> StoreResult<String> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
                params![key, value],
            )?;
            Ok(
                tx.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                    r.get(0)
                })?,
            )
        })
        .await
    }

    async fn prune(&self, now: i64) -> StoreResult<Pruned> {
        let pruned = self.write(move |tx| prune::prune(tx, now)).await?;
        // A deleted client's sweep cut short (migration 16) ends here.
        self.finish_cut_short_sweep().await;
        Ok(pruned)
    }

    async fn backup_to(&self, dest: &Path) -> StoreResult<()> {
        let dest = dest.to_owned();
        self.read(move |src| backup::copy(src, &dest)).await
    }

    fn engine(&self) -> &'static str {
        "sqlite"
    }
}

#[cfg(test)]
mod tests;
