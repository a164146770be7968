//! The legitimate admin's sign-ins (the requests behind each are
//! [`crate::browser::sign_in`]'s).

use super::report::percent;
use super::{LEGIT_SOURCE, RECONNECT_PAUSE};
use crate::browser::{ADMIN_SIGN_IN, describe, sign_in};
use crate::load::{self, Target};
use crate::server::AdminCredentials;
use http_body_util::Full;
use hyper::StatusCode;
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::LOCATION;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How long one legitimate sign-in may take before it counts as failed.
const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(30);

/// The legitimate admin's sign-ins in the window.
#[derive(Debug, Default)]
pub(super) struct SignIns {
    /// Sign-ins started in the window.
    pub(super) attempted: u64,
    /// Of those, the ones that ended in `303` to `/admin`.
    pub(super) succeeded: u64,
    /// Latency of each successful sign-in (form and post), in microseconds, sorted.
    pub(super) latencies_us: Vec<u64>,
    /// The first failure.
    pub(super) first_error: Option<String>,
}

impl SignIns {
    /// Succeeded as a percentage of attempted.
    pub(super) fn success_pct(&self) -> Option<f64> {
        percent(self.succeeded, self.attempted)
    }
}

/// One admin signing in with the right password from [`LEGIT_SOURCE`], one
/// sign-in after another on a keep-alive connection, each starting `interval`
/// after the last one started (or when it ends, if later), from now until `end`;
/// those started after `warm_end` are counted, however long they take (up to
/// [`SIGN_IN_TIMEOUT`]), since a delayed sign-in is what the flood is expected to cause.
pub(super) async fn legit_sign_ins(
    target: Arc<Target>,
    admin: AdminCredentials,
    interval: Duration,
    warm_end: Instant,
    end: Instant,
) -> anyhow::Result<SignIns> {
    let mut out = SignIns::default();
    let mut conn: Option<SendRequest<Full<Bytes>>> = None;
    while Instant::now() < end {
        let started = Instant::now();
        let measured = started >= warm_end;
        let sender = match conn.as_mut() {
            Some(s) => s,
            None => match load::connect_from(&target, Some(IpAddr::V4(LEGIT_SOURCE))).await {
                Ok(s) => conn.insert(s),
                Err(e) => {
                    if measured {
                        out.attempted += 1;
                        out.first_error.get_or_insert_with(|| format!("{e:#}"));
                    }
                    tokio::time::sleep(RECONNECT_PAUSE).await;
                    continue;
                }
            },
        };
        let outcome = tokio::time::timeout(
            SIGN_IN_TIMEOUT,
            sign_in(
                sender,
                &target,
                &ADMIN_SIGN_IN,
                &admin.user,
                &admin.password,
            ),
        )
        .await;
        let took = started.elapsed();
        let next = (started + interval).min(end);
        let failure = match outcome {
            Ok(Ok((status, headers, body))) => {
                let to_admin = headers
                    .get(LOCATION)
                    .is_some_and(|l| l.as_bytes() == ADMIN_SIGN_IN.success.as_bytes());
                if status == StatusCode::SEE_OTHER && to_admin {
                    None
                } else {
                    Some(describe(status, &body))
                }
            }
            Ok(Err(e)) => {
                conn = None;
                Some(format!("{e:#}"))
            }
            Err(_) => {
                conn = None;
                Some(format!("no answer within {}s", SIGN_IN_TIMEOUT.as_secs()))
            }
        };
        if measured {
            out.attempted += 1;
            match failure {
                None => {
                    out.succeeded += 1;
                    out.latencies_us.push(micros(took));
                }
                Some(e) => {
                    out.first_error.get_or_insert(e);
                }
            }
        }
        tokio::time::sleep_until(next).await;
    }
    out.latencies_us.sort_unstable();
    Ok(out)
}

/// A duration in whole microseconds.
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
