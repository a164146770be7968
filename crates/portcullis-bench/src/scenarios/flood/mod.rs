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
//!
//! The attackers and [`Flood`], which starts them, are in `attack` (the `code`
//! scenario floods the end users' sign-in with them too); the legitimate admin's
//! sign-ins in `sign_in`; the side-by-side table in `report`.

mod attack;
mod report;
mod sign_in;

pub use attack::MAX_SOURCES;
pub(crate) use attack::{AttackStats, Flood, Victim, source_address};

use crate::FloodArgs;
use crate::browser::ADMIN_SIGN_IN;
use crate::load::{LevelResult, Plan, Target};
use crate::report::ServerFacts;
use crate::scenarios::token;
use crate::server::{AdminCredentials, Credentials, ServerProcess};
use anyhow::Context;
use sign_in::{SignIns, legit_sign_ins};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Where the legitimate users connect from.
const LEGIT_SOURCE: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// Pause after a failed connect, so a refusing server is not spun on.
const RECONNECT_PAUSE: Duration = Duration::from_millis(10);

/// The server's log filter: at `warn` it writes a line for every source that
/// reaches its limit, hundreds in a run.
const SERVER_LOG: &str = "error";

/// Runs both phases on a fresh server and prints them side by side.
pub async fn run(args: &FloodArgs) -> anyhow::Result<()> {
    let alg = args.signing_alg;
    crate::report::header("flood", alg.as_str(), None);
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
    crate::report::server_ready(&facts);
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
    report::print_results(&baseline, &flood);
    facts.peak_rss_kib = server.peak_rss_kib().ok();
    crate::report::server_peak(&facts);
    server.shutdown().await?;
    Ok(())
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
    /// One phase: the legitimate users, and the attackers when `flood`.
    async fn run(&self, flood: bool) -> anyhow::Result<PhaseResult> {
        let args = &self.args;
        // The admin and the attackers keep this window; the token client's own
        // starts once its connections are open, a few milliseconds later.
        let warm_end = Instant::now() + args.warmup;
        let end = warm_end + args.duration;
        let attackers = flood.then(|| {
            Flood {
                target: Arc::clone(&self.target),
                sources: Arc::clone(&self.sources),
                token_workers: args.flood_workers - args.flood_workers / 2,
                client_id: Arc::from(self.creds.client_id.as_str()),
                sign_in_workers: args.flood_workers / 2,
                form: &ADMIN_SIGN_IN,
                victim: Victim::User(self.admin.user.clone()),
            }
            .spawn(warm_end, end)
        });
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
            server_pids: self.server_pid.into_iter().collect(),
            database: None,
        };
        let token = token::run(std::slice::from_ref(&self.target), &self.creds, &plan)
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
