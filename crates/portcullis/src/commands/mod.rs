//! One module per command group.

pub(crate) mod admin;
mod audit;
mod client;
mod keys;
mod scope;
mod serve;
pub(crate) mod token;
mod user;

use crate::cli::{Cli, Command, ServerArgs};
use crate::context::{Create, Ctx, open, open_with};
use anyhow::Context;

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    init_logging(&cli.global)?;
    let none = ServerArgs::default();
    match cli.command {
        Command::Serve(server) => serve::run(&cli.global, &server).await,
        Command::Migrate => {
            let ctx = open_with(&cli.global, &none, Create::IfMissing).await?;
            announce(&ctx);
            crate::outln!("database is at schema version {}", latest_note(&ctx));
            Ok(())
        }
        Command::Client(cmd) => {
            client::run(announce_ctx(open(&cli.global, &none).await?), cmd).await
        }
        Command::Scope(cmd) => scope::run(announce_ctx(open(&cli.global, &none).await?), cmd).await,
        Command::Token(cmd) => token::run(&cli.global, cmd).await,
        Command::Keys(cmd) => keys::run(&cli.global, cmd).await,
        Command::Admin(cmd) => admin::run(announce_ctx(open(&cli.global, &none).await?), cmd).await,
        Command::User(cmd) => user::run(announce_ctx(open(&cli.global, &none).await?), cmd).await,
        Command::Audit(cmd) => audit::run(announce_ctx(open(&cli.global, &none).await?), cmd).await,
        Command::Backup { file } => {
            let ctx = open(&cli.global, &none).await?;
            ctx.store
                .backup_to(&file)
                .await
                .with_context(|| format!("backing up to {}", file.display()))?;
            crate::outln!(
                "wrote a consistent copy of the database to {}; keep the master key with it",
                file.display()
            );
            Ok(())
        }
    }
}

fn latest_note(ctx: &Ctx) -> String {
    if ctx.bootstrapped.migrations > 0 {
        format!(
            "latest ({} migration(s) applied now)",
            ctx.bootstrapped.migrations
        )
    } else {
        "latest (nothing to apply)".into()
    }
}

/// Tells the user, once, about a first admin created by this command.
pub(crate) fn announce(ctx: &Ctx) {
    if let Some((name, password)) = &ctx.bootstrapped.first_admin {
        eprintln!(
            "created the first admin user {name:?} with password: {password}\n\
             (shown once; change it with `portcullis admin reset-password {name} --password-stdin`)"
        );
    }
}

fn announce_ctx(ctx: Ctx) -> Ctx {
    announce(&ctx);
    ctx
}

/// Logs to stderr, as text or (`--log-format json`) one JSON object a line, each
/// event of a request carrying the request's id (`X-Request-Id` of its answer).
/// Nothing secret is logged in either: handlers log ids, never secrets or tokens.
fn init_logging(global: &crate::cli::GlobalArgs) -> anyhow::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("PORTCULLIS_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| EnvFilter::new("info,tokio_postgres=warn"));
    let format = match &global.log_format {
        Some(f) => f.clone(),
        None => crate::config::read_file(global.config.as_deref())?
            .log_format
            .unwrap_or_else(|| "text".into()),
    };
    match format.as_str() {
        "json" => {
            portcullis_server::middleware::request_id::enable();
            let _ = tracing_subscriber::fmt()
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .flatten_event(true)
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .try_init();
        }
        "text" => {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .with_target(false)
                .try_init();
        }
        other => anyhow::bail!("log_format {other:?} must be text or json"),
    }
    Ok(())
}
