//! The end users' sign-in: how many right-password sign-ins a second the server
//! answers (each an Argon2id check and a new session), and what a flood of
//! wrong passwords costs other requests (client credentials tokens, alone and
//! beside the flood).

use super::flow::{PASSWORD, USER};
use crate::browser::{FormToken, USER_SIGN_IN, sign_in_form, sign_in_post};
use crate::load::{self, Exchange, LevelResult, Plan, Target};
use crate::scenarios::flood::{AttackStats, Flood, Victim};
use crate::scenarios::token;
use crate::server::Credentials;
use anyhow::Context;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::LOCATION;
use hyper::{HeaderMap, Request, StatusCode};
use std::net::IpAddr;
use std::sync::Arc;
use tokio::time::Instant;

/// One worker signing the user in again and again, with the CSRF cookie and
/// field its own `GET /account` gave (a double-submit pair: good for every post).
struct SignInExchange {
    token: FormToken,
}

impl Exchange for SignInExchange {
    fn request(&mut self, target: &Target) -> anyhow::Result<Request<Full<Bytes>>> {
        sign_in_post(target, &USER_SIGN_IN, &self.token, USER, PASSWORD)
    }

    fn check(&mut self, status: StatusCode, headers: &HeaderMap, _body: &Bytes) -> bool {
        status == StatusCode::SEE_OTHER
            && headers
                .get(LOCATION)
                .is_some_and(|l| l.as_bytes() == USER_SIGN_IN.success.as_bytes())
    }
}

/// Right-password sign-ins at `plan.concurrency`: `POST /account/login`, each
/// worker with the form token of its own `GET /account`.
pub(super) async fn sign_ins(target: &Arc<Target>, plan: &Plan) -> anyhow::Result<LevelResult> {
    let mut tokens = Vec::with_capacity(plan.concurrency);
    let mut conn = load::connect_from(target, None).await?;
    for _ in 0..plan.concurrency {
        tokens.push(sign_in_form(&mut conn, target, &USER_SIGN_IN).await?);
    }
    load::run(std::slice::from_ref(target), plan, |worker| {
        SignInExchange {
            token: tokens.get(worker).cloned().unwrap_or_default(),
        }
    })
    .await
}

/// Client credentials tokens under the flood, and what the attackers saw.
pub(super) struct Flooded {
    /// The legitimate token client.
    pub(super) token: LevelResult,
    /// The attackers' sign-in posts.
    pub(super) attack: AttackStats,
}

/// Client credentials tokens at `plan.concurrency` while `workers` attackers
/// post wrong passwords to `/account/login`, each connection from the next of
/// `sources`, each guess for a made-up name (an unknown name costs the same
/// Argon2id check as a known one, and escapes the per-user delay that would
/// queue guesses at one user behind each other: the most hashing a flood can
/// make the server do).
pub(super) async fn tokens_under_flood(
    target: &Arc<Target>,
    creds: &Credentials,
    sources: Arc<[IpAddr]>,
    workers: usize,
    plan: &Plan,
) -> anyhow::Result<Flooded> {
    // The attackers keep this window; the token client's own starts once its
    // connections are open, a few milliseconds later.
    let warm_end = Instant::now() + plan.warmup;
    let end = warm_end + plan.duration;
    let attackers = Flood {
        target: Arc::clone(target),
        sources,
        token_workers: 0,
        client_id: Arc::from(creds.client_id.as_str()),
        sign_in_workers: workers,
        form: &USER_SIGN_IN,
        victim: Victim::MadeUp,
    }
    .spawn(warm_end, end);
    let token = token::run(std::slice::from_ref(target), creds, plan)
        .await
        .context("the legitimate token client")?;
    let (_, attack) = tokio::task::spawn_blocking(move || attackers.join())
        .await
        .context("waiting for the attackers")?
        .map_err(|_| anyhow::anyhow!("the attackers' thread panicked"))??;
    Ok(Flooded { token, attack })
}
