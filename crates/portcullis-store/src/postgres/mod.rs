//! The PostgreSQL store, for many nodes sharing one database (tokio-postgres with
//! a deadpool pool of `--database-pool-size` connections).
//!
//! - **Hot writes** (grants, refresh rotations, uploads, audit events) are
//!   group-committed by a few writer tasks ([`writer`]): each takes every job
//!   waiting, applies them in one transaction with one multi-row statement per
//!   table, and answers each caller after `COMMIT` returns (`synchronous_commit`
//!   as the server has it: on by default, so an acknowledged write is on disk).
//! - **The rules SQLite gets from its single writer** come from row locks here: a
//!   grant batch reads its clients `FOR SHARE`, so a disable or delete (which
//!   updates the client row) commits either before it (and the batch sees the
//!   client inactive) or after it (and revokes what it issued); a refresh spends
//!   its token with a conditional `UPDATE`, so of N concurrent refreshes on any
//!   number of nodes exactly one changes the row.
//! - **Every wait is bounded** ([`OP_TIMEOUT`]): a database that is down or
//!   stalled makes calls fail with [`StoreError::Unavailable`] within seconds,
//!   never hang; the pool reconnects by itself when it returns.
//! - **Changes are announced** ([`listen`]): the transactions that change what
//!   nodes cache (revocations, clients, keys, scopes) `NOTIFY` the other nodes.
//! - **One node at a time** runs migrations (a session advisory lock) and
//!   housekeeping (transaction advisory locks; see [`lock`]).

/// Runs a block in a transaction on a pooled connection, within [`OP_TIMEOUT`]:
/// `in_tx!(self, |tx| { …; Ok(value) })` commits if the block returns `Ok`
/// (nothing of it is kept otherwise). `tx` is a `&Transaction`.
macro_rules! in_tx {
    ($store:expr, |$tx:ident| $body:block) => {
        $crate::postgres::bounded(async {
            let mut conn = $store.conn().await?;
            let txn = conn.transaction().await?;
            let value: $crate::StoreResult<_> = {
                let $tx = &txn;
                async { $body }.await
            };
            let value = value?;
            txn.commit().await?;
            Ok(value)
        })
        .await
    };
}

mod admin;
mod audit;
mod clients;
mod data;
mod keys;
mod listen;
mod prune;
mod revocations;
mod sweep;
mod tokens;
mod users;
mod writer;

use crate::migrate::{Migration, POSTGRES};
use crate::sweep::RefreshSweep;
use crate::{Pruned, Store, StoreError, StoreEvent, StoreResult};
use async_trait::async_trait;
use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime, Transaction,
};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;
use writer::HotJob;

pub use crate::bound::OP_TIMEOUT;
pub(crate) use crate::bound::bounded;

/// Group-commit writers per node: two keep a commit in flight while the next
/// batch forms. More make each commit carry fewer writes, and PostgreSQL's cost is
/// mostly per commit (about half a millisecond of its CPU here, however many
/// grants it carries), so more writers, on one node or spread over several, cost
/// throughput where PostgreSQL shares the cores (docs/BENCHMARKS.md).
const WRITERS: usize = 1;

/// The longest a connection attempt takes.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Server-side limits on every connection: no statement or open transaction of
/// ours holds locks for long, which also bounds how late a revocation can commit
/// after it was written (see [`revocations`]).
const SESSION_OPTIONS: &str = "-c statement_timeout=10000 -c idle_in_transaction_session_timeout=10000 \
     -c lock_timeout=5000 -c client_min_messages=warning";

/// Advisory lock keys (one namespace, `pg_advisory_*lock(key)`).
pub(crate) mod lock {
    /// Held (session) while migrations run.
    pub const MIGRATIONS: i64 = 0x706f_7274_0001;
    /// Held (transaction) by the node pruning.
    pub const HOUSEKEEPING: i64 = 0x706f_7274_0002;
    /// Held (transaction) while a signing key is added.
    pub const KEYS: i64 = 0x706f_7274_0003;
    /// Held (transaction) by the node pruning the audit log.
    pub const AUDIT_RETENTION: i64 = 0x706f_7274_0004;
    /// The namespace of the clients' locks, `(CLIENTS, hashtext(client id))`: a
    /// grant or refresh batch holds its clients' locks shared; a change of a
    /// client's status (disable, enable, delete) holds its lock exclusively, so it
    /// commits either before a batch reads the status or after the batch commits.
    /// Unlike a row lock, it writes nothing (no WAL, no multixact).
    pub const CLIENTS: i32 = 0x706f_7274;
}

/// PostgreSQL-backed [`Store`].
pub struct PgStore {
    pool: Pool,
    writes: mpsc::Sender<HotJob>,
    events: broadcast::Sender<StoreEvent>,
    display: String,
    health: std::sync::Arc<crate::health::WriteHealth>,
    /// The change listener runs while this lives.
    _alive: std::sync::Arc<()>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgStore({})", self.display)
    }
}

/// Whether `url` names a PostgreSQL database.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// `url` without its password, for messages.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_owned(),
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        if let Some(db) = e.as_db_error() {
            let code = db.code();
            if *code == SqlState::UNIQUE_VIOLATION {
                return Self::Conflict("already exists".into());
            }
            if *code == SqlState::FOREIGN_KEY_VIOLATION {
                return Self::Conflict("refers to something that does not exist".into());
            }
            let transient = [
                SqlState::QUERY_CANCELED,
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
                SqlState::TOO_MANY_CONNECTIONS,
                SqlState::T_R_SERIALIZATION_FAILURE,
                SqlState::T_R_DEADLOCK_DETECTED,
                SqlState::LOCK_NOT_AVAILABLE,
                SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT,
                SqlState::DISK_FULL,
                SqlState::INSUFFICIENT_RESOURCES,
            ];
            if transient.contains(code) {
                return Self::Unavailable(db.message().to_owned());
            }
            return Self::Backend(format!("{}: {}", code.code(), db.message()));
        }
        // Not an answer from the server: the connection failed or closed.
        match std::error::Error::source(&e) {
            Some(cause) => Self::Unavailable(format!("{e}: {cause}")),
            None if e.is_closed() => Self::Unavailable(e.to_string()),
            None => Self::Backend(e.to_string()),
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        use deadpool_postgres::PoolError;
        match e {
            PoolError::Backend(e) => match StoreError::from(e) {
                Self::Unavailable(m) | Self::Backend(m) => Self::Unavailable(m),
                other => other,
            },
            PoolError::Timeout(_) => {
                Self::Unavailable("no PostgreSQL connection became free in time".into())
            }
            other => Self::Unavailable(format!("cannot connect to PostgreSQL: {other}")),
        }
    }
}

/// Scopes stored as space-separated text.
pub(crate) fn scopes(text: &str) -> StoreResult<portcullis_core::ScopeSet> {
    portcullis_core::ScopeSet::parse(text).map_err(|_| crate::rows::unreadable("scopes"))
}

/// A 32-byte hash column.
pub(crate) fn hash32(bytes: &[u8], what: &str) -> StoreResult<[u8; 32]> {
    <[u8; 32]>::try_from(bytes).map_err(|_| crate::rows::unreadable(what))
}

/// Announces `what` (a [`listen`] payload) to every node when `tx` commits.
pub(crate) async fn notify(tx: &Transaction<'_>, what: &str) -> StoreResult<()> {
    let stmt = tx
        .prepare_cached("SELECT pg_notify('portcullis', $1)")
        .await?;
    tx.execute(&stmt, &[&what]).await?;
    Ok(())
}

impl PgStore {
    /// Connects to the database at `url` with a pool of `pool_size` connections
    /// (at least 2), checking that it answers; starts the writer tasks and the
    /// change listener.
    pub async fn connect(url: &str, pool_size: usize) -> StoreResult<Self> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::Backend(format!("invalid database URL {:?}: {e}", redact(url)))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("portcullis");
        }
        let options = match config.get_options() {
            Some(o) => format!("{o} {SESSION_OPTIONS}"),
            None => SESSION_OPTIONS.to_owned(),
        };
        config.options(&options);
        let display = redact(url);
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool_size = pool_size.max(2);
        let pool = Pool::builder(manager)
            .max_size(pool_size)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(OP_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Backend(format!("cannot build the connection pool: {e}")))?;
        // Fail now, with the reason, if the database cannot be reached.
        let probe = pool.get().await.map_err(|e| match StoreError::from(e) {
            StoreError::Unavailable(m) => {
                StoreError::Unavailable(format!("cannot reach PostgreSQL at {display}: {m}"))
            }
            other => other,
        })?;
        drop(probe);
        let (events, _) = broadcast::channel(1024);
        let alive = std::sync::Arc::new(());
        let listening = listen::spawn(config, events.clone(), std::sync::Arc::downgrade(&alive));
        // Changes committed from now on are announced to this store (if the listener
        // cannot connect in time, the periodic reads still bring them).
        if tokio::time::timeout(CONNECT_TIMEOUT, listening)
            .await
            .is_err()
        {
            tracing::warn!("not listening for other nodes' changes yet; reading them periodically");
        }
        let health = std::sync::Arc::new(crate::health::WriteHealth::default());
        let writes = writer::spawn(pool.clone(), WRITERS, std::sync::Arc::clone(&health));
        Ok(Self {
            pool,
            writes,
            events,
            display,
            health,
            _alive: alive,
        })
    }

    /// A pooled connection.
    pub(crate) async fn conn(&self) -> StoreResult<Object> {
        Ok(self.pool.get().await?)
    }

    /// Hands a hot write to the group-commit writers and waits for its commit.
    async fn submit<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<StoreResult<T>>) -> HotJob,
    ) -> StoreResult<T> {
        let (tx, rx) = oneshot::channel();
        bounded(async {
            self.writes
                .send(job(tx))
                .await
                .map_err(|_| writer::stopped())?;
            rx.await.map_err(|_| writer::stopped())?
        })
        .await
    }
}

/// Applies the migrations not yet recorded, each in its own transaction, holding
/// the migration lock so that nodes starting together apply each once.
async fn apply_migrations(conn: &mut Object, migrations: &[Migration]) -> StoreResult<usize> {
    conn.batch_execute("SET statement_timeout = 0; SET lock_timeout = 0")
        .await?;
    conn.execute("SELECT pg_advisory_lock($1)", &[&lock::MIGRATIONS])
        .await?;
    let result = apply_locked(conn, migrations).await;
    // Unlocking can only fail with the connection, which releases the lock anyway.
    let _ = conn
        .execute("SELECT pg_advisory_unlock($1)", &[&lock::MIGRATIONS])
        .await;
    let _ = conn
        .batch_execute("RESET statement_timeout; RESET lock_timeout")
        .await;
    result
}

async fn apply_locked(conn: &mut Object, migrations: &[Migration]) -> StoreResult<usize> {
    conn.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, \
         name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .await?;
    let applied: Vec<i64> = conn
        .query("SELECT version FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|r| r.try_get(0))
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
        let tx = conn.transaction().await?;
        tx.batch_execute(sql).await?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied_at) \
             VALUES ($1, $2, extract(epoch FROM now())::BIGINT)",
            &[version, name],
        )
        .await?;
        tx.commit().await?;
        ran += 1;
    }
    Ok(ran)
}

#[async_trait]
impl Store for PgStore {
    async fn migrate(&self) -> StoreResult<usize> {
        // Not bounded: a migration may rewrite a large table.
        let mut conn = self.conn().await?;
        apply_migrations(&mut conn, POSTGRES).await
    }

    async fn schema_version(&self) -> StoreResult<Option<i64>> {
        bounded(async {
            let c = self.conn().await?;
            let exists: bool = c
                .query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])
                .await?
                .try_get(0)?;
            if !exists {
                return Ok(None);
            }
            Ok(
                c.query_one("SELECT max(version) FROM schema_migrations", &[])
                    .await?
                    .try_get(0)?,
            )
        })
        .await
    }

    async fn ping(&self) -> StoreResult<()> {
        self.health.check(self).await?;
        bounded(async {
            self.conn().await?.simple_query("SELECT 1").await?;
            Ok(())
        })
        .await
    }

    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        bounded(async {
            let c = self.conn().await?;
            let stmt = c
                .prepare_cached("SELECT value FROM settings WHERE key = $1")
                .await?;
            Ok(c.query_opt(&stmt, &[&key])
                .await?
                .map(|r| r.try_get(0))
                .transpose()?)
        })
        .await
    }

    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        bounded(async {
            let c = self.conn().await?;
            // Only a change is written: every node records its issuer at start.
            c.execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value \
                 WHERE settings.value IS DISTINCT FROM excluded.value",
                &[&key, &value],
            )
            .await?;
            Ok(())
        })
        .await
    }

    async fn init_setting(&self, key: &str, value: &str) -> StoreResult<String> {
        bounded(async {
            let c = self.conn().await?;
            c.execute(
                "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
                &[&key, &value],
            )
            .await?;
            // A statement of its own: its snapshot sees the row that won, even one
            // another process committed while the insert above waited for it.
            let row = c
                .query_one("SELECT value FROM settings WHERE key = $1", &[&key])
                .await?;
            Ok(row.try_get(0)?)
        })
        .await
    }

    async fn prune(&self, now: i64) -> StoreResult<Pruned> {
        let pruned = bounded(async {
            let mut c = self.conn().await?;
            prune::prune(&mut c, now).await
        })
        .await?;
        // A deleted client's sweep cut short (migration 16) ends here.
        self.finish_cut_short_sweep().await;
        Ok(pruned)
    }

    async fn backup_to(&self, _dest: &std::path::Path) -> StoreResult<()> {
        Err(StoreError::Backend(
            "`portcullis backup` copies a SQLite database; back up PostgreSQL with pg_dump \
             or pg_basebackup (see docs/DEPLOYMENT.md)"
                .into(),
        ))
    }

    fn events(&self) -> Option<broadcast::Receiver<StoreEvent>> {
        Some(self.events.subscribe())
    }

    fn engine(&self) -> &'static str {
        "postgres"
    }
}
