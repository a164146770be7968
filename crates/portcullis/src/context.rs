//! What every command opens: the settings, the master key and the store, with
//! first-use set-up done (schema, signing key, first admin).

use crate::cli::{GlobalArgs, ServerArgs};
use crate::config::{MasterKeySpec, resolve};
use anyhow::Context;
use portcullis_core::{Clock, SystemClock};
use portcullis_crypto::MasterKey;
use portcullis_crypto::master_key::MasterKeySource;
use portcullis_server::bootstrap::{Bootstrapped, open_store, prepare};
use portcullis_server::config::Settings;
use portcullis_store::DynStore;
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
}

/// Opens everything; on a new installation, sets it up.
pub async fn open(global: &GlobalArgs, server: &ServerArgs) -> anyhow::Result<Ctx> {
    let (settings, master_spec) = resolve(global, server)?;
    let master = match &master_spec {
        MasterKeySpec::Inline(b64) => {
            MasterKey::from_base64(b64).context("PORTCULLIS_MASTER_KEY")?
        }
        MasterKeySpec::File(path) => {
            let (key, source) = MasterKey::load_or_create(path)?;
            match source {
                MasterKeySource::Created => {
                    tracing::info!(path = %path.display(), "created a new master key (mode 0600); back it up")
                }
                MasterKeySource::LoadedWithLoosePermissions => tracing::warn!(
                    path = %path.display(),
                    "the master key file is readable by other users; chmod 600 it"
                ),
                MasterKeySource::Loaded => {}
            }
            key
        }
    };
    let store = open_store(&settings.database_url, settings.database_pool_size)
        .await
        .context("opening the database")?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    // A new installation has no previous key to keep; this only bounds a race.
    let longest = settings.access_token_ttl.secs_i64();
    let bootstrapped = prepare(&store, &master, settings.signing_alg, clock.now(), longest)
        .await
        .context("preparing the database")?;
    if let Some(kid) = &bootstrapped.created_key {
        tracing::info!(%kid, alg = %settings.signing_alg, "created a signing key");
    }
    Ok(Ctx {
        settings,
        store,
        master: Arc::new(master),
        clock,
        bootstrapped,
    })
}
