//! The server under test: a real Portcullis in a child process on a temporary
//! database, started by re-executing this binary with [`REEXEC_ARG`].
//!
//! Readiness is the `portcullis listening on http://…` line on the child's
//! stdout (no sleeps). The server is started twice: once on the empty database
//! (which creates a signing key and hashes a first admin password with argon2)
//! and once more on the now-existing database, the start that is measured as
//! "ready". The first start's notice of the first admin and its generated
//! password is kept ([`ServerProcess::first_admin`]) for scenarios that sign in.
//! Memory is read from `/proc/<pid>/status`. The child is killed when
//! [`ServerProcess`] is dropped, including on errors.
//!
//! The database is a SQLite file in a temporary directory unless the caller
//! names a PostgreSQL database ([`ServerProcess::start_on`]); the master key is
//! always `master.key` in that directory, passed with `--master-key-file`, so
//! that further nodes ([`ServerProcess::start_peer`]) started on the same
//! PostgreSQL database share it and act as one server with the first. On
//! PostgreSQL every node also gets the same `--issuer` ([`CLUSTER_ISSUER`]):
//! by default the issuer is the node's own address, and a node refuses tokens
//! whose `iss` is not its issuer.

use crate::Alg;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

/// Hidden first argument that makes the bench binary act as `portcullis`.
pub const REEXEC_ARG: &str = "__portcullis";

/// How long a start may take before the bench gives up.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a SIGTERM may take before the server is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// The server's log filter unless a scenario asks for another.
pub const DEFAULT_LOG: &str = "warn";

/// `--issuer` of every node on PostgreSQL, as long as the default on SQLite
/// (`http://127.0.0.1:NNNNN`) so that tokens are the same size.
pub const CLUSTER_ISSUER: &str = "http://portcullis.test";

/// What the server prints once it accepts connections.
const READY_PREFIX: &str = "portcullis listening on ";

/// What the server prints, before it is ready, on the start that creates the first
/// admin: `created the first admin user "admin" with password: XXXX`.
const FIRST_ADMIN_PREFIX: &str = "created the first admin user ";

/// Separates the quoted user name from the password in the first-admin line.
const FIRST_ADMIN_PASSWORD: &str = " with password: ";

/// Client credentials for the grant.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`.
    pub client_secret: String,
}

/// The first admin's sign-in, as the server printed it on its first start.
#[derive(Debug, Clone)]
pub struct AdminCredentials {
    /// User name (`admin`).
    pub user: String,
    /// The generated password.
    pub password: String,
}

/// How `serve` is started: the same for every node of one deployment.
#[derive(Debug, Clone)]
struct ServeConfig {
    /// The signing algorithm of new keys.
    alg: Alg,
    /// `PORTCULLIS_LOG`.
    log: String,
    /// `--database-url`.
    database_url: String,
    /// `--database-pool-size`, when given.
    pool_size: Option<u16>,
    /// `--master-key-file`.
    master_key_file: PathBuf,
    /// `--issuer`, when not the default (the node's own address).
    issuer: Option<String>,
}

/// A running bench server; dropping it kills the child.
pub struct ServerProcess {
    child: Child,
    pid: u32,
    exe: PathBuf,
    config: ServeConfig,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Spawn to ready on the empty database (key creation, argon2 admin password);
    /// for a peer ([`Self::start_peer`]), the same as [`Self::ready`].
    pub first_ready: Duration,
    /// Spawn to ready on the existing database (the restart).
    pub ready: Duration,
    /// The first admin created on the empty database, if the server said so.
    pub first_admin: Option<AdminCredentials>,
    // Declared last: removed after `Drop::drop` has killed the child (and, being
    // shared with the peers, after the last node of a deployment is gone).
    dir: Arc<tempfile::TempDir>,
}

impl ServerProcess {
    /// Creates a temporary SQLite database, starts the server on it with the log
    /// filter `log` (`PORTCULLIS_LOG`: [`DEFAULT_LOG`], or e.g. `error` for
    /// scenarios that set off a warning per request or per source), stops it and
    /// starts it again.
    pub async fn start_with_log(alg: Alg, log: &str) -> anyhow::Result<Self> {
        Self::start_on(alg, log, None, None, 0).await
    }

    /// [`Self::start_with_log`] on `database_url` (an empty PostgreSQL database the
    /// caller created) instead of a temporary SQLite file, with `--database-pool-size`
    /// when `pool_size` is given, and `--issuer` [`CLUSTER_ISSUER`] so that peers can
    /// join. The master key goes to a temporary directory either way. With
    /// `prefill` more than 0, that many token families are stored between the
    /// first start and the restart ([`crate::prefill`]).
    pub async fn start_on(
        alg: Alg,
        log: &str,
        database_url: Option<&str>,
        pool_size: Option<u16>,
        prefill: u64,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding the bench executable")?;
        let dir = tempfile::Builder::new()
            .prefix("portcullis-bench-")
            .tempdir()
            .context("creating a temporary directory")?;
        let config = ServeConfig {
            alg,
            log: log.to_owned(),
            database_url: match database_url {
                Some(url) => url.to_owned(),
                None => format!("sqlite://{}", dir.path().join("p.db").display()),
            },
            pool_size,
            master_key_file: dir.path().join("master.key"),
            issuer: database_url.map(|_| CLUSTER_ISSUER.to_owned()),
        };

        let (mut first, first_start, first_ready) = spawn_serve(&exe, &config).await?;
        stop(&mut first).await.context("stopping the first start")?;
        if prefill > 0 {
            let done = match database_url {
                Some(url) => crate::prefill::postgres(url, prefill).await?,
                None => {
                    let path = dir.path().join("p.db");
                    tokio::task::spawn_blocking(move || crate::prefill::sqlite(&path, prefill))
                        .await
                        .context("the prefill task")??
                }
            };
            println!(
                "prefill: {} token families of {} clients (100 labels each), with their \
                 refresh tokens and audit events, stored in {:.1} s",
                done.families,
                done.clients,
                done.took.as_secs_f64()
            );
        }
        let (child, start, ready) = spawn_serve(&exe, &config).await?;
        let pid = child.id().context("the server exited at once")?;
        Ok(Self {
            child,
            pid,
            exe,
            config,
            url: start.url,
            first_ready,
            ready,
            first_admin: first_start.first_admin,
            dir: Arc::new(dir),
        })
    }

    /// Starts one more node on this server's database and master key (one start,
    /// on the existing database). Only a PostgreSQL database can be shared: on
    /// SQLite each process would be a server of its own.
    pub async fn start_peer(&self) -> anyhow::Result<Self> {
        if !crate::postgres::is_postgres_url(&self.config.database_url) {
            bail!("only servers on PostgreSQL can have peers");
        }
        let (child, start, ready) = spawn_serve(&self.exe, &self.config).await?;
        let pid = child.id().context("the server exited at once")?;
        Ok(Self {
            child,
            pid,
            exe: self.exe.clone(),
            config: self.config.clone(),
            url: start.url,
            first_ready: ready,
            ready,
            first_admin: None,
            dir: Arc::clone(&self.dir),
        })
    }

    /// Creates a client with `portcullis client create --json` on the server's database.
    pub async fn create_client(&self, name: &str) -> anyhow::Result<Credentials> {
        self.create_client_with(name, &[]).await
    }

    /// [`Self::create_client`] with more options of `client create` (`--grant`,
    /// `--redirect-uri`, …).
    pub async fn create_client_with(
        &self,
        name: &str,
        options: &[&str],
    ) -> anyhow::Result<Credentials> {
        let json = self
            .cli_json(
                "client create",
                &[&["client", "create", "--name", name, "--json"], options].concat(),
                None,
            )
            .await?;
        let field = |name: &str| {
            json[name]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("`client create --json` printed no {name}"))
        };
        Ok(Credentials {
            client_id: field("client_id")?,
            client_secret: field("client_secret")?,
        })
    }

    /// Creates an end user with `portcullis user create NAME --password-stdin
    /// --json` on the server's database; returns the user's id.
    pub async fn create_user(&self, name: &str, password: &str) -> anyhow::Result<String> {
        let json = self
            .cli_json(
                "user create",
                &["user", "create", name, "--password-stdin", "--json"],
                Some(password),
            )
            .await?;
        json["id"]
            .as_str()
            .map(str::to_owned)
            .context("`user create --json` printed no id")
    }

    /// Runs `portcullis ARGS` on the server's database and master key, with
    /// `stdin` as its standard input, and reads the JSON it prints; `what` names
    /// the command in errors.
    async fn cli_json(
        &self,
        what: &str,
        args: &[&str],
        stdin: Option<&str>,
    ) -> anyhow::Result<serde_json::Value> {
        let mut cmd = portcullis_command(&self.exe);
        cmd.args(args)
            .args(["--database-url", &self.config.database_url])
            .arg("--master-key-file")
            .arg(&self.config.master_key_file)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().with_context(|| format!("running `{what}`"))?;
        if let Some(text) = stdin {
            let mut pipe = child.stdin.take().context("the command's stdin")?;
            pipe.write_all(format!("{text}\n").as_bytes())
                .await
                .with_context(|| format!("writing to `{what}`"))?;
            // Closing it ends the input.
            drop(pipe);
        }
        let out = child
            .wait_with_output()
            .await
            .with_context(|| format!("running `{what}`"))?;
        if !out.status.success() {
            bail!(
                "`{what}` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "`{what} --json` printed no JSON: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Resident memory now (VmRSS), in KiB.
    pub fn rss_kib(&self) -> anyhow::Result<u64> {
        crate::procfs::status_kib(self.pid, "VmRSS")
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Peak resident memory so far (VmHWM), in KiB.
    pub fn peak_rss_kib(&self) -> anyhow::Result<u64> {
        crate::procfs::status_kib(self.pid, "VmHWM")
    }

    /// Stops the server with SIGTERM (SIGKILL if it lingers) and removes its database.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        stop(&mut self.child).await
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // Harmless when the child has already exited; tokio reaps it.
        let _ = self.child.start_kill();
    }
}

/// `<bench> __portcullis` with a clean `PORTCULLIS_*` environment and warn-level logs.
fn portcullis_command(exe: &Path) -> Command {
    let mut cmd = Command::new(exe);
    cmd.arg(REEXEC_ARG);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PORTCULLIS_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("PORTCULLIS_LOG", DEFAULT_LOG).kill_on_drop(true);
    cmd
}

/// What a start printed up to its ready line.
struct Started {
    /// The URL of the ready line.
    url: String,
    /// The first admin, on the start that created it.
    first_admin: Option<AdminCredentials>,
}

/// Starts `serve` and waits for the ready line; returns the child, what it
/// printed (its URL, a first admin) and the time taken.
async fn spawn_serve(
    exe: &Path,
    config: &ServeConfig,
) -> anyhow::Result<(Child, Started, Duration)> {
    let mut cmd = portcullis_command(exe);
    cmd.env("PORTCULLIS_LOG", &config.log);
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--database-url", &config.database_url])
        .arg("--master-key-file")
        .arg(&config.master_key_file)
        .args(["--signing-alg", config.alg.as_str()]);
    if let Some(n) = config.pool_size {
        cmd.args(["--database-pool-size", &n.to_string()]);
    }
    if let Some(issuer) = &config.issuer {
        cmd.args(["--issuer", issuer]);
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let started = Instant::now();
    let mut child = cmd.spawn().context("starting the server")?;
    let stdout = child.stdout.take().context("the server's stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let started_info = match tokio::time::timeout(READY_TIMEOUT, wait_ready(&mut lines)).await {
        Ok(Ok(info)) => info,
        Ok(Err(e)) => {
            let status = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
            return match status {
                Ok(Ok(s)) => Err(e.context(format!("the server exited ({s})"))),
                _ => Err(e),
            };
        }
        Err(_) => bail!(
            "the server did not say it was listening within {}s",
            READY_TIMEOUT.as_secs()
        ),
    };
    let elapsed = started.elapsed();
    // Keep draining stdout so the server never blocks on a full pipe.
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            eprintln!("server: {line}");
        }
    });
    Ok((child, started_info, elapsed))
}

/// Reads stdout lines until the ready line; returns the URL it names and the
/// first admin, if a line before it announced one.
async fn wait_ready(
    lines: &mut tokio::io::Lines<BufReader<ChildStdout>>,
) -> anyhow::Result<Started> {
    let mut first_admin = None;
    loop {
        let line = lines
            .next_line()
            .await
            .context("reading the server's stdout")?
            .context("the server closed stdout before it was listening")?;
        if let Some(url) = line.strip_prefix(READY_PREFIX) {
            return Ok(Started {
                url: url.trim().to_owned(),
                first_admin,
            });
        }
        if let Some(admin) = parse_first_admin(&line) {
            first_admin = Some(admin);
        }
        // Anything else before it (the note on changing the password) is of no interest.
    }
}

/// `created the first admin user "admin" with password: XXXX` → `admin`, `XXXX`.
/// The name is printed as a Rust string literal; bench names need no unescaping,
/// so only the surrounding quotes are removed.
fn parse_first_admin(line: &str) -> Option<AdminCredentials> {
    let rest = line.strip_prefix(FIRST_ADMIN_PREFIX)?;
    let (quoted, password) = rest.rsplit_once(FIRST_ADMIN_PASSWORD)?;
    let user = quoted.strip_prefix('"')?.strip_suffix('"')?;
    let password = password.trim();
    if user.is_empty() || password.is_empty() {
        return None;
    }
    Some(AdminCredentials {
        user: user.to_owned(),
        password: password.to_owned(),
    })
}

/// SIGTERM, wait up to [`STOP_TIMEOUT`], then SIGKILL.
pub async fn stop(child: &mut Child) -> anyhow::Result<()> {
    let Some(pid) = child.id() else {
        return Ok(()); // Already reaped.
    };
    let sent = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .await
        .context("running kill -TERM")?;
    if sent.success()
        && let Ok(waited) = tokio::time::timeout(STOP_TIMEOUT, child.wait()).await
    {
        waited.context("waiting for the server to stop")?;
        return Ok(());
    }
    child.start_kill().context("killing the server")?;
    child
        .wait()
        .await
        .context("waiting for the killed server")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_first_admin_line_is_understood() {
        let a = parse_first_admin(
            "created the first admin user \"admin\" with password: abcDEF234xyzABC56789",
        )
        .unwrap();
        assert_eq!(a.user, "admin");
        assert_eq!(a.password, "abcDEF234xyzABC56789");
        assert!(parse_first_admin("portcullis listening on http://127.0.0.1:1").is_none());
        assert!(
            parse_first_admin(
                "  (shown once; change it with `portcullis admin reset-password admin --password-stdin`)"
            )
            .is_none()
        );
    }
}
