//! The report: both phases side by side, the first failures, and the summary line.

use super::PhaseResult;
use super::attack::AttackStats;
use crate::load::LevelResult;
use crate::report;

/// `part` as a percentage of `whole`.
pub(super) fn percent(part: u64, whole: u64) -> Option<f64> {
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
pub(super) fn print_results(baseline: &PhaseResult, flood: &PhaseResult) {
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
