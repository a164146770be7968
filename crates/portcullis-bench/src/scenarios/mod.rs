//! The scenarios and what they share: start (or find) the server, get client
//! credentials, drive each concurrency level and report.
//!
//! A new scenario adds a [`Kind`], a module with its [`crate::load::Exchange`],
//! and an arm in [`run_level`]. [`flood`] and [`code`] are apart: phases on
//! one server of their own, with their own report. [`engines`] runs a scenario
//! on SQLite and PostgreSQL in alternation; [`peers`] runs the token scenario on
//! Portcullis and on node-oidc-provider in alternation.

pub mod code;
pub mod engines;
pub mod flood;
pub mod growth;
pub mod peers;
pub mod token;
pub mod verify;

use crate::deploy::{Deployment, Engine};
use crate::load::{LevelResult, Plan, Target};
use crate::report::{self, Run};
use crate::server::Credentials;
use crate::{Alg, CommonArgs};
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
    pub fn name(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Whoami => "whoami",
            Self::Introspect => "introspect",
            Self::Upload => "upload",
            Self::Refresh => "refresh",
        }
    }
}

/// Runs `kind` against `--url`, or on a fresh deployment (`--database-url`,
/// `--nodes`) for each algorithm asked for, or compares engines.
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
        let plan = |concurrency| Plan {
            concurrency,
            warmup: args.warmup,
            duration: args.duration,
            server_pids: Vec::new(),
            database: None,
        };
        run_levels(kind, &[target], &creds, args, plan).await?;
        return Ok(());
    }
    if args.compare_engines {
        return engines::run(kind, args).await;
    }
    let engine = Engine::from_args(args);
    let mut runs = Vec::new();
    for (i, alg) in args.algs().into_iter().enumerate() {
        if i > 0 {
            println!();
        }
        report::header(kind.name(), alg.as_str(), None);
        if i == 0 {
            print_plan(args);
        }
        let deployment = start_deployment(alg, &engine, args.nodes, args).await?;
        let (levels, facts) = run_on(kind, deployment, args).await?;
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

/// Starts a deployment and prints how it started.
async fn start_deployment(
    alg: Alg,
    engine: &Engine,
    nodes: usize,
    args: &CommonArgs,
) -> anyhow::Result<Deployment> {
    let deployment =
        Deployment::start(alg, engine, nodes, args.database_pool_size, args.prefill).await?;
    println!("{}", deployment.description());
    report::server_ready(&deployment.facts);
    report::peers_ready(&deployment.peers_ready);
    Ok(deployment)
}

/// Runs every level on `deployment`, then stops it; returns the levels and the
/// facts of its first node.
async fn run_on(
    kind: Kind,
    mut deployment: Deployment,
    args: &CommonArgs,
) -> anyhow::Result<(Vec<LevelResult>, report::ServerFacts)> {
    let levels = run_levels(
        kind,
        &deployment.targets,
        &deployment.creds,
        args,
        |concurrency| deployment.plan(concurrency, args.warmup, args.duration),
    )
    .await?;
    deployment.note_peak_rss();
    report::server_peak(&deployment.facts);
    let facts = deployment.facts.clone();
    deployment.shutdown().await?;
    Ok((levels, facts))
}

/// The method line under the first header.
fn print_plan(args: &CommonArgs) {
    println!(
        "warm-up {} then {} at each concurrency level; one keep-alive HTTP/1.1 connection per worker",
        humantime::format_duration(args.warmup),
        humantime::format_duration(args.duration),
    );
}

/// Runs and reports every concurrency level, the workers spread over `targets`;
/// `plan(concurrency)` says how to drive each.
async fn run_levels(
    kind: Kind,
    targets: &[Arc<Target>],
    creds: &Credentials,
    args: &CommonArgs,
    plan: impl Fn(usize) -> Plan,
) -> anyhow::Result<Vec<LevelResult>> {
    let mut levels = Vec::with_capacity(args.concurrency.len());
    for &concurrency in &args.concurrency {
        let result = run_level(kind, targets, creds, &plan(concurrency))
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
    targets: &[Arc<Target>],
    creds: &Credentials,
    plan: &Plan,
) -> anyhow::Result<LevelResult> {
    match kind {
        Kind::Token => token::run(targets, creds, plan).await,
        Kind::Whoami => verify::run(verify::Path::Whoami, targets, creds, plan).await,
        Kind::Introspect => verify::run(verify::Path::Introspect, targets, creds, plan).await,
        Kind::Upload => verify::run(verify::Path::Upload, targets, creds, plan).await,
        Kind::Refresh => verify::run(verify::Path::Refresh, targets, creds, plan).await,
    }
}
