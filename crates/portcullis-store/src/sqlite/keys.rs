//! Signing keys: the private key encrypted (by the caller) at rest, and the
//! current → previous → retired life of each.

use super::SqliteStore;
use crate::{KeyChange, KeyState, KeyStore, StoreResult, StoredKey};
use async_trait::async_trait;
use rusqlite::OptionalExtension;
use rusqlite::params;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ValueRef};

impl FromSql for KeyState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let name = value.as_str()?;
        KeyState::parse(name)
            .ok_or_else(|| FromSqlError::Other(format!("key state {name:?}").into()))
    }
}

#[async_trait]
impl KeyStore for SqliteStore {
    async fn add_signing_key(
        &self,
        k: &StoredKey,
        previous_retire_after: i64,
        change: &KeyChange,
    ) -> StoreResult<bool> {
        let (k, change) = (k.clone(), change.clone());
        self.write(move |tx| {
            if let Some(since) = change.unless_current_since {
                let newer: Option<i64> = tx
                    .query_row(
                        "SELECT 1 FROM signing_keys WHERE state = 'current' AND created_at >= ?1",
                        [since],
                        |r| r.get(0),
                    )
                    .optional()?;
                if newer.is_some() {
                    return Ok(false);
                }
            }
            tx.execute(
                "UPDATE signing_keys SET state = 'previous', rotated_at = ?1, retire_after = ?2 \
                 WHERE state = 'current'",
                params![k.created_at, previous_retire_after],
            )?;
            tx.execute(
                "INSERT INTO signing_keys (kid, alg, private_key_enc, public_jwk, state, \
                 created_at) VALUES (?1, ?2, ?3, ?4, 'current', ?5)",
                params![k.kid, k.alg, k.private_key_enc, k.public_jwk, k.created_at],
            )?;
            if let Some(audit) = &change.audit {
                super::audit::insert(tx, audit)?;
            }
            Ok(true)
        })
        .await
    }

    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT * FROM signing_keys WHERE state != 'retired' \
                 ORDER BY state = 'current' DESC, created_at DESC",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(StoredKey {
                    kid: r.get("kid")?,
                    alg: r.get("alg")?,
                    private_key_enc: r.get("private_key_enc")?,
                    public_jwk: r.get("public_jwk")?,
                    state: r.get("state")?,
                    created_at: r.get("created_at")?,
                    retire_after: r.get("retire_after")?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }
}
