//! Binding, serving (plain HTTP, or HTTPS with [`crate::tls`]), and graceful shutdown
//! (SIGTERM, Ctrl-C): in-flight requests finish and every acknowledged write is
//! committed before the process exits.

use crate::config::Settings;
use crate::keyring::Keyring;
use crate::routes;
use crate::service::admin_auth::AdminAuth;
use crate::service::clients::ClientService;
use crate::service::denylist::Denylist;
use crate::service::tokens::TokenService;
use crate::service::usage::LabelUsage;
use crate::service::users::UserService;
use crate::state::{AppState, Inner};
use crate::tls::Tls;
use anyhow::Context;
use portcullis_core::Clock;
use portcullis_crypto::MasterKey;
use portcullis_store::DynStore;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

/// How often keys are re-read, so a rotation on another node reaches this one
/// (at once on PostgreSQL, which announces it; this is the reconciliation).
const KEY_REFRESH: Duration = Duration::from_secs(1);
/// How often revocations made on other nodes are read (SPEC §8: within a second),
/// besides when PostgreSQL announces them.
const REVOCATION_POLL: Duration = Duration::from_millis(500);
/// How often label last-use times are written.
const USAGE_FLUSH: Duration = Duration::from_secs(5);
/// How often the signing key's age is checked against `--key-rotation-interval`.
const KEY_ROTATION_CHECK: Duration = Duration::from_secs(3600);
/// How often expired rows are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(600);

/// Binds the listening socket.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))
}

/// The issuer for a bound address when none is configured: `https://` when this
/// server speaks TLS itself.
pub fn default_issuer(bound: SocketAddr, tls: bool) -> String {
    let scheme = if tls { "https" } else { "http" };
    format!("{scheme}://{bound}")
}

/// Builds the state for `settings` on an opened, prepared store.
pub async fn build_state(
    settings: &Settings,
    bound: SocketAddr,
    store: DynStore,
    master: Arc<MasterKey>,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<AppState> {
    let issuer = settings
        .issuer
        .clone()
        .unwrap_or_else(|| default_issuer(bound, settings.tls.is_some()))
        .trim_end_matches('/')
        .to_owned();
    let audience = settings.audience.clone().unwrap_or_else(|| issuer.clone());
    // Behind a TLS-terminating proxy the https issuer says so; with native TLS the
    // connection itself is secure whatever issuer is configured.
    let secure = settings.tls.is_some() || issuer.starts_with("https://");
    let keys = Keyring::load(&store, &master, clock.now())
        .await
        .context("loading signing keys (is this the right master key?)")?;
    let denylist = Arc::new(Denylist::default());
    denylist
        .poll(store.as_ref(), clock.now())
        .await
        .context("loading revocations")?;
    let admin_auth = AdminAuth::new(
        Arc::clone(&store),
        master.token_hasher(),
        Arc::clone(&clock),
    );
    let users = UserService::new(
        Arc::clone(&store),
        master.token_hasher(),
        Arc::clone(&clock),
        Arc::clone(&denylist),
        settings.access_token_ttl,
    );
    let clients = ClientService::new(
        Arc::clone(&store),
        master.token_hasher(),
        Arc::clone(&clock),
        Arc::clone(&denylist),
        settings.access_token_ttl,
    );
    Ok(AppState::new(Inner {
        tokens: TokenService {
            store: Arc::clone(&store),
            keys: Arc::new(keys),
            hasher: master.token_hasher(),
            issuer,
            audience,
            access_ttl: settings.access_token_ttl,
            refresh_ttl: settings.refresh_token_ttl,
            clock,
            denylist,
            verified: Default::default(),
            master: Arc::clone(&master),
        },
        store,
        master,
        clients,
        client_throttle: Default::default(),
        admin_auth,
        users,
        trusted_proxies: settings.trusted_proxies.clone(),
        usage: std::sync::Arc::new(LabelUsage::default()),
        audit_retention: settings.audit_retention,
        key_rotation_interval: settings.key_rotation_interval,
        secure,
    }))
}

/// The setting under which `serve` records its access token lifetime (seconds).
pub const SERVED_ACCESS_TTL: &str = "access_token_ttl";

/// What must be in place before the server says it is listening: the metrics
/// recorder, and the settings the command line reads from the database (a
/// script that runs `portcullis token issue` as soon as the server is listening
/// found no issuer when they were recorded after that line).
pub async fn prepare(state: &AppState) -> anyhow::Result<()> {
    crate::metrics::Metrics::install().context("installing the metrics recorder")?;
    // Remember the issuer so `portcullis token issue` mints tokens this server accepts.
    state
        .store
        .put_setting("issuer", &state.tokens.issuer)
        .await
        .context("recording the issuer")?;
    state
        .store
        .put_setting("audience", &state.tokens.audience)
        .await
        .context("recording the audience")?;
    // And its access token lifetime, so that a revocation the CLI makes lasts as
    // long as this server's tokens.
    state
        .store
        .put_setting(
            SERVED_ACCESS_TTL,
            &state.tokens.access_ttl.secs().to_string(),
        )
        .await
        .context("recording the access token lifetime")?;
    Ok(())
}

/// Serves until SIGTERM or Ctrl-C: plain HTTP, or HTTPS with `tls`. Call
/// [`prepare`] first.
pub async fn serve(listener: TcpListener, tls: Option<Tls>, state: AppState) -> anyhow::Result<()> {
    let background = spawn_background(&state);
    let refresher = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(KEY_REFRESH);
            loop {
                tick.tick().await;
                let now = state.tokens.clock.now();
                match state
                    .tokens
                    .keys
                    .refresh(&state.store, &state.master, now)
                    .await
                {
                    Ok(true) => tracing::info!("signing keys changed; reloaded"),
                    Ok(false) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot reload signing keys"),
                }
            }
        })
    };
    let state_for_flush = state.clone();
    let app = routes::router(state).into_make_service_with_connect_info::<SocketAddr>();
    match tls {
        None => axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("serving")?,
        Some(tls) => {
            let listener = crate::tls::listener(listener, &tls).context("serving TLS")?;
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown_signal())
                .await
                .context("serving")?
        }
    }
    refresher.abort();
    for task in background {
        task.abort();
    }
    if let Err(e) = state_for_flush.usage.flush(&state_for_flush.store).await {
        tracing::warn!(error = %e, "cannot record label usage at shutdown");
    }
    tracing::info!("stopped");
    Ok(())
}

/// Revocation polling, label usage flushing, pruning and key rotation.
fn spawn_background(state: &AppState) -> Vec<tokio::task::JoinHandle<()>> {
    let poll = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(REVOCATION_POLL);
            loop {
                tick.tick().await;
                let now = state.tokens.clock.now();
                if let Err(e) = state.tokens.denylist.poll(state.store.as_ref(), now).await {
                    tracing::warn!(error = %e, "cannot read new revocations");
                }
            }
        })
    };
    let usage = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(USAGE_FLUSH);
            loop {
                tick.tick().await;
                if let Err(e) = state.usage.flush(&state.store).await {
                    tracing::warn!(error = %e, "cannot record label usage");
                }
            }
        })
    };
    let prune = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PRUNE_EVERY);
            loop {
                tick.tick().await;
                let now = state.tokens.clock.now();
                state.tokens.denylist.expire(now);
                match state.store.prune(now).await {
                    Ok(p) => tracing::debug!(?p, "pruned"),
                    Err(e) => tracing::warn!(error = %e, "pruning failed"),
                }
                let before = now.saturating_sub(state.audit_retention.secs_i64());
                match prune_audit(&state, before).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(events = n, "audit events past retention removed"),
                    Err(e) => tracing::warn!(error = %e, "pruning the audit log failed"),
                }
            }
        })
    };
    let rotate = {
        let state = state.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(KEY_ROTATION_CHECK);
            loop {
                tick.tick().await;
                let now = state.tokens.clock.now();
                match crate::service::keys::rotate_if_due(
                    &state.store,
                    &state.master,
                    now,
                    state.key_rotation_interval,
                    state.tokens.access_ttl,
                )
                .await
                {
                    Ok(Some(kid)) => {
                        tracing::info!(%kid, "signing key rotated (key rotation interval)")
                    }
                    Ok(None) => {}
                    Err(e) => tracing::warn!(error = %e, "automatic key rotation failed"),
                }
            }
        })
    };
    let mut tasks = vec![poll, usage, prune, rotate];
    if let Some(events) = state.store.events() {
        tasks.push(tokio::spawn(follow_changes(state.clone(), events)));
    }
    tasks
}

/// Acts on changes other nodes announce (PostgreSQL `NOTIFY`) as they commit;
/// the periodic reads above still run, so a lost announcement only delays.
async fn follow_changes(
    state: AppState,
    mut events: tokio::sync::broadcast::Receiver<portcullis_store::StoreEvent>,
) {
    use portcullis_store::StoreEvent;
    use tokio::sync::broadcast::error::RecvError;
    loop {
        let event = match events.recv().await {
            Ok(e) => e,
            // Too many at once: some were dropped, so reload everything.
            Err(RecvError::Lagged(_)) => StoreEvent::Resync,
            Err(RecvError::Closed) => return,
        };
        let now = state.tokens.clock.now();
        let (revocations, keys) = match &event {
            StoreEvent::Revocations => (true, false),
            StoreEvent::Client(id) => {
                if let Ok(id) = portcullis_core::ClientId::parse(id) {
                    state.clients.cache().forget(&id);
                }
                (false, false)
            }
            StoreEvent::Keys => (false, true),
            // Scopes are read from the database where they are used.
            StoreEvent::Scopes => (false, false),
            StoreEvent::Resync => {
                state.clients.cache().clear();
                state.tokens.denylist.resync();
                (true, true)
            }
        };
        if revocations && let Err(e) = state.tokens.denylist.poll(state.store.as_ref(), now).await {
            tracing::warn!(error = %e, "cannot read new revocations");
        }
        if keys
            && let Err(e) = state
                .tokens
                .keys
                .refresh(&state.store, &state.master, now)
                .await
        {
            tracing::warn!(error = %e, "cannot reload signing keys");
        }
    }
}

/// Audit events older than `before`, removed in batches so hot writes go between.
async fn prune_audit(state: &AppState, before: i64) -> portcullis_store::StoreResult<u64> {
    const BATCH: u32 = 5_000;
    let mut total = 0;
    loop {
        let n = state.store.prune_audit(before, BATCH).await?;
        total += n;
        if n < u64::from(BATCH) {
            return Ok(total);
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
