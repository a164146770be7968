//! Signing keys on PostgreSQL: one current key for every node. Adding a key takes
//! a transaction advisory lock, so two nodes rotating at once do it one after the
//! other, and the second (automatic rotation) finds the first's key and stops.

use super::{PgStore, audit, bounded, lock, notify};
use crate::rows::unreadable;
use crate::{KeyChange, KeyState, KeyStore, StoreResult, StoredKey};
use async_trait::async_trait;

#[async_trait]
impl KeyStore for PgStore {
    async fn add_signing_key(
        &self,
        k: &StoredKey,
        previous_retire_after: i64,
        change: &KeyChange,
    ) -> StoreResult<bool> {
        in_tx!(self, |tx| {
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&lock::KEYS])
                .await?;
            if let Some(since) = change.unless_current_since {
                let newer = tx
                    .query_opt(
                        "SELECT 1 FROM signing_keys WHERE state = 'current' AND created_at >= $1",
                        &[&since],
                    )
                    .await?;
                if newer.is_some() {
                    return Ok(false);
                }
            }
            tx.execute(
                "UPDATE signing_keys SET state = 'previous', rotated_at = $1, retire_after = $2 \
                 WHERE state = 'current'",
                &[&k.created_at, &previous_retire_after],
            )
            .await?;
            tx.execute(
                "INSERT INTO signing_keys (kid, alg, private_key_enc, public_jwk, state, \
                 created_at) VALUES ($1, $2, $3, $4, 'current', $5)",
                &[
                    &k.kid,
                    &k.alg,
                    &k.private_key_enc,
                    &k.public_jwk,
                    &k.created_at,
                ],
            )
            .await?;
            if let Some(a) = &change.audit {
                audit::insert(tx, a).await?;
            }
            notify(tx, "keys").await?;
            Ok(true)
        })
    }

    async fn signing_keys(&self) -> StoreResult<Vec<StoredKey>> {
        bounded(async {
            let c = self.conn().await?;
            let stmt = c
                .prepare_cached(
                    "SELECT kid, alg, private_key_enc, public_jwk, state, created_at, \
                     retire_after FROM signing_keys WHERE state <> 'retired' \
                     ORDER BY state = 'current' DESC, created_at DESC",
                )
                .await?;
            c.query(&stmt, &[])
                .await?
                .iter()
                .map(|r| {
                    let state: &str = r.try_get("state")?;
                    Ok(StoredKey {
                        kid: r.try_get("kid")?,
                        alg: r.try_get("alg")?,
                        private_key_enc: r.try_get("private_key_enc")?,
                        public_jwk: r.try_get("public_jwk")?,
                        state: KeyState::parse(state).ok_or_else(|| unreadable("key state"))?,
                        created_at: r.try_get("created_at")?,
                        retire_after: r.try_get("retire_after")?,
                    })
                })
                .collect()
        })
        .await
    }
}
