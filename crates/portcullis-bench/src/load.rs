//! The load driver, independent of any scenario: `concurrency` workers, each on
//! its own keep-alive HTTP/1.1 connection (hyper 1 client, `TCP_NODELAY`),
//! send requests back to back for a warm-up and then for the measured duration.
//! With several targets (the nodes of one server), worker `i` talks to target
//! `i mod N`, and the successes are also counted per target.
//!
//! A scenario supplies one [`Exchange`] per worker: it builds each request and
//! judges each response. Per-worker state lets later scenarios chain requests
//! (a refresh token feeding the next refresh, a token feeding `whoami`). An
//! exchange that draws on a finite supply (a pool of single-use authorization
//! codes) can run out: its worker stops, and the level ends with the last
//! worker's last answer instead of at the end of the window.

use crate::postgres::{self, Sampler};
use crate::procfs;
use anyhow::{Context, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{HeaderMap, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;

/// How long past the end of the measurement a request may still take before it is abandoned.
const STRAGGLER_GRACE: Duration = Duration::from_secs(5);

/// How much of an error response body to keep for the report.
const ERROR_BODY_CHARS: usize = 300;

/// The server requests go to.
#[derive(Debug, Clone)]
pub struct Target {
    /// Resolved socket address.
    pub addr: SocketAddr,
    /// `host:port`, sent as the `Host` header.
    pub authority: String,
    /// Path prefix of the server (empty, or `/something` without a trailing slash).
    pub base_path: String,
}

impl Target {
    /// Resolves an `http://HOST:PORT[/prefix]` URL.
    pub async fn from_url(url: &str) -> anyhow::Result<Self> {
        let uri: Uri = url
            .parse()
            .with_context(|| format!("invalid URL {url:?}"))?;
        if uri.scheme_str() != Some("http") {
            bail!("only http:// URLs are supported (got {url:?})");
        }
        let authority = uri
            .authority()
            .with_context(|| format!("no host in {url:?}"))?
            .clone();
        let port = authority.port_u16().unwrap_or(80);
        let addr = tokio::net::lookup_host((authority.host(), port))
            .await
            .with_context(|| format!("resolving {}", authority.host()))?
            .next()
            .with_context(|| format!("{} has no address", authority.host()))?;
        Ok(Self {
            addr,
            authority: authority.to_string(),
            base_path: uri.path().trim_end_matches('/').to_owned(),
        })
    }

    /// A request builder for `method path` with the `Host` header set.
    pub fn request(&self, method: hyper::Method, path: &str) -> hyper::http::request::Builder {
        Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base_path))
            .header(hyper::header::HOST, &self.authority)
    }
}

/// One worker's side of a scenario.
pub trait Exchange: Send + 'static {
    /// Takes the next piece of work, for an exchange that draws on a finite
    /// supply; `false` (the supply is used up) stops the worker.
    fn has_next(&mut self) -> bool {
        true
    }
    /// Builds the next request.
    fn request(&mut self, target: &Target) -> anyhow::Result<Request<Full<Bytes>>>;
    /// Whether the response is a success; anything else counts as an error.
    fn check(&mut self, status: StatusCode, headers: &HeaderMap, body: &Bytes) -> bool;
}

/// How to drive one concurrency level.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Workers, each with its own connection.
    pub concurrency: usize,
    /// Unmeasured lead-in.
    pub warmup: Duration,
    /// Measured span.
    pub duration: Duration,
    /// The server's process ids (one per node), when it runs on this machine:
    /// their CPU use is measured.
    pub server_pids: Vec<u32>,
    /// The PostgreSQL database the server uses, if it uses one: its commits and
    /// the CPU of every PostgreSQL process on this machine are measured.
    pub database: Option<Arc<Sampler>>,
}

/// What one concurrency level measured.
#[derive(Debug, Clone)]
pub struct LevelResult {
    /// Workers.
    pub concurrency: usize,
    /// Length of the measured window: the planned duration, or less when the
    /// workers ran out of work ([`Exchange::has_next`]) before its end.
    pub window: Duration,
    /// Whether the workers ran out of work before the end of the planned window.
    pub ran_out: bool,
    /// Latencies of successful requests in the window, in microseconds, sorted.
    pub latencies_us: Vec<u64>,
    /// Failed requests in the window (non-success status, transport error, timeout).
    pub errors: u64,
    /// The first error seen in the window.
    pub first_error: Option<String>,
    /// Successful requests in the window per target, in the order of the targets.
    pub per_node: Vec<u64>,
    /// CPU time the server (all its nodes) used in the window.
    pub server_cpu: Option<Duration>,
    /// CPU time the PostgreSQL processes on this machine used in the window.
    pub postgres_cpu: Option<Duration>,
    /// What the PostgreSQL database did in the window.
    pub database: Option<postgres::Delta>,
    /// CPU time this load generator used in the window.
    pub bench_cpu: Option<Duration>,
    /// Busy CPU time of the whole machine in the window.
    pub machine_cpu: Option<Duration>,
    /// Bytes the server wrote to storage in the window (database, log, checkpoints).
    pub server_storage_bytes: Option<u64>,
}

impl LevelResult {
    /// Successful requests per second.
    pub fn rps(&self) -> f64 {
        let n = self.latencies_us.len() as f64;
        let secs = self.window.as_secs_f64();
        // A supply used up during the warm-up leaves no window.
        if secs > 0.0 { n / secs } else { 0.0 }
    }

    /// This level's rate as a share of `base`'s (`None` when `base` had none).
    pub fn rate_over(&self, base: &LevelResult) -> Option<f64> {
        let base = base.rps();
        (base > 0.0).then(|| self.rps() / base)
    }

    /// Cores kept busy on average over the window by `cpu`.
    pub fn cores(&self, cpu: Duration) -> f64 {
        let secs = self.window.as_secs_f64();
        if secs > 0.0 {
            cpu.as_secs_f64() / secs
        } else {
            0.0
        }
    }

    /// CPU time the rest of the machine used in the window (machine minus server,
    /// PostgreSQL and load generator): more than a little means the figures are disturbed.
    pub fn other_cpu(&self) -> Option<Duration> {
        let taken = self.server_cpu.unwrap_or_default()
            + self.postgres_cpu.unwrap_or_default()
            + self.bench_cpu?;
        Some(self.machine_cpu?.saturating_sub(taken))
    }

    /// Server CPU time per successful request, in ms.
    pub fn server_cpu_ms_per_request(&self) -> Option<f64> {
        self.cpu_ms_per_request(self.server_cpu)
    }

    /// `cpu` per successful request, in ms.
    pub fn cpu_ms_per_request(&self, cpu: Option<Duration>) -> Option<f64> {
        let n = self.latencies_us.len();
        if n == 0 {
            return None;
        }
        cpu.map(|c| c.as_secs_f64() * 1000.0 / n as f64)
    }

    /// Committed transactions of the database per second (`xact_commit`).
    pub fn commits_per_second(&self) -> Option<f64> {
        self.database
            .map(|d| d.commits as f64 / self.window.as_secs_f64())
    }

    /// Successful requests per committed transaction of the database.
    pub fn requests_per_commit(&self) -> Option<f64> {
        let d = self.database?;
        (d.commits > 0).then(|| self.latencies_us.len() as f64 / d.commits as f64)
    }

    /// Bytes the server wrote to storage per successful request, in KiB.
    pub fn server_storage_kib_per_request(&self) -> Option<f64> {
        let n = self.latencies_us.len();
        if n == 0 {
            return None;
        }
        self.server_storage_bytes
            .map(|b| b as f64 / 1024.0 / n as f64)
    }

    /// The `q` quantile (0 < q ≤ 1, nearest rank) of successful latencies, in ms.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let n = self.latencies_us.len();
        if n == 0 {
            return None;
        }
        let rank = (q * n as f64).ceil() as usize;
        let i = rank.clamp(1, n) - 1;
        self.latencies_us.get(i).map(|us| *us as f64 / 1000.0)
    }
}

/// What one worker saw in the window.
struct WorkerStats {
    /// The target it talked to.
    node: usize,
    /// Whether it stopped because its exchange ran out of work.
    ran_out: bool,
    latencies_us: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

impl WorkerStats {
    fn error(&mut self, message: impl FnOnce() -> String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(message());
        }
    }
}

/// The target of worker `i`: round-robin over `targets`.
pub fn target_of(targets: &[Arc<Target>], i: usize) -> anyhow::Result<(usize, &Arc<Target>)> {
    let node = i
        .checked_rem(targets.len())
        .context("no target to send requests to")?;
    let target = targets.get(node).context("no target to send requests to")?;
    Ok((node, target))
}

/// Drives one level: `make(i)` gives worker `i` its [`Exchange`]; worker `i`
/// talks to `targets[i % targets.len()]`.
pub async fn run<E, F>(targets: &[Arc<Target>], plan: &Plan, make: F) -> anyhow::Result<LevelResult>
where
    E: Exchange,
    F: Fn(usize) -> E,
{
    // Open every connection before the clock starts.
    let mut senders = Vec::with_capacity(plan.concurrency);
    for i in 0..plan.concurrency {
        let (node, target) = target_of(targets, i)?;
        senders.push((node, Arc::clone(target), connect(target).await?));
    }
    let warm_end = Instant::now() + plan.warmup;
    let end = warm_end + plan.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (node, target, sender)) in senders.into_iter().enumerate() {
        let exchange = make(i);
        tasks.spawn(worker(node, target, sender, exchange, warm_end, end));
    }
    let (finished, finished_early) = tokio::sync::oneshot::channel();
    let cpu = tokio::spawn(cpu_in_window(
        plan.server_pids.clone(),
        plan.database.clone(),
        warm_end,
        end,
        finished_early,
    ));
    let mut result = LevelResult {
        concurrency: plan.concurrency,
        window: plan.duration,
        ran_out: false,
        latencies_us: Vec::new(),
        per_node: vec![0; targets.len()],
        errors: 0,
        first_error: None,
        server_cpu: None,
        postgres_cpu: None,
        database: None,
        bench_cpu: None,
        machine_cpu: None,
        server_storage_bytes: None,
    };
    while let Some(joined) = tasks.join_next().await {
        let stats = joined.context("a load worker failed")??;
        if let Some(n) = result.per_node.get_mut(stats.node) {
            *n += stats.latencies_us.len() as u64;
        }
        result.latencies_us.extend(stats.latencies_us);
        result.errors += stats.errors;
        result.ran_out |= stats.ran_out;
        if result.first_error.is_none() {
            result.first_error = stats.first_error;
        }
    }
    if result.ran_out {
        // The work ran out: the window ends with the last answer, and so does
        // the CPU sampler's (it is still waiting for `end`).
        let last = Instant::now().min(end);
        result.window = last.saturating_duration_since(warm_end);
        let _ = finished.send(());
    }
    result.latencies_us.sort_unstable();
    let used = cpu.await.context("the CPU sampler failed")?;
    result.server_cpu = used.server_cpu;
    result.postgres_cpu = used.postgres_cpu;
    result.database = used.database;
    result.bench_cpu = used.bench_cpu;
    result.machine_cpu = used.machine_cpu;
    result.server_storage_bytes = used.server_storage_bytes;
    Ok(result)
}

/// What the server (if `server_pids`), PostgreSQL (if `database`), this process
/// and the whole machine used between two instants.
#[derive(Debug, Default)]
struct Used {
    server_cpu: Option<Duration>,
    postgres_cpu: Option<Duration>,
    database: Option<postgres::Delta>,
    bench_cpu: Option<Duration>,
    machine_cpu: Option<Duration>,
    server_storage_bytes: Option<u64>,
}

/// One reading of the counters [`Used`] is the difference of.
struct Sample {
    server_cpu: Option<Duration>,
    postgres_cpu: Option<HashMap<u32, Duration>>,
    database: Option<postgres::Counters>,
    bench_cpu: Option<Duration>,
    machine_cpu: Option<Duration>,
    server_storage_bytes: Option<u64>,
}

/// The sum of `f(pid)` over `pids`; `None` if there are none or any fails.
fn sum_over<T: std::iter::Sum<T>>(pids: &[u32], f: impl Fn(u32) -> anyhow::Result<T>) -> Option<T> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|&pid| f(pid).ok()).sum()
}

/// Reads every counter now.
async fn sample(pids: &[u32], database: Option<&Sampler>) -> Sample {
    let counters = match database {
        Some(db) => db.sample().await.ok(),
        None => None,
    };
    Sample {
        server_cpu: sum_over(pids, procfs::cpu_time),
        postgres_cpu: database.and_then(|_| procfs::cpu_by_command(procfs::POSTGRES_COMMAND).ok()),
        database: counters,
        bench_cpu: procfs::cpu_time(std::process::id()).ok(),
        machine_cpu: procfs::machine_busy().ok(),
        server_storage_bytes: sum_over(pids, procfs::storage_writes),
    }
}

/// CPU time the server (its `server_pids`), PostgreSQL (with a `database`), this
/// process and the whole machine use between `start` and `end` (or `finished`,
/// when the workers run out of work first), the bytes the server writes to
/// storage, and what the database did.
async fn cpu_in_window(
    server_pids: Vec<u32>,
    database: Option<Arc<Sampler>>,
    start: Instant,
    end: Instant,
    finished: tokio::sync::oneshot::Receiver<()>,
) -> Used {
    tokio::time::sleep_until(start).await;
    let before = sample(&server_pids, database.as_deref()).await;
    tokio::select! {
        () = tokio::time::sleep_until(end) => {}
        // Sent when the work ran out; dropped (an error) when the level ended normally.
        Ok(()) = finished => {}
    }
    let after = sample(&server_pids, database.as_deref()).await;
    let used = |a: Option<Duration>, b: Option<Duration>| b?.checked_sub(a?);
    Used {
        server_cpu: used(before.server_cpu, after.server_cpu),
        postgres_cpu: before
            .postgres_cpu
            .zip(after.postgres_cpu)
            .map(|(b, a)| procfs::cpu_delta(&b, &a)),
        database: before
            .database
            .zip(after.database)
            .map(|(b, a)| b.until(&a)),
        bench_cpu: used(before.bench_cpu, after.bench_cpu),
        machine_cpu: used(before.machine_cpu, after.machine_cpu),
        server_storage_bytes: after
            .server_storage_bytes
            .zip(before.server_storage_bytes)
            .and_then(|(b, a)| b.checked_sub(a)),
    }
}

/// Opens a keep-alive HTTP/1.1 connection.
async fn connect(target: &Target) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    connect_from(target, None).await
}

/// Opens a keep-alive HTTP/1.1 connection, from `local` when given: binding the
/// client socket to an address (any port) before connecting makes the server see
/// that address as the source (on Linux every 127.0.0.0/8 address is loopback, so
/// 127.x.y.z gives distinct sources on one machine).
pub async fn connect_from(
    target: &Target,
    local: Option<IpAddr>,
) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = match local {
        None => TcpStream::connect(target.addr)
            .await
            .with_context(|| format!("connecting to {}", target.addr))?,
        Some(ip) => {
            let socket = match ip {
                IpAddr::V4(_) => TcpSocket::new_v4(),
                IpAddr::V6(_) => TcpSocket::new_v6(),
            }
            .context("creating a client socket")?;
            socket
                .bind(SocketAddr::new(ip, 0))
                .with_context(|| format!("binding the client socket to {ip}"))?;
            socket
                .connect(target.addr)
                .await
                .with_context(|| format!("connecting to {} from {ip}", target.addr))?
        }
    };
    stream.set_nodelay(true).context("setting TCP_NODELAY")?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .context("HTTP/1.1 handshake")?;
    tokio::spawn(async move {
        // Its errors surface on the sender as failed requests.
        let _ = connection.await;
    });
    Ok(sender)
}

/// Sends one request and reads the whole response.
pub async fn exchange_once(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> anyhow::Result<(StatusCode, HeaderMap, Bytes)> {
    sender.ready().await.context("connection not ready")?;
    let response = sender
        .send_request(request)
        .await
        .context("sending the request")?;
    let status = response.status();
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .context("reading the response body")?
        .to_bytes();
    Ok((status, parts.headers, body))
}

/// One worker: requests back to back until `end` or until its exchange runs out
/// of work; records those started after `warm_end` and finished by `end`.
/// Reconnects after a transport error.
async fn worker<E: Exchange>(
    node: usize,
    target: Arc<Target>,
    sender: SendRequest<Full<Bytes>>,
    mut exchange: E,
    warm_end: Instant,
    end: Instant,
) -> anyhow::Result<WorkerStats> {
    let mut stats = WorkerStats {
        node,
        ran_out: false,
        latencies_us: Vec::new(),
        errors: 0,
        first_error: None,
    };
    let mut sender = Some(sender);
    while Instant::now() < end {
        let conn = match sender.as_mut() {
            Some(s) => s,
            None => match connect(&target).await {
                Ok(s) => sender.insert(s),
                Err(e) => {
                    if Instant::now() >= warm_end {
                        stats.error(|| format!("{e:#}"));
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        if !exchange.has_next() {
            stats.ran_out = true;
            break;
        }
        let request = exchange.request(&target)?;
        let started = Instant::now();
        let outcome =
            tokio::time::timeout_at(end + STRAGGLER_GRACE, exchange_once(conn, request)).await;
        let finished = Instant::now();
        let measured = started >= warm_end && finished <= end;
        match outcome {
            Ok(Ok((status, headers, body))) => {
                if exchange.check(status, &headers, &body) {
                    if measured {
                        let us = u64::try_from(finished.duration_since(started).as_micros())
                            .unwrap_or(u64::MAX);
                        stats.latencies_us.push(us);
                    }
                } else if measured {
                    stats.error(|| {
                        let text = String::from_utf8_lossy(&body);
                        let text: String = text.chars().take(ERROR_BODY_CHARS).collect();
                        format!("HTTP {status}: {text}")
                    });
                }
            }
            Ok(Err(e)) => {
                sender = None;
                if measured {
                    stats.error(|| format!("{e:#}"));
                }
            }
            Err(_) => {
                sender = None;
                stats.error(|| {
                    format!(
                        "no response within {}s after the end of the run",
                        STRAGGLER_GRACE.as_secs()
                    )
                });
            }
        }
    }
    Ok(stats)
}
