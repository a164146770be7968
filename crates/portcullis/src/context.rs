//! What every command opens: the settings, the master key and the store, with
//! first-use set-up done (schema, signing key, first admin).

use crate::cli::{GlobalArgs, ServerArgs};
use crate::config::{MasterKeySpec, resolve};
use anyhow::{Context, bail};
use portcullis_core::{Clock, SystemClock};
use portcullis_crypto::MasterKey;
use portcullis_server::bootstrap::{Bootstrapped, open_store, prepare};
use portcullis_server::config::Settings;
use portcullis_store::DynStore;
use portcullis_store::sqlite::sqlite_path;
use std::sync::Arc;

/// An opened installation.
pub struct Ctx {
    /// Resolved settings.
    pub settings: Settings,
    /// The store, migrated.
    pub store: DynStore,
    /// The master key.
    pub master: Arc<MasterKey>,
    /// Time.
    pub clock: Arc<dyn Clock>,
    /// What first-use set-up did.
    pub bootstrapped: Bootstrapped,
    /// How long a revocation made here must last: the longer of this command's
    /// access token lifetime and the one the server last started with (recorded
    /// in the database), so that a command run without the server's
    /// `--access-token-ttl` never lets a revocation lapse before the tokens it
    /// covers.
    pub revocation_ttl: portcullis_core::Ttl,
}

/// The system clock. In a debug build only, `PORTCULLIS_TEST_CLOCK_FILE` moves it by
/// the offset that file holds ([`portcullis_core::OffsetFileClock`]): the
/// integration tests let time pass for a server and its CLI commands alike, since
/// every command's time comes from here. A release build ignores the variable.
fn clock() -> Arc<dyn Clock> {
    #[cfg(debug_assertions)]
    if let Some(path) = std::env::var_os(portcullis_core::OffsetFileClock::ENV) {
        tracing::info!(
            file = %std::path::Path::new(&path).display(),
            "test clock: time is moved by the offset in this file"
        );
        return Arc::new(portcullis_core::OffsetFileClock::new(path));
    }
    Arc::new(SystemClock)
}

/// Whether a command may create a new database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Create {
    /// `serve` and `migrate`: a database that does not exist yet is created and set up.
    IfMissing,
    /// Every other command: the database must exist, set up, already (a mistyped
    /// URL is an error, not a new empty database).
    Never,
}

/// Opens everything for a command that works on an existing database.
pub async fn open(global: &GlobalArgs, server: &ServerArgs) -> anyhow::Result<Ctx> {
    open_with(global, server, Create::Never).await
}

/// Opens everything; with [`Create::IfMissing`], a new installation is set up.
pub async fn open_with(
    global: &GlobalArgs,
    server: &ServerArgs,
    create: Create,
) -> anyhow::Result<Ctx> {
    let (settings, master_spec) = resolve(global, server)?;
    open_resolved(settings, master_spec, create).await
}

/// [`open_with`] for settings already resolved (`serve` checks some before the
/// database is touched).
pub async fn open_resolved(
    settings: Settings,
    master_spec: MasterKeySpec,
    create: Create,
) -> anyhow::Result<Ctx> {
    if let Some(path) = sqlite_path(&settings.database_url) {
        match std::fs::metadata(&path) {
            Ok(m) if m.len() == 0 => bail!(
                "{} is empty (0 bytes), not a Portcullis database: if it was truncated, \
                 restore it from a backup; to start afresh, remove it",
                path.display()
            ),
            Ok(_) => {}
            Err(_) if create == Create::Never => bail!(
                "there is no database at {} (check --database-url or PORTCULLIS_DATABASE_URL; \
                 `portcullis serve` or `portcullis migrate` creates one)",
                path.display()
            ),
            Err(_) => {}
        }
    }
    let store = open_store(&settings.database_url, settings.database_pool_size)
        .await
        .context("opening the database")?;
    let version = store
        .schema_version()
        .await
        .context("reading the database's schema version")?;
    if version.is_none() && create == Create::Never {
        bail!(
            "the database at {} has not been set up (check --database-url or \
             PORTCULLIS_DATABASE_URL; `portcullis serve` or `portcullis migrate` sets it up)",
            portcullis_store::postgres::redact(&settings.database_url)
        );
    }
    // A database set up before has recorded its master key's check value: its key
    // must be found, never replaced by a new one.
    let set_up = match version {
        Some(_) => store
            .get_setting("master_key_check")
            .await
            .context("reading the database's settings")?
            .is_some(),
        None => false,
    };
    let master = match &master_spec {
        MasterKeySpec::Inline(b64) => {
            MasterKey::from_base64(b64).context("PORTCULLIS_MASTER_KEY")?
        }
        MasterKeySpec::File(path) => match MasterKey::load(path)? {
            Some(key) => key,
            None if set_up => bail!(
                "the master key file {} does not exist, but this database was set up with a \
                 master key: restore that file (or point --master-key-file or \
                 PORTCULLIS_MASTER_KEY at the key); a new key could not read its signing keys",
                path.display()
            ),
            None => {
                let key = MasterKey::create(path)?;
                tracing::info!(path = %path.display(), "created a new master key (mode 0600); back it up");
                key
            }
        },
    };
    let clock = clock();
    // A new installation has no previous key to keep; this only bounds a race.
    let longest = settings.access_token_ttl.secs_i64();
    let bootstrapped = prepare(&store, &master, settings.signing_alg, clock.now(), longest)
        .await
        .context("preparing the database")?;
    if let Some(kid) = &bootstrapped.created_key {
        tracing::info!(%kid, alg = %settings.signing_alg, "created a signing key");
    }
    let served_ttl = store
        .get_setting(portcullis_server::server::SERVED_ACCESS_TTL)
        .await
        .context("reading the server's settings")?
        .and_then(|v| v.parse::<u64>().ok())
        .and_then(portcullis_core::Ttl::from_secs);
    let revocation_ttl = served_ttl.map_or(settings.access_token_ttl, |t| {
        t.max(settings.access_token_ttl)
    });
    Ok(Ctx {
        revocation_ttl,
        settings,
        store,
        master: Arc::new(master),
        clock,
        bootstrapped,
    })
}
