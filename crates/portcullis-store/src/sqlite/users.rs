//! End users, their sessions, their consents and authorization codes.

use super::revocations::record_family_revocations;
use super::{SqliteStore, audit, scopes};
use crate::{
    ConsentChange, ConsentRecord, NewAuditEvent, NewCode, StoreError, StoreResult, StoredCode,
    UserRecord, UserSessionRow, UserStore,
};
use async_trait::async_trait;
use portcullis_core::ScopeSet;
use rusqlite::{OptionalExtension, Row, Transaction, params};

const USER_COLUMNS: &str = "id, name, password_hash, status, created_at, updated_at";

fn user_row(r: &Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        password_hash: r.get(2)?,
        active: r.get::<_, String>(3)? == "active",
        created_at: r.get(4)?,
        updated_at: r.get(5)?,
    })
}

/// Marks the live families of `subject` (only `client`'s, when given) revoked and
/// records their revocations; returns their ids.
fn revoke_subject_families(
    tx: &Transaction<'_>,
    subject: &str,
    client: Option<&str>,
    now: i64,
    reason: &str,
    deny_until: i64,
    audit: &NewAuditEvent,
) -> StoreResult<Vec<String>> {
    let revoked: Vec<(String, String, Option<String>)> = tx
        .prepare_cached(
            "UPDATE token_families SET revoked_at = ?1, revoked_reason = ?2 \
             WHERE subject = ?3 AND (?4 IS NULL OR client_id = ?4) \
             AND grant_type = 'authorization_code' \
             AND revoked_at IS NULL AND expires_at > ?1 RETURNING id, client_id, label",
        )?
        .query_map(params![now, reason, subject, client], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    record_family_revocations(tx, revoked, now, deny_until, audit)
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, user: &UserRecord, audit: &NewAuditEvent) -> StoreResult<()> {
        let (user, audit) = (user.clone(), audit.clone());
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO users (id, name, password_hash, status, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    user.id,
                    user.name,
                    user.password_hash,
                    if user.active { "active" } else { "disabled" },
                    user.created_at,
                    user.updated_at
                ],
            )
            .map_err(|e| match StoreError::from(e) {
                StoreError::Conflict(_) => {
                    StoreError::Conflict(format!("user {} already exists", user.name))
                }
                other => other,
            })?;
            audit::insert(tx, &audit)
        })
        .await
    }

    async fn get_user(&self, id: &str) -> StoreResult<Option<UserRecord>> {
        let id = id.to_owned();
        self.read(move |c| {
            Ok(
                c.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?
                    .query_row([id], user_row)
                    .optional()?,
            )
        })
        .await
    }

    async fn find_user(&self, name: &str) -> StoreResult<Option<UserRecord>> {
        let name = name.to_owned();
        self.read(move |c| {
            Ok(
                c.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?1"))?
                    .query_row([name], user_row)
                    .optional()?,
            )
        })
        .await
    }

    async fn list_users(&self) -> StoreResult<Vec<UserRecord>> {
        self.read(move |c| {
            Ok(
                c.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY name"))?
                    .query_map([], user_row)?
                    .collect::<Result<_, _>>()?,
            )
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
        let (id, hash, audit) = (id.to_owned(), password_hash.to_owned(), audit.clone());
        self.write(move |tx| {
            let n = tx.execute(
                "UPDATE users SET password_hash = ?1, updated_at = ?2 WHERE id = ?3",
                params![hash, now, id],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("user {id}")));
            }
            tx.execute("DELETE FROM user_sessions WHERE user_id = ?1", [&id])?;
            audit::insert(tx, &audit)
        })
        .await
    }

    async fn set_user_status(
        &self,
        id: &str,
        active: bool,
        now: i64,
        deny_until: i64,
        audit: &NewAuditEvent,
    ) -> StoreResult<Vec<String>> {
        let (id, audit) = (id.to_owned(), audit.clone());
        self.write(move |tx| {
            let n = tx.execute(
                "UPDATE users SET status = ?1, updated_at = ?2 WHERE id = ?3",
                params![if active { "active" } else { "disabled" }, now, id],
            )?;
            if n == 0 {
                return Err(StoreError::NotFound(format!("user {id}")));
            }
            audit::insert(tx, &audit)?;
            if active {
                return Ok(Vec::new());
            }
            tx.execute("DELETE FROM user_sessions WHERE user_id = ?1", [&id])?;
            let revocation = NewAuditEvent {
                kind: portcullis_core::AuditKind::TokenRevoke,
                ..audit.clone()
            };
            revoke_subject_families(tx, &id, None, now, "user_disabled", deny_until, &revocation)
        })
        .await
    }

    async fn create_user_session(&self, s: &UserSessionRow) -> StoreResult<()> {
        let s = s.clone();
        self.write(move |tx| {
            // Expired sessions go as new ones arrive: the table stays small.
            tx.execute(
                "DELETE FROM user_sessions WHERE expires_at <= ?1",
                [s.created_at],
            )?;
            tx.execute(
                "INSERT INTO user_sessions (id_hash, user_id, csrf_token, created_at, \
                 last_seen_at, expires_at, source) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    s.id_hash.as_slice(),
                    s.user_id,
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

    async fn get_user_session(
        &self,
        id_hash: &[u8; 32],
        now: i64,
    ) -> StoreResult<Option<UserSessionRow>> {
        let id_hash = *id_hash;
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT s.user_id, s.csrf_token, s.created_at, s.last_seen_at, s.expires_at, \
                 s.source FROM user_sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.id_hash = ?1 AND s.expires_at > ?2 AND u.status = 'active'",
            )?
            .query_row(params![id_hash.as_slice(), now], |r| {
                Ok(UserSessionRow {
                    id_hash,
                    user_id: r.get(0)?,
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

    async fn touch_user_session(&self, id_hash: &[u8; 32], now: i64) -> StoreResult<()> {
        let id_hash = *id_hash;
        self.write(move |tx| {
            tx.execute(
                "UPDATE user_sessions SET last_seen_at = ?1 WHERE id_hash = ?2",
                params![now, id_hash.as_slice()],
            )?;
            Ok(())
        })
        .await
    }

    async fn delete_user_session(&self, id_hash: &[u8; 32]) -> StoreResult<()> {
        let id_hash = *id_hash;
        self.write(move |tx| {
            tx.execute(
                "DELETE FROM user_sessions WHERE id_hash = ?1",
                [id_hash.as_slice()],
            )?;
            Ok(())
        })
        .await
    }

    async fn get_consent(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> StoreResult<Option<ConsentRecord>> {
        let (user_id, client_id) = (user_id.to_owned(), client_id.to_owned());
        self.read(move |c| {
            Ok(c.prepare_cached(
                "SELECT k.scopes, k.created_at, k.updated_at, c.name FROM consents k \
                 JOIN clients c ON c.id = k.client_id \
                 WHERE k.user_id = ?1 AND k.client_id = ?2",
            )?
            .query_row(params![user_id, client_id], |r| {
                Ok(ConsentRecord {
                    user_id: user_id.clone(),
                    client_id: client_id.clone(),
                    scopes: scopes(&r.get::<_, String>(0)?)?,
                    created_at: r.get(1)?,
                    updated_at: r.get(2)?,
                    client_name: r.get(3)?,
                    last_used_at: None,
                })
            })
            .optional()?)
        })
        .await
    }

    async fn put_consent(&self, consent: &ConsentRecord, audit: &NewAuditEvent) -> StoreResult<()> {
        let (k, audit) = (consent.clone(), audit.clone());
        self.write(move |tx| {
            let existing: Option<String> = tx
                .prepare_cached(
                    "SELECT scopes FROM consents WHERE user_id = ?1 AND client_id = ?2",
                )?
                .query_row(params![k.user_id, k.client_id], |r| r.get(0))
                .optional()?;
            let merged: ScopeSet = match existing {
                Some(text) => scopes(&text)?
                    .iter()
                    .chain(k.scopes.iter())
                    .cloned()
                    .collect(),
                None => k.scopes.clone(),
            };
            tx.execute(
                "INSERT INTO consents (user_id, client_id, scopes, created_at, updated_at) \
                 VALUES (?1, ?2, ?3, ?4, ?4) ON CONFLICT (user_id, client_id) \
                 DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at",
                params![k.user_id, k.client_id, merged.to_string(), k.updated_at],
            )?;
            audit::insert(tx, &audit)
        })
        .await
    }

    async fn list_consents(&self, user_id: &str) -> StoreResult<Vec<ConsentRecord>> {
        let user_id = user_id.to_owned();
        self.read(move |c| {
            // The last use of the grant's own tokens: the families revoke_consent
            // would revoke, not the client's client-credentials ones.
            let mut stmt = c.prepare_cached(
                "SELECT k.client_id, c.name, k.scopes, k.created_at, k.updated_at, \
                 (SELECT max(f.last_used_at) FROM token_families f \
                  WHERE f.subject = k.user_id AND f.client_id = k.client_id \
                  AND f.grant_type = 'authorization_code') \
                 FROM consents k JOIN clients c ON c.id = k.client_id \
                 WHERE k.user_id = ?1 ORDER BY c.name, k.client_id",
            )?;
            let rows = stmt.query_map([&user_id], |r| {
                Ok(ConsentRecord {
                    user_id: user_id.clone(),
                    client_id: r.get(0)?,
                    client_name: r.get(1)?,
                    scopes: scopes(&r.get::<_, String>(2)?)?,
                    created_at: r.get(3)?,
                    updated_at: r.get(4)?,
                    last_used_at: r.get(5)?,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
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
        let (user_id, client_id) = (user_id.to_owned(), client_id.to_owned());
        let (keep, audit) = (keep.cloned(), audit.clone());
        self.write(move |tx| {
            let n = match &keep {
                None => tx.execute(
                    "DELETE FROM consents WHERE user_id = ?1 AND client_id = ?2",
                    params![user_id, client_id],
                )?,
                Some(scopes) => tx.execute(
                    "UPDATE consents SET scopes = ?3, updated_at = ?4 \
                     WHERE user_id = ?1 AND client_id = ?2",
                    params![user_id, client_id, scopes.to_string(), now],
                )?,
            };
            if n == 0 {
                return Err(StoreError::NotFound(format!(
                    "grant of {user_id} to {client_id}"
                )));
            }
            audit::insert(tx, &audit)?;
            let revocation = NewAuditEvent {
                kind: portcullis_core::AuditKind::TokenRevoke,
                ..audit.clone()
            };
            let Some(keep) = keep else {
                let revoked = revoke_subject_families(
                    tx,
                    &user_id,
                    Some(&client_id),
                    now,
                    "consent_revoked",
                    deny_until,
                    &revocation,
                )?;
                return Ok(ConsentChange {
                    revoked,
                    narrowed: Vec::new(),
                });
            };
            let families: Vec<(String, String, Option<String>)> = tx
                .prepare_cached(
                    "SELECT id, scopes, label FROM token_families WHERE subject = ?1 \
                     AND client_id = ?2 AND grant_type = 'authorization_code' \
                     AND revoked_at IS NULL AND expires_at > ?3",
                )?
                .query_map(params![user_id, client_id, now], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<Result<_, _>>()?;
            let mut change = ConsentChange::default();
            for (id, scope_text, label) in families {
                let kept: ScopeSet = scopes(&scope_text)?
                    .iter()
                    .filter(|s| keep.contains(s))
                    .cloned()
                    .collect();
                let event = NewAuditEvent {
                    target: Some(id.clone()),
                    client_id: Some(client_id.clone()),
                    label: label.clone(),
                    ..revocation.clone()
                };
                if kept.is_empty() {
                    tx.execute(
                        "UPDATE token_families SET revoked_at = ?1, \
                         revoked_reason = 'consent_narrowed' WHERE id = ?2",
                        params![now, id],
                    )?;
                    tx.execute(
                        "INSERT INTO revocations (kind, target, created_at, expires_at) \
                         VALUES ('family', ?1, ?2, ?3)",
                        params![id, now, deny_until],
                    )?;
                    audit::insert(tx, &event)?;
                    change.revoked.push(id);
                } else {
                    tx.execute(
                        "UPDATE token_families SET scopes = ?1 WHERE id = ?2",
                        params![kept.to_string(), id],
                    )?;
                    tx.execute(
                        "INSERT INTO revocations (kind, target, issued_before, created_at, \
                         expires_at) VALUES ('family', ?1, ?2, ?2, ?3)",
                        params![id, now, deny_until],
                    )?;
                    audit::insert(tx, &event)?;
                    change.narrowed.push(id);
                }
            }
            Ok(change)
        })
        .await
    }

    async fn create_code(&self, code: &NewCode) -> StoreResult<()> {
        let k = code.clone();
        self.write(move |tx| {
            tx.execute(
                "INSERT INTO authorization_codes (code_hash, client_id, user_id, redirect_uri, \
                 redirect_uri_given, scopes, code_challenge, family_id, created_at, expires_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                params![
                    k.hash.as_slice(),
                    k.client_id,
                    k.user_id,
                    k.redirect_uri,
                    k.redirect_uri_given,
                    k.scopes.to_string(),
                    k.code_challenge,
                    k.family_id,
                    k.created_at,
                    k.expires_at
                ],
            )?;
            Ok(())
        })
        .await
    }

    async fn find_code(&self, hash: &[u8; 32]) -> StoreResult<Option<StoredCode>> {
        // A point lookup on the exchange's hot path: on this thread, as the
        // refresh token lookup is.
        let hash = *hash;
        self.readers
            .with(move |c| {
                c.prepare_cached(
                    "SELECT c.client_id, c.user_id, c.redirect_uri, c.redirect_uri_given, \
                     c.scopes, c.code_challenge, c.family_id, c.created_at, c.expires_at, \
                     c.spent, coalesce(u.status = 'active', 0) FROM authorization_codes c \
                     LEFT JOIN users u ON u.id = c.user_id WHERE c.code_hash = ?1",
                )?
                .query_row([hash.as_slice()], |r| {
                    Ok(StoredCode {
                        code: NewCode {
                            hash,
                            client_id: r.get(0)?,
                            user_id: r.get(1)?,
                            redirect_uri: r.get(2)?,
                            redirect_uri_given: r.get(3)?,
                            scopes: scopes(&r.get::<_, String>(4)?)?,
                            code_challenge: r.get(5)?,
                            family_id: r.get(6)?,
                            created_at: r.get(7)?,
                            expires_at: r.get(8)?,
                        },
                        spent: r.get(9)?,
                        user_active: r.get(10)?,
                    })
                })
                .optional()
            })
            .await
    }
}
