//! Admin users (Argon2id hashes, made by the caller) and their web sessions
//! (stored by the HMAC of the cookie, never the cookie).

use super::SqliteStore;
use crate::{AdminSessionRow, AdminStore, StoreError, StoreResult};
use async_trait::async_trait;
use rusqlite::{OptionalExtension, params};

#[async_trait]
impl AdminStore for SqliteStore {
    async fn count_admin_users(&self) -> StoreResult<i64> {
        self.read(|c| Ok(c.query_row("SELECT count(*) FROM admin_users", [], |r| r.get(0))?))
            .await
    }

    async fn create_admin_user(&self, name: &str, hash: &str, now: i64) -> StoreResult<()> {
        let (name, hash) = (name.to_owned(), hash.to_owned());
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO admin_users (name, password_hash, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?3)",
                params![name, hash, now],
            )
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => {
                    StoreError::Conflict(format!("admin user {name} already exists"))
                }
                other => other,
            })?;
            Ok(())
        })
        .await
    }

    async fn set_admin_password(&self, name: &str, hash: &str, now: i64) -> StoreResult<()> {
        let (name, hash) = (name.to_owned(), hash.to_owned());
        self.write(move |tx| {
            let n = tx.execute(
                "UPDATE admin_users SET password_hash = ?1, updated_at = ?2 WHERE name = ?3",
                params![hash, now, name],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("admin user {name}")));
            }
            // Whoever knew the old password is signed out with it.
            tx.execute("DELETE FROM admin_sessions WHERE user_name = ?1", [&name])?;
            Ok(())
        })
        .await
    }

    async fn admin_password_hash(&self, name: &str) -> StoreResult<Option<String>> {
        let name = name.to_owned();
        self.read(move |c| {
            Ok(
                c.prepare_cached("SELECT password_hash FROM admin_users WHERE name = ?1")?
                    .query_row([name], |r| r.get(0))
                    .optional()?,
            )
        })
        .await
    }

    async fn create_admin_session(&self, s: &AdminSessionRow) -> StoreResult<()> {
        let s = s.clone();
        self.write(move |tx| {
            // Expired sessions go as new ones arrive: the table stays small.
            tx.execute(
                "DELETE FROM admin_sessions WHERE expires_at <= ?1",
                [s.created_at],
            )?;
            tx.execute(
                "INSERT INTO admin_sessions (id_hash, user_name, csrf_token, created_at, \
                 last_seen_at, expires_at, source) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    s.id_hash.as_slice(),
                    s.user_name,
                    s.csrf_token,
                    s.created_at,
                    s.last_seen_at,
                    s.expires_at,
                    s.source
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_admin_session(
        &self,
        id_hash: &[u8; 32],
        now: i64,
    ) -> StoreResult<Option<AdminSessionRow>> {
        let id_hash = *id_hash;
        self.read(move |c| {
            // Found by its hash, so the hash is the one asked for.
            Ok(c.prepare_cached(
                "SELECT user_name, csrf_token, created_at, last_seen_at, expires_at, source \
                 FROM admin_sessions WHERE id_hash = ?1 AND expires_at > ?2",
            )?
            .query_row(params![id_hash.as_slice(), now], |r| {
                Ok(AdminSessionRow {
                    id_hash,
                    user_name: r.get(0)?,
                    csrf_token: r.get(1)?,
                    created_at: r.get(2)?,
                    last_seen_at: r.get(3)?,
                    expires_at: r.get(4)?,
                    source: r.get(5)?,
                })
            })
            .optional()?)
        })
        .await
    }

    async fn touch_admin_session(&self, id_hash: &[u8; 32], now: i64) -> StoreResult<()> {
        let id_hash = *id_hash;
        self.write(move |tx| {
            tx.execute(
                "UPDATE admin_sessions SET last_seen_at = ?1 WHERE id_hash = ?2",
                params![now, id_hash.as_slice()],
            )?;
            Ok(())
        })
        .await
    }

    async fn delete_admin_session(&self, id_hash: &[u8; 32]) -> StoreResult<()> {
        let id_hash = *id_hash;
        self.write(move |tx| {
            tx.execute(
                "DELETE FROM admin_sessions WHERE id_hash = ?1",
                [id_hash.as_slice()],
            )?;
            Ok(())
        })
        .await
    }
}
