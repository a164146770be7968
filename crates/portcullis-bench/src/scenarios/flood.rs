//! `flood`: do legitimate users keep working while attackers flood the server
//! with failed authentications from many source addresses?
//!
//! The server throttles failed authentication per source and promises never to
//! lock anyone out (see `portcullis_server::service::throttle`): a correct client
//! secret always gets its token, and a sign-in flood against one admin from many
//! sources only delays that admin's sign-ins from a clean source (by at most two
//! seconds) instead of refusing them. This scenario measures that promise and
//! what the flood costs the legitimate traffic, in two phases on one server:
//!
//! - **baseline**: the legitimate client's `client_credentials` token requests
//!   (the `token` scenario, `--concurrency` workers) and, beside it, one admin
//!   signing in over and over (form, then the right password) from 127.0.0.1,
//!   one sign-in at a time, starting one every `--sign-in-interval` (each costs
//!   an Argon2 hash: back to back they would take a core from the baseline alone,
//!   since under the flood the server delays them);
//! - **flood**: the same, plus `--flood-workers` attackers. Half send token
//!   requests with the legitimate client's id and wrong secrets (one in four with
//!   a made-up client id), half sign in as the same admin with wrong passwords.
//!   Each attacker connection is bound to the next of `--sources` loopback
//!   addresses (127.1.0.1 onwards: on Linux all of 127.0.0.0/8 is loopback, and
//!   the server tells sources apart by the TCP peer), so the failures come from
//!   many sources, as a distributed attack's would. The attackers run on a
//!   thread and runtime of their own, so the legitimate client's requests do
//!   not queue behind theirs inside this process.
//!
//! The goal is 100% success for both legitimate users in both phases; the
//! legitimate token rate under the flood, as a share of the baseline, says what
//! the flood costs (the server and this load generator share the machine, so the
//! attackers' own CPU use is part of that cost).

use crate::FloodArgs;
use crate::load::{self, LevelResult, Plan, Target};
use crate::report::{self, ServerFacts};
use crate::scenarios::token;
use crate::server::{AdminCredentials, Credentials, ServerProcess};
use anyhow::{Context, bail};
use base64::Engine;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HeaderValue, LOCATION, SET_COOKIE};
use hyper::{HeaderMap, Method, Request, StatusCode};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The most source addresses `--sources` may ask for (127.1.0.1 … 127.16.x.y).
pub const MAX_SOURCES: usize = 1_000_000;

/// Where the legitimate users connect from.
const LEGIT_SOURCE: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// The sign-in form's double-submit cookie.
const LOGIN_CSRF_COOKIE: &str = "pc_login_csrf";

/// Token requests an attacker sends on one connection (from one source) before it
/// moves on to the next source.
const TOKEN_BATCH: usize = 4;

/// One attacker token request in this many names a made-up client id.
const UNKNOWN_CLIENT_EVERY: u64 = 4;

/// How long one legitimate sign-in may take before it counts as failed.
const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(30);

/// Pause after a failed connect, so a refusing server is not spun on.
const RECONNECT_PAUSE: Duration = Duration::from_millis(10);

/// The server's log filter: at `warn` it writes a line for every source that
/// reaches its limit, hundreds in a run.
const SERVER_LOG: &str = "error";

/// How much of an unexpected response body to keep for the report.
const ERROR_BODY_CHARS: usize = 300;

/// Runs both phases on a fresh server and prints them side by side.
pub async fn run(args: &FloodArgs) -> anyhow::Result<()> {
    let alg = args.signing_alg;
    report::header("flood", alg.as_str(), None);
    let token_attackers = args.flood_workers - args.flood_workers / 2;
    let login_attackers = args.flood_workers / 2;
    println!(
        "two phases of warm-up {} then {}: legitimate token client at concurrency {} plus one admin signing in from {LEGIT_SOURCE} every {}; \
         the flood adds {token_attackers} token and {login_attackers} sign-in attackers (on their own thread) over {} source addresses",
        humantime::format_duration(args.warmup),
        humantime::format_duration(args.duration),
        args.concurrency,
        humantime::format_duration(args.sign_in_interval),
        args.sources,
    );
    println!(
        "the server logs at level {SERVER_LOG}: its warning per throttled source would flood this report"
    );
    let server = ServerProcess::start_with_log(alg, SERVER_LOG)
        .await
        .with_context(|| format!("starting a {} server", alg.as_str()))?;
    let mut facts = ServerFacts {
        first_ready_ms: server.first_ready.as_secs_f64() * 1000.0,
        ready_ms: server.ready.as_secs_f64() * 1000.0,
        idle_rss_kib: server.rss_kib().ok(),
        peak_rss_kib: None,
    };
    report::server_ready(&facts);
    let admin = server
        .first_admin
        .clone()
        .context("the server did not print the first admin's password on its first start")?;
    let creds = server.create_client("bench").await?;
    let target = Arc::new(Target::from_url(&server.url).await?);
    let sources: Arc<[IpAddr]> = (0..args.sources).map(source_address).collect();
    let ctx = Phase {
        target,
        creds,
        admin,
        args: args.clone(),
        server_pid: Some(server.pid()),
        sources,
    };

    let baseline = ctx.run(false).await.context("the baseline phase")?;
    let flood = ctx.run(true).await.context("the flood phase")?;
    print_results(&baseline, &flood);
    facts.peak_rss_kib = server.peak_rss_kib().ok();
    report::server_peak(&facts);
    server.shutdown().await?;
    Ok(())
}

/// `i` → 127.1.0.1, 127.1.0.2, … 127.1.0.254, 127.1.1.1, …: never 127.0.0.1,
/// and no host part 0 or 255.
fn source_address(i: usize) -> IpAddr {
    let per_third = 254;
    let per_second = 256 * per_third;
    let second = 1 + i / per_second;
    let third = (i / per_third) % 256;
    let fourth = 1 + i % per_third;
    let octet = |v: usize| u8::try_from(v).unwrap_or(u8::MAX);
    IpAddr::V4(Ipv4Addr::new(
        127,
        octet(second),
        octet(third),
        octet(fourth),
    ))
}

/// Everything a phase needs.
struct Phase {
    target: Arc<Target>,
    creds: Credentials,
    admin: AdminCredentials,
    args: FloodArgs,
    server_pid: Option<u32>,
    sources: Arc<[IpAddr]>,
}

/// What one phase measured.
struct PhaseResult {
    /// The legitimate token client.
    token: LevelResult,
    /// The legitimate admin.
    admin: SignIns,
    /// Token attackers, in the flood phase.
    token_attack: Option<AttackStats>,
    /// Sign-in attackers, in the flood phase.
    login_attack: Option<AttackStats>,
    /// Length of the measured window.
    window: Duration,
}

impl Phase {
    /// Starts the attackers on a thread of their own with a single-threaded
    /// runtime, as if on another machine: the legitimate client's requests do
    /// not wait behind attacker tasks in this process's runtime, and the
    /// attackers take at most one core from the machine the server shares.
    /// The thread ends at `end` with the token and sign-in attackers' counts.
    fn spawn_attackers(
        &self,
        warm_end: Instant,
        end: Instant,
    ) -> std::thread::JoinHandle<anyhow::Result<(AttackStats, AttackStats)>> {
        let args = &self.args;
        let token_attackers = args.flood_workers - args.flood_workers / 2;
        let client_id: Arc<str> = Arc::from(self.creds.client_id.as_str());
        let next_source = Arc::new(AtomicUsize::new(0));
        let salt = RandomState::new();
        let user = self.admin.user.clone();
        let (target, sources) = (Arc::clone(&self.target), Arc::clone(&self.sources));
        let workers = args.flood_workers;
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the attackers' runtime")?;
            runtime.block_on(async move {
                let mut tasks = JoinSet::new();
                for worker in 0..workers {
                    let attacker = Attacker {
                        target: Arc::clone(&target),
                        sources: Arc::clone(&sources),
                        next_source: Arc::clone(&next_source),
                        worker: worker as u64,
                        salt: salt.clone(),
                        warm_end,
                        end,
                        stats: AttackStats::default(),
                    };
                    if worker < token_attackers {
                        let client_id = Arc::clone(&client_id);
                        tasks.spawn(async move { (true, attacker.tokens(client_id).await) });
                    } else {
                        let user = user.clone();
                        tasks.spawn(async move { (false, attacker.sign_ins(user).await) });
                    }
                }
                let (mut token, mut login) = (AttackStats::default(), AttackStats::default());
                while let Some(joined) = tasks.join_next().await {
                    let (is_token, stats) = joined.context("an attacker failed")?;
                    if is_token {
                        token.merge(stats);
                    } else {
                        login.merge(stats);
                    }
                }
                Ok((token, login))
            })
        })
    }

    /// One phase: the legitimate users, and the attackers when `flood`.
    async fn run(&self, flood: bool) -> anyhow::Result<PhaseResult> {
        let args = &self.args;
        // The admin and the attackers keep this window; the token client's own
        // starts once its connections are open, a few milliseconds later.
        let warm_end = Instant::now() + args.warmup;
        let end = warm_end + args.duration;
        let attackers = flood.then(|| self.spawn_attackers(warm_end, end));
        let admin = tokio::spawn(legit_sign_ins(
            Arc::clone(&self.target),
            self.admin.clone(),
            args.sign_in_interval,
            warm_end,
            end,
        ));
        let plan = Plan {
            concurrency: args.concurrency,
            warmup: args.warmup,
            duration: args.duration,
            server_pid: self.server_pid,
        };
        let token = token::run(&self.target, &self.creds, plan)
            .await
            .context("the legitimate token client")?;
        let admin = admin
            .await
            .context("the legitimate admin failed")?
            .context("the legitimate admin")?;
        let (token_attack, login_attack) = match attackers {
            None => (None, None),
            Some(thread) => {
                let (t, l) = tokio::task::spawn_blocking(move || thread.join())
                    .await
                    .context("waiting for the attackers")?
                    .map_err(|_| anyhow::anyhow!("the attackers' thread panicked"))??;
                (Some(t), Some(l))
            }
        };
        Ok(PhaseResult {
            token,
            admin,
            token_attack,
            login_attack,
            window: args.duration,
        })
    }
}

/// The legitimate admin's sign-ins in the window.
#[derive(Debug, Default)]
struct SignIns {
    /// Sign-ins started in the window.
    attempted: u64,
    /// Of those, the ones that ended in `303` to `/admin`.
    succeeded: u64,
    /// Latency of each successful sign-in (form and post), in microseconds, sorted.
    latencies_us: Vec<u64>,
    /// The first failure.
    first_error: Option<String>,
}

impl SignIns {
    /// Succeeded as a percentage of attempted.
    fn success_pct(&self) -> Option<f64> {
        percent(self.succeeded, self.attempted)
    }
}

/// One admin signing in with the right password from [`LEGIT_SOURCE`], one
/// sign-in after another on a keep-alive connection, each starting `interval`
/// after the last one started (or when it ends, if later), from now until `end`;
/// those started after `warm_end` are counted, however long they take (up to
/// [`SIGN_IN_TIMEOUT`]), since a delayed sign-in is what the flood is expected to cause.
async fn legit_sign_ins(
    target: Arc<Target>,
    admin: AdminCredentials,
    interval: Duration,
    warm_end: Instant,
    end: Instant,
) -> anyhow::Result<SignIns> {
    let mut out = SignIns::default();
    let mut conn: Option<SendRequest<Full<Bytes>>> = None;
    while Instant::now() < end {
        let started = Instant::now();
        let measured = started >= warm_end;
        let sender = match conn.as_mut() {
            Some(s) => s,
            None => match load::connect_from(&target, Some(IpAddr::V4(LEGIT_SOURCE))).await {
                Ok(s) => conn.insert(s),
                Err(e) => {
                    if measured {
                        out.attempted += 1;
                        out.first_error.get_or_insert_with(|| format!("{e:#}"));
                    }
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            },
        };
        let outcome = tokio::time::timeout(
            SIGN_IN_TIMEOUT,
            sign_in(sender, &target, &admin.user, &admin.password),
        )
        .await;
        let took = started.elapsed();
        let next = (started + interval).min(end);
        let failure = match outcome {
            Ok(Ok((status, headers, body))) => {
                let to_admin = headers
                    .get(LOCATION)
                    .is_some_and(|l| l.as_bytes() == b"/admin");
                if status == StatusCode::SEE_OTHER && to_admin {
                    None
                } else {
                    Some(describe(status, &body))
                }
            }
            Ok(Err(e)) => {
                conn = None;
                Some(format!("{e:#}"))
            }
            Err(_) => {
                conn = None;
                Some(format!("no answer within {}s", SIGN_IN_TIMEOUT.as_secs()))
            }
        };
        if measured {
            out.attempted += 1;
            match failure {
                None => {
                    out.succeeded += 1;
                    out.latencies_us.push(micros(took));
                }
                Some(e) => {
                    out.first_error.get_or_insert(e);
                }
            }
        }
        tokio::time::sleep_until(next).await;
    }
    out.latencies_us.sort_unstable();
    Ok(out)
}

/// What attackers of one kind saw in the window.
#[derive(Debug, Default)]
struct AttackStats {
    /// Requests answered (token requests, or sign-in posts).
    answered: u64,
    /// `401 Unauthorized`.
    unauthorized: u64,
    /// `429 Too Many Requests`.
    throttled: u64,
    /// Any other status (`other_statuses` lists them).
    other: u64,
    /// Other statuses and how often.
    other_statuses: Vec<(StatusCode, u64)>,
    /// Connect or transport failures.
    transport: u64,
    /// Requests still unanswered at the end of the window, abandoned (sign-ins
    /// the server queues or delays, mostly).
    cut_off: u64,
    /// Connections opened, each from the next source address (all of them, not
    /// only the window's).
    connections: u64,
    /// The first other status or transport failure.
    first_other: Option<String>,
}

impl AttackStats {
    /// Counts one answer.
    fn status(&mut self, status: StatusCode, body: &Bytes) {
        self.answered += 1;
        match status {
            StatusCode::UNAUTHORIZED => self.unauthorized += 1,
            StatusCode::TOO_MANY_REQUESTS => self.throttled += 1,
            _ => {
                self.other += 1;
                match self.other_statuses.iter_mut().find(|(s, _)| *s == status) {
                    Some((_, n)) => *n += 1,
                    None => self.other_statuses.push((status, 1)),
                }
                self.first_other
                    .get_or_insert_with(|| describe(status, body));
            }
        }
    }

    /// Counts one transport failure.
    fn transport(&mut self, e: &anyhow::Error) {
        self.transport += 1;
        self.first_other.get_or_insert_with(|| format!("{e:#}"));
    }

    /// Adds another worker's counts.
    fn merge(&mut self, o: Self) {
        self.answered += o.answered;
        self.unauthorized += o.unauthorized;
        self.throttled += o.throttled;
        self.other += o.other;
        for (status, n) in o.other_statuses {
            match self.other_statuses.iter_mut().find(|(s, _)| *s == status) {
                Some((_, m)) => *m += n,
                None => self.other_statuses.push((status, n)),
            }
        }
        self.transport += o.transport;
        self.cut_off += o.cut_off;
        self.connections += o.connections;
        if self.first_other.is_none() {
            self.first_other = o.first_other;
        }
    }

    /// `401 n / 429 n / other n`.
    fn statuses(&self) -> String {
        let mut other = self.other.to_string();
        if !self.other_statuses.is_empty() {
            let list: Vec<String> = self
                .other_statuses
                .iter()
                .map(|(s, n)| format!("{}: {n}", s.as_u16()))
                .collect();
            other = format!("{other} ({})", list.join(", "));
        }
        format!(
            "401 {} / 429 {} / other {other}",
            self.unauthorized, self.throttled
        )
    }
}

/// One attacker worker.
struct Attacker {
    target: Arc<Target>,
    sources: Arc<[IpAddr]>,
    next_source: Arc<AtomicUsize>,
    /// This worker's number, to keep its guesses apart from the others'.
    worker: u64,
    /// Key of the run's pseudo-random guesses.
    salt: RandomState,
    warm_end: Instant,
    end: Instant,
    stats: AttackStats,
}

impl Attacker {
    /// A connection from the next source address (shared by all attackers, so
    /// together they go round every source).
    async fn connect(&mut self) -> Option<SendRequest<Full<Bytes>>> {
        let i = self.next_source.fetch_add(1, Ordering::Relaxed) % self.sources.len();
        let source = self.sources.get(i).copied()?;
        let connected =
            tokio::time::timeout_at(self.end, load::connect_from(&self.target, Some(source))).await;
        match connected {
            Ok(Ok(c)) => {
                self.stats.connections += 1;
                Some(c)
            }
            Ok(Err(e)) => {
                if Instant::now() >= self.warm_end {
                    self.stats.transport(&e);
                }
                tokio::time::sleep(RECONNECT_PAUSE).await;
                None
            }
            Err(_) => None,
        }
    }

    /// The `n`th pseudo-random guess of this worker, 32 hex digits: a hash of a
    /// counter under the run's random key (no random number crate needed; the
    /// guesses need only be distinct, not unpredictable).
    fn guess(&self, n: u64) -> String {
        let a = self.salt.hash_one((self.worker, n, 0u8));
        let b = self.salt.hash_one((self.worker, n, 1u8));
        format!("{a:016x}{b:016x}")
    }

    /// Whether a request started at `started` falls in the window.
    fn measured(&self, started: Instant) -> bool {
        started >= self.warm_end
    }

    /// Wrong secrets at `/oauth/token`, [`TOKEN_BATCH`] a connection, for the
    /// legitimate `client_id` and, one in [`UNKNOWN_CLIENT_EVERY`], a made-up one.
    async fn tokens(mut self, client_id: Arc<str>) -> AttackStats {
        let mut n: u64 = 0;
        while Instant::now() < self.end {
            let Some(mut conn) = self.connect().await else {
                continue;
            };
            for _ in 0..TOKEN_BATCH {
                let started = Instant::now();
                if started >= self.end {
                    break;
                }
                n += 1;
                let secret = self.guess(n);
                let made_up;
                let id = if n.is_multiple_of(UNKNOWN_CLIENT_EVERY) {
                    // `pc_` and 22 characters, like a generated id.
                    made_up = format!("pc_{}", secret.get(..22).unwrap_or_default());
                    made_up.as_str()
                } else {
                    &*client_id
                };
                let request = match token_request(&self.target, id, &secret) {
                    Ok(r) => r,
                    Err(e) => {
                        self.stats.transport(&e);
                        break;
                    }
                };
                let outcome = tokio::time::timeout_at(self.end, send(&mut conn, request)).await;
                let measured = self.measured(started);
                match outcome {
                    Ok(Ok((status, _, body))) => {
                        if measured {
                            self.stats.status(status, &body);
                        }
                    }
                    Ok(Err(e)) => {
                        if measured {
                            self.stats.transport(&e);
                        }
                        break;
                    }
                    Err(_) => {
                        if measured {
                            self.stats.cut_off += 1;
                        }
                        break;
                    }
                }
            }
        }
        self.stats
    }

    /// Wrong passwords for `user` at `/admin/login`: one sign-in (form, then
    /// post) a connection.
    async fn sign_ins(mut self, user: String) -> AttackStats {
        let mut n: u64 = 0;
        while Instant::now() < self.end {
            let Some(mut conn) = self.connect().await else {
                continue;
            };
            n += 1;
            let password = format!("wrong-{}", self.guess(n));
            let started = Instant::now();
            let outcome = tokio::time::timeout_at(
                self.end,
                sign_in(&mut conn, &self.target, &user, &password),
            )
            .await;
            if !self.measured(started) {
                continue;
            }
            match outcome {
                Ok(Ok((status, _, body))) => self.stats.status(status, &body),
                Ok(Err(e)) => self.stats.transport(&e),
                Err(_) => self.stats.cut_off += 1,
            }
        }
        self.stats
    }
}

/// A `client_credentials` token request authenticated with HTTP Basic.
fn token_request(
    target: &Target,
    client_id: &str,
    secret: &str,
) -> anyhow::Result<Request<Full<Bytes>>> {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{client_id}:{secret}"));
    target
        .request(Method::POST, "/oauth/token")
        .header(AUTHORIZATION, format!("Basic {basic}"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from_static(
            b"grant_type=client_credentials",
        )))
        .context("building a token request")
}

/// One sign-in as a browser does it: `GET /admin/login` for the form's token and
/// its cookie, then `POST /admin/login` with both, the user name and the
/// password. Returns the post's answer; a form that cannot be had is an error.
async fn sign_in(
    conn: &mut SendRequest<Full<Bytes>>,
    target: &Target,
    user: &str,
    password: &str,
) -> anyhow::Result<(StatusCode, HeaderMap, Bytes)> {
    let form = target
        .request(Method::GET, "/admin/login")
        .body(Full::new(Bytes::new()))
        .context("building the sign-in form request")?;
    let (status, headers, body) = send(conn, form).await?;
    if status != StatusCode::OK {
        bail!("GET /admin/login: {}", describe(status, &body));
    }
    let cookie = login_cookie(&headers)
        .with_context(|| format!("GET /admin/login set no {LOGIN_CSRF_COOKIE} cookie"))?;
    let field = csrf_field(&body).context("GET /admin/login: no csrf field in the form")?;
    let post_body = format!(
        "csrf={}&username={}&password={}",
        form_encode(&field),
        form_encode(user),
        form_encode(password),
    );
    let post = target
        .request(Method::POST, "/admin/login")
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(
            COOKIE,
            HeaderValue::from_str(&format!("{LOGIN_CSRF_COOKIE}={cookie}"))
                .context("the csrf cookie makes no valid header")?,
        )
        .body(Full::new(Bytes::from(post_body)))
        .context("building the sign-in post")?;
    send(conn, post).await
}

/// The value of the `pc_login_csrf` cookie a response sets.
fn login_cookie(headers: &HeaderMap) -> Option<String> {
    headers.get_all(SET_COOKIE).iter().find_map(|v| {
        let v = v.to_str().ok()?;
        let pair = v.split(';').next()?.trim();
        let value = pair.strip_prefix(LOGIN_CSRF_COOKIE)?.strip_prefix('=')?;
        (!value.is_empty()).then(|| value.to_owned())
    })
}

/// The value of the form's hidden `csrf` input.
fn csrf_field(body: &[u8]) -> Option<String> {
    let html = std::str::from_utf8(body).ok()?;
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker)? + marker.len();
    let rest = html.get(start..)?;
    let value = rest.get(..rest.find('"')?)?;
    (!value.is_empty()).then(|| value.to_owned())
}

/// `application/x-www-form-urlencoded` encoding of one value.
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'*') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Sends one request and reads the whole response.
async fn send(
    conn: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> anyhow::Result<(StatusCode, HeaderMap, Bytes)> {
    conn.ready().await.context("connection not ready")?;
    let response = conn
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

/// `HTTP 401: <the page's error message, or the start of the body>`.
fn describe(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    // The admin pages say what went wrong in their `role="alert"` paragraph.
    let alert = text
        .find("role=\"alert\">")
        .and_then(|i| text.get(i + "role=\"alert\">".len()..))
        .and_then(|rest| rest.get(..rest.find('<')?));
    let shown: String = alert
        .unwrap_or(&text)
        .chars()
        .take(ERROR_BODY_CHARS)
        .collect();
    format!("HTTP {status}: {}", shown.trim())
}

/// A duration in whole microseconds.
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// `part` as a percentage of `whole`.
fn percent(part: u64, whole: u64) -> Option<f64> {
    (whole > 0).then(|| part as f64 * 100.0 / whole as f64)
}

/// `99.50%`, or `n/a`.
fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2}%"))
}

/// The `q` quantile (nearest rank) of sorted microseconds, in ms.
fn quantile_ms(sorted_us: &[u64], q: f64) -> Option<f64> {
    let n = sorted_us.len();
    if n == 0 {
        return None;
    }
    let rank = (q * n as f64).ceil() as usize;
    sorted_us
        .get(rank.clamp(1, n) - 1)
        .map(|us| *us as f64 / 1000.0)
}

/// `12 ms`, or `n/a`.
fn ms_or_na(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{} ms", report::ms(v)))
}

/// The legitimate token client's success rate: successes over successes and failures.
fn token_success(r: &LevelResult) -> Option<f64> {
    let ok = r.latencies_us.len() as u64;
    percent(ok, ok + r.errors)
}

/// Prints both phases side by side, the first errors, and the summary line.
fn print_results(baseline: &PhaseResult, flood: &PhaseResult) {
    let phases = [baseline, flood];
    let mut rows: Vec<[String; 3]> = Vec::new();
    let mut row = |label: &str, f: &dyn Fn(&PhaseResult) -> String| {
        rows.push([label.to_owned(), f(baseline), f(flood)]);
    };
    row("legit token requests/s", &|p| {
        report::thousands(p.token.rps())
    });
    row("legit token success", &|p| {
        let ok = p.token.latencies_us.len() as u64;
        format!(
            "{} ({} of {})",
            pct(token_success(&p.token)),
            ok,
            ok + p.token.errors
        )
    });
    row("legit token p50 / p99", &|p| {
        format!(
            "{} / {}",
            ms_or_na(p.token.quantile_ms(0.5)),
            ms_or_na(p.token.quantile_ms(0.99))
        )
    });
    row("admin sign-ins ok / attempted", &|p| {
        format!(
            "{} / {} ({})",
            p.admin.succeeded,
            p.admin.attempted,
            pct(p.admin.success_pct())
        )
    });
    row("admin sign-in p50", &|p| {
        ms_or_na(quantile_ms(&p.admin.latencies_us, 0.5))
    });
    row("admin sign-in max", &|p| {
        ms_or_na(quantile_ms(&p.admin.latencies_us, 1.0))
    });
    let attack = |a: &Option<AttackStats>, f: &dyn Fn(&AttackStats) -> String| {
        a.as_ref().map_or_else(|| "-".to_owned(), f)
    };
    row("attacker token requests/s", &|p| {
        attack(&p.token_attack, &|a| {
            report::thousands(a.answered as f64 / p.window.as_secs_f64())
        })
    });
    row("  statuses", &|p| {
        attack(&p.token_attack, &|a| a.statuses())
    });
    row("attacker sign-ins/s", &|p| {
        attack(&p.login_attack, &|a| {
            format!("{:.1}", a.answered as f64 / p.window.as_secs_f64())
        })
    });
    row("  statuses", &|p| {
        attack(&p.login_attack, &|a| a.statuses())
    });
    row(
        "attacker transport failures",
        &|p| match (&p.token_attack, &p.login_attack) {
            (None, None) => "-".to_owned(),
            (t, l) => {
                let n = |a: &Option<AttackStats>| a.as_ref().map_or(0, |a| a.transport);
                report::thousands((n(t) + n(l)) as f64)
            }
        },
    );
    row(
        "attacker requests cut off at end",
        &|p| match (&p.token_attack, &p.login_attack) {
            (None, None) => "-".to_owned(),
            (t, l) => {
                let n = |a: &Option<AttackStats>| a.as_ref().map_or(0, |a| a.cut_off);
                report::thousands((n(t) + n(l)) as f64)
            }
        },
    );
    row(
        "attacker connections (sources)",
        &|p| match (&p.token_attack, &p.login_attack) {
            (None, None) => "-".to_owned(),
            (t, l) => {
                let n = |a: &Option<AttackStats>| a.as_ref().map_or(0, |a| a.connections);
                report::thousands((n(t) + n(l)) as f64)
            }
        },
    );
    row("server CPU (cores)", &|p| {
        p.token
            .server_cpu
            .map_or_else(|| "n/a".to_owned(), |c| format!("{:.2}", p.token.cores(c)))
    });
    row("load generator CPU (cores)", &|p| {
        p.token
            .bench_cpu
            .map_or_else(|| "n/a".to_owned(), |c| format!("{:.2}", p.token.cores(c)))
    });
    // More than a little here means something else on the machine disturbed the figures.
    row("other processes CPU (cores)", &|p| {
        p.token
            .other_cpu()
            .map_or_else(|| "n/a".to_owned(), |c| format!("{:.2}", p.token.cores(c)))
    });

    println!();
    let head = ["", "baseline", "flood"];
    let mut widths = head.map(str::len);
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: [&str; 3]| {
        let [a, b, c] = cells;
        let [wa, wb, _] = widths;
        println!("{a:<wa$}  {b:<wb$}  {c}");
    };
    line(head);
    for r in &rows {
        let [a, b, c] = r;
        line([a, b, c]);
    }

    // Every legitimate failure shows, with what the server answered.
    let mut legit_failed = false;
    for (name, p) in ["baseline", "flood"].iter().zip(phases) {
        if let Some(e) = &p.token.first_error {
            legit_failed = true;
            println!(
                "{name}: legitimate token client: {} failed, first: {e}",
                p.token.errors
            );
        }
        if let Some(e) = &p.admin.first_error {
            legit_failed = true;
            println!(
                "{name}: legitimate admin: {} sign-ins failed, first: {e}",
                p.admin.attempted - p.admin.succeeded
            );
        }
        for (kind, a) in [("token", &p.token_attack), ("sign-in", &p.login_attack)] {
            if let Some(e) = a.as_ref().and_then(|a| a.first_other.as_ref()) {
                println!("{name}: {kind} attackers, first unexpected answer: {e}");
            }
        }
    }

    println!();
    let kept = percent_f(flood.token.rps(), baseline.token.rps());
    println!(
        "summary: under the flood the legitimate client kept {} of its baseline token rate; \
         legitimate token success {} (baseline {}), admin sign-ins {} (baseline {}), \
         admin sign-in max {} (baseline {})",
        pct(kept),
        pct(token_success(&flood.token)),
        pct(token_success(&baseline.token)),
        pct(flood.admin.success_pct()),
        pct(baseline.admin.success_pct()),
        ms_or_na(quantile_ms(&flood.admin.latencies_us, 1.0)),
        ms_or_na(quantile_ms(&baseline.admin.latencies_us, 1.0)),
    );
    let all_ok = !legit_failed
        && phases.iter().all(|p| {
            token_success(&p.token) == Some(100.0) && p.admin.success_pct() == Some(100.0)
        });
    if all_ok {
        println!("goal met: every legitimate token request and sign-in succeeded in both phases");
    } else {
        println!(
            "GOAL MISSED: not every legitimate token request and sign-in succeeded (see above)"
        );
    }
}

/// `a` as a percentage of `b`.
fn percent_f(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a * 100.0 / b)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sources_are_distinct_loopback_addresses_other_than_127_0_0_1() {
        let n = 70_000;
        let all: std::collections::HashSet<IpAddr> = (0..n).map(source_address).collect();
        assert_eq!(all.len(), n);
        assert!(all.iter().all(|ip| match ip {
            IpAddr::V4(v4) => {
                let o = v4.octets();
                v4.is_loopback() && *v4 != LEGIT_SOURCE && o[3] != 0 && o[3] != 255
            }
            IpAddr::V6(_) => false,
        }));
        assert_eq!(source_address(0), IpAddr::V4(Ipv4Addr::new(127, 1, 0, 1)));
        assert_eq!(
            source_address(MAX_SOURCES - 1)
                .to_string()
                .split('.')
                .count(),
            4
        );
    }

    #[test]
    fn the_form_token_and_cookie_are_found() {
        let body = br#"<form><input type="hidden" name="csrf" value="abc_DEF-1"><input name="username"></form>"#;
        assert_eq!(csrf_field(body).unwrap(), "abc_DEF-1");
        let mut h = HeaderMap::new();
        h.append(SET_COOKIE, HeaderValue::from_static("other=1; Path=/"));
        h.append(
            SET_COOKIE,
            HeaderValue::from_static(
                "pc_login_csrf=tok123; Path=/admin/login; HttpOnly; SameSite=Strict",
            ),
        );
        assert_eq!(login_cookie(&h).unwrap(), "tok123");
        assert_eq!(form_encode("a b&c=d"), "a%20b%26c%3Dd");
    }
}
