//! Opening the database and first-start set-up (SPEC §1): schema, a signing key,
//! and a first admin user whose generated password is shown once.

use crate::keyring::{KeyringError, store_new_key};
use portcullis_crypto::{Algorithm, MasterKey, password};
use portcullis_store::{DynStore, KeyChange, KeyState, StoreError};

/// Name of the first admin user.
pub const FIRST_ADMIN: &str = "admin";

/// Why start-up failed.
#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    /// The database URL is not one we can open.
    #[error("{0}")]
    DatabaseUrl(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Keys failed.
    #[error(transparent)]
    Keys(#[from] KeyringError),
    /// The master key is not the one this database was set up with.
    #[error(
        "this is not the master key this database was created with \
         (check --master-key-file or PORTCULLIS_MASTER_KEY)"
    )]
    WrongMasterKey,
    /// Password hashing failed.
    #[error(transparent)]
    Crypto(#[from] portcullis_crypto::CryptoError),
}

/// Opens the store named by `database_url` (without migrating), with at most
/// `pool_size` connections to PostgreSQL.
pub async fn open_store(database_url: &str, pool_size: usize) -> Result<DynStore, BootstrapError> {
    portcullis_store::open(database_url, pool_size)
        .await
        .map_err(|e| match e {
            StoreError::Backend(m) if m.starts_with("unsupported database URL") => {
                BootstrapError::DatabaseUrl(m)
            }
            other => BootstrapError::Store(other),
        })
}

/// What first-start set-up did.
#[derive(Debug, Default)]
pub struct Bootstrapped {
    /// Migrations applied now.
    pub migrations: usize,
    /// Id of a signing key created now.
    pub created_key: Option<String>,
    /// A first admin created now: name and one-time password.
    pub first_admin: Option<(String, String)>,
}

/// Migrates, and on an empty database creates a signing key and the first admin.
pub async fn prepare(
    store: &DynStore,
    master: &MasterKey,
    alg: Algorithm,
    now: i64,
    longest_token_secs: i64,
) -> Result<Bootstrapped, BootstrapError> {
    let mut done = Bootstrapped {
        migrations: store.migrate().await?,
        ..Bootstrapped::default()
    };
    // The first process on a new database records its master key's check value;
    // every other (nodes starting at the same moment included) must match it.
    let check = master.check_value();
    if store.init_setting("master_key_check", &check).await? != check {
        return Err(BootstrapError::WrongMasterKey);
    }
    let keys = store.signing_keys().await?;
    if !keys.iter().any(|k| k.state == KeyState::Current) {
        // Unless another node starting on the same new database made one first.
        done.created_key =
            store_new_key(store, master, alg, now, longest_token_secs, |_| KeyChange {
                audit: None,
                unless_current_since: Some(i64::MIN),
            })
            .await?;
    }
    if store.count_admin_users().await? == 0 {
        let pw = password::generate_password()?;
        let hash = password::hash_password(&pw)?;
        match store.create_admin_user(FIRST_ADMIN, &hash, now).await {
            Ok(()) => done.first_admin = Some((FIRST_ADMIN.into(), pw)),
            // Another node created it first: fine.
            Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(done)
}
