//! `--compare-engines`: one scenario on SQLite, on PostgreSQL with one node and
//! on PostgreSQL with several nodes, measured in alternation so that the
//! machine's drift (this is a shared virtual machine) falls on every setup
//! alike. Each phase starts fresh servers on a fresh database and runs every
//! concurrency level; after `--rounds` rounds come
//!
//! - a table of each setup's mean throughput, latency and CPU split;
//! - PostgreSQL's side of each PostgreSQL setup: commits per second of the bench
//!   database (`pg_stat_database.xact_commit`), requests per commit, writing
//!   transactions, WAL syncs and WAL per request;
//! - the ratios PostgreSQL 1 node / SQLite and N nodes / 1 node;
//! - PostgreSQL's commit ceiling on this machine ([`postgres::commit_probe`]),
//!   and from it and one node's commits per second, how many nodes the commit
//!   rate carries.

use super::{Kind, print_plan, run_on, start_deployment};
use crate::CommonArgs;
use crate::deploy::Engine;
use crate::load::LevelResult;
use crate::postgres::{self, ProbeResult};
use crate::report::{ms, or_na, table, thousands};
use anyhow::Context;
use std::time::Duration;

/// Connections of the commit probe: one (the latency of a single commit),
/// a few, and as many as a heavy load.
const PROBE_CONNECTIONS: [usize; 3] = [1, 8, 64];

/// The longest the commit probe measures at each number of connections.
const PROBE_DURATION: Duration = Duration::from_secs(5);

/// One setup: an engine and its number of nodes.
struct Setup {
    engine: Engine,
    nodes: usize,
    /// One entry per round: one result per concurrency level.
    rounds: Vec<Vec<LevelResult>>,
}

impl Setup {
    /// The results of every round at concurrency level `level` (an index).
    fn at(&self, level: usize) -> Vec<&LevelResult> {
        self.rounds.iter().filter_map(|r| r.get(level)).collect()
    }

    /// `SQLite`, `PostgreSQL 1 node`, …
    fn label(&self) -> String {
        self.engine.label(self.nodes)
    }
}

/// The mean of some values, if there are any.
fn mean(values: impl IntoIterator<Item = f64>) -> Option<f64> {
    let (sum, n) = values
        .into_iter()
        .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// The mean over rounds of `f`, where it is known.
fn mean_of(results: &[&LevelResult], f: impl Fn(&LevelResult) -> Option<f64>) -> Option<f64> {
    mean(results.iter().filter_map(|r| f(r)))
}

/// Runs the comparison and prints its tables.
pub async fn run(kind: Kind, args: &CommonArgs) -> anyhow::Result<()> {
    let admin_url = args
        .database_url
        .clone()
        .context("--compare-engines needs --database-url postgres://…")?;
    let postgres = Engine::Postgres {
        admin_url: admin_url.clone(),
    };
    let many = args.nodes.max(2);
    let mut setups = [
        Setup {
            engine: Engine::Sqlite,
            nodes: 1,
            rounds: Vec::new(),
        },
        Setup {
            engine: postgres.clone(),
            nodes: 1,
            rounds: Vec::new(),
        },
        Setup {
            engine: postgres,
            nodes: many,
            rounds: Vec::new(),
        },
    ];
    let alg = args.signing_alg;
    crate::report::header(kind.name(), alg.as_str(), None);
    let labels: Vec<String> = setups.iter().map(Setup::label).collect();
    println!(
        "comparing engines: {} round{} of {}, each phase on fresh servers and a fresh database",
        args.rounds,
        if args.rounds == 1 { "" } else { "s" },
        labels.join(", then "),
    );
    print_plan(args);
    for round in 1..=args.rounds {
        for setup in &mut setups {
            println!();
            println!("round {round}/{}: {}", args.rounds, setup.label());
            let deployment = start_deployment(alg, &setup.engine, setup.nodes, args).await?;
            let (levels, _) = run_on(kind, deployment, args)
                .await
                .with_context(|| format!("round {round}, {}", setup.label()))?;
            setup.rounds.push(levels);
        }
    }

    println!();
    println!(
        "PostgreSQL's commit ceiling on this machine: one-row INSERTs, each its own durable commit, \
         back to back from each connection on a fresh database, nothing else running"
    );
    let probe_duration = args.duration.min(PROBE_DURATION);
    let mut probes = Vec::with_capacity(PROBE_CONNECTIONS.len());
    for connections in PROBE_CONNECTIONS {
        let probe = postgres::commit_probe(&admin_url, connections, args.warmup, probe_duration)
            .await
            .with_context(|| format!("the commit probe with {connections} connections"))?;
        print_probe(&probe);
        probes.push(probe);
    }

    println!();
    print_summary(kind, args, &setups);
    println!();
    print_database(&setups);
    println!();
    print_ratios(args, &setups);
    println!();
    print_commit_limit(args, &setups, &probes);
    Ok(())
}

/// One line of the commit probe.
fn print_probe(p: &ProbeResult) {
    let secs = p.window.as_secs_f64();
    println!(
        "  {:>2} connection{}: {} commits/s, {} WAL syncs/s, postgres {}",
        p.connections,
        if p.connections == 1 { " " } else { "s" },
        thousands(p.commits_per_second()),
        thousands(p.wal_syncs as f64 / secs),
        or_na(
            p.postgres_cpu
                .map(|c| format!("{:.2} cores", c.as_secs_f64() / secs))
        ),
    );
}

/// The throughput table: one row per setup and concurrency level, means over rounds.
fn print_summary(kind: Kind, args: &CommonArgs, setups: &[Setup]) {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!(
        "summary: scenario {}, alg {}, {} round{} of warm-up {} + {} per setup (means over rounds; \
         server, PostgreSQL and load generator share {cores} cores; CPU in cores busy)",
        kind.name(),
        args.signing_alg.as_str(),
        args.rounds,
        if args.rounds == 1 { "" } else { "s" },
        humantime::format_duration(args.warmup),
        humantime::format_duration(args.duration),
    );
    let head = [
        "setup",
        "conc",
        "req/s",
        "each round",
        "p50 ms",
        "p99 ms",
        "errors",
        "server CPU",
        "postgres CPU",
        "bench CPU",
        "other CPU",
    ];
    let mut rows = Vec::new();
    for setup in setups {
        for (level, &concurrency) in args.concurrency.iter().enumerate() {
            let results = setup.at(level);
            let cores = |f: fn(&LevelResult) -> Option<Duration>| {
                or_na(mean_of(&results, |r| f(r).map(|c| r.cores(c))).map(|v| format!("{v:.2}")))
            };
            let each: Vec<String> = results.iter().map(|r| thousands(r.rps())).collect();
            rows.push(vec![
                setup.label(),
                concurrency.to_string(),
                or_na(mean_of(&results, |r| Some(r.rps())).map(thousands)),
                each.join(" / "),
                or_na(mean_of(&results, |r| r.quantile_ms(0.50)).map(ms)),
                or_na(mean_of(&results, |r| r.quantile_ms(0.99)).map(ms)),
                results.iter().map(|r| r.errors).sum::<u64>().to_string(),
                cores(|r| r.server_cpu),
                cores(|r| r.postgres_cpu),
                cores(|r| r.bench_cpu),
                cores(LevelResult::other_cpu),
            ]);
        }
    }
    table(&head, &rows);
}

/// PostgreSQL's side of each PostgreSQL setup, means over rounds.
fn print_database(setups: &[Setup]) {
    println!(
        "PostgreSQL in each phase (commits: xact_commit of the bench database, read-only ones included; \
         xids: transactions that wrote or locked rows, each a WAL flush at commit)"
    );
    let head = [
        "setup",
        "conc",
        "req/s",
        "commits/s",
        "req/commit",
        "xids/s",
        "req/xid",
        "WAL syncs/s",
        "WAL KiB/req",
        "postgres ms/req",
        "server ms/req",
    ];
    let mut rows = Vec::new();
    for setup in setups
        .iter()
        .filter(|s| matches!(s.engine, Engine::Postgres { .. }))
    {
        let levels = setup.rounds.first().map_or(0, Vec::len);
        for level in 0..levels {
            let results = setup.at(level);
            let concurrency = results.first().map(|r| r.concurrency).unwrap_or_default();
            let rate = |f: fn(&postgres::Delta) -> u64| {
                mean_of(&results, |r| {
                    r.database
                        .as_ref()
                        .map(|d| f(d) as f64 / r.window.as_secs_f64())
                })
            };
            let per_request = |f: fn(&postgres::Delta) -> u64| {
                mean_of(&results, |r| {
                    let n = r.latencies_us.len() as f64;
                    r.database
                        .as_ref()
                        .filter(|_| n > 0.0)
                        .map(|d| f(d) as f64 / n)
                })
            };
            let requests_per = |f: fn(&postgres::Delta) -> u64| {
                mean_of(&results, |r| {
                    let d = r.database.as_ref()?;
                    let v = f(d);
                    (v > 0).then(|| r.latencies_us.len() as f64 / v as f64)
                })
            };
            rows.push(vec![
                setup.label(),
                concurrency.to_string(),
                or_na(mean_of(&results, |r| Some(r.rps())).map(thousands)),
                or_na(rate(|d| d.commits).map(thousands)),
                or_na(requests_per(|d| d.commits).map(|v| format!("{v:.1}"))),
                or_na(rate(|d| d.xids).map(thousands)),
                or_na(requests_per(|d| d.xids).map(|v| format!("{v:.1}"))),
                or_na(rate(|d| d.wal_syncs).map(thousands)),
                or_na(per_request(|d| d.wal_bytes).map(|v| format!("{:.2}", v / 1024.0))),
                or_na(mean_of(&results, |r| r.cpu_ms_per_request(r.postgres_cpu)).map(ms)),
                or_na(mean_of(&results, LevelResult::server_cpu_ms_per_request).map(ms)),
            ]);
        }
    }
    table(&head, &rows);
}

/// Mean throughput of `setup` at level `level`.
fn mean_rps(setup: &Setup, level: usize) -> Option<f64> {
    mean_of(&setup.at(level), |r| Some(r.rps()))
}

/// The ratios the issue sets targets for, at each concurrency level.
fn print_ratios(args: &CommonArgs, setups: &[Setup]) {
    let [sqlite, one, many] = setups else {
        return;
    };
    println!("ratios of mean throughput:");
    for (level, concurrency) in args.concurrency.iter().enumerate() {
        let ratio = |a: &Setup, b: &Setup| {
            or_na(
                mean_rps(a, level)
                    .zip(mean_rps(b, level))
                    .filter(|(_, b)| *b > 0.0)
                    .map(|(a, b)| format!("{:.2}", a / b)),
            )
        };
        println!(
            "  concurrency {concurrency}: {} / {} = {} (target ≥ 0.50); {} / {} = {} (target ≥ 0.90)",
            one.label(),
            sqlite.label(),
            ratio(one, sqlite),
            many.label(),
            one.label(),
            ratio(many, one),
        );
    }
}

/// How many nodes PostgreSQL's commit rate carries: its ceiling over one node's
/// commits per second, at each concurrency level.
fn print_commit_limit(args: &CommonArgs, setups: &[Setup], probes: &[ProbeResult]) {
    let [_, one, many] = setups else {
        return;
    };
    let Some(ceiling) = probes
        .iter()
        .max_by(|a, b| a.commits_per_second().total_cmp(&b.commits_per_second()))
    else {
        return;
    };
    let c = ceiling.commits_per_second();
    println!(
        "how far N nodes go before PostgreSQL's commit rate is the limit: its ceiling here is {} commits/s \
         ({} connections of one-row commits)",
        thousands(c),
        ceiling.connections,
    );
    for (level, concurrency) in args.concurrency.iter().enumerate() {
        let commits = |s: &Setup| mean_of(&s.at(level), |r| r.commits_per_second());
        let per_commit = |s: &Setup| mean_of(&s.at(level), LevelResult::requests_per_commit);
        let (Some(rps), Some(node_commits), Some(per)) =
            (mean_rps(one, level), commits(one), per_commit(one))
        else {
            continue;
        };
        if node_commits <= 0.0 {
            continue;
        }
        let nodes = c / node_commits;
        println!(
            "  concurrency {concurrency}: one node did {} req/s in {} commits/s ({per:.1} requests per commit); \
             {} commits/s / {} = {nodes:.1} such nodes, {} req/s in all, before the commits alone fill PostgreSQL",
            thousands(rps),
            thousands(node_commits),
            thousands(c),
            thousands(node_commits),
            thousands(nodes * rps),
        );
        let cores = std::thread::available_parallelism().map_or(0, usize::from);
        if let Some(pg_ms) = mean_of(&one.at(level), |r| r.cpu_ms_per_request(r.postgres_cpu))
            && pg_ms > 0.0
        {
            println!(
                "    PostgreSQL's CPU, by comparison: {} ms per request with one node, so this machine's {cores} cores \
                 given to PostgreSQL alone would carry about {} req/s",
                ms(pg_ms),
                thousands(cores as f64 * 1000.0 / pg_ms),
            );
        }
        if let (Some(many_commits), Some(many_per), Some(many_rps)) =
            (commits(many), per_commit(many), mean_rps(many, level))
        {
            println!(
                "    {}: {} req/s in {} commits/s ({many_per:.1} requests per commit, {} commits/s a node)",
                many.label(),
                thousands(many_rps),
                thousands(many_commits),
                thousands(many_commits / many.nodes as f64),
            );
        }
    }
    println!(
        "  (a node's group commit grows when commits slow down, so requests per commit rise as nodes are added: \
         the commit rate is a floor on how far nodes go; on this machine the cores, shared by all, run out first)"
    );
}
