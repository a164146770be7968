//! Persistence for Portcullis: one [`Store`] made of role traits ([`ClientStore`],
//! [`TokenStore`], [`RevocationStore`], [`KeyStore`], [`AdminStore`], [`AuditStore`],
//! [`DataStore`], [`UserStore`]), one implementation per backend.
//!
//! Handlers never see SQL; they call the trait. Each backend has its own numbered
//! migrations (`migrations/<backend>/NNNN_name.sql`, the same numbers everywhere),
//! applied by [`Store::migrate`] and never edited once released.

mod bound;
mod health;
mod migrate;
pub mod model;
pub mod postgres;
mod rows;
pub mod sqlite;
mod sweep;

pub use bound::OP_TIMEOUT;
pub use model::*;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Every role trait, for code that calls a store: `use portcullis_store::prelude::*;`.
pub mod prelude {
    pub use crate::{
        AdminStore, AuditStore, ClientStore, DataStore, KeyStore, RevocationStore, Store,
        TokenStore, UserStore,
    };
}

use async_trait::async_trait;
use portcullis_core::{Client, ClientId};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A storage failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A uniqueness or reference rule was broken.
    #[error("{0}")]
    Conflict(String),
    /// The database failed or returned data we cannot read.
    #[error("database error: {0}")]
    Backend(String),
    /// The database cannot be reached or did not answer in time; the same request
    /// may succeed later (HTTP 503 with `Retry-After`).
    #[error("database unavailable: {0}")]
    Unavailable(String),
}

/// A change committed by any process sharing the database, announced to every
/// other (PostgreSQL `LISTEN/NOTIFY`). Caches act on it at once; their periodic
/// reconciliation still runs, so a missed event delays a change, never loses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreEvent {
    /// Revocations were committed: read them with [`RevocationStore::revocation_feed`].
    Revocations,
    /// A client changed (status, secrets, settings) or was deleted.
    Client(String),
    /// The signing keys changed.
    Keys,
    /// The scopes changed.
    Scopes,
    /// The feed was interrupted (a reconnect): events may have been missed, so
    /// every cache reloads from the database.
    Resync,
}

/// What [`RevocationStore::revocation_feed`] returns.
#[derive(Debug, Clone, Default)]
pub struct RevocationFeed {
    /// Live revocations recorded since the cursor (some may have been seen before:
    /// applying them must be idempotent).
    pub revocations: Vec<Revocation>,
    /// Where the next read starts.
    pub cursor: i64,
}

/// Shorthand.
pub type StoreResult<T> = Result<T, StoreError>;

/// A shared store.
pub type DynStore = Arc<dyn Store>;

/// Which families to revoke.
#[derive(Debug, Clone, Copy)]
pub enum RevokeScope<'a> {
    /// One family, if it belongs to `client` (when given).
    Family {
        /// Family id.
        id: &'a str,
        /// Required owner.
        client: Option<&'a ClientId>,
    },
    /// Every live family of a client, or of one of its labels.
    Client {
        /// Owner.
        client: &'a ClientId,
        /// Only this label.
        label: Option<&'a str>,
    },
}

/// Clients, their secrets, and the scopes they may be given.
#[async_trait]
pub trait ClientStore: Send + Sync {
    /// Registers a scope, with its audit event, in one transaction; `Conflict` if
    /// it exists.
    async fn create_scope(&self, scope: &ScopeRecord, audit: &NewAuditEvent) -> StoreResult<()>;
    /// Every scope, by name.
    async fn list_scopes(&self) -> StoreResult<Vec<ScopeRecord>>;
    /// Creates a client with its first secret (a hash) and its audit event, in one
    /// transaction.
    async fn create_client(
        &self,
        client: &Client,
        secret_hash: &[u8; 32],
        audit: &NewAuditEvent,
    ) -> StoreResult<()>;
    /// One client.
    async fn get_client(&self, id: &ClientId) -> StoreResult<Option<Client>>;
    /// A client with its currently valid secret hashes, for authentication.
    async fn get_client_auth(&self, id: &ClientId, now: i64) -> StoreResult<Option<ClientAuth>>;
    /// Every client, oldest first.
    async fn list_clients(&self) -> StoreResult<Vec<Client>>;
    /// Disables a client and revokes every token it holds (its families, and a
    /// revocation of everything issued up to `now` that lasts until `deny_until`),
    /// with the audit event, in one transaction: once it has committed, no grant
    /// or refresh for this client commits, from any process.
    async fn disable_client(
        &self,
        id: &ClientId,
        now: i64,
        deny_until: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<()>;
    /// Enables a client, with its audit event (its revoked tokens stay revoked).
    async fn enable_client(
        &self,
        id: &ClientId,
        now: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<()>;
    /// Deletes a client and everything it owns, keeping a revocation of its tokens
    /// until `deny_until` (for other nodes' denylists), with the audit event, in one
    /// transaction.
    async fn delete_client(
        &self,
        id: &ClientId,
        now: i64,
        deny_until: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<()>;
    /// Adds a new secret; older ones stay valid until `old_valid_until` (now = at
    /// once); with the audit event, in one transaction.
    async fn rotate_client_secret(
        &self,
        id: &ClientId,
        new_hash: &[u8; 32],
        old_valid_until: i64,
        now: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<()>;
    /// Replaces a client's editable settings (name, scopes, grants, redirect URIs,
    /// lifetimes, refresh policy), with the audit event, in one transaction.
    async fn update_client(
        &self,
        client: &Client,
        now: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<()>;
}

/// A grant on its way to the store: counted from when its request starts the
/// work before its write (signing its tokens) until it submits the write, so that
/// a writer about to commit a small batch knows whether more are coming (see
/// [`TokenStore::announce_grant`]). Dropping it ends the count.
#[derive(Debug)]
pub struct GrantAnnouncement(Option<Arc<AtomicUsize>>);

impl GrantAnnouncement {
    /// An announcement nobody counts (a store that does not batch this way).
    pub fn uncounted() -> Self {
        Self(None)
    }

    /// Adds one to `count` until dropped.
    pub(crate) fn counted(count: &Arc<AtomicUsize>) -> Self {
        count.fetch_add(1, Ordering::Relaxed);
        Self(Some(Arc::clone(count)))
    }
}

impl Drop for GrantAnnouncement {
    fn drop(&mut self) {
        if let Some(count) = &self.0 {
            count.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Token families, refresh tokens and labels: what grants write and read.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Announces a grant whose write ([`Self::record_grant`] or
    /// [`Self::rotate_refresh_token`]) will follow once its tokens are signed;
    /// drop the announcement just before that call. SQLite's writer lets a small
    /// group commit wait a moment for announced grants instead of committing
    /// (and syncing) each alone; other stores ignore it.
    fn announce_grant(&self) -> GrantAnnouncement {
        GrantAnnouncement::uncounted()
    }

    /// Durably records a new grant: its family, its first refresh token (if any),
    /// its label's last-issued time and its audit event, only if the client is
    /// active when it commits (the check is part of the write) and the code it
    /// spends, if any, is still unspent and unexpired then (spent by the same
    /// write); `false`: one of them is not, and nothing was written. Concurrent
    /// calls are group-committed.
    async fn record_grant(&self, grant: NewGrant) -> StoreResult<bool>;
    /// A refresh token by its selector, with its family and stored hash (which the
    /// caller must compare, in constant time, with the presented token's).
    async fn find_refresh_token(&self, id: &str) -> StoreResult<Option<RefreshLookup>>;
    /// A refresh token issued before tokens carried a selector, by the HMAC of the
    /// whole token (the caller still compares it). Only an engine that stored such
    /// tokens has any; the default finds none.
    async fn find_refresh_token_by_hash(
        &self,
        _hash: &[u8; 32],
    ) -> StoreResult<Option<RefreshLookup>> {
        Ok(None)
    }
    /// Spends a refresh token and stores its successor in one atomic step; `false`
    /// when it was already spent, expired, revoked, not the client's, or the client
    /// is not active (nothing changes).
    /// Concurrent calls are group-committed.
    async fn rotate_refresh_token(&self, rotation: Rotation) -> StoreResult<bool>;
    /// A refresh grant in one step: finds the presented token, runs the caller's
    /// judge on it and, when it returns a rotation, spends the token and stores the
    /// successor as [`Self::rotate_refresh_token`] does (with the same conditions),
    /// all in one group-committed write. SQLite reads the token on its writer,
    /// whose page cache the batches keep warm; PostgreSQL reads a batch's tokens in
    /// one statement inside the batch's transaction.
    async fn spend_refresh_token(&self, spend: SpendRefresh) -> StoreResult<SpentRefresh>;
    /// One family.
    async fn get_family(&self, id: &str) -> StoreResult<Option<FamilyRecord>>;
    /// Token families of a client (optionally of one label), newest first; at most
    /// `limit` of them if given (a page showing the newest).
    async fn list_families(
        &self,
        client: &ClientId,
        label: Option<&str>,
        limit: Option<u32>,
    ) -> StoreResult<Vec<FamilyRecord>>;
    /// A client's labels with their activity.
    async fn list_labels(&self, client: &ClientId, now: i64) -> StoreResult<Vec<LabelRecord>>;
    /// Records when families (and their labels) were last used at the resource API
    /// (batched by the caller).
    async fn record_usage(&self, uses: &[Usage]) -> StoreResult<()>;
}

/// Revocations: what every node's denylist is built from.
#[async_trait]
pub trait RevocationStore: Send + Sync {
    /// Revokes families (one by id, or a client's, optionally one label's), recording
    /// a revocation per family that lasts until `deny_until` and, per family, the
    /// `audit` event with the family as its target (and its client and label), all
    /// in one transaction. Returns the ids revoked now.
    async fn revoke_families(
        &self,
        scope: RevokeScope<'_>,
        now: i64,
        reason: &str,
        deny_until: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<Vec<String>>;
    /// Revokes one access token by `jti` until its `exp`, with its audit event.
    async fn revoke_access_token(
        &self,
        jti: &str,
        now: i64,
        exp: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<()>;
    /// Live revocations with an id above `after`, oldest first.
    async fn revocations_since(&self, after: i64, now: i64) -> StoreResult<Vec<Revocation>>;

    /// What a denylist reads: every live revocation when `cursor` is `None`, else
    /// those recorded since the cursor a previous call returned. No revocation that
    /// commits after a call is ever skipped by the next, however late it commits
    /// relative to others; some may come twice. The default follows ids, which is
    /// sound where ids are assigned in commit order (one writer at a time, as in
    /// SQLite); an engine with concurrent writers overrides it.
    async fn revocation_feed(&self, cursor: Option<i64>, now: i64) -> StoreResult<RevocationFeed> {
        let after = cursor.unwrap_or(0);
        let revocations = self.revocations_since(after, now).await?;
        let cursor = revocations.iter().map(|r| r.id).fold(after, i64::max);
        Ok(RevocationFeed {
            revocations,
            cursor,
        })
    }
}

/// Signing keys (private keys encrypted by the caller).
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// Stores a new signing key and makes it current (the previous current one
    /// becomes `previous`, verifying until `previous_retire_after`), with `change`'s
    /// audit event, in one transaction. With `change.unless_current_since`, nothing
    /// is written if the current key was created at or after that time (another
    /// node rotated first): `false`.
    async fn add_signing_key(
        &self,
        key: &StoredKey,
        previous_retire_after: i64,
        change: &KeyChange,
    ) -> StoreResult<bool>;
    /// Every key that is not retired, current first.
    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>>;
}

/// Admin users and their web sessions.
#[async_trait]
pub trait AdminStore: Send + Sync {
    /// Number of admin users.
    async fn count_admin_users(&self) -> StoreResult<i64>;
    /// Creates an admin user; `Conflict` if the name is taken.
    async fn create_admin_user(&self, name: &str, password_hash: &str, now: i64)
    -> StoreResult<()>;
    /// Replaces an admin user's password and ends their sessions, in one
    /// transaction; `NotFound` if absent.
    async fn set_admin_password(
        &self,
        name: &str,
        password_hash: &str,
        now: i64,
    ) -> StoreResult<()>;
    /// An admin user's password hash.
    async fn admin_password_hash(&self, name: &str) -> StoreResult<Option<String>>;
    /// Creates an admin session.
    async fn create_admin_session(&self, s: &AdminSessionRow) -> StoreResult<()>;
    /// A live admin session by the hash of its cookie.
    async fn get_admin_session(
        &self,
        id_hash: &[u8; 32],
        now: i64,
    ) -> StoreResult<Option<AdminSessionRow>>;
    /// Records activity on a session.
    async fn touch_admin_session(&self, id_hash: &[u8; 32], now: i64) -> StoreResult<()>;
    /// Ends a session.
    async fn delete_admin_session(&self, id_hash: &[u8; 32]) -> StoreResult<()>;
}

/// The audit log and the figures read from it.
#[async_trait]
pub trait AuditStore: Send + Sync {
    /// Appends an audit event.
    async fn append_audit(&self, event: &NewAuditEvent) -> StoreResult<()>;
    /// Lists audit events, newest first.
    async fn list_audit(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRecord>>;
    /// Adds to per-day counters.
    async fn bump_daily_counters(&self, counts: &[(i64, String, i64)]) -> StoreResult<()>;
    /// Figures for the dashboard over the `days` days up to `now`.
    async fn dashboard(&self, now: i64, days: i64) -> StoreResult<DashboardStats>;
    /// Labels with a live family (neither revoked nor expired at `now`). It reads
    /// every live family, so the server counts it in the background.
    async fn count_live_sites(&self, now: i64) -> StoreResult<i64>;
    /// Deletes up to `batch` of the oldest audit events from before `before`
    /// (retention); returns how many went. Callers repeat it while it returns
    /// `batch`, so no single transaction holds the writer for long.
    async fn prune_audit(&self, before: i64, batch: u32) -> StoreResult<u64>;
}

/// Data uploaded at the resource API.
#[async_trait]
pub trait DataStore: Send + Sync {
    /// Stores a batch of records durably, with its counters, in one transaction
    /// (group-committed with other writes).
    async fn store_upload(&self, upload: NewUpload) -> StoreResult<UploadOutcome>;
    /// Upload counters of a client, per label.
    async fn site_counters(&self, client: &ClientId) -> StoreResult<Vec<SiteCounters>>;
}

/// End users, their sessions, what they allowed applications (consents), and the
/// authorization codes of the authorization code flow.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates a user with its audit event; `Conflict` if the name is taken.
    async fn create_user(&self, user: &UserRecord, audit: &NewAuditEvent) -> StoreResult<()>;
    /// A user by id.
    async fn get_user(&self, id: &str) -> StoreResult<Option<UserRecord>>;
    /// A user by sign-in name.
    async fn find_user(&self, name: &str) -> StoreResult<Option<UserRecord>>;
    /// Every user, by name.
    async fn list_users(&self) -> StoreResult<Vec<UserRecord>>;
    /// Replaces a user's password hash and ends every session of theirs, with
    /// the audit event, in one transaction; `NotFound` for an unknown id.
    async fn set_user_password(
        &self,
        id: &str,
        password_hash: &str,
        now: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<()>;
    /// Enables or disables a user. Disabling also ends their sessions and revokes
    /// every token family issued on their behalf (subject = the user's id, by the
    /// authorization code grant), each revocation lasting until `deny_until` with
    /// `audit` per family as [`RevocationStore::revoke_families`] records it; all
    /// in one transaction. Returns the family ids revoked now.
    async fn set_user_status(
        &self,
        id: &str,
        active: bool,
        now: i64,
        deny_until: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<Vec<String>>;

    /// Stores a new session (and drops expired ones).
    async fn create_user_session(&self, s: &UserSessionRow) -> StoreResult<()>;
    /// A live session of an active user by the hash of its cookie.
    async fn get_user_session(
        &self,
        id_hash: &[u8; 32],
        now: i64,
    ) -> StoreResult<Option<UserSessionRow>>;
    /// Records activity.
    async fn touch_user_session(&self, id_hash: &[u8; 32], now: i64) -> StoreResult<()>;
    /// Ends a session.
    async fn delete_user_session(&self, id_hash: &[u8; 32]) -> StoreResult<()>;

    /// What `user` allowed `client`, if anything.
    async fn get_consent(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> StoreResult<Option<ConsentRecord>>;
    /// Records (or widens to) `consent.scopes`, with the audit event, in one
    /// transaction.
    async fn put_consent(&self, consent: &ConsentRecord, audit: &NewAuditEvent) -> StoreResult<()>;
    /// Everything a user allowed, with each application's name and last use.
    async fn list_consents(&self, user_id: &str) -> StoreResult<Vec<ConsentRecord>>;
    /// Ends a consent (`keep`: `None`), revoking every live token family of that
    /// grant (subject = the user, owned by the client, by the authorization code
    /// grant); or narrows it to `keep`, narrowing each such family's scopes to
    /// those kept and revoking the access tokens it issued until `now` (a family
    /// left with no scope is revoked whole). Each revocation lasts until
    /// `deny_until`, with `audit` (as a `token.revoke` event) per family; all in
    /// one transaction with the consent's own `audit` event. `NotFound` if there is
    /// no such consent.
    async fn revoke_consent(
        &self,
        user_id: &str,
        client_id: &str,
        keep: Option<&portcullis_core::ScopeSet>,
        now: i64,
        deny_until: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<ConsentChange>;

    /// Stores a new authorization code.
    async fn create_code(&self, code: &NewCode) -> StoreResult<()>;
    /// The code with this hash, spent or not, expired or not (until pruned): a
    /// plain read. A grant spends it ([`NewGrant::spends_code`]).
    async fn find_code(&self, hash: &[u8; 32]) -> StoreResult<Option<StoredCode>>;
}

/// Everything Portcullis persists: the role traits, and what concerns the
/// database as a whole. A backend implements each role; services may hold just
/// the roles they use.
#[async_trait]
pub trait Store:
    ClientStore
    + TokenStore
    + RevocationStore
    + KeyStore
    + AdminStore
    + AuditStore
    + DataStore
    + UserStore
    + 'static
{
    /// Applies pending migrations; returns how many ran.
    async fn migrate(&self) -> StoreResult<usize>;
    /// The newest migration applied (`None`: the database holds no Portcullis
    /// schema yet).
    async fn schema_version(&self) -> StoreResult<Option<i64>>;
    /// Whether the database answers (readiness).
    async fn ping(&self) -> StoreResult<()>;
    /// A server setting (e.g. the last issuer), if recorded.
    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>>;
    /// Records a server setting.
    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()>;
    /// Records `value` for `key` only if nothing is recorded yet, and returns what
    /// is recorded then (this `value`, or the one already there): processes
    /// starting together on a new database agree on one.
    async fn init_setting(&self, key: &str, value: &str) -> StoreResult<String>;
    /// Removes what can no longer matter (see [`Pruned`]).
    async fn prune(&self, now: i64) -> StoreResult<Pruned>;
    /// Writes an online, consistent copy of the whole database to `dest`, which
    /// must not exist yet (SQLite; other engines have their own tools).
    async fn backup_to(&self, dest: &std::path::Path) -> StoreResult<()>;
    /// Changes committed by other processes, as they commit (`None`: this engine
    /// announces none, and caches rely on their periodic reconciliation alone).
    fn events(&self) -> Option<tokio::sync::broadcast::Receiver<StoreEvent>> {
        None
    }
    /// The engine's name, for logs and `/readyz`.
    fn engine(&self) -> &'static str;
}

/// Opens the store a `--database-url` names (`sqlite://PATH` or
/// `postgres://…`), with `pool_size` connections for PostgreSQL. Does not migrate.
pub async fn open(url: &str, pool_size: usize) -> StoreResult<DynStore> {
    if postgres::is_postgres_url(url) {
        return Ok(Arc::new(PgStore::connect(url, pool_size).await?));
    }
    let Some(path) = sqlite::sqlite_path(url) else {
        return Err(StoreError::Backend(format!(
            "unsupported database URL {:?}: use sqlite://PATH or postgres://USER@HOST/DB",
            postgres::redact(url)
        )));
    };
    Ok(Arc::new(SqliteStore::open(&path).await?))
}
