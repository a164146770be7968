//! The attackers: token requests with wrong secrets and sign-ins with wrong
//! passwords, each connection from the next of many loopback source addresses.

use super::RECONNECT_PAUSE;
use crate::browser::{SignInForm, describe, send, sign_in};
use crate::load::{self, Target};
use anyhow::Context;
use base64::Engine;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode};
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The most source addresses `--sources` may ask for (127.1.0.1 … 127.16.x.y).
pub const MAX_SOURCES: usize = 1_000_000;

/// Token requests an attacker sends on one connection (from one source) before it
/// moves on to the next source.
const TOKEN_BATCH: usize = 4;

/// One attacker token request in this many names a made-up client id.
const UNKNOWN_CLIENT_EVERY: u64 = 4;

/// `i` → 127.1.0.1, 127.1.0.2, … 127.1.0.254, 127.1.1.1, …: never 127.0.0.1,
/// and no host part 0 or 255.
pub(crate) fn source_address(i: usize) -> IpAddr {
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

/// Who the sign-in attackers guess passwords for.
#[derive(Debug, Clone)]
pub(crate) enum Victim {
    /// One real user: past a number of failures the server delays that user's
    /// sign-ins and queues the failing sources behind each other.
    User(String),
    /// A made-up name for each guess: the server checks a dummy Argon2id hash,
    /// as costly as a real one, and no per-user delay slows the attackers.
    MadeUp,
}

/// A flood of failed authentications, each attacker connection from the next of
/// `sources`.
#[derive(Debug, Clone)]
pub(crate) struct Flood {
    /// The server.
    pub(crate) target: Arc<Target>,
    /// The source addresses the attackers go round.
    pub(crate) sources: Arc<[IpAddr]>,
    /// Workers sending `client_credentials` requests with wrong secrets.
    pub(crate) token_workers: usize,
    /// The client id they name (one request in [`UNKNOWN_CLIENT_EVERY`] names a
    /// made-up one instead).
    pub(crate) client_id: Arc<str>,
    /// Workers signing in with wrong passwords.
    pub(crate) sign_in_workers: usize,
    /// The sign-in form they use.
    pub(crate) form: &'static SignInForm,
    /// Whom they sign in as.
    pub(crate) victim: Victim,
}

impl Flood {
    /// Starts the attackers on a thread of their own with a single-threaded
    /// runtime, as if on another machine: the legitimate client's requests do
    /// not wait behind attacker tasks in this process's runtime, and the
    /// attackers take at most one core from the machine the server shares.
    /// The thread ends at `end` with the token and sign-in attackers' counts.
    pub(crate) fn spawn(
        self,
        warm_end: Instant,
        end: Instant,
    ) -> std::thread::JoinHandle<anyhow::Result<(AttackStats, AttackStats)>> {
        let next_source = Arc::new(AtomicUsize::new(0));
        let salt = RandomState::new();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the attackers' runtime")?;
            runtime.block_on(async move {
                let mut tasks = JoinSet::new();
                for worker in 0..self.token_workers + self.sign_in_workers {
                    let attacker = Attacker {
                        target: Arc::clone(&self.target),
                        sources: Arc::clone(&self.sources),
                        next_source: Arc::clone(&next_source),
                        worker: worker as u64,
                        salt: salt.clone(),
                        warm_end,
                        end,
                        stats: AttackStats::default(),
                    };
                    if worker < self.token_workers {
                        let client_id = Arc::clone(&self.client_id);
                        tasks.spawn(async move { (true, attacker.tokens(client_id).await) });
                    } else {
                        let (form, victim) = (self.form, self.victim.clone());
                        tasks.spawn(async move { (false, attacker.sign_ins(form, victim).await) });
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
}

/// What attackers of one kind saw in the window.
#[derive(Debug, Default)]
pub(crate) struct AttackStats {
    /// Requests answered (token requests, or sign-in posts).
    pub(crate) answered: u64,
    /// `401 Unauthorized`.
    unauthorized: u64,
    /// `429 Too Many Requests`.
    throttled: u64,
    /// Any other status (`other_statuses` lists them).
    other: u64,
    /// Other statuses and how often.
    other_statuses: Vec<(StatusCode, u64)>,
    /// Connect or transport failures.
    pub(crate) transport: u64,
    /// Requests still unanswered at the end of the window, abandoned (sign-ins
    /// the server queues or delays, mostly).
    pub(crate) cut_off: u64,
    /// Connections opened, each from the next source address (all of them, not
    /// only the window's).
    pub(crate) connections: u64,
    /// The first other status or transport failure.
    pub(crate) first_other: Option<String>,
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
    pub(crate) fn statuses(&self) -> String {
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

    /// Wrong passwords for `victim` at `form`: one sign-in (form, then post) a
    /// connection.
    async fn sign_ins(mut self, form: &'static SignInForm, victim: Victim) -> AttackStats {
        let mut n: u64 = 0;
        while Instant::now() < self.end {
            let Some(mut conn) = self.connect().await else {
                continue;
            };
            n += 1;
            let guess = self.guess(n);
            let password = format!("wrong-{guess}");
            let user = match &victim {
                Victim::User(name) => name.clone(),
                Victim::MadeUp => format!("nobody-{}", guess.get(..12).unwrap_or_default()),
            };
            let started = Instant::now();
            let outcome = tokio::time::timeout_at(
                self.end,
                sign_in(&mut conn, &self.target, form, &user, &password),
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::LEGIT_SOURCE;
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
}
