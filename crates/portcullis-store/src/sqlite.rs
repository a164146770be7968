//! The embedded SQLite store: WAL, foreign keys on, `synchronous = FULL` (an
//! acknowledged write survives a crash), one writer connection and a small pool of
//! readers. New grants, refresh rotations and data uploads are group-committed by
//! [`crate::writer`]: concurrent calls are gathered into one transaction, so
//! durability costs one fsync per batch instead of one per token.

use crate::migrate::{Migration, SQLITE};
use crate::writer::WriteJob;
use crate::{AdminSessionRow, DashboardStats, LabelRecord, NewUpload, SiteCounters, UploadOutcome};
use crate::{
    AuditFilter, AuditRecord, ClientAuth, FamilyRecord, NewAuditEvent, NewGrant, Pruned,
    RefreshLookup, Revocation, RevokeScope, Rotation, ScopeRecord, Store, StoreError, StoreResult,
    StoredKey, Usage,
};
use async_trait::async_trait;
use portcullis_core::{
    Client, ClientId, ClientStatus, GrantType, RedirectUri, ScopeName, ScopeSet, Ttl,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row, SqlitePool};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// SQLite-backed [`Store`].
pub struct SqliteStore {
    read: SqlitePool,
    write: SqlitePool,
    writes: mpsc::Sender<WriteJob>,
    readers: Arc<crate::reader::Readers>,
    path: PathBuf,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SqliteStore({})", self.path.display())
    }
}

/// The file path of a `sqlite://path` URL (`sqlite:///abs/path` for absolute paths).
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let rest = rest.split('?').next().unwrap_or(rest);
    (!rest.is_empty()).then(|| PathBuf::from(rest))
}

impl SqliteStore {
    /// Opens (creating if missing, with its directory) the database at `path`.
    pub async fn open(path: &Path) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Backend(format!("cannot create {}: {e}", dir.display()))
            })?;
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            // 16 MiB of page cache per connection, and no memory-mapped reads: the
            // file grows with every group commit, and each growth made every mapped
            // reader remap (munmap and TLB shootdowns cost more than the reads; the
            // refresh grant, which reads before it writes, gained a fifth without
            // them). The OS page cache holds the rest. The group-commit writer has
            // its own, larger, settings (see `writer.rs`).
            .pragma("cache_size", "-16384")
            .pragma("mmap_size", "0")
            .pragma("temp_store", "memory");
        let write = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .connect_with(opts.clone())
            .await?;
        let read = SqlitePoolOptions::new()
            .max_connections(4)
            .min_connections(1)
            .connect_with(opts.read_only(true))
            .await?;
        let writes = crate::writer::spawn(path)?;
        Ok(Self {
            read,
            write,
            writes,
            readers: crate::reader::Readers::new(path),
            path: path.to_owned(),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Hands a job to the group-commit writer and waits for its commit.
    async fn submit<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<StoreResult<T>>) -> WriteJob,
    ) -> StoreResult<T> {
        let stopped = || StoreError::Backend("the writer has stopped".into());
        let (tx, rx) = oneshot::channel();
        self.writes.send(job(tx)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

fn backend(what: &str) -> StoreError {
    StoreError::Backend(format!("unreadable stored {what}"))
}

fn client_from_row(row: &SqliteRow) -> StoreResult<Client> {
    let id: String = row.try_get("id")?;
    let scopes: Option<String> = row.try_get("scopes")?;
    let grant_types: String = row.try_get("grant_types")?;
    let redirect_uris: String = row.try_get("redirect_uris")?;
    let status: String = row.try_get("status")?;
    let ttl = |v: Option<i64>| {
        v.and_then(|s| u64::try_from(s).ok())
            .and_then(Ttl::from_secs)
    };
    let grace: i64 = row.try_get("refresh_reuse_grace")?;
    let scopes: ScopeSet = scopes
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(ScopeName::parse)
        .collect::<Result<_, _>>()
        .map_err(|_| backend("scope"))?;
    let grant_types: Vec<String> =
        serde_json::from_str(&grant_types).map_err(|_| backend("grant types"))?;
    let grant_types = grant_types
        .iter()
        .map(|g| g.parse::<GrantType>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| backend("grant type"))?;
    let redirect_uris: Vec<String> =
        serde_json::from_str(&redirect_uris).map_err(|_| backend("redirect URIs"))?;
    let redirect_uris = redirect_uris
        .iter()
        .map(|u| RedirectUri::parse(u))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| backend("redirect URI"))?;
    Ok(Client {
        id: ClientId::parse(&id).map_err(|_| backend("client id"))?,
        name: row.try_get("name")?,
        scopes,
        grant_types,
        redirect_uris,
        status: ClientStatus::parse(&status).ok_or_else(|| backend("status"))?,
        created_at: row.try_get("created_at")?,
        access_token_ttl: ttl(row.try_get("access_token_ttl")?),
        refresh_token_ttl: ttl(row.try_get("refresh_token_ttl")?),
        issue_refresh_token: row.try_get::<i64, _>("issue_refresh_token")? != 0,
        refresh_reuse_grace: u64::try_from(grace)
            .ok()
            .and_then(Ttl::from_secs_allow_zero)
            .ok_or_else(|| backend("grace"))?,
    })
}

const CLIENT_SELECT: &str = "SELECT c.*, (SELECT group_concat(scope, ' ') FROM client_scopes s \
     WHERE s.client_id = c.id) AS scopes FROM clients c";

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

async fn apply_migrations(pool: &SqlitePool, migrations: &[Migration]) -> StoreResult<usize> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, \
         name TEXT NOT NULL, applied_at INTEGER NOT NULL)",
    )
    .execute(pool)
    .await?;
    let applied: Vec<i64> = sqlx::query_scalar("SELECT version FROM schema_migrations")
        .fetch_all(pool)
        .await?;
    let newest_known = migrations.iter().map(|m| m.0).max().unwrap_or(0);
    if let Some(v) = applied.iter().find(|v| **v > newest_known) {
        return Err(StoreError::Backend(format!(
            "the database has schema version {v}, newer than this binary knows ({newest_known}); \
             upgrade portcullis"
        )));
    }
    let mut ran = 0;
    for (version, name, sql) in migrations {
        if applied.contains(version) {
            continue;
        }
        let mut tx = pool.begin().await?;
        sqlx::raw_sql(AssertSqlSafe(*sql)).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, unixepoch())",
        )
        .bind(version)
        .bind(name)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        ran += 1;
    }
    Ok(ran)
}

#[async_trait]
impl Store for SqliteStore {
    async fn migrate(&self) -> StoreResult<usize> {
        apply_migrations(&self.write, SQLITE).await
    }

    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    async fn get_setting(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
                .bind(key)
                .fetch_optional(&self.read)
                .await?,
        )
    }

    async fn put_setting(&self, key: &str, value: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO settings (key, value) VALUES (?, ?) \
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        )
        .bind(key)
        .bind(value)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn create_scope(&self, scope: &ScopeRecord) -> StoreResult<()> {
        sqlx::query("INSERT INTO scopes (name, description, created_at) VALUES (?, ?, ?)")
            .bind(&scope.name)
            .bind(&scope.description)
            .bind(scope.created_at)
            .execute(&self.write)
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => {
                    StoreError::Conflict(format!("scope {} already exists", scope.name))
                }
                other => other,
            })?;
        Ok(())
    }

    async fn list_scopes(&self) -> StoreResult<Vec<ScopeRecord>> {
        let rows = sqlx::query("SELECT name, description, created_at FROM scopes ORDER BY name")
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ScopeRecord {
                    name: r.try_get("name")?,
                    description: r.try_get("description")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    async fn create_client(&self, c: &Client, secret_hash: &[u8; 32]) -> StoreResult<()> {
        let grants: Vec<&str> = c.grant_types.iter().map(|g| g.as_str()).collect();
        let uris: Vec<&str> = c.redirect_uris.iter().map(|u| u.as_str()).collect();
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO clients (id, name, status, grant_types, redirect_uris, access_token_ttl, \
             refresh_token_ttl, issue_refresh_token, refresh_reuse_grace, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(c.id.as_str())
        .bind(&c.name)
        .bind(c.status.as_str())
        .bind(serde_json::json!(grants).to_string())
        .bind(serde_json::json!(uris).to_string())
        .bind(c.access_token_ttl.map(|t| to_i64(t.secs())))
        .bind(c.refresh_token_ttl.map(|t| to_i64(t.secs())))
        .bind(i64::from(c.issue_refresh_token))
        .bind(to_i64(c.refresh_reuse_grace.secs()))
        .bind(c.created_at)
        .bind(c.created_at)
        .execute(&mut *tx)
        .await?;
        for s in c.scopes.iter() {
            sqlx::query("INSERT INTO client_scopes (client_id, scope) VALUES (?, ?)")
                .bind(c.id.as_str())
                .bind(s.as_str())
                .execute(&mut *tx)
                .await
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict(_) => StoreError::Conflict(format!("unknown scope {s}")),
                    other => other,
                })?;
        }
        sqlx::query(
            "INSERT INTO client_secrets (client_id, secret_hash, created_at) VALUES (?, ?, ?)",
        )
        .bind(c.id.as_str())
        .bind(secret_hash.as_slice())
        .bind(c.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn get_client(&self, id: &ClientId) -> StoreResult<Option<Client>> {
        let row = sqlx::query(AssertSqlSafe(format!("{CLIENT_SELECT} WHERE c.id = ?")))
            .bind(id.as_str())
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(client_from_row).transpose()
    }

    async fn get_client_auth(&self, id: &ClientId, now: i64) -> StoreResult<Option<ClientAuth>> {
        let Some(client) = self.get_client(id).await? else {
            return Ok(None);
        };
        let hashes: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT secret_hash FROM client_secrets WHERE client_id = ? \
             AND (expires_at IS NULL OR expires_at > ?)",
        )
        .bind(id.as_str())
        .bind(now)
        .fetch_all(&self.read)
        .await?;
        let secret_hashes = hashes
            .into_iter()
            .map(|h| <[u8; 32]>::try_from(h.as_slice()).map_err(|_| backend("secret hash")))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(Some(ClientAuth {
            client,
            secret_hashes,
        }))
    }

    async fn list_clients(&self) -> StoreResult<Vec<Client>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "{CLIENT_SELECT} ORDER BY c.created_at, c.id"
        )))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(client_from_row).collect()
    }

    async fn set_client_status(
        &self,
        id: &ClientId,
        status: ClientStatus,
        now: i64,
    ) -> StoreResult<()> {
        let r = sqlx::query("UPDATE clients SET status = ?, updated_at = ? WHERE id = ?")
            .bind(status.as_str())
            .bind(now)
            .bind(id.as_str())
            .execute(&self.write)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("client {id}")));
        }
        Ok(())
    }

    async fn delete_client(&self, id: &ClientId) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        // Refresh tokens have no foreign key to their family (migration 7): the
        // families go by cascade, their refresh tokens here, in the same transaction.
        sqlx::query(
            "DELETE FROM refresh_tokens WHERE family_id IN \
             (SELECT id FROM token_families WHERE client_id = ?)",
        )
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        let r = sqlx::query("DELETE FROM clients WHERE id = ?")
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("client {id}")));
        }
        tx.commit().await?;
        Ok(())
    }

    async fn rotate_client_secret(
        &self,
        id: &ClientId,
        new_hash: &[u8; 32],
        old_valid_until: i64,
        now: i64,
    ) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM clients WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!("client {id}")));
        }
        sqlx::query("DELETE FROM client_secrets WHERE client_id = ? AND expires_at <= ?")
            .bind(id.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE client_secrets SET expires_at = min(coalesce(expires_at, ?1), ?1) \
             WHERE client_id = ?2",
        )
        .bind(old_valid_until)
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO client_secrets (client_id, secret_hash, created_at) VALUES (?, ?, ?)",
        )
        .bind(id.as_str())
        .bind(new_hash.as_slice())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE clients SET updated_at = ? WHERE id = ?")
            .bind(now)
            .bind(id.as_str())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn add_signing_key(&self, k: &StoredKey, previous_retire_after: i64) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "UPDATE signing_keys SET state = 'previous', rotated_at = ?, retire_after = ? \
             WHERE state = 'current'",
        )
        .bind(k.created_at)
        .bind(previous_retire_after)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO signing_keys (kid, alg, private_key_enc, public_jwk, state, created_at) \
             VALUES (?, ?, ?, ?, 'current', ?)",
        )
        .bind(&k.kid)
        .bind(&k.alg)
        .bind(&k.private_key_enc)
        .bind(&k.public_jwk)
        .bind(k.created_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        let rows = sqlx::query(
            "SELECT * FROM signing_keys WHERE state != 'retired' \
             ORDER BY state = 'current' DESC, created_at DESC",
        )
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StoredKey {
                    kid: r.try_get("kid")?,
                    alg: r.try_get("alg")?,
                    private_key_enc: r.try_get("private_key_enc")?,
                    public_jwk: r.try_get("public_jwk")?,
                    state: r.try_get("state")?,
                    created_at: r.try_get("created_at")?,
                    retire_after: r.try_get("retire_after")?,
                })
            })
            .collect()
    }

    async fn count_admin_users(&self) -> StoreResult<i64> {
        Ok(sqlx::query_scalar("SELECT count(*) FROM admin_users")
            .fetch_one(&self.read)
            .await?)
    }

    async fn create_admin_user(&self, name: &str, hash: &str, now: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO admin_users (name, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?)",
        )
        .bind(name)
        .bind(hash)
        .bind(now)
        .bind(now)
        .execute(&self.write)
        .await
        .map_err(|e| match StoreError::from(e) {
            StoreError::Conflict(_) => StoreError::Conflict(format!("admin user {name} already exists")),
            other => other,
        })?;
        Ok(())
    }

    async fn set_admin_password(&self, name: &str, hash: &str, now: i64) -> StoreResult<()> {
        let r =
            sqlx::query("UPDATE admin_users SET password_hash = ?, updated_at = ? WHERE name = ?")
                .bind(hash)
                .bind(now)
                .bind(name)
                .execute(&self.write)
                .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("admin user {name}")));
        }
        Ok(())
    }

    async fn record_grant(&self, grant: NewGrant) -> StoreResult<()> {
        self.submit(|tx| WriteJob::Grant(grant, tx)).await
    }

    async fn list_families(
        &self,
        client: &ClientId,
        label: Option<&str>,
    ) -> StoreResult<Vec<FamilyRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM token_families WHERE client_id = ?1 AND (?2 IS NULL OR label = ?2) \
             ORDER BY created_at DESC, id",
        )
        .bind(client.as_str())
        .bind(label)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(family_from_row).collect()
    }

    async fn find_refresh_token(&self, id: &str) -> StoreResult<Option<RefreshLookup>> {
        self.readers.refresh_token(id).await
    }

    async fn rotate_refresh_token(&self, rotation: Rotation) -> StoreResult<bool> {
        self.submit(|tx| WriteJob::Rotate(rotation, tx)).await
    }

    async fn store_upload(&self, upload: NewUpload) -> StoreResult<UploadOutcome> {
        self.submit(|tx| WriteJob::Upload(upload, tx)).await
    }

    async fn site_counters(&self, client: &ClientId) -> StoreResult<Vec<SiteCounters>> {
        let rows = sqlx::query(
            "SELECT label, records, batches, last_upload_at FROM indicator_counters \
             WHERE client_id = ? ORDER BY label",
        )
        .bind(client.as_str())
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                let label: String = r.try_get("label")?;
                Ok(SiteCounters {
                    label: (!label.is_empty()).then_some(label),
                    records: r.try_get("records")?,
                    batches: r.try_get("batches")?,
                    last_upload_at: r.try_get("last_upload_at")?,
                })
            })
            .collect()
    }

    async fn admin_password_hash(&self, name: &str) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT password_hash FROM admin_users WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.read)
                .await?,
        )
    }

    async fn create_admin_session(&self, s: &AdminSessionRow) -> StoreResult<()> {
        // Expired sessions go as new ones arrive: the table stays small.
        sqlx::query("DELETE FROM admin_sessions WHERE expires_at <= ?")
            .bind(s.created_at)
            .execute(&self.write)
            .await?;
        sqlx::query(
            "INSERT INTO admin_sessions (id_hash, user_name, csrf_token, created_at, \
             last_seen_at, expires_at, source) VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(s.id_hash.as_slice())
        .bind(&s.user_name)
        .bind(&s.csrf_token)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.expires_at)
        .bind(s.source.as_deref())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn get_admin_session(
        &self,
        id_hash: &[u8; 32],
        now: i64,
    ) -> StoreResult<Option<AdminSessionRow>> {
        let row = sqlx::query("SELECT * FROM admin_sessions WHERE id_hash = ? AND expires_at > ?")
            .bind(id_hash.as_slice())
            .bind(now)
            .fetch_optional(&self.read)
            .await?;
        let Some(r) = row else { return Ok(None) };
        let hash: Vec<u8> = r.try_get("id_hash")?;
        Ok(Some(AdminSessionRow {
            id_hash: <[u8; 32]>::try_from(hash.as_slice()).map_err(|_| backend("session"))?,
            user_name: r.try_get("user_name")?,
            csrf_token: r.try_get("csrf_token")?,
            created_at: r.try_get("created_at")?,
            last_seen_at: r.try_get("last_seen_at")?,
            expires_at: r.try_get("expires_at")?,
            source: r.try_get("source")?,
        }))
    }

    async fn touch_admin_session(&self, id_hash: &[u8; 32], now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE admin_sessions SET last_seen_at = ? WHERE id_hash = ?")
            .bind(now)
            .bind(id_hash.as_slice())
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn delete_admin_session(&self, id_hash: &[u8; 32]) -> StoreResult<()> {
        sqlx::query("DELETE FROM admin_sessions WHERE id_hash = ?")
            .bind(id_hash.as_slice())
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn update_client(&self, c: &Client, now: i64) -> StoreResult<()> {
        let grants: Vec<&str> = c.grant_types.iter().map(|g| g.as_str()).collect();
        let uris: Vec<&str> = c.redirect_uris.iter().map(|u| u.as_str()).collect();
        let mut tx = self.write.begin().await?;
        let r = sqlx::query(
            "UPDATE clients SET name = ?, grant_types = ?, redirect_uris = ?, \
             access_token_ttl = ?, refresh_token_ttl = ?, issue_refresh_token = ?, \
             refresh_reuse_grace = ?, updated_at = ? WHERE id = ?",
        )
        .bind(&c.name)
        .bind(serde_json::json!(grants).to_string())
        .bind(serde_json::json!(uris).to_string())
        .bind(c.access_token_ttl.map(|t| to_i64(t.secs())))
        .bind(c.refresh_token_ttl.map(|t| to_i64(t.secs())))
        .bind(i64::from(c.issue_refresh_token))
        .bind(to_i64(c.refresh_reuse_grace.secs()))
        .bind(now)
        .bind(c.id.as_str())
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("client {}", c.id)));
        }
        sqlx::query("DELETE FROM client_scopes WHERE client_id = ?")
            .bind(c.id.as_str())
            .execute(&mut *tx)
            .await?;
        for s in c.scopes.iter() {
            sqlx::query("INSERT INTO client_scopes (client_id, scope) VALUES (?, ?)")
                .bind(c.id.as_str())
                .bind(s.as_str())
                .execute(&mut *tx)
                .await
                .map_err(|e| match StoreError::from(e) {
                    StoreError::Conflict(_) => StoreError::Conflict(format!("unknown scope {s}")),
                    other => other,
                })?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn list_labels(&self, client: &ClientId, now: i64) -> StoreResult<Vec<LabelRecord>> {
        let rows = sqlx::query(
            // One pass over the client's families, counted per label (they are
            // indexed by client and time, not by label: see migration 6).
            "SELECT l.*, coalesce(f.live, 0) AS live FROM labels l LEFT JOIN \
             (SELECT label, count(*) AS live FROM token_families WHERE client_id = ?1 \
              AND label IS NOT NULL AND revoked_at IS NULL AND expires_at > ?2 GROUP BY label) f \
             ON f.label = l.name WHERE l.client_id = ?1 ORDER BY l.name",
        )
        .bind(client.as_str())
        .bind(now)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LabelRecord {
                    name: r.try_get("name")?,
                    created_at: r.try_get("created_at")?,
                    last_issued_at: r.try_get("last_issued_at")?,
                    last_used_at: r.try_get("last_used_at")?,
                    uploads: r.try_get("uploads")?,
                    live_families: r.try_get("live")?,
                })
            })
            .collect()
    }

    async fn bump_daily_counters(&self, counts: &[(i64, String, i64)]) -> StoreResult<()> {
        if counts.is_empty() {
            return Ok(());
        }
        let mut tx = self.write.begin().await?;
        for (day, kind, n) in counts {
            sqlx::query(
                "INSERT INTO daily_counters (day, kind, count) VALUES (?, ?, ?) \
                 ON CONFLICT (day, kind) DO UPDATE SET count = count + excluded.count",
            )
            .bind(day)
            .bind(kind)
            .bind(n)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn dashboard(&self, now: i64, days: i64) -> StoreResult<DashboardStats> {
        let today = now - now.rem_euclid(86_400);
        let since = today - (days - 1) * 86_400;
        let clients: i64 = sqlx::query_scalar("SELECT count(*) FROM clients")
            .fetch_one(&self.read)
            .await?;
        let live_sites: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM (SELECT DISTINCT client_id, label FROM token_families \
             WHERE label IS NOT NULL AND revoked_at IS NULL AND expires_at > ?)",
        )
        .bind(now)
        .fetch_one(&self.read)
        .await?;
        let per_day = |rows: Vec<SqliteRow>| -> StoreResult<Vec<(i64, i64)>> {
            rows.iter()
                .map(|r| Ok((r.try_get("day")?, r.try_get("n")?)))
                .collect()
        };
        let tokens_per_day = per_day(
            sqlx::query(
                "SELECT at - (at % 86400) AS day, count(*) AS n FROM audit_events \
                 WHERE kind IN ('token.issue', 'token.refresh') AND at >= ? GROUP BY day ORDER BY day",
            )
            .bind(since)
            .fetch_all(&self.read)
            .await?,
        )?;
        let failed_auth_per_day = per_day(
            sqlx::query(
                "SELECT day, count AS n FROM daily_counters \
                 WHERE kind = 'client_auth_failed' AND day >= ? ORDER BY day",
            )
            .bind(since)
            .fetch_all(&self.read)
            .await?,
        )?;
        let uploads = sqlx::query(
            "SELECT coalesce(label, '') AS label, received_at - (received_at % 86400) AS day, \
             count(*) AS n FROM data_batches WHERE received_at >= ? GROUP BY label, day \
             ORDER BY label, day",
        )
        .bind(since)
        .fetch_all(&self.read)
        .await?;
        let uploads_per_site_day = uploads
            .iter()
            .map(|r| Ok((r.try_get("label")?, r.try_get("day")?, r.try_get("n")?)))
            .collect::<StoreResult<Vec<_>>>()?;
        let tokens_today = tokens_per_day
            .iter()
            .filter(|(d, _)| *d == today)
            .map(|(_, n)| n)
            .sum();
        let uploads_today = uploads_per_site_day
            .iter()
            .filter(|(_, d, _)| *d == today)
            .map(|(_, _, n)| n)
            .sum();
        Ok(DashboardStats {
            clients,
            live_sites,
            tokens_today,
            uploads_today,
            tokens_per_day,
            uploads_per_site_day,
            failed_auth_per_day,
        })
    }

    async fn get_family(&self, id: &str) -> StoreResult<Option<FamilyRecord>> {
        let row = sqlx::query("SELECT * FROM token_families WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(family_from_row).transpose()
    }

    async fn revoke_families(
        &self,
        scope: RevokeScope<'_>,
        now: i64,
        reason: &str,
        deny_until: i64,
    ) -> StoreResult<Vec<String>> {
        let mut tx = self.write.begin().await?;
        let ids: Vec<String> = match scope {
            RevokeScope::Family { id, client } => {
                sqlx::query_scalar(
                    "UPDATE token_families SET revoked_at = ?1, revoked_reason = ?2 \
                 WHERE id = ?3 AND (?4 IS NULL OR client_id = ?4) AND revoked_at IS NULL \
                 RETURNING id",
                )
                .bind(now)
                .bind(reason)
                .bind(id)
                .bind(client.map(ClientId::as_str))
                .fetch_all(&mut *tx)
                .await?
            }
            RevokeScope::Client { client, label } => {
                sqlx::query_scalar(
                    "UPDATE token_families SET revoked_at = ?1, revoked_reason = ?2 \
                 WHERE client_id = ?3 AND (?4 IS NULL OR label = ?4) AND revoked_at IS NULL \
                 AND expires_at > ?1 RETURNING id",
                )
                .bind(now)
                .bind(reason)
                .bind(client.as_str())
                .bind(label)
                .fetch_all(&mut *tx)
                .await?
            }
        };
        for id in &ids {
            sqlx::query(
                "INSERT INTO revocations (kind, target, created_at, expires_at) \
                 VALUES ('family', ?, ?, ?)",
            )
            .bind(id)
            .bind(now)
            .bind(deny_until)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(ids)
    }

    async fn revoke_client(&self, client: &ClientId, now: i64, deny_until: i64) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "UPDATE token_families SET revoked_at = ?1, revoked_reason = 'client' \
             WHERE client_id = ?2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(client.as_str())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO revocations (kind, target, issued_before, created_at, expires_at) \
             VALUES ('client', ?, ?, ?, ?)",
        )
        .bind(client.as_str())
        .bind(now)
        .bind(now)
        .bind(deny_until)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn revoke_access_token(&self, jti: &str, now: i64, exp: i64) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO revocations (kind, target, created_at, expires_at) VALUES ('token', ?, ?, ?)",
        )
        .bind(jti)
        .bind(now)
        .bind(exp)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn revocations_since(&self, after: i64, now: i64) -> StoreResult<Vec<Revocation>> {
        let rows = sqlx::query(
            "SELECT id, kind, target, issued_before, expires_at FROM revocations \
             WHERE id > ? AND expires_at > ? ORDER BY id",
        )
        .bind(after)
        .bind(now)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(Revocation {
                    id: r.try_get("id")?,
                    kind: r.try_get("kind")?,
                    target: r.try_get("target")?,
                    issued_before: r.try_get("issued_before")?,
                    expires_at: r.try_get("expires_at")?,
                })
            })
            .collect()
    }

    async fn record_usage(&self, uses: &[Usage]) -> StoreResult<()> {
        if uses.is_empty() {
            return Ok(());
        }
        let mut tx = self.write.begin().await?;
        for u in uses {
            sqlx::query(
                "UPDATE token_families SET last_used_at = max(coalesce(last_used_at, 0), ?) \
                 WHERE id = ?",
            )
            .bind(u.at)
            .bind(&u.family_id)
            .execute(&mut *tx)
            .await?;
            if let Some(label) = &u.label {
                sqlx::query(
                    "UPDATE labels SET last_used_at = max(coalesce(last_used_at, 0), ?) \
                     WHERE client_id = ? AND name = ?",
                )
                .bind(u.at)
                .bind(&u.client_id)
                .bind(label)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    async fn prune(&self, now: i64) -> StoreResult<Pruned> {
        let mut tx = self.write.begin().await?;
        // A family is kept until its last token expired: reuse detection needs its
        // spent refresh tokens until then, even after it was revoked.
        let families = sqlx::query("DELETE FROM token_families WHERE expires_at <= ?")
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        // A refresh token past its own expiry is refused as expired whether spent or
        // not, so reuse detection no longer needs it.
        sqlx::query("DELETE FROM refresh_tokens WHERE expires_at <= ?")
            .bind(now)
            .execute(&mut *tx)
            .await?;
        let revocations = sqlx::query("DELETE FROM revocations WHERE expires_at <= ?")
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        // Grace answers are only needed for the longest grace a client has (bounded at
        // an hour here); the spent token itself stays for reuse detection.
        let grace_responses = sqlx::query(
            "UPDATE refresh_tokens SET grace_response = NULL \
             WHERE grace_response IS NOT NULL AND spent_at <= ? - (SELECT coalesce(max(refresh_reuse_grace), 0) FROM clients)",
        )
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        tx.commit().await?;
        Ok(Pruned {
            families,
            revocations,
            grace_responses,
        })
    }

    async fn append_audit(&self, event: &NewAuditEvent) -> StoreResult<()> {
        let event = event.clone();
        self.submit(|tx| WriteJob::Audit(event, tx)).await
    }

    async fn list_audit(&self, f: &AuditFilter) -> StoreResult<Vec<AuditRecord>> {
        let rows = audit_query("SELECT *", f)
            .build()
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AuditRecord {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    kind: r.try_get("kind")?,
                    actor_kind: r.try_get("actor_kind")?,
                    actor_id: r.try_get("actor_id")?,
                    target: r.try_get("target")?,
                    client_id: r.try_get("client_id")?,
                    label: r.try_get("label")?,
                    source: r.try_get("source")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }
}

/// The audit page's query with only the filters given, so that SQLite can use the
/// index by client (ordered by id within a client, so a page is a range read that
/// stops at its last row). Without a client it reads backwards by id and filters.
/// `+kind` keeps the planner off the index by kind and time, whose order is not the
/// page's: it would read and sort every event of a kind to return the newest few.
/// `select` is what goes before `FROM` (the tests put `EXPLAIN QUERY PLAN` first).
fn audit_query(select: &str, f: &AuditFilter) -> sqlx::QueryBuilder<sqlx::Sqlite> {
    let mut q = sqlx::QueryBuilder::new(format!("{select} FROM audit_events WHERE 1"));
    if let Some(client) = &f.client_id {
        q.push(" AND client_id = ").push_bind(client.clone());
    }
    if let Some(label) = &f.label {
        q.push(" AND label = ").push_bind(label.clone());
    }
    if let Some(kind) = &f.kind {
        q.push(" AND +kind = ").push_bind(kind.clone());
    }
    if let Some(since) = f.since {
        q.push(" AND at >= ").push_bind(since);
    }
    if let Some(before) = f.before_id {
        q.push(" AND id < ").push_bind(before);
    }
    q.push(" ORDER BY id DESC LIMIT ")
        .push_bind(f.limit.clamp(1, 1000));
    q
}

pub(crate) fn split_scopes(s: &str) -> Vec<String> {
    s.split(' ')
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn family_from_row(r: &SqliteRow) -> StoreResult<FamilyRecord> {
    let scopes: String = r.try_get("scopes")?;
    Ok(FamilyRecord {
        id: r.try_get("id")?,
        client_id: r.try_get("client_id")?,
        label: r.try_get("label")?,
        subject: r.try_get("subject")?,
        scopes: split_scopes(&scopes),
        grant_type: r.try_get("grant_type")?,
        created_at: r.try_get("created_at")?,
        last_used_at: r.try_get("last_used_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[tokio::test]
    async fn migration_5_keeps_refresh_tokens_stored_before_it_findable() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
        assert_eq!(
            apply_migrations(&store.write, &SQLITE[..4]).await.unwrap(),
            4
        );
        let sql = format!(
            "INSERT INTO clients (id, name, status, grant_types, redirect_uris, created_at, \
             updated_at) VALUES ('pc_old', 'old', 'active', '[]', '[]', 0, 0); \
             INSERT INTO token_families (id, client_id, subject, scopes, grant_type, \
             created_at, expires_at) VALUES ('fam_old', 'pc_old', 'pc_old', 'upload-data', \
             'client_credentials', 0, 5000); \
             INSERT INTO refresh_tokens (token_hash, family_id, scopes, created_at, expires_at) \
             VALUES (x'{}AB', 'fam_old', 'upload-data', 0, 5000);",
            "00".repeat(31)
        );
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&store.write)
            .await
            .unwrap();
        assert_eq!(store.migrate().await.unwrap(), SQLITE.len() - 4);
        let id = format!("h{}AB", "00".repeat(31));
        let found = store.find_refresh_token(&id).await.unwrap().unwrap();
        let mut hash = [0u8; 32];
        hash[31] = 0xAB;
        assert_eq!(found.token_hash, hash);
        assert_eq!(found.family.id, "fam_old");
        assert_eq!(found.spent_at, None);
    }

    async fn refresh_rows(store: &SqliteStore) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM refresh_tokens")
            .fetch_one(&store.read)
            .await
            .unwrap()
    }

    fn grant(client: &str, family: &str, selector: &str, expires_at: i64) -> NewGrant {
        NewGrant {
            family_id: family.into(),
            client_id: client.into(),
            label: Some("home".into()),
            subject: client.into(),
            scopes: "upload-data".into(),
            grant_type: "client_credentials".into(),
            created_at: 100,
            expires_at,
            refresh_token: Some(crate::NewRefresh {
                id: selector.into(),
                hash: [7; 32],
                expires_at,
            }),
            actor: crate::Actor::system(),
        }
    }

    /// Refresh tokens have no foreign key to their family since migration 7: the
    /// store itself must leave no row behind when a client is deleted or a family
    /// is pruned.
    #[tokio::test]
    async fn refresh_tokens_go_with_their_client_and_with_pruning() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
        store.migrate().await.unwrap();
        sqlx::raw_sql(
            "INSERT INTO clients (id, name, status, grant_types, redirect_uris, created_at, \
             updated_at) VALUES ('pc_gone', 'g', 'active', '[]', '[]', 0, 0), \
             ('pc_kept', 'k', 'active', '[]', '[]', 0, 0);",
        )
        .execute(&store.write)
        .await
        .unwrap();
        store
            .record_grant(grant("pc_gone", "fam_g", "r_g", 1000))
            .await
            .unwrap();
        store
            .record_grant(grant("pc_kept", "fam_k", "r_k", 1000))
            .await
            .unwrap();
        store
            .record_grant(grant("pc_kept", "fam_short", "r_s", 500))
            .await
            .unwrap();
        assert_eq!(refresh_rows(&store).await, 3);

        store
            .delete_client(&ClientId::parse("pc_gone").unwrap())
            .await
            .unwrap();
        assert_eq!(refresh_rows(&store).await, 2);
        assert!(store.find_refresh_token("r_k").await.unwrap().is_some());

        let pruned = store.prune(500).await.unwrap();
        assert_eq!(pruned.families, 1);
        assert_eq!(refresh_rows(&store).await, 1);
        assert!(store.find_refresh_token("r_s").await.unwrap().is_none());
        assert!(store.find_refresh_token("r_k").await.unwrap().is_some());
    }

    fn event(at: i64, kind: &str, client: &str, label: &str) -> NewAuditEvent {
        NewAuditEvent {
            at,
            kind: kind.into(),
            actor: crate::Actor::system(),
            target: None,
            client_id: Some(client.into()),
            label: Some(label.into()),
            detail: None,
        }
    }

    async fn audit_ids(store: &SqliteStore, f: AuditFilter) -> Vec<i64> {
        let found = store.list_audit(&f).await.unwrap();
        found.iter().map(|r| r.id).collect()
    }

    fn everything() -> AuditFilter {
        AuditFilter {
            limit: 100,
            ..AuditFilter::default()
        }
    }

    fn of_client(client: &str) -> AuditFilter {
        AuditFilter {
            client_id: Some(client.into()),
            ..everything()
        }
    }

    /// Each filter alone and together, newest first, paged by id.
    #[tokio::test]
    async fn the_audit_log_filters_and_pages_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
        store.migrate().await.unwrap();
        // ids 1..=8 in this order.
        for e in [
            event(100, "token.issue", "pc_a", "home-1"),
            event(100, "token.issue", "pc_b", "home-1"),
            event(200, "token.refresh", "pc_a", "home-2"),
            event(200, "token.issue", "pc_a", "home-1"),
            event(300, "token.revoke", "pc_b", "home-2"),
            event(300, "token.issue", "pc_a", "home-2"),
            event(400, "token.refresh", "pc_a", "home-1"),
            event(400, "token.issue", "pc_b", "home-1"),
        ] {
            store.append_audit(&e).await.unwrap();
        }
        let ids = |f| audit_ids(&store, f);
        assert_eq!(ids(everything()).await, [8, 7, 6, 5, 4, 3, 2, 1]);
        assert_eq!(ids(of_client("pc_a")).await, [7, 6, 4, 3, 1]);
        assert!(ids(of_client("pc_none")).await.is_empty());
        let label = AuditFilter {
            label: Some("home-2".into()),
            ..of_client("pc_a")
        };
        assert_eq!(ids(label).await, [6, 3]);
        let kind = AuditFilter {
            kind: Some("token.issue".into()),
            ..everything()
        };
        assert_eq!(ids(kind.clone()).await, [8, 6, 4, 2, 1]);
        let kind_and_client = AuditFilter {
            client_id: Some("pc_b".into()),
            ..kind
        };
        assert_eq!(ids(kind_and_client).await, [8, 2]);
        let since = AuditFilter {
            since: Some(300),
            ..of_client("pc_a")
        };
        assert_eq!(ids(since).await, [7, 6]);

        // Pages of two, each after the last id of the one before.
        let mut pages = Vec::new();
        let mut before = None;
        loop {
            let page = ids(AuditFilter {
                before_id: before,
                limit: 2,
                ..of_client("pc_a")
            })
            .await;
            let Some(&last) = page.last() else { break };
            before = Some(last);
            pages.push(page);
        }
        assert_eq!(pages, [vec![7, 6], vec![4, 3], vec![1]]);
    }

    /// The plan SQLite makes for the audit page's query, with the filter's own binds.
    async fn audit_plan(store: &SqliteStore, f: &AuditFilter) -> Vec<String> {
        audit_query("EXPLAIN QUERY PLAN SELECT *", f)
            .build()
            .fetch_all(&store.read)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>("detail"))
            .collect()
    }

    /// A client's page is a range read of the index by client in the page's order:
    /// no scan of the whole log, no sort of all of the client's events. Without a
    /// client, the log is read backwards by id, never sorted.
    #[tokio::test]
    async fn audit_pages_read_in_their_own_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
        store.migrate().await.unwrap();
        let page = AuditFilter {
            kind: Some("token.issue".into()),
            before_id: Some(1000),
            limit: 50,
            ..of_client("pc_a")
        };
        assert_eq!(
            audit_plan(&store, &page).await,
            ["SEARCH audit_events USING INDEX audit_events_by_client (client_id=? AND rowid<?)"]
        );
        let by_kind = AuditFilter {
            kind: Some("token.issue".into()),
            ..everything()
        };
        assert_eq!(audit_plan(&store, &by_kind).await, ["SCAN audit_events"]);
    }
}
