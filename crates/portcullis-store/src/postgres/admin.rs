//! Admin users (Argon2id hashes made by the caller) and their web sessions
//! (stored by the HMAC of the cookie) on PostgreSQL.

use super::{PgStore, bounded};
use crate::{AdminSessionRow, AdminStore, StoreError, StoreResult};
use async_trait::async_trait;

#[async_trait]
impl AdminStore for PgStore {
    async fn count_admin_users(&self) -> StoreResult<i64> {
        bounded(async {
            Ok(self
                .conn()
                .await?
                .query_one("SELECT count(*) FROM admin_users", &[])
                .await?
                .try_get(0)?)
        })
        .await
    }

    async fn create_admin_user(&self, name: &str, hash: &str, now: i64) -> StoreResult<()> {
        bounded(async {
            self.conn()
                .await?
                .execute(
                    "INSERT INTO admin_users (name, password_hash, created_at, updated_at) \
                     VALUES ($1, $2, $3, $3)",
                    &[&name, &hash, &now],
                )
                .await
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
        in_tx!(self, |tx| {
            let n = tx
                .execute(
                    "UPDATE admin_users SET password_hash = $1, updated_at = $2 WHERE name = $3",
                    &[&hash, &now, &name],
                )
                .await?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("admin user {name}")));
            }
            // Whoever knew the old password is signed out with it.
            tx.execute("DELETE FROM admin_sessions WHERE user_name = $1", &[&name])
                .await?;
            Ok(())
        })
    }

    async fn admin_password_hash(&self, name: &str) -> StoreResult<Option<String>> {
        bounded(async {
            let c = self.conn().await?;
            let stmt = c
                .prepare_cached("SELECT password_hash FROM admin_users WHERE name = $1")
                .await?;
            Ok(c.query_opt(&stmt, &[&name])
                .await?
                .map(|r| r.try_get(0))
                .transpose()?)
        })
        .await
    }

    async fn create_admin_session(&self, s: &AdminSessionRow) -> StoreResult<()> {
        in_tx!(self, |tx| {
            // Expired sessions go as new ones arrive: the table stays small.
            tx.execute(
                "DELETE FROM admin_sessions WHERE expires_at <= $1",
                &[&s.created_at],
            )
            .await?;
            tx.execute(
                "INSERT INTO admin_sessions (id_hash, user_name, csrf_token, created_at, \
                 last_seen_at, expires_at, source) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &s.id_hash.as_slice(),
                    &s.user_name,
                    &s.csrf_token,
                    &s.created_at,
                    &s.last_seen_at,
                    &s.expires_at,
                    &s.source,
                ],
            )
            .await?;
            Ok(())
        })
    }

    async fn get_admin_session(
        &self,
        id_hash: &[u8; 32],
        now: i64,
    ) -> StoreResult<Option<AdminSessionRow>> {
        bounded(async {
            let c = self.conn().await?;
            let stmt = c
                .prepare_cached(
                    "SELECT user_name, csrf_token, created_at, last_seen_at, expires_at, source \
                     FROM admin_sessions WHERE id_hash = $1 AND expires_at > $2",
                )
                .await?;
            c.query_opt(&stmt, &[&id_hash.as_slice(), &now])
                .await?
                .map(|r| {
                    // Found by its hash, so the hash is the one asked for.
                    Ok(AdminSessionRow {
                        id_hash: *id_hash,
                        user_name: r.try_get(0)?,
                        csrf_token: r.try_get(1)?,
                        created_at: r.try_get(2)?,
                        last_seen_at: r.try_get(3)?,
                        expires_at: r.try_get(4)?,
                        source: r.try_get(5)?,
                    })
                })
                .transpose()
        })
        .await
    }

    async fn touch_admin_session(&self, id_hash: &[u8; 32], now: i64) -> StoreResult<()> {
        bounded(async {
            self.conn()
                .await?
                .execute(
                    "UPDATE admin_sessions SET last_seen_at = $1 WHERE id_hash = $2",
                    &[&now, &id_hash.as_slice()],
                )
                .await?;
            Ok(())
        })
        .await
    }

    async fn delete_admin_session(&self, id_hash: &[u8; 32]) -> StoreResult<()> {
        bounded(async {
            self.conn()
                .await?
                .execute(
                    "DELETE FROM admin_sessions WHERE id_hash = $1",
                    &[&id_hash.as_slice()],
                )
                .await?;
            Ok(())
        })
        .await
    }
}
