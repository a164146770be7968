//! `portcullis-bench growth`: what the paths cost as the data grows. For each
//! size (token families stored before measuring, [`crate::prefill`]) a fresh
//! server: client credentials tokens, refresh grants, introspection and whoami
//! at one concurrency, then the admin pages a person opens (the dashboard, the
//! client list, a prefilled client's page with its sites, the audit log), each
//! fetched several times one after the other by a signed-in admin. The summary
//! sets every figure beside the empty database's.

use super::{Kind, run_level};
use crate::browser::{self, ADMIN_SIGN_IN};
use crate::deploy::{Deployment, Engine};
use crate::load::{LevelResult, Target, connect_from};
use crate::report::{self, ms, thousands};
use crate::{Alg, prefill};
use anyhow::{Context, bail};
use clap::Args;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::COOKIE;
use hyper::{Method, StatusCode};
use std::time::{Duration, Instant};

/// Options of the `growth` scenario.
#[derive(Debug, Clone, Args)]
pub struct GrowthArgs {
    /// Signing algorithm of the server.
    #[arg(long, value_enum, ignore_case = true, default_value = "ES256")]
    pub signing_alg: Alg,
    /// Database sizes to measure, in token families stored before measuring,
    /// comma separated (the first is the baseline of the ratios).
    #[arg(long, value_delimiter = ',', default_value = "0,1m,10m", value_parser = crate::parse_count)]
    pub sizes: Vec<u64>,
    /// Workers of each path, one keep-alive connection each.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
    /// How long each path is measured.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Warm-up before each path (not measured).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// How many times each admin page is fetched.
    #[arg(long, default_value_t = 10)]
    pub page_fetches: usize,
}

/// The paths measured under load, in order.
const PATHS: [Kind; 4] = [Kind::Token, Kind::Refresh, Kind::Introspect, Kind::Whoami];

/// What one size gave.
struct SizeResult {
    size: u64,
    paths: Vec<(Kind, LevelResult)>,
    /// Each page: its name, and its fetch times in ms.
    pages: Vec<(String, Vec<f64>)>,
}

/// Runs the scenario.
pub async fn run(args: &GrowthArgs) -> anyhow::Result<()> {
    if args.sizes.is_empty() {
        bail!("--sizes needs at least one size");
    }
    if args.concurrency == 0 || args.page_fetches == 0 {
        bail!("--concurrency and --page-fetches must be at least 1");
    }
    report::header("growth", args.signing_alg.as_str(), None);
    println!(
        "sizes {}; at each, a fresh server on a temporary SQLite file: token, refresh, introspect \
         and whoami at concurrency {} (warm-up {} then {}), then {} fetches of each admin page",
        args.sizes
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        args.concurrency,
        humantime::format_duration(args.warmup),
        humantime::format_duration(args.duration),
        args.page_fetches,
    );
    let mut results = Vec::with_capacity(args.sizes.len());
    for &size in &args.sizes {
        println!();
        println!("size {size}:");
        results.push(
            run_size(args, size)
                .await
                .with_context(|| format!("size {size}"))?,
        );
    }
    summary(&results);
    Ok(())
}

async fn run_size(args: &GrowthArgs, size: u64) -> anyhow::Result<SizeResult> {
    let mut deployment =
        Deployment::start(args.signing_alg, &Engine::Sqlite, 1, None, size).await?;
    report::server_ready(&deployment.facts);
    let mut paths = Vec::with_capacity(PATHS.len());
    for kind in PATHS {
        let plan = deployment.plan(args.concurrency, args.warmup, args.duration);
        let result = run_level(kind, &deployment.targets, &deployment.creds, &plan)
            .await
            .with_context(|| kind.name())?;
        print!("{:<11}", kind.name());
        report::level(&result);
        paths.push((kind, result));
    }
    let pages = admin_pages(&deployment, size, args.page_fetches).await?;
    for (name, times) in &pages {
        let each: Vec<String> = times.iter().map(|t| ms(*t)).collect();
        println!(
            "page {name:<28} median {} ms  max {} ms  (each: {})",
            ms(median(times)),
            ms(max(times)),
            each.join(", ")
        );
    }
    deployment.note_peak_rss();
    report::server_peak(&deployment.facts);
    deployment.shutdown().await?;
    Ok(SizeResult { size, paths, pages })
}

/// Signs in as the first admin and fetches each page `fetches` times.
async fn admin_pages(
    deployment: &Deployment,
    size: u64,
    fetches: usize,
) -> anyhow::Result<Vec<(String, Vec<f64>)>> {
    let admin = deployment
        .first_admin()
        .context("the server did not print the first admin's password")?;
    let target: &Target = deployment.targets.first().context("no server")?;
    let mut conn = connect_from(target, None).await?;
    let (status, headers, body) = browser::sign_in(
        &mut conn,
        target,
        &ADMIN_SIGN_IN,
        &admin.user,
        &admin.password,
    )
    .await?;
    if status != StatusCode::SEE_OTHER {
        bail!("admin sign-in: {}", browser::describe(status, &body));
    }
    let session = browser::cookie_value(&headers, "pc_admin")
        .context("the admin sign-in set no pc_admin cookie")?;
    let cookie = browser::cookie_header(&[("pc_admin", &session)])?;
    let mut pages = vec![
        ("dashboard".to_owned(), "/admin".to_owned()),
        ("clients".to_owned(), "/admin/clients".to_owned()),
        ("audit log".to_owned(), "/admin/audit".to_owned()),
    ];
    if size > 0 {
        pages.insert(
            2,
            (
                "prefilled client and sites".to_owned(),
                format!("/admin/clients/{}", prefill::client_id(0)),
            ),
        );
    }
    pages.push((
        "bench client and sites".to_owned(),
        format!("/admin/clients/{}", deployment.creds.client_id),
    ));
    let mut out = Vec::with_capacity(pages.len());
    for (name, path) in pages {
        let mut times = Vec::with_capacity(fetches);
        for _ in 0..fetches {
            let req = target
                .request(Method::GET, &path)
                .header(COOKIE, cookie.clone())
                .body(Full::new(Bytes::new()))
                .context("building a page request")?;
            let started = Instant::now();
            let (status, _, body) = browser::send(&mut conn, req).await?;
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            if status != StatusCode::OK {
                bail!("GET {path}: {}", browser::describe(status, &body));
            }
        }
        out.push((name, times));
    }
    Ok(out)
}

fn median(v: &[f64]) -> f64 {
    report::median(v.to_vec()).unwrap_or(0.0)
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(0.0, f64::max)
}

/// The table of every size beside the first, and the verdicts.
fn summary(results: &[SizeResult]) {
    let Some(base) = results.first() else {
        return;
    };
    println!();
    println!(
        "summary: scenario growth (req/s and p99 at each size; in brackets, the rate as a share of size {})",
        base.size
    );
    let mut header = format!("{:<11}", "path");
    for r in results {
        header.push_str(&format!("  {:>24}", format!("size {}", r.size)));
    }
    println!("{header}");
    let mut worst: Option<(f64, String)> = None;
    for (i, (kind, _)) in base.paths.iter().enumerate() {
        let mut line = format!("{:<11}", kind.name());
        for r in results {
            let Some((_, l)) = r.paths.get(i) else {
                continue;
            };
            let share = l.rate_over(&base.paths[i].1).unwrap_or(0.0);
            let p99 = l.quantile_ms(0.99).map_or("n/a".to_owned(), ms);
            line.push_str(&format!(
                "  {:>24}",
                format!("{} p99 {} ({:.0}%)", thousands(l.rps()), p99, share * 100.0)
            ));
            if r.size != base.size && worst.as_ref().is_none_or(|(w, _)| share < *w) {
                worst = Some((share, format!("{} at size {}", kind.name(), r.size)));
            }
        }
        println!("{line}");
    }
    let mut slowest: Option<(f64, String)> = None;
    for r in results {
        for (name, times) in &r.pages {
            let m = max(times);
            println!(
                "page at size {:<10} {name:<28} median {} ms  max {} ms",
                r.size,
                ms(median(times)),
                ms(m)
            );
            if slowest.as_ref().is_none_or(|(s, _)| m > *s) {
                slowest = Some((m, format!("{name} at size {}", r.size)));
            }
        }
    }
    if let Some((share, what)) = worst {
        let verdict = if share >= 0.9 {
            "target met"
        } else {
            "TARGET MISSED"
        };
        println!(
            "lowest rate beside size {}: {:.1}% ({what}) ({verdict}: at least 90%)",
            base.size,
            share * 100.0
        );
    }
    if let Some((m, what)) = slowest {
        let verdict = if m < 100.0 {
            "target met"
        } else {
            "TARGET MISSED"
        };
        println!(
            "slowest admin page fetch: {} ms ({what}) ({verdict}: under 100 ms)",
            ms(m)
        );
    }
}
