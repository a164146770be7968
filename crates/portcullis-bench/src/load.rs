//! The load driver, independent of any scenario: `concurrency` workers, each on
//! its own keep-alive HTTP/1.1 connection (hyper 1 client, `TCP_NODELAY`),
//! send requests back to back for a warm-up and then for the measured duration.
//!
//! A scenario supplies one [`Exchange`] per worker: it builds each request and
//! judges each response. Per-worker state lets later scenarios chain requests
//! (a refresh token feeding the next refresh, a token feeding `whoami`).

use crate::procfs;
use anyhow::{Context, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
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
    /// Builds the next request.
    fn request(&mut self, target: &Target) -> anyhow::Result<Request<Full<Bytes>>>;
    /// Whether the response is a success; anything else counts as an error.
    fn check(&mut self, status: StatusCode, body: &Bytes) -> bool;
}

/// How to drive one concurrency level.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Workers, each with its own connection.
    pub concurrency: usize,
    /// Unmeasured lead-in.
    pub warmup: Duration,
    /// Measured span.
    pub duration: Duration,
    /// The server's process id, when it runs on this machine: its CPU use is measured.
    pub server_pid: Option<u32>,
}

/// What one concurrency level measured.
#[derive(Debug, Clone)]
pub struct LevelResult {
    /// Workers.
    pub concurrency: usize,
    /// Length of the measured window.
    pub window: Duration,
    /// Latencies of successful requests in the window, in microseconds, sorted.
    pub latencies_us: Vec<u64>,
    /// Failed requests in the window (non-success status, transport error, timeout).
    pub errors: u64,
    /// The first error seen in the window.
    pub first_error: Option<String>,
    /// CPU time the server used in the window.
    pub server_cpu: Option<Duration>,
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
        n / self.window.as_secs_f64()
    }

    /// Cores kept busy on average over the window by `cpu`.
    pub fn cores(&self, cpu: Duration) -> f64 {
        cpu.as_secs_f64() / self.window.as_secs_f64()
    }

    /// CPU time the rest of the machine used in the window (machine minus server
    /// and load generator): more than a little means the figures are disturbed.
    pub fn other_cpu(&self) -> Option<Duration> {
        let taken = self.server_cpu.unwrap_or_default() + self.bench_cpu?;
        Some(self.machine_cpu?.saturating_sub(taken))
    }

    /// Server CPU time per successful request, in ms.
    pub fn server_cpu_ms_per_request(&self) -> Option<f64> {
        let n = self.latencies_us.len();
        if n == 0 {
            return None;
        }
        self.server_cpu.map(|c| c.as_secs_f64() * 1000.0 / n as f64)
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

/// Drives one level: `make(i)` gives worker `i` its [`Exchange`].
pub async fn run<E, F>(target: &Arc<Target>, plan: Plan, make: F) -> anyhow::Result<LevelResult>
where
    E: Exchange,
    F: Fn(usize) -> E,
{
    // Open every connection before the clock starts.
    let mut senders = Vec::with_capacity(plan.concurrency);
    for _ in 0..plan.concurrency {
        senders.push(connect(target).await?);
    }
    let warm_end = Instant::now() + plan.warmup;
    let end = warm_end + plan.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for (i, sender) in senders.into_iter().enumerate() {
        let exchange = make(i);
        let target = Arc::clone(target);
        tasks.spawn(worker(target, sender, exchange, warm_end, end));
    }
    let cpu = tokio::spawn(cpu_in_window(plan.server_pid, warm_end, end));
    let mut result = LevelResult {
        concurrency: plan.concurrency,
        window: plan.duration,
        latencies_us: Vec::new(),
        errors: 0,
        first_error: None,
        server_cpu: None,
        bench_cpu: None,
        machine_cpu: None,
        server_storage_bytes: None,
    };
    while let Some(joined) = tasks.join_next().await {
        let stats = joined.context("a load worker failed")??;
        result.latencies_us.extend(stats.latencies_us);
        result.errors += stats.errors;
        if result.first_error.is_none() {
            result.first_error = stats.first_error;
        }
    }
    result.latencies_us.sort_unstable();
    let used = cpu.await.context("the CPU sampler failed")?;
    result.server_cpu = used.server_cpu;
    result.bench_cpu = used.bench_cpu;
    result.machine_cpu = used.machine_cpu;
    result.server_storage_bytes = used.server_storage_bytes;
    Ok(result)
}

/// What the server (if `server_pid`), this process and the whole machine used
/// between two instants.
#[derive(Debug, Default)]
struct Used {
    server_cpu: Option<Duration>,
    bench_cpu: Option<Duration>,
    machine_cpu: Option<Duration>,
    server_storage_bytes: Option<u64>,
}

/// CPU time the server (if `server_pid`), this process and the whole machine use
/// between `start` and `end`, and the bytes the server writes to storage.
async fn cpu_in_window(server_pid: Option<u32>, start: Instant, end: Instant) -> Used {
    let sample = || Used {
        server_cpu: server_pid.and_then(|pid| procfs::cpu_time(pid).ok()),
        bench_cpu: procfs::cpu_time(std::process::id()).ok(),
        machine_cpu: procfs::machine_busy().ok(),
        server_storage_bytes: server_pid.and_then(|pid| procfs::storage_writes(pid).ok()),
    };
    tokio::time::sleep_until(start).await;
    let before = sample();
    tokio::time::sleep_until(end).await;
    let after = sample();
    let used = |a: Option<Duration>, b: Option<Duration>| b?.checked_sub(a?);
    Used {
        server_cpu: used(before.server_cpu, after.server_cpu),
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
async fn exchange_once(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> anyhow::Result<(StatusCode, Bytes)> {
    sender.ready().await.context("connection not ready")?;
    let response = sender
        .send_request(request)
        .await
        .context("sending the request")?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .context("reading the response body")?
        .to_bytes();
    Ok((status, body))
}

/// One worker: requests back to back until `end`; records those started after
/// `warm_end` and finished by `end`. Reconnects after a transport error.
async fn worker<E: Exchange>(
    target: Arc<Target>,
    sender: SendRequest<Full<Bytes>>,
    mut exchange: E,
    warm_end: Instant,
    end: Instant,
) -> anyhow::Result<WorkerStats> {
    let mut stats = WorkerStats {
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
        let request = exchange.request(&target)?;
        let started = Instant::now();
        let outcome =
            tokio::time::timeout_at(end + STRAGGLER_GRACE, exchange_once(conn, request)).await;
        let finished = Instant::now();
        let measured = started >= warm_end && finished <= end;
        match outcome {
            Ok(Ok((status, body))) => {
                if exchange.check(status, &body) {
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
