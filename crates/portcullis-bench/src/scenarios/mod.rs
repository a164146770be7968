//! The scenarios and what they share: start (or find) the server, get client
//! credentials, drive each concurrency level and report.
//!
//! A new scenario adds a [`Kind`], a module with its [`crate::load::Exchange`],
//! and an arm in [`run_level`]. [`flood`] is apart: two phases on one server,
//! with its own report.

pub mod flood;
pub mod token;
pub mod verify;

use crate::CommonArgs;
use crate::load::{LevelResult, Plan, Target};
use crate::report::{self, Run, ServerFacts};
use crate::server::{Credentials, ServerProcess};
use anyhow::Context;
use std::sync::Arc;

/// Which scenario to run.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// `POST /oauth/token`, client credentials grant.
    Token,
    /// `GET /api/v1/whoami` with one valid token.
    Whoami,
    /// `POST /oauth/introspect` of one valid token.
    Introspect,
    /// `POST /api/v1/data`, 100 records a batch.
    Upload,
    /// `POST /oauth/token`, refresh token grant with rotation.
    Refresh,
}

impl Kind {
    /// Name in the report.
    fn name(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Whoami => "whoami",
            Self::Introspect => "introspect",
            Self::Upload => "upload",
            Self::Refresh => "refresh",
        }
    }
}

/// Runs `kind` against `--url`, or on a fresh server for each algorithm asked for.
pub async fn run(kind: Kind, args: &CommonArgs) -> anyhow::Result<()> {
    if let Some(url) = &args.url {
        let target = Arc::new(Target::from_url(url).await?);
        let creds = Credentials {
            client_id: args.client_id.clone().context("--url needs --client-id")?,
            client_secret: args
                .client_secret
                .clone()
                .context("--url needs --client-secret")?,
        };
        report::header(kind.name(), "", Some(url));
        print_plan(args);
        run_levels(kind, &target, &creds, args, None).await?;
        return Ok(());
    }
    let mut runs = Vec::new();
    for (i, alg) in args.algs().into_iter().enumerate() {
        if i > 0 {
            println!();
        }
        report::header(kind.name(), alg.as_str(), None);
        if i == 0 {
            print_plan(args);
        }
        let server = ServerProcess::start(alg)
            .await
            .with_context(|| format!("starting a {} server", alg.as_str()))?;
        let mut facts = ServerFacts {
            first_ready_ms: server.first_ready.as_secs_f64() * 1000.0,
            ready_ms: server.ready.as_secs_f64() * 1000.0,
            idle_rss_kib: server.rss_kib().ok(),
            peak_rss_kib: None,
        };
        report::server_ready(&facts);
        let creds = server.create_client("bench").await?;
        let target = Arc::new(Target::from_url(&server.url).await?);
        let levels = run_levels(kind, &target, &creds, args, Some(server.pid())).await?;
        facts.peak_rss_kib = server.peak_rss_kib().ok();
        report::server_peak(&facts);
        server.shutdown().await?;
        runs.push(Run {
            alg: alg.as_str().to_owned(),
            server: Some(facts),
            levels,
        });
    }
    if runs.len() > 1 {
        report::summary(kind.name(), &runs);
    }
    Ok(())
}

/// The method line under the first header.
fn print_plan(args: &CommonArgs) {
    println!(
        "warm-up {} then {} at each concurrency level; one keep-alive HTTP/1.1 connection per worker",
        humantime::format_duration(args.warmup),
        humantime::format_duration(args.duration),
    );
}

/// Runs and reports every concurrency level.
async fn run_levels(
    kind: Kind,
    target: &Arc<Target>,
    creds: &Credentials,
    args: &CommonArgs,
    server_pid: Option<u32>,
) -> anyhow::Result<Vec<LevelResult>> {
    let mut levels = Vec::with_capacity(args.concurrency.len());
    for &concurrency in &args.concurrency {
        let plan = Plan {
            concurrency,
            warmup: args.warmup,
            duration: args.duration,
            server_pid,
        };
        let result = run_level(kind, target, creds, plan)
            .await
            .with_context(|| format!("concurrency {concurrency}"))?;
        report::level(&result);
        levels.push(result);
    }
    Ok(levels)
}

/// One concurrency level of `kind`.
async fn run_level(
    kind: Kind,
    target: &Arc<Target>,
    creds: &Credentials,
    plan: Plan,
) -> anyhow::Result<LevelResult> {
    match kind {
        Kind::Token => token::run(target, creds, plan).await,
        Kind::Whoami => verify::run(verify::Path::Whoami, target, creds, plan).await,
        Kind::Introspect => verify::run(verify::Path::Introspect, target, creds, plan).await,
        Kind::Upload => verify::run(verify::Path::Upload, target, creds, plan).await,
        Kind::Refresh => verify::run(verify::Path::Refresh, target, creds, plan).await,
    }
}
