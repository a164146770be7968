//! The server under test: a real Portcullis in a child process on a temporary
//! database, started by re-executing this binary with [`REEXEC_ARG`].
//!
//! Readiness is the `portcullis listening on http://…` line on the child's
//! stdout (no sleeps). The server is started twice: once on the empty database
//! (which creates a signing key and hashes a first admin password with argon2)
//! and once more on the now-existing database, the start that is measured as
//! "ready". Memory is read from `/proc/<pid>/status`. The child is killed when
//! [`ServerProcess`] is dropped, including on errors.

use crate::Alg;
use anyhow::{Context, bail};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

/// Hidden first argument that makes the bench binary act as `portcullis`.
pub const REEXEC_ARG: &str = "__portcullis";

/// How long a start may take before the bench gives up.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a SIGTERM may take before the server is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// What the server prints once it accepts connections.
const READY_PREFIX: &str = "portcullis listening on ";

/// Client credentials for the grant.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`.
    pub client_secret: String,
}

/// A running bench server; dropping it kills the child.
pub struct ServerProcess {
    child: Child,
    pid: u32,
    exe: PathBuf,
    database_url: String,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Spawn to ready on the empty database (key creation, argon2 admin password).
    pub first_ready: Duration,
    /// Spawn to ready on the existing database (the restart).
    pub ready: Duration,
    // Declared last: removed after `Drop::drop` has killed the child.
    _dir: tempfile::TempDir,
}

impl ServerProcess {
    /// Creates a temporary database, starts the server on it, stops it and starts it again.
    pub async fn start(alg: Alg) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding the bench executable")?;
        let dir = tempfile::Builder::new()
            .prefix("portcullis-bench-")
            .tempdir()
            .context("creating a temporary directory")?;
        let database_url = format!("sqlite://{}", dir.path().join("p.db").display());

        let (mut first, _, first_ready) = spawn_serve(&exe, &database_url, alg).await?;
        stop(&mut first).await.context("stopping the first start")?;
        let (child, url, ready) = spawn_serve(&exe, &database_url, alg).await?;
        let pid = child.id().context("the server exited at once")?;
        Ok(Self {
            child,
            pid,
            exe,
            database_url,
            url,
            first_ready,
            ready,
            _dir: dir,
        })
    }

    /// Creates a client with `portcullis client create --json` on the server's database.
    pub async fn create_client(&self, name: &str) -> anyhow::Result<Credentials> {
        let mut cmd = portcullis_command(&self.exe);
        cmd.args(["client", "create", "--name", name, "--json"])
            .args(["--database-url", &self.database_url])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let out = cmd.output().await.context("running `client create`")?;
        if !out.status.success() {
            bail!(
                "`client create` failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).with_context(|| {
            format!(
                "`client create --json` printed no JSON: {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })?;
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
    cmd.env("PORTCULLIS_LOG", "warn").kill_on_drop(true);
    cmd
}

/// Starts `serve` and waits for the ready line; returns the child, its URL and the time taken.
async fn spawn_serve(
    exe: &Path,
    database_url: &str,
    alg: Alg,
) -> anyhow::Result<(Child, String, Duration)> {
    let mut cmd = portcullis_command(exe);
    cmd.args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--database-url", database_url])
        .args(["--signing-alg", alg.as_str()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    let started = Instant::now();
    let mut child = cmd.spawn().context("starting the server")?;
    let stdout = child.stdout.take().context("the server's stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let url = match tokio::time::timeout(READY_TIMEOUT, wait_ready(&mut lines)).await {
        Ok(Ok(url)) => url,
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
    Ok((child, url, elapsed))
}

/// Reads stdout lines until the ready line; returns the URL it names.
async fn wait_ready(
    lines: &mut tokio::io::Lines<BufReader<ChildStdout>>,
) -> anyhow::Result<String> {
    loop {
        let line = lines
            .next_line()
            .await
            .context("reading the server's stdout")?
            .context("the server closed stdout before it was listening")?;
        if let Some(url) = line.strip_prefix(READY_PREFIX) {
            return Ok(url.trim().to_owned());
        }
        // Anything before it (the first-admin notice) is of no interest here.
    }
}

/// SIGTERM, wait up to [`STOP_TIMEOUT`], then SIGKILL.
async fn stop(child: &mut Child) -> anyhow::Result<()> {
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
