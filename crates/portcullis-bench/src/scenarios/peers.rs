//! `peers`: Portcullis side by side with node-oidc-provider, the client
//! credentials grant on each, measured in alternation by the same load
//! generator (issue 17, item 5).
//!
//! The peer is `peers/node-oidc-provider/server.js` in this crate: the npm
//! package `oidc-provider` at the version its lock file pins, in memory, on
//! `--node-workers` processes of Node's `cluster` module, issuing JWT access
//! tokens signed with the same algorithm as Portcullis. Its dependencies are
//! installed with `npm ci` on first use; nothing else of the bench needs Node.js
//! or npm.
//!
//! Both servers are started once (Portcullis on a temporary SQLite database,
//! as the `token` scenario does), each is asked for one token to check that it
//! answers with a JWT of the right algorithm, and then every round measures
//! Portcullis and then the peer at the same concurrency, warm-up and duration,
//! each level on fresh keep-alive connections. The requests have the same
//! shape: `POST` of a `client_credentials` form with HTTP Basic client
//! authentication; Portcullis's carry a data access point label (as in the
//! `token` scenario), the peer's the scope its tokens carry (Portcullis's
//! tokens carry the client's scopes without asking). The server CPU of the
//! peer is that of its primary process (which accepts the connections and hands
//! them to the workers) and of every worker.

use crate::deploy::{Deployment, Engine};
use crate::load::{self, LevelResult, Plan, Target};
use crate::report::{self, median, ms, or_na, table, thousands};
use crate::server::{self, Credentials};
use crate::{Alg, PeersArgs, procfs};
use anyhow::{Context, bail};
use base64::Engine as _;
use hyper::body::Bytes;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::{Child, Command};

use super::token;

/// The peer's directory: `server.js`, `package.json` and its lock file.
const PEER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/peers/node-oidc-provider");

/// What the peer's primary prints once every worker listens:
/// `node-oidc-provider listening on http://127.0.0.1:PORT (workers PID PID)`.
const READY_PREFIX: &str = "node-oidc-provider listening on ";

/// How long the peer may take to listen before the bench gives up.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The peer's token endpoint.
const PEER_TOKEN_PATH: &str = "/token";

/// Portcullis's token endpoint.
const PORTCULLIS_TOKEN_PATH: &str = "/oauth/token";

/// The peer's request body: the scopes of a Portcullis bench token, which the
/// peer's client has and its tokens then carry.
const PEER_BODY: &str = "grant_type=client_credentials&scope=upload-data%20view-indicator";

/// The peer's client id.
const PEER_CLIENT_ID: &str = "bench";

/// Issue 17's throughput target for ES256 and EdDSA: Portcullis / peer.
const TARGET_RATIO: f64 = 4.0;

/// Issue 17's latency target for ES256 and EdDSA, at [`TARGET_CONCURRENCY`].
const TARGET_P99_MS: f64 = 10.0;

/// The concurrency the latency target is set at.
const TARGET_CONCURRENCY: usize = 64;

/// The name of the peer in the report.
const PEER: &str = "node-oidc-provider";

/// Runs the comparison and prints it.
pub async fn run(args: &PeersArgs) -> anyhow::Result<()> {
    let dir = PathBuf::from(PEER_DIR);
    let node_version = tool_version("node").await?;
    install(&dir).await?;
    let peer_version = package_version(&dir)?;
    let alg = args.signing_alg;

    report::header("peers", alg.as_str(), None);
    println!(
        "Portcullis against {PEER} {peer_version} (Node.js {node_version}, {} workers), \
         {} round{} of Portcullis then {PEER}; warm-up {} then {} each, concurrency {}, \
         one keep-alive HTTP/1.1 connection per worker, the same load generator",
        args.node_workers,
        args.rounds,
        if args.rounds == 1 { "" } else { "s" },
        humantime::format_duration(args.warmup),
        humantime::format_duration(args.duration),
        args.concurrency,
    );
    println!("load average before: {}", load_average());

    let peer = NodePeer::start(&dir, alg, args.node_workers).await?;
    println!(
        "{PEER} ready in {} ms at {}: primary {} and workers {}; in memory, nothing stored per token",
        ms(peer.ready.as_secs_f64() * 1000.0),
        peer.url,
        peer.primary,
        join(&peer.workers),
    );
    let mut deployment = Deployment::start(alg, &Engine::Sqlite, 1, None, 0)
        .await
        .with_context(|| format!("starting a {} Portcullis", alg.as_str()))?;
    println!("Portcullis: {}", deployment.description());
    report::server_ready(&deployment.facts);

    let portcullis_target = deployment
        .targets
        .first()
        .cloned()
        .context("Portcullis has no address")?;
    let peer_target = Arc::new(Target::from_url(&peer.url).await?);
    let portcullis_bodies = token::label_bodies();
    let peer_bodies: Arc<[Bytes]> = Arc::from(vec![Bytes::from_static(PEER_BODY.as_bytes())]);

    let first = |bodies: &Arc<[Bytes]>| bodies.first().cloned().context("no request body");
    let sample = first_token(
        &portcullis_target,
        PORTCULLIS_TOKEN_PATH,
        first(&portcullis_bodies)?,
        &deployment.creds,
        alg,
    )
    .await
    .context("Portcullis's first token")?;
    println!("Portcullis: POST {PORTCULLIS_TOKEN_PATH} gives {sample}");
    let sample = first_token(
        &peer_target,
        PEER_TOKEN_PATH,
        first(&peer_bodies)?,
        &peer.creds,
        alg,
    )
    .await
    .with_context(|| format!("{PEER}'s first token"))?;
    println!("{PEER}: POST {PEER_TOKEN_PATH} gives {sample}");

    let mut rounds = Vec::with_capacity(args.rounds);
    for round in 1..=args.rounds {
        println!();
        println!("round {round}/{}: Portcullis", args.rounds);
        let ours = token::run_at(
            PORTCULLIS_TOKEN_PATH,
            Arc::clone(&portcullis_bodies),
            &deployment.targets,
            &deployment.creds,
            &deployment.plan(args.concurrency, args.warmup, args.duration),
        )
        .await
        .with_context(|| format!("round {round}, Portcullis"))?;
        report::level(&ours);
        println!(
            "round {round}/{}: {PEER} ({} workers)",
            args.rounds, args.node_workers
        );
        let plan = Plan {
            concurrency: args.concurrency,
            warmup: args.warmup,
            duration: args.duration,
            server_pids: peer.pids(),
            database: None,
        };
        let theirs = token::run_at(
            PEER_TOKEN_PATH,
            Arc::clone(&peer_bodies),
            std::slice::from_ref(&peer_target),
            &peer.creds,
            &plan,
        )
        .await
        .with_context(|| format!("round {round}, {PEER}"))?;
        report::level(&theirs);
        let round = Round { ours, theirs };
        println!(
            "  Portcullis / {PEER}: {}",
            or_na(round.ratio().map(|r| format!("{r:.2}×")))
        );
        rounds.push(round);
    }

    deployment.note_peak_rss();
    let portcullis_peak = deployment.facts.peak_rss_kib;
    let peer_peak = peer.peak_rss_kib();
    println!();
    println!("load average after: {}", load_average());
    println!(
        "peak RSS: Portcullis {}; {PEER} {} (primary and workers together)",
        or_na(portcullis_peak.map(report::mib)),
        or_na(peer_peak.map(report::mib)),
    );
    println!();
    print_summary(args, &rounds);
    println!();
    print_verdict(args, &rounds);

    let stopped = peer.shutdown().await;
    deployment.shutdown().await?;
    stopped
}

/// One round: Portcullis, then the peer.
struct Round {
    ours: LevelResult,
    theirs: LevelResult,
}

impl Round {
    /// Portcullis's successful requests per second over the peer's.
    fn ratio(&self) -> Option<f64> {
        self.ours.rate_over(&self.theirs)
    }
}

/// The table of every round and the medians.
fn print_summary(args: &PeersArgs, rounds: &[Round]) {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "summary: client credentials, alg {}, concurrency {}, {} round{} of warm-up {} + {} per server \
         (both servers and the load generator share {cores} cores; CPU in cores busy)",
        args.signing_alg.as_str(),
        args.concurrency,
        rounds.len(),
        if rounds.len() == 1 { "" } else { "s" },
        humantime::format_duration(args.warmup),
        humantime::format_duration(args.duration),
    );
    let head = [
        "server",
        "round",
        "req/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "server CPU",
        "CPU ms/req",
        "bench CPU",
        "other CPU",
        "ratio",
    ];
    let cores_of =
        |r: &LevelResult, c: Option<Duration>| or_na(c.map(|c| format!("{:.2}", r.cores(c))));
    let row = |server: &str, round: String, r: &LevelResult, ratio: String| {
        vec![
            server.to_owned(),
            round,
            thousands(r.rps()),
            or_na(r.quantile_ms(0.50).map(ms)),
            or_na(r.quantile_ms(0.99).map(ms)),
            r.errors.to_string(),
            cores_of(r, r.server_cpu),
            or_na(r.server_cpu_ms_per_request().map(|v| format!("{v:.3}"))),
            cores_of(r, r.bench_cpu),
            cores_of(r, r.other_cpu()),
            ratio,
        ]
    };
    let mut rows = Vec::new();
    for (i, round) in rounds.iter().enumerate() {
        let n = (i + 1).to_string();
        rows.push(row("Portcullis", n.clone(), &round.ours, String::new()));
        let ratio = or_na(round.ratio().map(|r| format!("{r:.2}×")));
        rows.push(row(PEER, n, &round.theirs, ratio));
    }
    let medians = |server: &str, side: fn(&Round) -> &LevelResult, ratio: String| {
        let of = |f: &dyn Fn(&LevelResult) -> Option<f64>| {
            median(rounds.iter().filter_map(|r| f(side(r))).collect())
        };
        vec![
            server.to_owned(),
            "median".to_owned(),
            or_na(of(&|r| Some(r.rps())).map(thousands)),
            or_na(of(&|r| r.quantile_ms(0.50)).map(ms)),
            or_na(of(&|r| r.quantile_ms(0.99)).map(ms)),
            rounds
                .iter()
                .map(|r| side(r).errors)
                .sum::<u64>()
                .to_string(),
            or_na(of(&|r| r.server_cpu.map(|c| r.cores(c))).map(|v| format!("{v:.2}"))),
            or_na(of(&|r| r.server_cpu_ms_per_request()).map(|v| format!("{v:.3}"))),
            or_na(of(&|r| r.bench_cpu.map(|c| r.cores(c))).map(|v| format!("{v:.2}"))),
            or_na(of(&|r| r.other_cpu().map(|c| r.cores(c))).map(|v| format!("{v:.2}"))),
            ratio,
        ]
    };
    let ratio = median(rounds.iter().filter_map(Round::ratio).collect());
    rows.push(medians("Portcullis", |r| &r.ours, String::new()));
    rows.push(medians(
        PEER,
        |r| &r.theirs,
        or_na(ratio.map(|r| format!("{r:.2}×"))),
    ));
    table(&head, &rows);
    println!(
        "(errors: summed over the rounds; ratio: Portcullis's req/s over {PEER}'s in the same round, \
         and the median of those ratios)"
    );
}

/// Whether issue 17's targets are met: for ES256 and EdDSA, Portcullis at least
/// [`TARGET_RATIO`] times the peer, and its p99 under [`TARGET_P99_MS`] at
/// concurrency [`TARGET_CONCURRENCY`]. RS256 has no target.
fn print_verdict(args: &PeersArgs, rounds: &[Round]) {
    let each = |f: &dyn Fn(&Round) -> Option<f64>, fmt: &dyn Fn(f64) -> String| {
        let values: Vec<String> = rounds.iter().map(|r| or_na(f(r).map(fmt))).collect();
        values.join(" / ")
    };
    let ratio = median(rounds.iter().filter_map(Round::ratio).collect());
    let p99 = median(
        rounds
            .iter()
            .filter_map(|r| r.ours.quantile_ms(0.99))
            .collect(),
    );
    let targeted = matches!(args.signing_alg, Alg::ES256 | Alg::EdDSA);
    let verdict = |met: Option<bool>| match (targeted, met) {
        (false, _) => format!(
            "no target for {} (reported only)",
            args.signing_alg.as_str()
        ),
        (true, Some(true)) => "target met".to_owned(),
        (true, Some(false)) => "target NOT met".to_owned(),
        (true, None) => "not measured".to_owned(),
    };
    println!(
        "Portcullis / {PEER}: {} median ({} per round); target ≥ {TARGET_RATIO}× for ES256 and EdDSA: {}",
        or_na(ratio.map(|r| format!("{r:.2}×"))),
        each(&Round::ratio, &|r| format!("{r:.2}×")),
        verdict(ratio.map(|r| r >= TARGET_RATIO)),
    );
    let p99_verdict = if args.concurrency == TARGET_CONCURRENCY {
        verdict(p99.map(|v| v < TARGET_P99_MS))
    } else {
        format!("the target is set at concurrency {TARGET_CONCURRENCY}; not judged")
    };
    println!(
        "Portcullis p99: {} ms median ({} per round); target < {TARGET_P99_MS} ms at concurrency \
         {TARGET_CONCURRENCY} for ES256 and EdDSA: {p99_verdict}",
        or_na(p99.map(ms)),
        each(&|r| r.ours.quantile_ms(0.99), &ms),
    );
}

/// The load averages, or `n/a`.
fn load_average() -> String {
    procfs::load_average().unwrap_or_else(|_| "n/a".to_owned())
}

/// Numbers joined by spaces.
fn join(pids: &[u32]) -> String {
    let parts: Vec<String> = pids.iter().map(u32::to_string).collect();
    parts.join(" ")
}

/// `TOOL --version`, trimmed; a clear error when the tool is not on `PATH`.
async fn tool_version(tool: &str) -> anyhow::Result<String> {
    let out = Command::new(tool)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| missing_tool(tool, &e))?;
    if !out.status.success() {
        bail!("`{tool} --version` failed ({})", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The error for a tool that cannot be run.
fn missing_tool(tool: &str, e: &std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::NotFound {
        anyhow::anyhow!(
            "`{tool}` is not on PATH: the peers scenario runs node-oidc-provider, which needs Node.js and npm"
        )
    } else {
        anyhow::anyhow!("cannot run `{tool}`: {e}")
    }
}

/// Installs the peer's locked dependencies with `npm ci` unless they are there.
async fn install(dir: &Path) -> anyhow::Result<()> {
    if dir
        .join("node_modules/oidc-provider/package.json")
        .is_file()
    {
        return Ok(());
    }
    let npm_version = tool_version("npm").await?;
    eprintln!(
        "installing {PEER}'s locked dependencies: npm {npm_version} ci in {}",
        dir.display()
    );
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .stdin(Stdio::null())
        // npm's progress goes to stderr with the rest of the bench's notes.
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .await
        .map_err(|e| missing_tool("npm", &e))?;
    if !status.success() {
        bail!("`npm ci` in {} failed ({status})", dir.display());
    }
    Ok(())
}

/// The version of `oidc-provider` installed in `dir`.
fn package_version(dir: &Path) -> anyhow::Result<String> {
    let path = dir.join("node_modules/oidc-provider/package.json");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let json: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    json["version"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no version in {}", path.display()))
}

/// The running peer; dropping it kills the primary, and the workers exit when
/// their channel to it closes.
struct NodePeer {
    child: Child,
    /// The primary's process id.
    primary: u32,
    /// The workers' process ids.
    workers: Vec<u32>,
    /// `http://127.0.0.1:PORT`.
    url: String,
    /// Spawn to every worker listening.
    ready: Duration,
    /// The one client.
    creds: Credentials,
}

impl NodePeer {
    /// Starts `node server.js` in `dir` with `workers` workers signing with
    /// `alg`, on a port the system chooses, and waits for its ready line.
    async fn start(dir: &Path, alg: Alg, workers: usize) -> anyhow::Result<Self> {
        let creds = Credentials {
            client_id: PEER_CLIENT_ID.to_owned(),
            client_secret: portcullis_crypto::random_id("peer_")
                .context("generating the peer's client secret")?,
        };
        let started = Instant::now();
        let mut child = Command::new("node")
            .arg("server.js")
            .args(["--port", "0", "--alg", alg.as_str()])
            .args(["--workers", &workers.to_string()])
            .current_dir(dir)
            .env("PEER_CLIENT_ID", &creds.client_id)
            .env("PEER_CLIENT_SECRET", &creds.client_secret)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| missing_tool("node", &e))?;
        let primary = child.id().context("node exited at once")?;
        let stderr = child.stderr.take().context("node's stderr")?;
        tokio::spawn(forward(stderr));
        let stdout = child.stdout.take().context("node's stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let waited = tokio::time::timeout(READY_TIMEOUT, async {
            loop {
                let line = lines
                    .next_line()
                    .await
                    .context("reading node's stdout")?
                    .context("node closed stdout before it was listening")?;
                if let Some(ready) = parse_ready(&line) {
                    return anyhow::Ok(ready);
                }
                eprintln!("{PEER}: {line}");
            }
        })
        .await;
        let (url, worker_pids) = match waited {
            Ok(Ok(ready)) => ready,
            Ok(Err(e)) => {
                let status = tokio::time::timeout(Duration::from_secs(2), child.wait()).await;
                return Err(match status {
                    Ok(Ok(s)) => e.context(format!("{PEER} exited ({s}); its messages are above")),
                    _ => e,
                });
            }
            Err(_) => bail!(
                "{PEER} did not say it was listening within {}s",
                READY_TIMEOUT.as_secs()
            ),
        };
        let ready = started.elapsed();
        if worker_pids.len() != workers {
            bail!("{PEER} names {} workers, not {workers}", worker_pids.len());
        }
        tokio::spawn(forward(lines.into_inner()));
        Ok(Self {
            child,
            primary,
            workers: worker_pids,
            url,
            ready,
            creds,
        })
    }

    /// The primary's and the workers' process ids.
    fn pids(&self) -> Vec<u32> {
        std::iter::once(self.primary)
            .chain(self.workers.iter().copied())
            .collect()
    }

    /// Peak resident memory of the primary and the workers together (VmHWM), in KiB.
    fn peak_rss_kib(&self) -> Option<u64> {
        self.pids()
            .into_iter()
            .map(|pid| procfs::status_kib(pid, "VmHWM").ok())
            .sum()
    }

    /// Stops the primary with SIGTERM (SIGKILL if it lingers); it stops the workers.
    async fn shutdown(mut self) -> anyhow::Result<()> {
        server::stop(&mut self.child)
            .await
            .with_context(|| format!("stopping {PEER}"))
    }
}

impl Drop for NodePeer {
    fn drop(&mut self) {
        // Harmless when the child has already exited; tokio reaps it.
        let _ = self.child.start_kill();
    }
}

/// Copies the peer's output lines to stderr, each distinct line once (every
/// worker prints the same warnings).
async fn forward(out: impl AsyncRead + Unpin) {
    let mut seen = HashSet::new();
    let mut lines = BufReader::new(out).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if seen.insert(line.clone()) {
            eprintln!("{PEER}: {line}");
        }
    }
}

/// `node-oidc-provider listening on http://127.0.0.1:PORT (workers 1 2)` →
/// the URL and the workers' process ids.
fn parse_ready(line: &str) -> Option<(String, Vec<u32>)> {
    let rest = line.strip_prefix(READY_PREFIX)?;
    let (url, workers) = rest.split_once(" (workers ")?;
    let workers = workers.strip_suffix(')')?;
    let pids = workers
        .split_whitespace()
        .map(|p| p.parse().ok())
        .collect::<Option<Vec<u32>>>()?;
    (url.starts_with("http://") && !pids.is_empty()).then(|| (url.to_owned(), pids))
}

/// What one token answer looked like.
struct TokenSample {
    /// The JWS header's `alg`.
    alg: String,
    /// Length of the access token.
    token_bytes: usize,
    /// Length of the whole response body.
    body_bytes: usize,
    /// The names of the token's claims.
    claims: Vec<String>,
}

impl std::fmt::Display for TokenSample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a {}-byte answer; its access token is signed with {}, {} bytes, claims {}",
            self.body_bytes,
            self.alg,
            self.token_bytes,
            self.claims.join(" ")
        )
    }
}

/// Asks `target` for one token the way the load workers will, and checks that
/// the answer is a JWT signed with `alg`.
async fn first_token(
    target: &Target,
    path: &str,
    body: Bytes,
    creds: &Credentials,
    alg: Alg,
) -> anyhow::Result<TokenSample> {
    let mut sender = load::connect_from(target, None).await?;
    let request = token::request(target, path, token::basic_auth(creds)?, body)?;
    let (status, _, body) = load::exchange_once(&mut sender, request).await?;
    if !status.is_success() {
        bail!("HTTP {status}: {}", String::from_utf8_lossy(&body));
    }
    let sample = inspect_token(&body)?;
    if sample.alg != alg.as_str() {
        bail!(
            "the access token is signed with {}, not {}",
            sample.alg,
            alg.as_str()
        );
    }
    Ok(sample)
}

/// Reads the access token of a token response: its header's `alg`, its size
/// and its claims' names.
fn inspect_token(body: &[u8]) -> anyhow::Result<TokenSample> {
    let json: serde_json::Value =
        serde_json::from_slice(body).context("the token response is not JSON")?;
    let token = json["access_token"]
        .as_str()
        .context("the token response has no access_token")?;
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        bail!("the access token is not a JWS in compact form");
    };
    let decode = |part: &str, what: &str| -> anyhow::Result<serde_json::Value> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(part)
            .with_context(|| format!("the access token's {what} is not base64url"))?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("the access token's {what} is not JSON"))
    };
    let header = decode(header, "header")?;
    let payload = decode(payload, "payload")?;
    let alg = header["alg"]
        .as_str()
        .context("the access token's header has no alg")?
        .to_owned();
    let claims = payload
        .as_object()
        .context("the access token's payload is not an object")?
        .keys()
        .cloned()
        .collect();
    Ok(TokenSample {
        alg,
        token_bytes: token.len(),
        body_bytes: body.len(),
        claims,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_ready_line_gives_the_url_and_the_workers() {
        let (url, pids) =
            parse_ready("node-oidc-provider listening on http://127.0.0.1:40123 (workers 17 18)")
                .unwrap();
        assert_eq!(url, "http://127.0.0.1:40123");
        assert_eq!(pids, vec![17, 18]);
        assert!(parse_ready("node-oidc-provider listening on http://127.0.0.1:1").is_none());
        assert!(parse_ready("oidc-provider WARNING: Unsupported runtime.").is_none());
        assert!(
            parse_ready("node-oidc-provider listening on http://127.0.0.1:1 (workers )").is_none()
        );
    }

    #[test]
    fn a_token_answer_shows_its_alg_size_and_claims() {
        let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let token = format!(
            "{}.{}.c2ln",
            b64(r#"{"alg":"ES256","typ":"at+jwt"}"#),
            b64(r#"{"sub":"bench","scope":"a b"}"#)
        );
        let body = format!(r#"{{"access_token":"{token}","token_type":"Bearer"}}"#);
        let sample = inspect_token(body.as_bytes()).unwrap();
        assert_eq!(sample.alg, "ES256");
        assert_eq!(sample.token_bytes, token.len());
        assert_eq!(sample.body_bytes, body.len());
        assert_eq!(sample.claims, vec!["scope", "sub"]);
        assert!(inspect_token(br#"{"access_token":"opaque"}"#).is_err());
        assert!(inspect_token(b"not json").is_err());
    }
}
