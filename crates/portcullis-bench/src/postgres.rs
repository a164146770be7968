//! The PostgreSQL side of a bench run, for `--database-url postgres://…`:
//!
//! - [`BenchDatabase`]: a fresh database (`bench_<pid>_<n>`) created on the
//!   server the URL names for one deployment and dropped after it (also when the
//!   run fails or is interrupted);
//! - [`Sampler`]: what the database did in a measured window: commits of the
//!   bench database from `pg_stat_database`, transaction ids assigned, WAL
//!   written and WAL syncs;
//! - [`commit_probe`]: how many small transactions PostgreSQL commits per second
//!   on this machine with nothing else running, the ceiling the commits of N
//!   nodes add up against.
//!
//! `xact_commit` counts every committed transaction, read-only ones included,
//! and PostgreSQL 15 backends publish their counts at most once a second, so a
//! window's delta is exact to about a second's worth of one backend's commits.
//! Transaction ids are read from the current snapshot instead, at once: only
//! transactions that wrote (or locked rows) take one, and those are the commits
//! that wait for a WAL flush.

use crate::procfs;
use anyhow::{Context, bail};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;
use tokio_postgres::{Client, NoTls};

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The `n` of the next `bench_<pid>_<n>` database.
static NEXT_DATABASE: AtomicUsize = AtomicUsize::new(1);

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

/// `url` naming the database `name` instead of its own (query parameters kept):
/// `postgres://u@h:5432/postgres?x=y` → `postgres://u@h:5432/NAME?x=y`.
pub fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let Some((scheme, rest)) = url.split_once("://") else {
        bail!("{:?} is not a URL", redact(url));
    };
    let (main, query) = match rest.split_once('?') {
        Some((main, query)) => (main, Some(query)),
        None => (rest, None),
    };
    // The path starts at the first `/` after the user information (a password may hold one).
    let host_start = main.rfind('@').map_or(0, |i| i + 1);
    let host_end = main
        .get(host_start..)
        .and_then(|host| host.find('/'))
        .map_or(main.len(), |i| host_start + i);
    let authority = main.get(..host_end).unwrap_or(main);
    if authority.get(host_start..).is_none_or(str::is_empty) {
        bail!("no host in {:?}", redact(url));
    }
    let mut out = format!("{scheme}://{authority}/{name}");
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    Ok(out)
}

/// Connects (no TLS: the bench's PostgreSQL is local) and drives the connection
/// on a task of its own.
async fn connect(url: &str) -> anyhow::Result<Client> {
    let (client, connection) =
        tokio::time::timeout(CONNECT_TIMEOUT, tokio_postgres::connect(url, NoTls))
            .await
            .with_context(|| format!("no answer from {} in time", redact(url)))?
            .with_context(|| format!("connecting to {}", redact(url)))?;
    tokio::spawn(async move {
        // Its errors surface on the client's next call.
        let _ = connection.await;
    });
    Ok(client)
}

/// A database created for one deployment; dropped by [`Self::drop_now`] or,
/// failing that, when this is dropped (the servers on it must be stopped first:
/// the drop ends their sessions).
#[derive(Debug)]
pub struct BenchDatabase {
    admin_url: String,
    name: String,
    url: String,
    dropped: bool,
}

impl BenchDatabase {
    /// Creates `bench_<pid>_<n>` on the server `admin_url` names (connecting to
    /// the database it names, which is left alone).
    pub async fn create(admin_url: &str) -> anyhow::Result<Self> {
        let n = NEXT_DATABASE.fetch_add(1, Ordering::Relaxed);
        let name = format!("bench_{}_{n}", std::process::id());
        let url = with_database(admin_url, &name)?;
        let admin = connect(admin_url).await?;
        // A leftover of an earlier run whose process had the same id.
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .await
            .with_context(|| format!("dropping a leftover database {name}"))?;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .with_context(|| format!("creating the database {name}"))?;
        Ok(Self {
            admin_url: admin_url.to_owned(),
            name,
            url,
            dropped: false,
        })
    }

    /// The URL of the new database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database (ending any session still on it).
    pub async fn drop_now(mut self) -> anyhow::Result<()> {
        self.dropped = true;
        drop_database(&self.admin_url, &self.name).await
    }
}

impl Drop for BenchDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        // Drop may run inside the bench's runtime, which cannot be blocked on:
        // a thread with a runtime of its own does the work.
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        let done = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting a runtime to drop the bench database")?;
            runtime.block_on(drop_database(&admin_url, &name))
        })
        .join();
        if !matches!(done, Ok(Ok(()))) {
            eprintln!(
                "warning: could not drop the bench database {}; drop it by hand",
                self.name
            );
        }
    }
}

/// `DROP DATABASE name WITH (FORCE)` on the server `admin_url` names.
async fn drop_database(admin_url: &str, name: &str) -> anyhow::Result<()> {
    let admin = connect(admin_url).await?;
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .with_context(|| format!("dropping the bench database {name}; drop it by hand"))
}

/// Reads the counters of one database, over a connection to the admin database
/// (so that its own queries are not counted).
pub struct Sampler {
    client: Client,
    database: String,
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sampler({})", self.database)
    }
}

/// The counters at one instant.
#[derive(Debug, Clone, Copy)]
pub struct Counters {
    /// `pg_stat_database.xact_commit` of the bench database.
    xact_commit: i64,
    /// `pg_stat_database.xact_rollback` of the bench database.
    xact_rollback: i64,
    /// The next transaction id to be assigned (the whole cluster).
    next_xid: i64,
    /// Bytes of WAL written so far (the whole cluster).
    wal_bytes: i64,
    /// `pg_stat_wal.wal_sync` (the whole cluster).
    wal_syncs: i64,
}

/// What the database did between two [`Counters`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Delta {
    /// Committed transactions of the bench database (`xact_commit`).
    pub commits: u64,
    /// Rolled back transactions of the bench database (`xact_rollback`).
    pub rollbacks: u64,
    /// Transaction ids assigned: transactions that wrote or locked rows.
    pub xids: u64,
    /// WAL written.
    pub wal_bytes: u64,
    /// WAL syncs (`fdatasync` and the like).
    pub wal_syncs: u64,
}

impl Counters {
    /// What happened from `self` to `later`.
    pub fn until(&self, later: &Self) -> Delta {
        let d = |a: i64, b: i64| u64::try_from(b.saturating_sub(a)).unwrap_or(0);
        Delta {
            commits: d(self.xact_commit, later.xact_commit),
            rollbacks: d(self.xact_rollback, later.xact_rollback),
            xids: d(self.next_xid, later.next_xid),
            wal_bytes: d(self.wal_bytes, later.wal_bytes),
            wal_syncs: d(self.wal_syncs, later.wal_syncs),
        }
    }
}

impl Sampler {
    /// Connects to `admin_url` to watch the database `database`.
    pub async fn connect(admin_url: &str, database: &str) -> anyhow::Result<Self> {
        Ok(Self {
            client: connect(admin_url).await?,
            database: database.to_owned(),
        })
    }

    /// The counters now.
    pub async fn sample(&self) -> anyhow::Result<Counters> {
        // Each call is a transaction of its own, so the statistics are read afresh.
        let row = self
            .client
            .query_one(
                "SELECT \
                   coalesce((SELECT xact_commit FROM pg_stat_database WHERE datname = $1), 0), \
                   coalesce((SELECT xact_rollback FROM pg_stat_database WHERE datname = $1), 0), \
                   pg_snapshot_xmax(pg_current_snapshot())::text::bigint, \
                   (pg_current_wal_lsn() - '0/0'::pg_lsn)::bigint, \
                   coalesce((SELECT wal_sync FROM pg_stat_wal), 0)",
                &[&self.database],
            )
            .await
            .context("reading PostgreSQL's statistics")?;
        Ok(Counters {
            xact_commit: row.try_get(0)?,
            xact_rollback: row.try_get(1)?,
            next_xid: row.try_get(2)?,
            wal_bytes: row.try_get(3)?,
            wal_syncs: row.try_get(4)?,
        })
    }

    /// `PostgreSQL 15.x, synchronous_commit on, fsync on (fdatasync)`: the
    /// settings that say whether a commit is durable when it returns.
    pub async fn describe(&self) -> anyhow::Result<String> {
        let row = self
            .client
            .query_one(
                "SELECT current_setting('server_version'), current_setting('synchronous_commit'), \
                 current_setting('fsync'), current_setting('wal_sync_method'), \
                 current_setting('commit_delay')",
                &[],
            )
            .await
            .context("reading PostgreSQL's settings")?;
        let get = |i: usize| row.try_get::<_, String>(i);
        Ok(format!(
            "PostgreSQL {}, synchronous_commit {}, fsync {} ({}), commit_delay {}",
            get(0)?,
            get(1)?,
            get(2)?,
            get(3)?,
            get(4)?
        ))
    }
}

/// What [`commit_probe`] measured at one number of connections.
#[derive(Debug, Clone, Copy)]
pub struct ProbeResult {
    /// Connections, each committing one-row inserts back to back.
    pub connections: usize,
    /// Commits the connections saw in the window.
    pub commits: u64,
    /// Length of the window.
    pub window: Duration,
    /// CPU time the PostgreSQL processes used in the window.
    pub postgres_cpu: Option<Duration>,
    /// WAL syncs in the window.
    pub wal_syncs: u64,
}

impl ProbeResult {
    /// Commits per second.
    pub fn commits_per_second(&self) -> f64 {
        self.commits as f64 / self.window.as_secs_f64()
    }
}

/// PostgreSQL's commit rate on its own: on a fresh database, `connections`
/// connections each commit one-row inserts (autocommit, durable as the server's
/// settings make every commit) back to back for `warmup` and then `duration`.
pub async fn commit_probe(
    admin_url: &str,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<ProbeResult> {
    let database = BenchDatabase::create(admin_url).await?;
    let result = probe_on(&database, admin_url, connections, warmup, duration).await;
    database.drop_now().await?;
    result
}

/// [`commit_probe`] on a database already created.
async fn probe_on(
    database: &BenchDatabase,
    admin_url: &str,
    connections: usize,
    warmup: Duration,
    duration: Duration,
) -> anyhow::Result<ProbeResult> {
    let setup = connect(database.url()).await?;
    setup
        .batch_execute(
            "CREATE TABLE probe (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, \
             worker integer NOT NULL, at timestamptz NOT NULL DEFAULT now())",
        )
        .await
        .context("creating the probe table")?;
    drop(setup);
    let sampler = Sampler::connect(admin_url, database.name()).await?;
    // Held here until the CPU has been read at the end: a connection's backend
    // exits when its last handle goes, and its CPU time with it.
    let mut clients = Vec::with_capacity(connections);
    for _ in 0..connections {
        clients.push(Arc::new(connect(database.url()).await?));
    }
    let warm_end = Instant::now() + warmup;
    let end = warm_end + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for (worker, client) in clients.iter().enumerate() {
        let worker = i32::try_from(worker).unwrap_or(i32::MAX);
        let client = Arc::clone(client);
        tasks.spawn(async move {
            let insert = client
                .prepare("INSERT INTO probe (worker) VALUES ($1)")
                .await
                .context("preparing the probe insert")?;
            let mut commits = 0u64;
            while Instant::now() < end {
                let started = Instant::now();
                client
                    .execute(&insert, &[&worker])
                    .await
                    .context("a probe insert")?;
                if started >= warm_end && Instant::now() <= end {
                    commits += 1;
                }
            }
            anyhow::Ok(commits)
        });
    }
    tokio::time::sleep_until(warm_end).await;
    let cpu_before = procfs::cpu_by_command(procfs::POSTGRES_COMMAND).ok();
    let before = sampler.sample().await?;
    tokio::time::sleep_until(end).await;
    let cpu_after = procfs::cpu_by_command(procfs::POSTGRES_COMMAND).ok();
    let after = sampler.sample().await?;
    let mut commits = 0;
    while let Some(joined) = tasks.join_next().await {
        commits += joined.context("a probe connection failed")??;
    }
    drop(clients);
    Ok(ProbeResult {
        connections,
        commits,
        window: duration,
        postgres_cpu: cpu_before
            .zip(cpu_after)
            .map(|(b, a)| procfs::cpu_delta(&b, &a)),
        wal_syncs: before.until(&after).wal_syncs,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_database_of_a_url_is_replaced() {
        let f = |u| with_database(u, "bench_1_2").unwrap();
        assert_eq!(
            f("postgres://postgres@127.0.0.1:55432/postgres"),
            "postgres://postgres@127.0.0.1:55432/bench_1_2"
        );
        assert_eq!(
            f("postgresql://u:p/w@db:5432/app?sslmode=disable"),
            "postgresql://u:p/w@db:5432/bench_1_2?sslmode=disable"
        );
        assert_eq!(f("postgres://u@db"), "postgres://u@db/bench_1_2");
        assert_eq!(f("postgres://db:5432/"), "postgres://db:5432/bench_1_2");
        assert!(with_database("postgres:///x", "b").is_err());
        assert!(with_database("not a url", "b").is_err());
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redact("postgres://u:secret@db:5432/app"),
            "postgres://u@db:5432/app"
        );
        assert_eq!(redact("postgres://db/app"), "postgres://db/app");
    }

    #[test]
    fn a_delta_never_goes_below_zero() {
        let a = Counters {
            xact_commit: 10,
            xact_rollback: 0,
            next_xid: 100,
            wal_bytes: 1000,
            wal_syncs: 5,
        };
        let b = Counters {
            xact_commit: 30,
            xact_rollback: 0,
            next_xid: 90,
            wal_bytes: 3000,
            wal_syncs: 7,
        };
        let d = a.until(&b);
        assert_eq!(d.commits, 20);
        assert_eq!(d.xids, 0);
        assert_eq!(d.wal_bytes, 2000);
        assert_eq!(d.wal_syncs, 2);
    }
}
