//! `portcullis-bench denylist`: what the server's in-memory denylist costs when it
//! holds many revoked ids. In this process (no HTTP): it loads `--ids` family
//! revocations through the same `Denylist::apply` the server runs at start-up and
//! on every poll, and reports
//!
//! - the resident memory it added (RSS before and after, read from `/proc`), and
//! - the time one `revoked()` check takes, as every bearer request makes it, with
//!   the full list and with an empty one, on one thread; the difference is what
//!   the list adds to a request.

use crate::procfs;
use anyhow::Context;
use portcullis_core::{AccessClaims, Audience};
use portcullis_server::service::denylist::Denylist;
use portcullis_store::Revocation;
use std::hint::black_box;
use std::time::Instant;

/// Lookups timed per run (half revoked ids, half live ones).
const LOOKUPS: usize = 2_000_000;

/// How many distinct tokens the lookups cycle through: more than fit in the CPU
/// caches, so the figures include the cache misses a real request would see.
const TOKENS: usize = 200_000;

/// A family id shaped like the server's (`fam_` + 26 characters).
fn family(i: usize) -> String {
    format!("fam_{i:026}")
}

fn claims(jti: String) -> AccessClaims {
    AccessClaims {
        iss: "https://issuer.example".into(),
        sub: "pc_bench".into(),
        aud: Audience::One("https://issuer.example".into()),
        client_id: "pc_bench".into(),
        jti,
        iat: 1,
        nbf: 1,
        exp: i64::MAX,
        scope: String::new(),
        scopes: Vec::new(),
        label: None,
    }
}

/// Nanoseconds per `revoked()` call over `tokens`, cycling; and how many were revoked.
fn time_lookups(list: &Denylist, tokens: &[AccessClaims]) -> (f64, usize) {
    let mut hits = 0;
    let started = Instant::now();
    for i in 0..LOOKUPS {
        if black_box(list.revoked(black_box(&tokens[i % tokens.len()]))).is_some() {
            hits += 1;
        }
    }
    let nanos = started.elapsed().as_nanos() as f64;
    (nanos / LOOKUPS as f64, hits)
}

/// Runs the measurement and prints it.
pub fn run(ids: usize) -> anyhow::Result<()> {
    let pid = std::process::id();
    // Build the tokens to look up first, so their memory is not counted as the list's.
    // Even indexes are revoked families, odd ones live families that are not.
    let tokens: Vec<AccessClaims> = (0..TOKENS)
        .map(|i| {
            let n = if i % 2 == 0 {
                i * 7 % ids.max(1)
            } else {
                ids + i
            };
            claims(format!("{}.AbCdEfGhIjKl", family(n)))
        })
        .collect();
    let empty = Denylist::default();
    let (empty_ns, empty_hits) = time_lookups(&empty, &tokens);
    anyhow::ensure!(empty_hits == 0, "an empty denylist revoked something");

    let rss_before = procfs::status_kib(pid, "VmRSS").context("reading this process's RSS")?;
    let list = Denylist::default();
    // The server applies what it polls in batches; so does this, so that the
    // transient `Revocation` rows are freed as they would be.
    let started = Instant::now();
    for chunk_start in (0..ids).step_by(10_000) {
        let revs: Vec<Revocation> = (chunk_start..ids.min(chunk_start + 10_000))
            .map(|i| Revocation {
                id: i64::try_from(i).unwrap_or(i64::MAX),
                kind: "family".into(),
                target: family(i),
                issued_before: None,
                expires_at: i64::MAX,
            })
            .collect();
        list.apply(&revs);
    }
    let load = started.elapsed();
    let rss_after = procfs::status_kib(pid, "VmRSS").context("reading this process's RSS")?;
    anyhow::ensure!(list.len() == ids, "the denylist holds {} ids", list.len());

    let (full_ns, full_hits) = time_lookups(&list, &tokens);
    anyhow::ensure!(
        full_hits == LOOKUPS / 2 || ids == 0,
        "expected half the lookups to be revoked, got {full_hits} of {LOOKUPS}"
    );

    let added_mib = rss_after.saturating_sub(rss_before) as f64 / 1024.0;
    println!("denylist: {ids} revoked family ids, loaded in {load:.2?} through Denylist::apply");
    println!(
        "  memory: RSS {:.1} MiB before, {:.1} MiB after: {added_mib:.1} MiB for the list \
         ({:.0} bytes an id)",
        rss_before as f64 / 1024.0,
        rss_after as f64 / 1024.0,
        added_mib * 1024.0 * 1024.0 / ids.max(1) as f64
    );
    println!(
        "  revoked() check, one thread, {LOOKUPS} lookups over {TOKENS} tokens (half revoked):"
    );
    println!(
        "    empty list {empty_ns:.0} ns, full list {full_ns:.0} ns: the list adds {:.0} ns a request",
        (full_ns - empty_ns).max(0.0)
    );
    Ok(())
}
