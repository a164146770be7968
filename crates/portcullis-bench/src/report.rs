//! The printed report: one line per concurrency level as it finishes, and a
//! summary table when several algorithms were run.

use crate::load::LevelResult;
use std::time::Duration;

/// What the bench learnt about a server it started.
#[derive(Debug, Clone, Default)]
pub struct ServerFacts {
    /// Spawn to ready on the empty database, in ms.
    pub first_ready_ms: f64,
    /// Spawn to ready on the existing database, in ms.
    pub ready_ms: f64,
    /// Resident memory right after the ready start, in KiB.
    pub idle_rss_kib: Option<u64>,
    /// Peak resident memory at the end, in KiB.
    pub peak_rss_kib: Option<u64>,
}

/// One scenario run against one server.
#[derive(Debug, Clone)]
pub struct Run {
    /// The signing algorithm, when the bench started the server.
    pub alg: String,
    /// Facts about the server, when the bench started it.
    pub server: Option<ServerFacts>,
    /// One result per concurrency level.
    pub levels: Vec<LevelResult>,
}

/// The median of `values` (the mean of the middle two for an even count; none
/// of none).
pub fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let upper = values.get(n / 2).copied()?;
    if n % 2 == 1 {
        return Some(upper);
    }
    let lower = values.get(n / 2 - 1).copied()?;
    Some(f64::midpoint(lower, upper))
}

/// `12345.6` → `12,346`.
pub fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Milliseconds with the precision that matters: `0.42`, `2.6`, `20`.
pub fn ms(v: f64) -> String {
    if v < 1.0 {
        format!("{v:.2}")
    } else if v < 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

/// KiB as MiB with one decimal.
pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// `Option` of a value, or `n/a`.
pub fn or_na(v: Option<String>) -> String {
    v.unwrap_or_else(|| "n/a".to_owned())
}

/// The header of a run.
pub fn header(scenario: &str, alg: &str, url: Option<&str>) {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    match url {
        None => println!(
            "scenario {scenario}  alg {alg}  (server and load generator share this machine's {cores} cores)"
        ),
        Some(url) => println!(
            "scenario {scenario}  server {url}  (load generator on this machine's {cores} cores)"
        ),
    }
}

/// The line describing a started server.
pub fn server_ready(facts: &ServerFacts) {
    println!(
        "server ready in {} ms (existing database; {} ms on first start with key creation and argon2), idle RSS {}",
        ms(facts.ready_ms),
        ms(facts.first_ready_ms),
        or_na(facts.idle_rss_kib.map(mib)),
    );
}

/// The line on the nodes started after the first, if any.
pub fn peers_ready(ready: &[Duration]) {
    if ready.is_empty() {
        return;
    }
    let times: Vec<String> = ready
        .iter()
        .map(|d| format!("{} ms", ms(d.as_secs_f64() * 1000.0)))
        .collect();
    println!(
        "{} more node{} ready in {} (existing database)",
        ready.len(),
        if ready.len() == 1 { "" } else { "s" },
        times.join(", ")
    );
}

/// The line of one concurrency level.
pub fn level(r: &LevelResult) {
    let q = |p| or_na(r.quantile_ms(p).map(|v| format!("{} ms", ms(v))));
    println!(
        "concurrency {}: {} req/s  p50 {}  p99 {}  max {}  errors {}",
        r.concurrency,
        thousands(r.rps()),
        q(0.50),
        q(0.99),
        q(1.0),
        r.errors,
    );
    if let Some(e) = &r.first_error {
        println!("  first error: {e}");
    }
    if r.per_node.len() > 1 {
        let total: u64 = r.per_node.iter().sum();
        let shares: Vec<String> = r
            .per_node
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let share = if total == 0 {
                    0.0
                } else {
                    n as f64 * 100.0 / total as f64
                };
                format!(
                    "node {} {} ({} req/s, {share:.1}%)",
                    i + 1,
                    thousands(n as f64),
                    thousands(n as f64 / r.window.as_secs_f64()),
                )
            })
            .collect();
        println!("  per node: {}", shares.join(", "));
    }
    let mut cpu = Vec::new();
    if let Some(c) = r.server_cpu {
        let per_request = r
            .server_cpu_ms_per_request()
            .map(|v| format!(", {:.1} µs per request", v * 1000.0))
            .unwrap_or_default();
        let who = match r.per_node.len() {
            0 | 1 => "server".to_owned(),
            n => format!("server ({n} nodes)"),
        };
        cpu.push(format!("{who} {:.2} cores{per_request}", r.cores(c)));
    }
    if let Some(c) = r.postgres_cpu {
        let per_request = r
            .cpu_ms_per_request(Some(c))
            .map(|v| format!(", {:.1} µs per request", v * 1000.0))
            .unwrap_or_default();
        cpu.push(format!("postgres {:.2} cores{per_request}", r.cores(c)));
    }
    if let Some(c) = r.bench_cpu {
        cpu.push(format!("load generator {:.2} cores", r.cores(c)));
    }
    if let Some(c) = r.other_cpu() {
        let who = if r.server_cpu.is_some() {
            "other processes"
        } else {
            "everything else (server included)"
        };
        cpu.push(format!("{who} {:.2} cores", r.cores(c)));
    }
    if !cpu.is_empty() {
        println!("  CPU: {}", cpu.join(", "));
    }
    // On PostgreSQL the server writes nothing itself: the database's WAL is below.
    if let Some(kib) = r.server_storage_kib_per_request()
        && r.database.is_none()
    {
        println!("  storage: the server wrote {kib:.1} KiB per request (log and checkpoints)");
    }
    if let Some(d) = r.database {
        let secs = r.window.as_secs_f64();
        let n = r.latencies_us.len() as f64;
        let per_request = |v: u64| if n > 0.0 { v as f64 / n } else { 0.0 };
        let rollbacks = if d.rollbacks > 0 {
            format!(" ({} rolled back)", thousands(d.rollbacks as f64))
        } else {
            String::new()
        };
        println!(
            "  PostgreSQL: {} commits/s{rollbacks} (xact_commit of the bench database), {} requests per commit; \
             {} transaction ids/s (writing transactions), {} WAL syncs/s, {:.2} KiB of WAL per request",
            thousands(d.commits as f64 / secs),
            or_na(r.requests_per_commit().map(|v| format!("{v:.1}"))),
            thousands(d.xids as f64 / secs),
            thousands(d.wal_syncs as f64 / secs),
            per_request(d.wal_bytes) / 1024.0,
        );
    }
}

/// The closing line of a run on a started server.
pub fn server_peak(facts: &ServerFacts) {
    println!("server peak RSS {}", or_na(facts.peak_rss_kib.map(mib)));
}

/// A table of every run, one row per algorithm and concurrency level.
pub fn summary(scenario: &str, runs: &[Run]) {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!();
    println!(
        "summary: scenario {scenario} (server and load generator share {cores} cores; CPU in cores busy)"
    );
    let head = [
        "alg",
        "ready",
        "idle RSS",
        "peak RSS",
        "conc",
        "req/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "errors",
        "server CPU",
        "other CPU",
    ];
    let mut rows: Vec<[String; 12]> = Vec::new();
    for run in runs {
        let s = run.server.clone().unwrap_or_default();
        for l in &run.levels {
            let q = |p| or_na(l.quantile_ms(p).map(ms));
            rows.push([
                run.alg.clone(),
                format!("{} ms", ms(s.ready_ms)),
                or_na(s.idle_rss_kib.map(mib)),
                or_na(s.peak_rss_kib.map(mib)),
                l.concurrency.to_string(),
                thousands(l.rps()),
                q(0.50),
                q(0.99),
                q(1.0),
                l.errors.to_string(),
                or_na(l.server_cpu.map(|c| format!("{:.2}", l.cores(c)))),
                or_na(l.other_cpu().map(|c| format!("{:.2}", l.cores(c)))),
            ]);
        }
    }
    let rows: Vec<Vec<String>> = rows.into_iter().map(Vec::from).collect();
    table(&head, &rows);
}

/// Prints a table: the first column left-aligned, the others right-aligned.
pub fn table(head: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, &w))| {
                if i == 0 {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(head.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_the_middle_or_the_mean_of_the_middle_two() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![0.3, 0.1, 0.2]), Some(0.2));
        assert_eq!(median(vec![0.4, 0.1, 0.2, 0.3]), Some(0.25));
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }
}
