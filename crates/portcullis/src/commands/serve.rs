//! `portcullis serve`.

use crate::cli::{GlobalArgs, ServerArgs};
use crate::config::resolve;
use crate::context::{Create, open_resolved};
use portcullis_server::tls::{self, Tls};
use std::io::Write;
use std::time::Instant;

/// Opens, sets up, binds, announces the address and serves until SIGTERM/Ctrl-C.
pub async fn run(global: &GlobalArgs, server: &ServerArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let (settings, master) = resolve(global, server)?;
    // Before the database is opened: a first start that failed after it would have
    // created the first admin without ever showing its password.
    let tls = settings.tls.as_ref().map(Tls::load).transpose()?;
    let ctx = open_resolved(settings, master, Create::IfMissing).await?;
    let listener = portcullis_server::bind(ctx.settings.listen).await?;
    let bound = listener.local_addr()?;
    let state = portcullis_server::server::build_state(
        &ctx.settings,
        bound,
        ctx.store.clone(),
        ctx.master.clone(),
        ctx.clock.clone(),
    )
    .await?;
    portcullis_server::server::prepare(&state).await?;
    // SIGHUP would end the process; from before "listening" on, it reloads the certificate.
    let hangups = tls::reload_on_hangup(tls.clone())?;
    if let Some((name, password)) = &ctx.bootstrapped.first_admin {
        println!("created the first admin user {name:?} with password: {password}");
        println!(
            "  (shown once; change it with `portcullis admin reset-password {name} --password-stdin`)"
        );
    }
    tracing::info!(
        issuer = %state.tokens.issuer,
        alg = %state.tokens.keys.get().current.alg(),
        tls = tls.is_some(),
        ready_ms = started.elapsed().as_millis(),
        "ready"
    );
    let scheme = if tls.is_some() { "https" } else { "http" };
    println!("portcullis listening on {scheme}://{bound}");
    let _ = std::io::stdout().flush();
    let served = portcullis_server::serve(listener, tls, state).await;
    hangups.abort();
    served
}
