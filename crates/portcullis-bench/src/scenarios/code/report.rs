//! The report: every measured phase in one table, then the ratios the targets
//! are about (code exchange / refresh, median of the rounds; tokens under the
//! flood / alone) and the sign-in rate.

use super::{Round, SignInResults};
use crate::CodeArgs;
use crate::load::LevelResult;
use crate::report::{median, ms, or_na, table, thousands};

/// The target for code exchanges, as a share of refresh grants.
const TARGET: f64 = 0.9;

/// `12,345` for rates from tens up, `12.3` below.
fn rate(v: f64) -> String {
    if v < 100.0 {
        format!("{v:.1}")
    } else {
        thousands(v)
    }
}

/// `45.2%`, or `n/a`.
fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_owned(), |v| format!("{:.1}%", v * 100.0))
}

/// One row of the table.
fn row(phase: String, l: &LevelResult) -> Vec<String> {
    let q = |p| or_na(l.quantile_ms(p).map(ms));
    vec![
        phase,
        l.concurrency.to_string(),
        rate(l.rps()),
        q(0.5),
        q(0.99),
        l.errors.to_string(),
        or_na(l.server_cpu.map(|c| format!("{:.2}", l.cores(c)))),
        or_na(l.server_cpu_ms_per_request().map(ms)),
        or_na(l.other_cpu().map(|c| format!("{:.2}", l.cores(c)))),
    ]
}

/// Prints the table and the summary lines.
pub(super) fn print(args: &CodeArgs, rounds: &[Round], sign_in: &SignInResults) {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    println!();
    println!(
        "summary: scenario code, alg {} (server and load generator share {cores} cores; CPU in cores busy, and server CPU ms per request)",
        args.signing_alg.as_str()
    );
    let head = [
        "phase", "conc", "req/s", "p50 ms", "p99 ms", "errors", "server", "ms/req", "other",
    ];
    let mut rows = Vec::new();
    for (i, r) in rounds.iter().enumerate() {
        let n = i + 1;
        rows.push(row(format!("{n} refresh grant"), &r.refresh));
        let mint = if r.pool < r.wanted {
            format!("{n} mint ({} of {} codes)", r.pool, r.wanted)
        } else {
            format!("{n} mint ({} codes)", r.pool)
        };
        rows.push(row(mint, &r.mint));
        let code = if r.code.ran_out {
            format!(
                "{n} code exchange (pool ran out at {:.1} s)",
                r.code.window.as_secs_f64()
            )
        } else {
            format!("{n} code exchange")
        };
        rows.push(row(code, &r.code));
    }
    for l in &sign_in.levels {
        rows.push(row("sign-in (right password)".to_owned(), l));
    }
    rows.push(row("client credentials, alone".to_owned(), &sign_in.alone));
    rows.push(row(
        "client credentials, flooded".to_owned(),
        &sign_in.flooded.token,
    ));
    table(&head, &rows);

    println!();
    let ratios: Vec<String> = rounds.iter().map(|r| pct(r.ratio())).collect();
    let median_ratio = median(rounds.iter().filter_map(Round::ratio).collect());
    let verdict = match median_ratio {
        Some(m) if m >= TARGET => "target met",
        Some(_) => "TARGET MISSED",
        None => "no figure",
    };
    println!(
        "code exchange / refresh grant: {} by round, median {} ({verdict}: at least {:.0}%)",
        ratios.join(", "),
        pct(median_ratio),
        TARGET * 100.0,
    );
    let minted: Vec<String> = rounds.iter().map(|r| thousands(r.mint.rps())).collect();
    println!(
        "codes minted per second (GET /oauth/authorize with a session and a consent): {}",
        minted.join(", ")
    );
    let sign_ins: Vec<String> = sign_in
        .levels
        .iter()
        .map(|l| format!("{}/s at concurrency {}", rate(l.rps()), l.concurrency))
        .collect();
    println!(
        "end-user sign-ins (right password, Argon2id): {}",
        sign_ins.join(", ")
    );
    let (alone, flooded) = (&sign_in.alone, &sign_in.flooded);
    let kept = flooded.token.rate_over(alone);
    let window = flooded.token.window.as_secs_f64();
    println!(
        "client credentials tokens: {}/s alone, {}/s beside the flood: flooded/alone {}; \
         the attackers' sign-in posts: {}/s answered ({}), {} cut off at the end",
        thousands(alone.rps()),
        thousands(flooded.token.rps()),
        pct(kept),
        rate(if window > 0.0 {
            flooded.attack.answered as f64 / window
        } else {
            0.0
        }),
        flooded.attack.statuses(),
        flooded.attack.cut_off,
    );
    if let Some(e) = &flooded.attack.first_other {
        println!("  the attackers' first unexpected answer: {e}");
    }
}
