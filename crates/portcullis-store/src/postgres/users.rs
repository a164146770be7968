//! End users, their sessions, their consents and authorization codes on
//! PostgreSQL.

use super::revocations::record_family_revocations;
use super::{PgStore, audit, bounded, notify, scopes};
use crate::{
    ConsentChange, ConsentRecord, NewAuditEvent, NewCode, StoreError, StoreResult, StoredCode,
    UserRecord, UserSessionRow, UserStore,
};
use async_trait::async_trait;
use deadpool_postgres::Transaction;
use portcullis_core::{AuditKind, ScopeSet};
use tokio_postgres::Row;

const USER_COLUMNS: &str = "id, name, password_hash, status, created_at, updated_at";

fn user_row(r: &Row) -> StoreResult<UserRecord> {
    Ok(UserRecord {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        password_hash: r.try_get(2)?,
        active: r.try_get::<_, String>(3)? == "active",
        created_at: r.try_get(4)?,
        updated_at: r.try_get(5)?,
    })
}

fn status(active: bool) -> &'static str {
    if active { "active" } else { "disabled" }
}

/// Marks the live authorization-code families of `subject` (only `client`'s,
/// when given) revoked and records their revocations; returns their ids.
async fn revoke_subject_families(
    tx: &Transaction<'_>,
    subject: &str,
    client: Option<&str>,
    now: i64,
    reason: &str,
    deny_until: i64,
    audit: &NewAuditEvent,
) -> StoreResult<Vec<String>> {
    let rows = tx
        .query(
            "UPDATE token_families SET revoked_at = $1, revoked_reason = $2 \
             WHERE subject = $3 AND ($4::text IS NULL OR client_id = $4) \
             AND grant_type = 'authorization_code' \
             AND revoked_at IS NULL AND expires_at > $1 RETURNING id, client_id, label",
            &[&now, &reason, &subject, &client],
        )
        .await?;
    record_family_revocations(tx, &rows, now, deny_until, audit).await
}

#[async_trait]
impl UserStore for PgStore {
    async fn create_user(&self, user: &UserRecord, audit: &NewAuditEvent) -> StoreResult<()> {
        in_tx!(self, |tx| {
            tx.execute(
                "INSERT INTO users (id, name, password_hash, status, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[
                    &user.id,
                    &user.name,
                    &user.password_hash,
                    &status(user.active),
                    &user.created_at,
                    &user.updated_at,
                ],
            )
            .await
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => {
                    StoreError::Conflict(format!("user {} already exists", user.name))
                }
                other => other,
            })?;
            audit::insert(tx, audit).await
        })
    }

    async fn get_user(&self, id: &str) -> StoreResult<Option<UserRecord>> {
        bounded(async {
            self.conn()
                .await?
                .query_opt(
                    &format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"),
                    &[&id],
                )
                .await?
                .as_ref()
                .map(user_row)
                .transpose()
        })
        .await
    }

    async fn find_user(&self, name: &str) -> StoreResult<Option<UserRecord>> {
        bounded(async {
            self.conn()
                .await?
                .query_opt(
                    &format!("SELECT {USER_COLUMNS} FROM users WHERE name = $1"),
                    &[&name],
                )
                .await?
                .as_ref()
                .map(user_row)
                .transpose()
        })
        .await
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        bounded(async {
            self.conn()
                .await?
                .query(
                    &format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"),
                    &[],
                )
                .await?
                .iter()
                .map(user_row)
                .collect()
        })
        .await
    }

    async fn set_user_password(
        &self,
        id: &str,
        password_hash: &str,
        now: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<()> {
        in_tx!(self, |tx| {
            let n = tx
                .execute(
                    "UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3",
                    &[&password_hash, &now, &id],
                )
                .await?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("user {id}")));
            }
            tx.execute("DELETE FROM user_sessions WHERE user_id = $1", &[&id])
                .await?;
            audit::insert(tx, audit).await
        })
    }

    async fn set_user_status(
        &self,
        id: &str,
        active: bool,
        now: i64,
        deny_until: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<Vec<String>> {
        in_tx!(self, |tx| {
            let n = tx
                .execute(
                    "UPDATE users SET status = $1, updated_at = $2 WHERE id = $3",
                    &[&status(active), &now, &id],
                )
                .await?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("user {id}")));
            }
            audit::insert(tx, audit).await?;
            if active {
                return Ok(Vec::new());
            }
            tx.execute("DELETE FROM user_sessions WHERE user_id = $1", &[&id])
                .await?;
            let revocation = NewAuditEvent {
                kind: AuditKind::TokenRevoke,
                ..audit.clone()
            };
            revoke_subject_families(tx, id, None, now, "user_disabled", deny_until, &revocation)
                .await
        })
    }

    async fn create_user_session(&self, s: &UserSessionRow) -> StoreResult<()> {
        in_tx!(self, |tx| {
            // Expired sessions go as new ones arrive: the table stays small.
            tx.execute(
                "DELETE FROM user_sessions WHERE expires_at <= $1",
                &[&s.created_at],
            )
            .await?;
            tx.execute(
                "INSERT INTO user_sessions (id_hash, user_id, csrf_token, created_at, \
                 last_seen_at, expires_at, source) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &s.id_hash.as_slice(),
                    &s.user_id,
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

    async fn get_user_session(
        &self,
        id_hash: &[u8; 32],
        now: i64,
    ) -> StoreResult<Option<UserSessionRow>> {
        bounded(async {
            let row = self
                .conn()
                .await?
                .query_opt(
                    "SELECT s.user_id, s.csrf_token, s.created_at, s.last_seen_at, \
                     s.expires_at, s.source FROM user_sessions s \
                     JOIN users u ON u.id = s.user_id \
                     WHERE s.id_hash = $1 AND s.expires_at > $2 AND u.status = 'active'",
                    &[&id_hash.as_slice(), &now],
                )
                .await?;
            row.map(|r| {
                Ok(UserSessionRow {
                    id_hash: *id_hash,
                    user_id: r.try_get(0)?,
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

    async fn touch_user_session(&self, id_hash: &[u8; 32], now: i64) -> StoreResult<()> {
        bounded(async {
            self.conn()
                .await?
                .execute(
                    "UPDATE user_sessions SET last_seen_at = $1 WHERE id_hash = $2",
                    &[&now, &id_hash.as_slice()],
                )
                .await?;
            Ok(())
        })
        .await
    }

    async fn delete_user_session(&self, id_hash: &[u8; 32]) -> StoreResult<()> {
        bounded(async {
            self.conn()
                .await?
                .execute(
                    "DELETE FROM user_sessions WHERE id_hash = $1",
                    &[&id_hash.as_slice()],
                )
                .await?;
            Ok(())
        })
        .await
    }

    async fn get_consent(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> StoreResult<Option<ConsentRecord>> {
        bounded(async {
            let row = self
                .conn()
                .await?
                .query_opt(
                    "SELECT k.scopes, k.created_at, k.updated_at, c.name FROM consents k \
                     JOIN clients c ON c.id = k.client_id \
                     WHERE k.user_id = $1 AND k.client_id = $2",
                    &[&user_id, &client_id],
                )
                .await?;
            row.map(|r| {
                Ok(ConsentRecord {
                    user_id: user_id.to_owned(),
                    client_id: client_id.to_owned(),
                    scopes: scopes(r.try_get(0)?)?,
                    created_at: r.try_get(1)?,
                    updated_at: r.try_get(2)?,
                    client_name: r.try_get(3)?,
                    last_used_at: None,
                })
            })
            .transpose()
        })
        .await
    }

    async fn put_consent(&self, consent: &ConsentRecord, audit: &NewAuditEvent) -> StoreResult<()> {
        in_tx!(self, |tx| {
            // One statement, so that consents given at once for the same
            // application all end up in it: a first consent inserts, and one that
            // meets a row (committed, or inserted by a transaction it waits for)
            // widens that row as it then stands. A read before the write locks
            // nothing while the row does not exist yet, so two first consents
            // would both insert and the second would replace the first.
            tx.execute(
                "INSERT INTO consents (user_id, client_id, scopes, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $4) ON CONFLICT (user_id, client_id) \
                 DO UPDATE SET updated_at = excluded.updated_at, scopes = \
                 (SELECT string_agg(s, ' ' ORDER BY s) FROM (SELECT DISTINCT s COLLATE \"C\" \
                  AS s FROM unnest(string_to_array(consents.scopes || ' ' || excluded.scopes, \
                  ' ')) AS t (s) WHERE s <> '') AS u)",
                &[
                    &consent.user_id,
                    &consent.client_id,
                    &consent.scopes.to_string(),
                    &consent.updated_at,
                ],
            )
            .await?;
            audit::insert(tx, audit).await
        })
    }

    async fn list_consents(&self, user_id: &str) -> StoreResult<Vec<ConsentRecord>> {
        // The last use of the grant's own tokens: the families revoke_consent
        // would revoke, not the client's client-credentials ones.
        bounded(async {
            self.conn()
                .await?
                .query(
                    "SELECT k.client_id, c.name, k.scopes, k.created_at, k.updated_at, \
                     (SELECT max(f.last_used_at) FROM token_families f \
                      WHERE f.subject = k.user_id AND f.client_id = k.client_id \
                      AND f.grant_type = 'authorization_code') \
                     FROM consents k JOIN clients c ON c.id = k.client_id \
                     WHERE k.user_id = $1 ORDER BY c.name, k.client_id",
                    &[&user_id],
                )
                .await?
                .iter()
                .map(|r| {
                    Ok(ConsentRecord {
                        user_id: user_id.to_owned(),
                        client_id: r.try_get(0)?,
                        client_name: r.try_get(1)?,
                        scopes: scopes(r.try_get(2)?)?,
                        created_at: r.try_get(3)?,
                        updated_at: r.try_get(4)?,
                        last_used_at: r.try_get(5)?,
                    })
                })
                .collect()
        })
        .await
    }

    async fn revoke_consent(
        &self,
        user_id: &str,
        client_id: &str,
        keep: Option<&ScopeSet>,
        now: i64,
        deny_until: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<ConsentChange> {
        in_tx!(self, |tx| {
            let n = match keep {
                None => {
                    tx.execute(
                        "DELETE FROM consents WHERE user_id = $1 AND client_id = $2",
                        &[&user_id, &client_id],
                    )
                    .await?
                }
                Some(scopes) => {
                    tx.execute(
                        "UPDATE consents SET scopes = $3, updated_at = $4 \
                         WHERE user_id = $1 AND client_id = $2",
                        &[&user_id, &client_id, &scopes.to_string(), &now],
                    )
                    .await?
                }
            };
            if n == 0 {
                return Err(StoreError::NotFound(format!(
                    "grant of {user_id} to {client_id}"
                )));
            }
            audit::insert(tx, audit).await?;
            let revocation = NewAuditEvent {
                kind: AuditKind::TokenRevoke,
                ..audit.clone()
            };
            let Some(keep) = keep else {
                let revoked = revoke_subject_families(
                    tx,
                    user_id,
                    Some(client_id),
                    now,
                    "consent_revoked",
                    deny_until,
                    &revocation,
                )
                .await?;
                return Ok(ConsentChange {
                    revoked,
                    narrowed: Vec::new(),
                });
            };
            let families = tx
                .query(
                    "SELECT id, scopes, label FROM token_families WHERE subject = $1 \
                     AND client_id = $2 AND grant_type = 'authorization_code' \
                     AND revoked_at IS NULL AND expires_at > $3 FOR UPDATE",
                    &[&user_id, &client_id, &now],
                )
                .await?;
            let mut change = ConsentChange::default();
            let mut events = Vec::with_capacity(families.len());
            for r in &families {
                let id: String = r.try_get(0)?;
                let kept: ScopeSet = scopes(r.try_get(1)?)?
                    .iter()
                    .filter(|s| keep.contains(s))
                    .cloned()
                    .collect();
                events.push(NewAuditEvent {
                    target: Some(id.clone()),
                    client_id: Some(client_id.to_owned()),
                    label: r.try_get(2)?,
                    ..revocation.clone()
                });
                if kept.is_empty() {
                    tx.execute(
                        "UPDATE token_families SET revoked_at = $1, \
                         revoked_reason = 'consent_narrowed' WHERE id = $2",
                        &[&now, &id],
                    )
                    .await?;
                    tx.execute(
                        "INSERT INTO revocations (kind, target, created_at, expires_at) \
                         VALUES ('family', $1, $2, $3)",
                        &[&id, &now, &deny_until],
                    )
                    .await?;
                    change.revoked.push(id);
                } else {
                    tx.execute(
                        "UPDATE token_families SET scopes = $1 WHERE id = $2",
                        &[&kept.to_string(), &id],
                    )
                    .await?;
                    tx.execute(
                        "INSERT INTO revocations (kind, target, issued_before, created_at, \
                         expires_at) VALUES ('family', $1, $2, $2, $3)",
                        &[&id, &now, &deny_until],
                    )
                    .await?;
                    change.narrowed.push(id);
                }
            }
            if !events.is_empty() {
                let refs: Vec<&NewAuditEvent> = events.iter().collect();
                audit::insert_many(tx, &refs).await?;
                notify(tx, "revocations").await?;
            }
            Ok(change)
        })
    }

    async fn create_code(&self, code: &NewCode) -> StoreResult<()> {
        bounded(async {
            self.conn()
                .await?
                .execute(
                    "INSERT INTO authorization_codes (code_hash, client_id, user_id, \
                     redirect_uri, redirect_uri_given, scopes, code_challenge, family_id, \
                     created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                    &[
                        &code.hash.as_slice(),
                        &code.client_id,
                        &code.user_id,
                        &code.redirect_uri,
                        &code.redirect_uri_given,
                        &code.scopes.to_string(),
                        &code.code_challenge,
                        &code.family_id,
                        &code.created_at,
                        &code.expires_at,
                    ],
                )
                .await?;
            Ok(())
        })
        .await
    }

    async fn find_code(&self, hash: &[u8; 32]) -> StoreResult<Option<StoredCode>> {
        bounded(async {
            let c = self.conn().await?;
            let stmt = c
                .prepare_cached(
                    "SELECT c.client_id, c.user_id, c.redirect_uri, c.redirect_uri_given, \
                     c.scopes, c.code_challenge, c.family_id, c.created_at, c.expires_at, \
                     c.spent, coalesce(u.status = 'active', false) \
                     FROM authorization_codes c LEFT JOIN users u ON u.id = c.user_id \
                     WHERE c.code_hash = $1",
                )
                .await?;
            let Some(r) = c.query_opt(&stmt, &[&hash.as_slice()]).await? else {
                return Ok(None);
            };
            Ok(Some(StoredCode {
                code: NewCode {
                    hash: *hash,
                    client_id: r.try_get(0)?,
                    user_id: r.try_get(1)?,
                    redirect_uri: r.try_get(2)?,
                    redirect_uri_given: r.try_get(3)?,
                    scopes: scopes(r.try_get(4)?)?,
                    code_challenge: r.try_get(5)?,
                    family_id: r.try_get(6)?,
                    created_at: r.try_get(7)?,
                    expires_at: r.try_get(8)?,
                },
                spent: r.try_get(9)?,
                user_active: r.try_get(10)?,
            }))
        })
        .await
    }
}
