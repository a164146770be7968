//! Test helpers: spawn the real `portcullis` binary on `127.0.0.1:0` with its own
//! temporary database, wait until it says where it listens (the readiness check:
//! no sleeps), run CLI commands against the same database, stop and restart it, and
//! start more nodes on the same database ([`TestServer::join`]).
//!
//! The database is SQLite (a file in a temporary directory) or, with
//! `PORTCULLIS_TEST_ENGINE=postgres`, a new PostgreSQL database ([`pg::TestDatabase`])
//! on a throwaway server ([`pg::server_url`]). Either way the master key is
//! `<temporary directory>/master.key`, passed explicitly to the server and every CLI command.
//!
//! Every server and CLI command gets a test clock (`PORTCULLIS_TEST_CLOCK_FILE`,
//! honoured by debug builds only): [`TestServer::advance_clock`] lets time pass for
//! expiry tests without sleeping. [`http`] has the HTTP helpers the test suites share.

pub mod http;
pub mod pg;

use anyhow::{Context, bail};
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, mpsc};
use std::time::Duration;

/// How long a server may take to say it is listening.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The variable naming the test clock's offset file (`OffsetFileClock::ENV` in
/// `portcullis-core`, which debug builds of the binary honour).
const CLOCK_ENV: &str = "PORTCULLIS_TEST_CLOCK_FILE";

/// The database engine a [`TestServer`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// A SQLite file in the server's temporary directory.
    Sqlite,
    /// A new database on the test PostgreSQL server ([`pg::TestDatabase`]).
    Postgres,
}

impl Engine {
    /// The variable choosing the engine.
    pub const ENV: &str = "PORTCULLIS_TEST_ENGINE";

    /// `PORTCULLIS_TEST_ENGINE`: unset, empty or `sqlite` is SQLite; `postgres`,
    /// `postgresql` or `pg` is PostgreSQL; anything else is an error.
    pub fn from_env() -> anyhow::Result<Self> {
        match std::env::var(Self::ENV) {
            Ok(v) => Self::parse(&v),
            Err(std::env::VarError::NotPresent) => Ok(Self::Sqlite),
            Err(e) => bail!("{}: {e}", Self::ENV),
        }
    }

    fn parse(value: &str) -> anyhow::Result<Self> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" | "pg" => Ok(Self::Postgres),
            other => bail!(
                "{}={other:?}: expected `sqlite` or `postgres` (`pg`)",
                Self::ENV
            ),
        }
    }
}

/// Where a server's data lives; shared by the nodes of [`TestServer::join`].
#[derive(Clone)]
enum Database {
    /// `<dir>/portcullis.db`.
    Sqlite,
    /// Dropped when the last node holding it goes.
    Postgres(Arc<pg::TestDatabase>),
}

/// A running server and its data directory.
pub struct TestServer {
    bin: PathBuf,
    /// The master key (and the SQLite file); shared with joined nodes.
    dir: Arc<tempfile::TempDir>,
    database: Database,
    /// How this node reaches the database, when not by its own URL (a proxy).
    via: Option<String>,
    child: Option<Child>,
    serve_args: Vec<String>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Lines the server printed on stdout before it was ready (the first-admin notice).
    pub banner: Vec<String>,
}

/// What a CLI command did.
#[derive(Debug, Clone)]
pub struct CliOutput {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CliOutput {
    /// Parses stdout as JSON.
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        serde_json::from_str(&self.stdout).with_context(|| {
            format!(
                "stdout is not JSON: {}\nstderr: {}",
                self.stdout, self.stderr
            )
        })
    }
}

impl TestServer {
    /// Starts `bin serve` on a new temporary database with extra serve flags, on the
    /// engine `PORTCULLIS_TEST_ENGINE` names ([`Engine::from_env`]).
    pub fn start(bin: &Path, extra: &[&str]) -> anyhow::Result<Self> {
        Self::start_with(bin, Engine::from_env()?, extra)
    }

    /// Starts `bin serve` on a new temporary database of `engine` with extra serve flags.
    pub fn start_with(bin: &Path, engine: Engine, extra: &[&str]) -> anyhow::Result<Self> {
        let dir = Arc::new(tempfile::tempdir().context("temp dir")?);
        let database = match engine {
            Engine::Sqlite => Database::Sqlite,
            Engine::Postgres => Database::Postgres(Arc::new(pg::TestDatabase::create()?)),
        };
        Self::launch(bin.to_owned(), dir, database, extra)
    }

    /// Starts another node (its own process and port, `extra` serve flags) on this
    /// server's database and master key. The data outlives every node but the last.
    pub fn join(&self, extra: &[&str]) -> anyhow::Result<TestServer> {
        Self::launch(
            self.bin.clone(),
            Arc::clone(&self.dir),
            self.database.clone(),
            extra,
        )
    }

    fn launch(
        bin: PathBuf,
        dir: Arc<tempfile::TempDir>,
        database: Database,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let mut s = Self {
            bin,
            dir,
            database,
            via: None,
            child: None,
            serve_args: extra.iter().map(|s| (*s).to_owned()).collect(),
            url: String::new(),
            banner: Vec::new(),
        };
        s.spawn()?;
        Ok(s)
    }

    /// Like [`TestServer::join`], but this node reaches the database at
    /// `database_url` (the same database through a proxy, say), as do its CLI
    /// commands.
    pub fn join_via(&self, database_url: &str, extra: &[&str]) -> anyhow::Result<TestServer> {
        let mut s = Self {
            bin: self.bin.clone(),
            dir: Arc::clone(&self.dir),
            database: self.database.clone(),
            via: Some(database_url.to_owned()),
            child: None,
            serve_args: extra.iter().map(|s| (*s).to_owned()).collect(),
            url: String::new(),
            banner: Vec::new(),
        };
        s.spawn()?;
        Ok(s)
    }

    /// The engine this server's database runs on.
    pub fn engine(&self) -> Engine {
        match self.database {
            Database::Sqlite => Engine::Sqlite,
            Database::Postgres(_) => Engine::Postgres,
        }
    }

    /// The data directory: the master key and, with SQLite, the database (shared by the
    /// nodes of [`TestServer::join`]).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `<dir>/master.key`, given to the server and every CLI command.
    pub fn master_key_file(&self) -> PathBuf {
        self.dir.path().join("master.key")
    }

    /// `sqlite:///…/portcullis.db`, or the PostgreSQL test database's
    /// `postgres://…/pt_…` URL.
    pub fn database_url(&self) -> String {
        if let Some(url) = &self.via {
            return url.clone();
        }
        match &self.database {
            Database::Sqlite => format!(
                "sqlite://{}",
                self.dir.path().join("portcullis.db").display()
            ),
            Database::Postgres(db) => db.url().to_owned(),
        }
    }

    /// `<dir>/clock-offset`: the test clock's offset in seconds, which the server and
    /// every CLI command read (shared by the nodes of [`TestServer::join`], so a
    /// cluster keeps one time).
    pub fn clock_file(&self) -> PathBuf {
        self.dir.path().join("clock-offset")
    }

    /// Lets `secs` seconds pass for this server, its joined nodes and the CLI commands
    /// run on them, at once: their clock is the system clock plus the sum of every
    /// advance so far. Needs a debug build of the binary (what `cargo test` builds):
    /// a release build ignores the test clock.
    pub fn advance_clock(&self, secs: i64) -> anyhow::Result<()> {
        let path = self.clock_file();
        let now = std::fs::read_to_string(&path)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .unwrap_or(0);
        let next = now
            .checked_add(secs)
            .context("the test clock's offset overflows")?;
        // Written whole and renamed over the old file: a reader never sees half of it.
        let tmp = self.dir.path().join("clock-offset.tmp");
        std::fs::write(&tmp, format!("{next}\n")).context("writing the test clock")?;
        std::fs::rename(&tmp, &path).context("replacing the test clock")?;
        Ok(())
    }

    /// `--database-url URL --master-key-file FILE`: what every command is given.
    fn data_args(&self) -> [OsString; 4] {
        [
            "--database-url".into(),
            self.database_url().into(),
            "--master-key-file".into(),
            self.master_key_file().into(),
        ]
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let mut child = Command::new(&self.bin)
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(self.data_args())
            .args(&self.serve_args)
            .env_remove("PORTCULLIS_MASTER_KEY")
            .env(CLOCK_ENV, self.clock_file())
            .env("PORTCULLIS_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("spawning {}", self.bin.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let (tx, rx) = mpsc::channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    // Nobody listens any more; keep draining so the server never blocks.
                }
            }
        });
        self.child = Some(child);
        self.banner.clear();
        loop {
            let line = rx
                .recv_timeout(READY_TIMEOUT)
                .map_err(|_| anyhow::anyhow!("the server did not report that it was listening"))?;
            if let Some(url) = line.strip_prefix("portcullis listening on ") {
                self.url = url.trim().to_owned();
                return Ok(());
            }
            self.banner.push(line);
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends SIGTERM and waits for the exit code.
    pub fn terminate(&mut self) -> anyhow::Result<i32> {
        let Some(mut child) = self.child.take() else {
            bail!("not running");
        };
        let status = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .context("kill -TERM")?;
        if !status.success() {
            bail!("kill -TERM failed");
        }
        let code = child.wait().context("waiting for the server")?;
        Ok(code.code().unwrap_or(-1))
    }

    /// Kills the server with SIGKILL (a crash: no graceful shutdown at all).
    pub fn kill_hard(&mut self) -> anyhow::Result<()> {
        let Some(mut child) = self.child.take() else {
            bail!("not running");
        };
        child.kill().context("SIGKILL")?;
        child.wait().context("waiting for the server")?;
        Ok(())
    }

    /// Stops the server (SIGTERM) and starts it again on the same database with `extra` flags.
    pub fn restart(&mut self, extra: &[&str]) -> anyhow::Result<()> {
        if self.child.is_some() {
            self.terminate()?;
        }
        self.serve_args = extra.iter().map(|s| (*s).to_owned()).collect();
        self.spawn()
    }

    /// Runs `portcullis ARGS --database-url <this database> --master-key-file <its key>`,
    /// with `stdin` as input.
    pub fn cli_with_stdin(&self, args: &[&str], stdin: &str) -> anyhow::Result<CliOutput> {
        use std::io::Write;
        let mut child = Command::new(&self.bin)
            .args(args)
            .args(self.data_args())
            .env_remove("PORTCULLIS_MASTER_KEY")
            .env(CLOCK_ENV, self.clock_file())
            .env("PORTCULLIS_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawning the CLI")?;
        if let Some(mut i) = child.stdin.take() {
            i.write_all(stdin.as_bytes()).context("writing stdin")?;
        }
        let out = child.wait_with_output().context("running the CLI")?;
        Ok(CliOutput {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// The command `portcullis ARGS` against this server's database, not started
    /// (for a test that needs to hold its pipes itself).
    pub fn cli_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .args(self.data_args())
            .env_remove("PORTCULLIS_MASTER_KEY")
            .env("PORTCULLIS_LOG", "warn");
        cmd
    }

    /// Runs a CLI command against this server's database.
    pub fn cli(&self, args: &[&str]) -> anyhow::Result<CliOutput> {
        self.cli_with_stdin(args, "")
    }

    /// Runs a CLI command that must succeed and print JSON.
    pub fn cli_json(&self, args: &[&str]) -> anyhow::Result<serde_json::Value> {
        let out = self.cli(args)?;
        if out.code != 0 {
            bail!("{args:?} failed ({}): {}", out.code, out.stderr);
        }
        out.json()
    }

    /// The audit events of `kind`, newest first, as `portcullis audit list --kind KIND`
    /// prints them.
    pub fn audit_events(&self, kind: &str) -> anyhow::Result<Vec<serde_json::Value>> {
        match self.cli_json(&["audit", "list", "--kind", kind, "--json"])? {
            serde_json::Value::Array(events) => Ok(events),
            other => bail!("audit list printed {other}, not an array"),
        }
    }

    /// Creates a client (`client create --name NAME --json EXTRA…`); returns (id, secret).
    pub fn create_client(&self, name: &str, extra: &[&str]) -> anyhow::Result<(String, String)> {
        let mut args = vec!["client", "create", "--name", name, "--json"];
        args.extend_from_slice(extra);
        let v = self.cli_json(&args)?;
        let id = v["client_id"].as_str().context("client_id")?.to_owned();
        let secret = v["client_secret"]
            .as_str()
            .context("client_secret")?
            .to_owned();
        Ok((id, secret))
    }
}

impl Drop for TestServer {
    /// Kills the process; then the fields go, so the database (the last node's) is dropped
    /// only once no server of this node uses it.
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::Engine;

    #[test]
    fn the_engine_variable_is_parsed_strictly() {
        for v in ["", "sqlite", "SQLite "] {
            assert_eq!(Engine::parse(v).unwrap(), Engine::Sqlite, "{v:?}");
        }
        for v in ["postgres", "pg", "PostgreSQL"] {
            assert_eq!(Engine::parse(v).unwrap(), Engine::Postgres, "{v:?}");
        }
        assert!(Engine::parse("mysql").is_err());
    }
}
