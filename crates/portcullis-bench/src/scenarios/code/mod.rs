//! `code`: the authorization code flow on one server of its own, for issue 16's
//! targets: the code exchange (code → tokens, without the user's sign-in)
//! within 90% of the refresh grant's rate in the same run; the sign-in's rate
//! (Argon2id-bound); and a flood of wrong passwords not starving other requests.
//!
//! 1. **Set-up** (`flow`): a client allowed `authorization_code`,
//!    `refresh_token` and `client_credentials` with one redirect URI, and an end
//!    user, both made with the CLI; then the flow once over HTTP as a browser
//!    goes through it (sign-in form, consent form, redirect with a code), which
//!    leaves a `pc_user` session and a consent.
//! 2. **Rounds**, `--rounds` times: the refresh grant (the `refresh` scenario's
//!    path on this client: each worker rotates its own chain), then codes minted
//!    in parallel into a pool with `GET /oauth/authorize` and the session (a
//!    consent exists, so each answers `302` with a fresh code), then the pool
//!    exchanged. The pool holds the last refresh rate × (warm-up + duration) ×
//!    1.2 codes, or what [`MINT_BUDGET`] allows: codes live 60 seconds, and the
//!    oldest must outlive its round. The round ends at its duration or when the
//!    pool runs out, which is reported.
//! 3. **Sign-in** (`sign_in`): right-password sign-ins at each
//!    `--sign-in-concurrency`; then client credentials tokens alone, and while
//!    `--flood-workers` attackers post wrong passwords to `/account/login` from
//!    many loopback source addresses (the `flood` scenario's attackers).
//!
//! The table and the ratios are printed by `report`.

mod flow;
mod report;
mod sign_in;

use crate::CodeArgs;
use crate::load::{LevelResult, Plan, Target};
use crate::report::ServerFacts;
use crate::scenarios::flood::source_address;
use crate::scenarios::{token, verify};
use crate::server::ServerProcess;
use anyhow::Context;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

/// The longest minting before a round: with warm-up and duration at most 30 s
/// (`CodeArgs::validate`), the oldest code is at most 50 s old when its round
/// ends, inside the codes' 60 seconds.
const MINT_BUDGET: Duration = Duration::from_secs(20);

/// How many more codes than the refresh rate says the round could use.
const POOL_MARGIN: f64 = 1.2;

/// The server's log filter: at `warn` it writes a line for every source that
/// reaches its limit, hundreds in the flood.
const SERVER_LOG: &str = "error";

/// One round: the refresh grant, the minting, the code exchange.
struct Round {
    refresh: LevelResult,
    /// Codes the pool was to hold.
    wanted: usize,
    mint: LevelResult,
    /// Codes the pool held.
    pool: usize,
    code: LevelResult,
}

impl Round {
    /// Code exchanges per second as a share of refresh grants per second.
    fn ratio(&self) -> Option<f64> {
        self.code.rate_over(&self.refresh)
    }
}

/// What the sign-in part measured.
struct SignInResults {
    /// Right-password sign-ins, one result per concurrency level.
    levels: Vec<LevelResult>,
    /// Client credentials tokens with nothing else running.
    alone: LevelResult,
    /// The same beside the flood of wrong passwords.
    flooded: sign_in::Flooded,
}

/// Runs the whole scenario on a fresh server and prints the report.
pub async fn run(args: &CodeArgs) -> anyhow::Result<()> {
    let alg = args.signing_alg;
    crate::report::header("code", alg.as_str(), None);
    println!(
        "{} rounds of refresh grant then code exchange at concurrency {}, each warm-up {} then {}; \
         before each exchange, codes minted at concurrency {} (at most {}); one keep-alive HTTP/1.1 connection per worker",
        args.rounds,
        args.concurrency,
        humantime::format_duration(args.warmup),
        humantime::format_duration(args.duration),
        args.concurrency,
        humantime::format_duration(MINT_BUDGET),
    );
    println!(
        "then sign-ins at concurrency {}, and client credentials tokens alone and beside {} workers posting wrong passwords from {} source addresses; \
         the server logs at level {SERVER_LOG}",
        args.sign_in_concurrency
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(" and "),
        args.flood_workers,
        args.sources,
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
    let target = Arc::new(Target::from_url(&server.url).await?);
    let flow = flow::set_up(&server, Arc::clone(&target))
        .await
        .context("setting up the flow")?;
    println!(
        "set-up: client {} (authorization_code, refresh_token, client_credentials), user {} signed in \
         and allowed it over HTTP (sign-in form, consent form, redirect with a code); \
         /oauth/authorize with that session now answers 302 with a code",
        flow.creds.client_id,
        flow::USER,
    );
    let plan = |concurrency, warmup, duration| Plan {
        concurrency,
        warmup,
        duration,
        server_pids: vec![server.pid()],
        database: None,
    };
    let measured = |concurrency| plan(concurrency, args.warmup, args.duration);

    let mut rounds = Vec::with_capacity(args.rounds);
    for n in 1..=args.rounds {
        println!();
        println!("round {n}: refresh grant (each worker rotating its own refresh token)");
        let refresh = verify::run(
            verify::Path::Refresh,
            std::slice::from_ref(&target),
            &flow.creds,
            &measured(args.concurrency),
        )
        .await
        .with_context(|| format!("round {n}: the refresh grant"))?;
        crate::report::level(&refresh);

        let span = (args.warmup + args.duration).as_secs_f64();
        let wanted = ((refresh.rps() * span * POOL_MARGIN).ceil() as usize).max(args.concurrency);
        println!(
            "round {n}: minting {wanted} codes (refresh rate × {span} s × {POOL_MARGIN}), GET /oauth/authorize with the session"
        );
        let (mint, codes) = flow
            .mint(wanted, &plan(args.concurrency, Duration::ZERO, MINT_BUDGET))
            .await
            .with_context(|| format!("round {n}: minting codes"))?;
        crate::report::level(&mint);
        let pool = codes.len();
        if pool < wanted {
            println!(
                "  the pool holds {pool} of the {wanted} codes wanted (minting stops after {})",
                humantime::format_duration(MINT_BUDGET)
            );
        }

        println!("round {n}: code exchange ({pool} codes in the pool)");
        let code = flow
            .exchange(codes, &measured(args.concurrency))
            .await
            .with_context(|| format!("round {n}: the code exchange"))?;
        crate::report::level(&code);
        if code.ran_out {
            println!(
                "  the pool ran out {:.2} s into the {} window: the rate is over that span",
                code.window.as_secs_f64(),
                humantime::format_duration(args.duration),
            );
        }
        rounds.push(Round {
            refresh,
            wanted,
            mint,
            pool,
            code,
        });
    }

    println!();
    let mut levels = Vec::with_capacity(args.sign_in_concurrency.len());
    for &c in &args.sign_in_concurrency {
        println!("sign-in: POST /account/login with the right password");
        let level = sign_in::sign_ins(&target, &measured(c))
            .await
            .with_context(|| format!("sign-ins at concurrency {c}"))?;
        crate::report::level(&level);
        levels.push(level);
    }
    println!("client credentials tokens, alone");
    let alone = token::run(
        std::slice::from_ref(&target),
        &flow.creds,
        &measured(args.concurrency),
    )
    .await
    .context("client credentials tokens alone")?;
    crate::report::level(&alone);
    println!(
        "client credentials tokens, beside {} workers posting wrong passwords to /account/login",
        args.flood_workers
    );
    let sources: Arc<[IpAddr]> = (0..args.sources).map(source_address).collect();
    let flooded = sign_in::tokens_under_flood(
        &target,
        &flow.creds,
        sources,
        args.flood_workers,
        &measured(args.concurrency),
    )
    .await
    .context("client credentials tokens under the flood")?;
    crate::report::level(&flooded.token);

    report::print(
        args,
        &rounds,
        &SignInResults {
            levels,
            alone,
            flooded,
        },
    );
    facts.peak_rss_kib = server.peak_rss_kib().ok();
    crate::report::server_peak(&facts);
    server.shutdown().await?;
    Ok(())
}
