//! Throwaway PostgreSQL for tests.
//!
//! [`server_url`] is the admin URL of a PostgreSQL server: `PORTCULLIS_TEST_DATABASE_URL`
//! when it is set (`.ci/test` starts one cluster for the whole run and sets it), otherwise a
//! cluster this process starts once, on a free loopback port in a temporary directory, with
//! `fsync=off` (tests check behaviour, not PostgreSQL's own durability).
//!
//! That cluster can never outlive the test process: it runs under a small watchdog shell
//! whose stdin is a pipe from this process, kept open (in a static) for the process's
//! lifetime. When the process exits, however it exits, the kernel closes the pipe, the
//! shell's `read` sees end of file, and the shell stops PostgreSQL and removes the directory.
//!
//! [`TestDatabase`] is a new, uniquely named database on that server, dropped (with
//! `FORCE`) when the value is dropped. Everything goes through `psql`, so the testkit needs
//! no database driver. PostgreSQL refuses to run as root, so as root the cluster runs as the
//! `postgres` user (`runuser`); missing binaries are installed with apt-get (as root only).

use anyhow::{Context, bail};
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// The variable naming an existing server to use instead of starting one.
pub const DATABASE_URL_ENV: &str = "PORTCULLIS_TEST_DATABASE_URL";

/// How long a new cluster may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How often readiness is checked.
const READY_POLL: Duration = Duration::from_millis(50);

/// How many ports to try when PostgreSQL exits at start-up (another process took the port).
const START_ATTEMPTS: usize = 3;

/// The programs a cluster needs, all from one directory.
const PROGRAMS: [&str; 4] = ["initdb", "postgres", "pg_ctl", "psql"];

/// The watchdog: starts PostgreSQL, waits for end of file on stdin, then stops it and
/// removes the directory. `$1`: the binaries' directory, `$2`: the cluster directory,
/// `$3`: the port. `$2/exited` appears if PostgreSQL exits on its own (start-up failure).
const WATCHDOG: &str = r#"
{
  "$1/postgres" -D "$2/data" -p "$3" -k "$2" \
    -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=400 \
    </dev/null >"$2/postgres.log" 2>&1
  echo "$?" >"$2/exited"
} &
read -r _ || :
"$1/pg_ctl" stop -D "$2/data" -m fast -t 30 -s >/dev/null 2>&1 \
  || "$1/pg_ctl" stop -D "$2/data" -m immediate -s >/dev/null 2>&1
wait
rm -rf "$2"
"#;

/// The admin URL (`postgres://…/postgres`) of a PostgreSQL server for tests:
/// `PORTCULLIS_TEST_DATABASE_URL` if set, otherwise a throwaway cluster started once per
/// process and stopped (and deleted) when the process exits.
pub fn server_url() -> anyhow::Result<String> {
    if let Ok(url) = std::env::var(DATABASE_URL_ENV)
        && !url.trim().is_empty()
    {
        return Ok(url.trim().to_owned());
    }
    static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
    match CLUSTER.get_or_init(|| Cluster::start().map_err(|e| format!("{e:#}"))) {
        Ok(c) => Ok(c.url.clone()),
        Err(e) => bail!("starting a throwaway PostgreSQL for tests: {e}"),
    }
}

/// A new, uniquely named database, dropped (`WITH (FORCE)`) when this value is dropped.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    /// Creates a database named `pt_<pid>_<counter>_<random>` on [`server_url`].
    pub fn create() -> anyhow::Result<Self> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let admin_url = server_url()?;
        let name = format!(
            "pt_{}_{}_{:08x}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed),
            random_u32()
        );
        let url = with_database(&admin_url, &name)?;
        psql(&admin_url, &format!("CREATE DATABASE \"{name}\""))
            .with_context(|| format!("creating the test database {name}"))?;
        Ok(Self {
            admin_url,
            name,
            url,
        })
    }

    /// The database's URL: the admin URL with this database's name as its path.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let _ = psql(&self.admin_url, &sql);
    }
}

/// Runs one SQL command with `psql` (stops on the first error) and returns its unaligned,
/// tuples-only output.
pub fn psql(url: &str, sql: &str) -> anyhow::Result<String> {
    let out = Command::new(psql_program()?)
        .args([
            "-X",
            "-q",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-d",
            url,
            "-c",
            sql,
        ])
        .env("PGCONNECT_TIMEOUT", "10")
        .stdin(Stdio::null())
        .output()
        .context("running psql")?;
    if !out.status.success() {
        bail!(
            "psql {sql:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `url` with its last path segment (the database name) replaced by `name`, keeping any
/// query string (`?sslmode=…`).
pub fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let authority_start = url
        .find("://")
        .map(|i| i + 3)
        .with_context(|| format!("{url:?} is not a URL"))?;
    let suffix_start = url[authority_start..]
        .find(['?', '#'])
        .map_or(url.len(), |i| authority_start + i);
    let (base, suffix) = url.split_at(suffix_start);
    let kept = match base[authority_start..].find('/') {
        Some(path_start) => {
            let path_start = authority_start + path_start;
            base[path_start..]
                .rfind('/')
                .map_or(base, |i| &base[..path_start + i])
        }
        None => base,
    };
    Ok(format!("{kept}/{name}{suffix}"))
}

/// A cluster this process started, and its watchdog (whose stdin must stay open).
struct Cluster {
    url: String,
    _watchdog: Child,
}

/// How one start attempt ended.
enum Attempt {
    Ready(Cluster),
    /// PostgreSQL exited at start-up (its log); worth another port.
    Exited(String),
}

impl Cluster {
    fn start() -> anyhow::Result<Self> {
        let bin = bindir()?;
        let mut last = String::new();
        for _ in 0..START_ATTEMPTS {
            match Self::attempt(bin)? {
                Attempt::Ready(c) => return Ok(c),
                Attempt::Exited(log) => last = log,
            }
        }
        bail!("PostgreSQL exited at start-up {START_ATTEMPTS} times; last log:\n{last}")
    }

    fn attempt(bin: &Path) -> anyhow::Result<Attempt> {
        let dir = tempfile::Builder::new()
            .prefix("portcullis-pg-")
            .tempdir()
            .context("creating the cluster directory")?;
        if is_root() {
            run(Command::new("chown")
                .arg("postgres:postgres")
                .arg(dir.path()))
            .context("giving the cluster directory to the postgres user")?;
        }
        let data = dir.path().join("data");
        run(as_cluster_owner(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-locale",
            ])
            .args(["--no-sync", "--no-instructions"])
            .current_dir(dir.path()))
        .context("initdb")?;
        let port = free_port()?;
        let watchdog = as_cluster_owner(Path::new("sh"))
            .arg("-c")
            .arg(WATCHDOG)
            .arg("portcullis-pg-watchdog")
            .arg(bin)
            .arg(dir.path())
            .arg(port.to_string())
            .current_dir(dir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own process group: a Ctrl-C meant for the tests must not kill the
            // watchdog before it cleans up (it cleans up when the tests are gone).
            .process_group(0)
            .spawn()
            .context("starting the PostgreSQL watchdog")?;
        // From here on the watchdog owns the directory and removes it.
        let dir = dir.keep();
        let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
        let stop = |mut w: Child| {
            drop(w.stdin.take());
            let _ = w.wait();
        };
        match wait_ready(&url, port, &dir, &data) {
            Ok(true) => Ok(Attempt::Ready(Self {
                url,
                _watchdog: watchdog,
            })),
            Ok(false) => {
                let log = read_log(&dir);
                stop(watchdog);
                Ok(Attempt::Exited(log))
            }
            Err(e) => {
                let log = read_log(&dir);
                stop(watchdog);
                Err(e.context(format!("PostgreSQL log:\n{log}")))
            }
        }
    }
}

/// Waits until the cluster in `dir` accepts connections on `port`: true when it does,
/// false when PostgreSQL exited instead. The answering server must be ours (its data
/// directory), not another one that holds the port.
fn wait_ready(url: &str, port: u16, dir: &Path, data: &Path) -> anyhow::Result<bool> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        if dir.join("exited").exists() {
            return Ok(false);
        }
        if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
            && let Ok(out) = psql(url, "SHOW data_directory")
            && same_path(Path::new(out.trim()), data)
        {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            bail!(
                "PostgreSQL did not accept connections on port {port} within {}s",
                READY_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(READY_POLL);
    }
}

fn same_path(a: &Path, b: &Path) -> bool {
    a == b
        || matches!(
            (a.canonicalize(), b.canonicalize()),
            (Ok(x), Ok(y)) if x == y
        )
}

fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("postgres.log")).unwrap_or_default()
}

/// A loopback port nobody listens on right now.
fn free_port() -> anyhow::Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding 127.0.0.1:0")?;
    Ok(l.local_addr().context("local address")?.port())
}

/// `program`, run as the `postgres` user when this process is root.
fn as_cluster_owner(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn is_root() -> bool {
    static ROOT: OnceLock<bool> = OnceLock::new();
    *ROOT.get_or_init(|| {
        Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
    })
}

/// Runs a command to completion; its output becomes the error when it fails.
fn run(cmd: &mut Command) -> anyhow::Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The directory holding [`PROGRAMS`]: the newest `/usr/lib/postgresql/*/bin` (Debian),
/// else a directory on `PATH`; as root, installs Debian's `postgresql` when neither has them.
fn bindir() -> anyhow::Result<&'static Path> {
    static BINDIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = BINDIR.get_or_init(|| {
        if let Some(dir) = find_bindir() {
            return Ok(dir);
        }
        if !is_root() {
            return Err(format!(
                "PostgreSQL's {} were not found under /usr/lib/postgresql/*/bin or on PATH; \
                 install PostgreSQL (apt-get install postgresql) or set {DATABASE_URL_ENV}",
                PROGRAMS.join(", ")
            ));
        }
        eprintln!("portcullis-testkit: PostgreSQL is missing; installing it with apt-get");
        install().map_err(|e| format!("{e:#}"))?;
        find_bindir().ok_or_else(|| {
            "apt-get installed postgresql but its binaries are not under \
             /usr/lib/postgresql/*/bin"
                .to_owned()
        })
    });
    match found {
        Ok(dir) => Ok(dir),
        Err(e) => bail!("{e}"),
    }
}

fn find_bindir() -> Option<PathBuf> {
    let complete = |dir: &Path| PROGRAMS.iter().all(|p| dir.join(p).is_file());
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e
                .file_name()
                .to_str()?
                .split('.')
                .map(|n| n.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, bin)| complete(bin))
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Some(bin);
    }
    std::env::split_paths(&std::env::var_os("PATH")?).find(|d| complete(d))
}

fn install() -> anyhow::Result<()> {
    run(Command::new("apt-get").arg("update")).context("apt-get update")?;
    run(Command::new("apt-get")
        .args(["install", "-y", "postgresql"])
        .env("DEBIAN_FRONTEND", "noninteractive"))
    .context("apt-get install postgresql")
}

/// `psql`: the cluster binaries' own when present, else the one on `PATH`, else installed.
fn psql_program() -> anyhow::Result<PathBuf> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    let found = FOUND.get_or_init(|| {
        find_bindir().map(|d| d.join("psql")).or_else(|| {
            std::env::split_paths(&std::env::var_os("PATH")?)
                .map(|d| d.join("psql"))
                .find(|p| p.is_file())
        })
    });
    match found {
        Some(p) => Ok(p.clone()),
        None => Ok(bindir()?.join("psql")),
    }
}

/// A number that differs between processes and calls (std's hasher keys are random).
fn random_u32() -> u32 {
    let mut h = RandomState::new().build_hasher();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    h.write_u128(now);
    h.finish() as u32
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    #[test]
    fn with_database_replaces_the_last_path_segment_and_keeps_the_query() {
        let cases = [
            ("postgres://u@h:5/postgres", "postgres://u@h:5/x"),
            (
                "postgres://u@h:5/postgres?sslmode=disable",
                "postgres://u@h:5/x?sslmode=disable",
            ),
            ("postgres://u:p@h", "postgres://u:p@h/x"),
            (
                "postgres://u@h?sslmode=require",
                "postgres://u@h/x?sslmode=require",
            ),
            (
                "postgresql:///db?host=/tmp/s",
                "postgresql:///x?host=/tmp/s",
            ),
            ("postgres://h/", "postgres://h/x"),
        ];
        for (admin, want) in cases {
            assert_eq!(with_database(admin, "x").unwrap(), want, "{admin}");
        }
        assert!(with_database("not a url", "x").is_err());
    }

    fn exists(name: &str) -> bool {
        let sql = format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'");
        psql(&server_url().unwrap(), &sql).unwrap().trim() == "1"
    }

    #[test]
    fn test_databases_are_separate_and_dropped_with_their_value() {
        let a = TestDatabase::create().unwrap();
        let b = TestDatabase::create().unwrap();
        assert_ne!(a.url(), b.url());
        for db in [&a, &b] {
            assert_eq!(psql(db.url(), "select 1").unwrap().trim(), "1");
            let current = psql(db.url(), "select current_database()").unwrap();
            assert_eq!(current.trim(), db.name());
            assert!(exists(db.name()));
        }
        // A session still connected does not stop the drop (FORCE).
        let mut session = Command::new(psql_program().unwrap())
            .args(["-X", "-q", "-d", a.url()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = session.stdin.take().unwrap();
        std::io::Write::write_all(&mut stdin, b"CREATE TABLE t (x int);\n").unwrap();
        let count = format!(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}'",
            a.name()
        );
        let deadline = Instant::now() + READY_TIMEOUT;
        while psql(b.url(), &count).unwrap().trim() == "0" {
            assert!(Instant::now() < deadline, "the session never connected");
            std::thread::sleep(READY_POLL);
        }
        let (a_url, a_name) = (a.url().to_owned(), a.name().to_owned());
        drop(a);
        assert!(!exists(&a_name));
        assert!(psql(&a_url, "select 1").is_err());
        drop(stdin);
        let _ = session.wait();
        assert_eq!(psql(b.url(), "select 1").unwrap().trim(), "1");
    }
}
