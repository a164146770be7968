//! `portcullis serve`.

use crate::cli::{GlobalArgs, ServerArgs};
use crate::context::{Create, open_with};
use std::io::Write;
use std::time::Instant;

/// Opens, sets up, binds, announces the address and serves until SIGTERM/Ctrl-C.
pub async fn run(global: &GlobalArgs, server: &ServerArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let ctx = open_with(global, server, Create::IfMissing).await?;
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
    if let Some((name, password)) = &ctx.bootstrapped.first_admin {
        println!("created the first admin user {name:?} with password: {password}");
        println!(
            "  (shown once; change it with `portcullis admin reset-password {name} --password-stdin`)"
        );
    }
    tracing::info!(
        issuer = %state.tokens.issuer,
        alg = %state.tokens.keys.get().current.alg(),
        ready_ms = started.elapsed().as_millis(),
        "ready"
    );
    println!("portcullis listening on http://{bound}");
    let _ = std::io::stdout().flush();
    portcullis_server::serve(listener, state).await
}
