//! `portcullis-bench`: a load generator for Portcullis.
//!
//! Each scenario is a subcommand (`token`, `refresh`, `introspect`, `whoami`,
//! `upload`; `flood`, legitimate users under a flood of failed
//! authentications; `code`, the authorization code flow beside the refresh
//! grant and the end users' sign-in; `denylist` and `signing` measure in this
//! process). Unless `--url` names a running
//! server, the bench starts the real server in a child process: it re-executes
//! itself with the hidden first argument [`server::REEXEC_ARG`], which hands the
//! rest of the command line to [`portcullis::main_with_args`].
//!
//! The server's database is a temporary SQLite file, or with `--database-url
//! postgres://…` a fresh PostgreSQL database, which `--nodes N` server processes
//! share ([`deploy`]); `--compare-engines` measures SQLite, one PostgreSQL node
//! and several in alternation ([`scenarios::engines`]).

mod browser;
mod denylist;
mod deploy;
mod load;
mod postgres;
mod prefill;
mod procfs;
mod report;
mod scenarios;
mod server;
mod signing;

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::ffi::{OsStr, OsString};
use std::process::ExitCode;
use std::time::Duration;

/// Load generator for Portcullis.
#[derive(Debug, Parser)]
#[command(name = "portcullis-bench", about)]
struct Cli {
    /// The scenario to run.
    #[command(subcommand)]
    scenario: Scenario,
}

/// The scenarios.
#[derive(Debug, Subcommand)]
enum Scenario {
    /// `POST /oauth/token` with the client credentials grant and a varying label.
    ///
    /// With `--database-url postgres://…` the server runs on PostgreSQL, with
    /// `--nodes N` as N processes; `--compare-engines` measures SQLite against
    /// PostgreSQL with one and with several nodes in one run, for example:
    ///
    /// portcullis-bench token --signing-alg ES256 --concurrency 64 --compare-engines
    /// --database-url postgres://postgres@127.0.0.1:5432/postgres
    Token(TokenArgs),
    /// `GET /api/v1/whoami` with one valid bearer token.
    Whoami(TokenArgs),
    /// `POST /oauth/introspect` of one valid access token, by its own client.
    Introspect(TokenArgs),
    /// `POST /api/v1/data`, batches of 100 records, durable before each answer.
    Upload(TokenArgs),
    /// `POST /oauth/token` with the refresh token grant, each worker rotating its own token.
    Refresh(TokenArgs),
    /// The signing floor: access tokens signed and verified per second on one thread;
    /// with `--rsa-implementations`, RS256 signing with each RSA implementation.
    Signing(SigningArgs),
    /// The in-memory denylist with many revoked ids: memory, and time added per check.
    Denylist(DenylistArgs),
    /// Legitimate token requests and admin sign-ins, alone and then under a flood
    /// of failed authentications from many source addresses.
    Flood(FloodArgs),
    /// The authorization code flow on one server: code exchanges against refresh
    /// grants in alternating rounds (codes minted beforehand with a signed-in
    /// user's consent), the end users' sign-in rate, and client credentials
    /// tokens alone and while wrong passwords flood the sign-in.
    Code(CodeArgs),
    /// What the paths cost as the data grows: for each database size (token
    /// families stored first), client credentials, refresh, introspection and
    /// whoami rates and the admin pages' fetch times, beside the empty database's.
    Growth(scenarios::growth::GrowthArgs),
    /// Portcullis side by side with node-oidc-provider (npm, two workers, JWT
    /// access tokens with the same algorithm): client credentials tokens from
    /// each in alternating rounds with the same load generator, and the ratio.
    /// Needs Node.js and npm on PATH; installs the peer's locked dependencies
    /// into `crates/portcullis-bench/peers/node-oidc-provider` on first use.
    Peers(PeersArgs),
}

/// Options of the `peers` scenario. It starts both servers itself.
#[derive(Debug, Clone, Args)]
pub struct PeersArgs {
    /// Signing algorithm of both servers' access tokens.
    #[arg(long, value_enum, ignore_case = true, default_value = "ES256")]
    pub signing_alg: Alg,
    /// How long to measure each server in each round.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Warm-up before each measurement (not measured).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Workers, one keep-alive connection each, against either server.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// Rounds of Portcullis then node-oidc-provider.
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Worker processes of node-oidc-provider (Node's `cluster` module).
    #[arg(long, default_value_t = 2)]
    pub node_workers: usize,
}

impl PeersArgs {
    /// Rejects option values clap cannot check on its own.
    fn validate(&self) -> anyhow::Result<()> {
        at_least("concurrency", self.concurrency, 1)?;
        at_least("rounds", self.rounds, 1)?;
        at_least("node-workers", self.node_workers, 1)?;
        positive("duration", self.duration)?;
        Ok(())
    }
}

/// Options of the `code` scenario. It always starts its own server: it creates
/// the client and the end user with the CLI, and its attackers bind 127.x.y.z
/// source addresses.
#[derive(Debug, Clone, Args)]
pub struct CodeArgs {
    /// Signing algorithm of the server (ES256 keeps signing from dominating both
    /// grants, so the exchange's own cost shows).
    #[arg(long, value_enum, ignore_case = true, default_value = "ES256")]
    pub signing_alg: Alg,
    /// How long to measure each round and phase. Codes live 60 seconds: minting
    /// (at most 20 s), warm-up and duration must fit in it, so warm-up and
    /// duration together may not exceed 30 s.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Warm-up before each round and phase (not measured).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Workers of the refresh, code exchange and token rounds, and of the
    /// minting, one keep-alive connection each.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Rounds of refresh then code exchange (at least 2).
    #[arg(long, default_value_t = 3)]
    pub rounds: usize,
    /// Concurrency levels of the end users' sign-in, comma separated.
    #[arg(long, value_delimiter = ',', default_value = "2,8")]
    pub sign_in_concurrency: Vec<usize>,
    /// Attacker workers posting wrong passwords to `/account/login` while the
    /// token rate is measured under the flood.
    #[arg(long, default_value_t = 32)]
    pub flood_workers: usize,
    /// Distinct source addresses (127.1.0.1 onwards; never 127.0.0.1) the
    /// attackers cycle through.
    #[arg(long, default_value_t = 500)]
    pub sources: usize,
}

impl CodeArgs {
    /// Rejects option values clap cannot check on its own.
    fn validate(&self) -> anyhow::Result<()> {
        at_least("concurrency", self.concurrency, 1)?;
        at_least("rounds", self.rounds, 2)?;
        if self.sign_in_concurrency.is_empty() || self.sign_in_concurrency.contains(&0) {
            bail!("--sign-in-concurrency needs one or more levels, each at least 1");
        }
        at_least("flood-workers", self.flood_workers, 1)?;
        if !(1..=scenarios::flood::MAX_SOURCES).contains(&self.sources) {
            bail!(
                "--sources must be between 1 and {}",
                scenarios::flood::MAX_SOURCES
            );
        }
        positive("duration", self.duration)?;
        if self.warmup + self.duration > Duration::from_secs(30) {
            bail!(
                "--warmup and --duration together may not exceed 30s: the codes, minted before a round, live 60 seconds"
            );
        }
        Ok(())
    }
}

/// Options of the `denylist` measurement.
#[derive(Debug, Args)]
struct DenylistArgs {
    /// How many revoked family ids to load.
    #[arg(long, default_value_t = 1_000_000)]
    ids: usize,
}

/// Options of the `signing` measurement.
#[derive(Debug, Args)]
pub struct SigningArgs {
    /// Instead of the floor of each algorithm, time RS256-2048 signing of the
    /// same JWS signing input with each RSA implementation: aws-lc-rs (as the
    /// server signs) and, in a build with `--features rsa-compare`, ring and the
    /// system's OpenSSL through the `openssl` crate.
    #[arg(long)]
    pub rsa_implementations: bool,
    /// Thread counts to time each implementation with (signatures per second are
    /// summed over the threads).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,2",
        requires = "rsa_implementations"
    )]
    pub threads: Vec<usize>,
    /// How many times to repeat the whole comparison; the implementations
    /// alternate within each round and the summary gives the medians.
    #[arg(long, default_value_t = 3, requires = "rsa_implementations")]
    pub rounds: usize,
}

/// Options of the `flood` scenario. It always starts its own server: it needs the
/// first admin's password, and its attackers bind 127.x.y.z source addresses.
#[derive(Debug, Clone, Args)]
pub struct FloodArgs {
    /// Signing algorithm of the server (ES256 keeps the token path from being
    /// signing-bound, so the flood's own cost shows).
    #[arg(long, value_enum, ignore_case = true, default_value = "ES256")]
    pub signing_alg: Alg,
    /// How long to measure each phase (baseline, then flood).
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Warm-up before each phase (not measured; the flood already runs in it).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Workers of the legitimate token client, one keep-alive connection each.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Attacker workers in the flood phase: half send token requests with wrong
    /// secrets, half sign-ins with wrong passwords.
    #[arg(long, default_value_t = 64)]
    pub flood_workers: usize,
    /// Distinct source addresses (127.1.0.1 onwards; never 127.0.0.1) the
    /// attackers cycle through.
    #[arg(long, default_value_t = 500)]
    pub sources: usize,
    /// How often the legitimate admin starts a sign-in (or at once when the last
    /// one took longer). Pacing keeps the admin's Argon2 hashing from eating a
    /// core in the baseline only; 0s signs in back to back.
    #[arg(long, default_value = "250ms", value_parser = humantime::parse_duration)]
    pub sign_in_interval: Duration,
}

impl FloodArgs {
    /// Rejects option values clap cannot check on its own.
    fn validate(&self) -> anyhow::Result<()> {
        at_least("concurrency", self.concurrency, 1)?;
        if self.flood_workers < 2 {
            bail!("--flood-workers must be at least 2 (half token, half sign-in attackers)");
        }
        if !(1..=scenarios::flood::MAX_SOURCES).contains(&self.sources) {
            bail!(
                "--sources must be between 1 and {}",
                scenarios::flood::MAX_SOURCES
            );
        }
        positive("duration", self.duration)?;
        Ok(())
    }
}

/// Options of the `token` scenario.
#[derive(Debug, Args)]
struct TokenArgs {
    /// Options every scenario shares.
    #[command(flatten)]
    common: CommonArgs,
}

/// Signing algorithms a bench server can be started with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "verbatim")]
pub enum Alg {
    /// RSA 2048 with SHA-256.
    RS256,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl Alg {
    /// Every algorithm, in the order `--all-algs` runs them.
    pub const ALL: [Self; 3] = [Self::RS256, Self::ES256, Self::EdDSA];

    /// The name the server's `--signing-alg` expects.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }
}

/// Options shared by every scenario.
#[derive(Debug, Clone, Args)]
pub struct CommonArgs {
    /// Signing algorithm of the server the bench starts.
    #[arg(
        long,
        value_enum,
        ignore_case = true,
        default_value = "RS256",
        conflicts_with = "url"
    )]
    pub signing_alg: Alg,
    /// Run the scenario for RS256, ES256 and EdDSA in turn, each on a fresh server.
    #[arg(long, conflicts_with_all = ["signing_alg", "url"])]
    pub all_algs: bool,
    /// How long to measure at each concurrency level.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Warm-up before each concurrency level (not measured).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Concurrency levels, comma separated: one worker and one connection each.
    #[arg(long, value_delimiter = ',', default_value = "16,64")]
    pub concurrency: Vec<usize>,
    /// Use this running server (http://HOST:PORT) instead of starting one.
    #[arg(long, requires_all = ["client_id", "client_secret"])]
    pub url: Option<String>,
    /// Client id to use with `--url`.
    #[arg(long, requires = "url")]
    pub client_id: Option<String>,
    /// Client secret to use with `--url`.
    #[arg(long, requires = "url")]
    pub client_secret: Option<String>,
    /// Run the server on PostgreSQL instead of a temporary SQLite database:
    /// postgres://USER[:PASSWORD]@HOST[:PORT]/DB. The bench connects to DB only to
    /// create a fresh database `bench_<pid>_<n>` for each server it starts (and to
    /// read its statistics), and drops it afterwards; the master key goes to a
    /// temporary directory.
    #[arg(long, value_name = "URL", conflicts_with = "url")]
    pub database_url: Option<String>,
    /// Server processes on the one PostgreSQL database and master key (above 1
    /// needs --database-url): the first is started and the bench client created
    /// through it, then the others; the workers' connections go to them
    /// round-robin. With --compare-engines: the node count of the last setup
    /// (2 unless more).
    #[arg(long, value_name = "N", default_value_t = 1, conflicts_with = "url")]
    pub nodes: usize,
    /// Token families to store before measuring (with their refresh tokens,
    /// labels and audit events, spread over prefilled clients of 10,000 families
    /// and 100 labels each), to measure on a database that has grown; 1000000,
    /// 1m and 10m are all understood.
    #[arg(long, value_name = "N", default_value = "0", value_parser = parse_count, conflicts_with = "url")]
    pub prefill: u64,
    /// `--database-pool-size` of each PostgreSQL node [default: the server's own, 16].
    #[arg(long, value_name = "N", requires = "database_url")]
    pub database_pool_size: Option<u16>,
    /// Compare storage engines in one run: SQLite, PostgreSQL (--database-url) with
    /// one node and PostgreSQL with --nodes nodes (2 unless more), one after the
    /// other, --rounds times, each phase on fresh servers and a fresh database with
    /// the same duration, concurrency and algorithm. Then a table of each setup's
    /// mean throughput with the ratios PostgreSQL/SQLite and N nodes/1 node, the
    /// commits per second PostgreSQL made in each phase (`pg_stat_database`) and
    /// requests per commit, and PostgreSQL's own commit ceiling on this machine
    /// (one-row inserts from 1, 8 and 64 connections), from which follows how many
    /// nodes its commit rate carries.
    #[arg(long, requires = "database_url", conflicts_with_all = ["all_algs", "url"])]
    pub compare_engines: bool,
    /// How many times --compare-engines measures each setup.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub rounds: usize,
}

impl CommonArgs {
    /// Rejects option values clap cannot check on its own.
    fn validate(&self) -> anyhow::Result<()> {
        if self.concurrency.is_empty() || self.concurrency.contains(&0) {
            bail!("--concurrency needs one or more levels, each at least 1");
        }
        positive("duration", self.duration)?;
        if let Some(url) = &self.database_url
            && !postgres::is_postgres_url(url)
        {
            bail!(
                "--database-url takes a postgres:// URL (without it the server runs on a temporary SQLite database)"
            );
        }
        at_least("nodes", self.nodes, 1)?;
        if self.nodes > 1 && self.database_url.is_none() {
            bail!(
                "--nodes above 1 needs --database-url postgres://…: only PostgreSQL is shared by several nodes"
            );
        }
        at_least("rounds", self.rounds, 1)?;
        Ok(())
    }

    /// The algorithms to run the scenario with.
    pub fn algs(&self) -> Vec<Alg> {
        if self.all_algs {
            Alg::ALL.to_vec()
        } else {
            vec![self.signing_alg]
        }
    }
}

/// mimalloc: the request paths allocate many small short-lived buffers.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // The child server: `<bench> __portcullis serve …` runs `portcullis serve …`.
    // This must come before the bench builds its own runtime.
    if std::env::args_os().nth(1).as_deref() == Some(OsStr::new(server::REEXEC_ARG)) {
        let args = std::iter::once(OsString::from("portcullis")).chain(std::env::args_os().skip(2));
        return portcullis::main_with_args(args);
    }
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// Runs the chosen scenario; Ctrl-C stops it (and, through the drop guard, the server).
async fn run(cli: Cli) -> anyhow::Result<()> {
    let work = async {
        match cli.scenario {
            Scenario::Token(args) => {
                args.common.validate()?;
                scenarios::run(scenarios::Kind::Token, &args.common).await
            }
            Scenario::Whoami(args) => {
                args.common.validate()?;
                scenarios::run(scenarios::Kind::Whoami, &args.common).await
            }
            Scenario::Introspect(args) => {
                args.common.validate()?;
                scenarios::run(scenarios::Kind::Introspect, &args.common).await
            }
            Scenario::Upload(args) => {
                args.common.validate()?;
                scenarios::run(scenarios::Kind::Upload, &args.common).await
            }
            Scenario::Refresh(args) => {
                args.common.validate()?;
                scenarios::run(scenarios::Kind::Refresh, &args.common).await
            }
            Scenario::Flood(args) => {
                args.validate()?;
                scenarios::flood::run(&args).await
            }
            Scenario::Code(args) => {
                args.validate()?;
                scenarios::code::run(&args).await
            }
            Scenario::Growth(args) => scenarios::growth::run(&args).await,
            Scenario::Peers(args) => {
                args.validate()?;
                scenarios::peers::run(&args).await
            }
            Scenario::Denylist(args) => denylist::run(args.ids),
            Scenario::Signing(args) => signing::run(&args),
        }
    };
    tokio::select! {
        result = work => result,
        signal = tokio::signal::ctrl_c() => {
            signal.context("listening for Ctrl-C")?;
            bail!("interrupted")
        }
    }
}

/// A count as `--prefill` takes it: digits, optionally with a `k` or `m` suffix
/// (thousands, millions) and `_` separators.
pub fn parse_count(s: &str) -> Result<u64, String> {
    let t = s.trim().replace('_', "").to_ascii_lowercase();
    let (digits, factor) = match t.strip_suffix('m') {
        Some(d) => (d, 1_000_000),
        None => match t.strip_suffix('k') {
            Some(d) => (d, 1_000),
            None => (t.as_str(), 1),
        },
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| format!("{s:?} is not a count (e.g. 1000000, 1m, 250k)"))
}

/// Refuses `--flag` below `min`.
fn at_least(flag: &str, value: usize, min: usize) -> anyhow::Result<()> {
    if value < min {
        bail!("--{flag} must be at least {min}");
    }
    Ok(())
}

/// Refuses a zero `--flag`.
fn positive(flag: &str, value: Duration) -> anyhow::Result<()> {
    if value.is_zero() {
        bail!("--{flag} must be more than zero");
    }
    Ok(())
}
