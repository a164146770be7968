//! Token families, refresh tokens and labels: the grant's writes (group-committed
//! by the writer), the refresh token lookup, and the lists the admin pages read.

use super::SqliteStore;
use crate::sqlite::writer::WriteJob;
use crate::{
    FamilyRecord, GrantAnnouncement, LabelRecord, NewAuditEvent, NewGrant, RefreshKey,
    RefreshLookup, Rotation, SpendRefresh, SpentRefresh, StoreError, StoreResult, TokenStore,
    Usage,
};
use async_trait::async_trait;
use portcullis_core::{AuditKind, ClientId};
use rusqlite::{Connection, OptionalExtension, Row, params};

fn family_from_row(r: &Row<'_>) -> rusqlite::Result<FamilyRecord> {
    let scopes: String = r.get("scopes")?;
    Ok(FamilyRecord {
        id: r.get("id")?,
        client_id: r.get("client_id")?,
        label: r.get("label")?,
        subject: r.get("subject")?,
        scopes: super::scopes(&scopes)?,
        grant_type: r.get("grant_type")?,
        created_at: r.get("created_at")?,
        last_used_at: r.get("last_used_at")?,
        expires_at: r.get("expires_at")?,
        revoked_at: r.get("revoked_at")?,
    })
}

/// A refresh token by its selector, with its family and whether the token that
/// replaced it is still unused (for the grace rule), and the family's rowid (for
/// the writer, which updates the family it has just read).
fn refresh_token(
    conn: &Connection,
    id: &str,
) -> rusqlite::Result<Option<(Vec<u8>, RefreshLookup, i64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT r.token_hash, r.scopes, r.expires_at, r.spent_at, \
         CASE WHEN r.spent_at IS NOT NULL THEN \
         (SELECT g.response FROM refresh_grace g WHERE g.id = r.id) END, \
         f.id, f.client_id, f.label, f.subject, f.scopes, f.grant_type, f.created_at, \
         f.last_used_at, f.expires_at, f.revoked_at, \
         s.id IS NOT NULL AND s.spent_at IS NULL, f.rowid \
         FROM refresh_tokens r JOIN token_families f ON f.id = r.family_id \
         LEFT JOIN refresh_tokens s ON s.id = r.replaced_by \
         WHERE r.id = ?1",
    )?;
    stmt.query_row([id], |r| {
        let hash: Vec<u8> = r.get(0)?;
        let scopes: String = r.get(1)?;
        let family_scopes: String = r.get(9)?;
        Ok((
            hash,
            RefreshLookup {
                id: id.to_owned(),
                token_hash: [0; 32],
                family: FamilyRecord {
                    id: r.get(5)?,
                    client_id: r.get(6)?,
                    label: r.get(7)?,
                    subject: r.get(8)?,
                    scopes: super::scopes(&family_scopes)?,
                    grant_type: r.get(10)?,
                    created_at: r.get(11)?,
                    last_used_at: r.get(12)?,
                    expires_at: r.get(13)?,
                    revoked_at: r.get(14)?,
                },
                scopes: super::scopes(&scopes)?,
                expires_at: r.get(2)?,
                spent_at: r.get(3)?,
                grace_response: r.get(4)?,
                successor_unused: r.get(15)?,
            },
            r.get(16)?,
        ))
    })
    .optional()
}

/// A found refresh token with its stored hash, checked for length, and its
/// family's rowid.
fn checked_hash(
    found: Option<(Vec<u8>, RefreshLookup, i64)>,
) -> StoreResult<Option<(RefreshLookup, i64)>> {
    found
        .map(|(hash, mut found, family_rowid)| {
            found.token_hash = hash
                .try_into()
                .map_err(|_| StoreError::Backend("unreadable stored refresh token hash".into()))?;
            Ok((found, family_rowid))
        })
        .transpose()
}

/// A refresh grant inside a group commit (see
/// [`TokenStore::spend_refresh_token`]): the writer reads the token through its
/// own page cache, which the batches keep warm, where a reader's cache is thrown
/// away at every commit and the lookup re-read its eight pages from the log.
///
/// The token, its family and the client's status are read in the transaction
/// that spends it, so the spend needs none of [`rotate`]'s conditions in SQL:
/// [`spendable`] checks them on the rows just read, and the writes find their
/// rows by key (the token by its selector, the family by its rowid) without
/// looking the family and the client up again.
pub(super) fn spend(
    tx: &Connection,
    spend: &SpendRefresh,
    active: &mut ActiveClients,
) -> StoreResult<SpentRefresh> {
    let found = match &spend.key {
        RefreshKey::Selector(id) => refresh_token(tx, id)?,
        RefreshKey::Hash(hash) => refresh_token(tx, &legacy_refresh_id(hash))?,
    };
    let Some((found, family_rowid)) = checked_hash(found)? else {
        return Ok(SpentRefresh {
            found: None,
            rotated: None,
        });
    };
    let rotated = match (spend.judge)(&found) {
        Some(r) if spendable(&found, &r) && client_active(tx, &r.client_id, active)? => {
            rotate_found(tx, &r, family_rowid)?;
            Some(r.scopes)
        }
        _ => None,
    };
    Ok(SpentRefresh {
        found: Some(found),
        rotated,
    })
}

/// What [`SPEND_REFRESH_TOKEN`]'s conditions check in SQL, checked on the token
/// and family the spend has just read in its own transaction: the token presented
/// (its hash, compared in constant time), unspent and unexpired, in the family
/// named, which the client owns and nobody has revoked. The judge has checked
/// the same; the store does not rely on it.
fn spendable(found: &RefreshLookup, r: &Rotation) -> bool {
    use subtle::ConstantTimeEq;
    bool::from(found.token_hash.ct_eq(&r.old_hash))
        && found.id == r.old_id
        && found.spent_at.is_none()
        && found.expires_at > r.now
        && found.family.id == r.family_id
        && found.family.client_id == r.client_id
        && found.family.revoked_at.is_none()
}

/// Whether a client is active, read once per batch (see [`ActiveClients`]).
fn client_active(
    tx: &Connection,
    client_id: &str,
    active: &mut ActiveClients,
) -> StoreResult<bool> {
    if let Some(a) = active.get(client_id) {
        return Ok(*a);
    }
    let a = tx
        .prepare_cached("SELECT status = 'active' FROM clients WHERE id = ?1")?
        .query_row([client_id], |r| r.get::<_, bool>(0))
        .optional()?
        .unwrap_or(false);
    active.insert(client_id.to_owned(), a);
    Ok(a)
}

/// The row key migration 5 gave a refresh token issued before selectors: `h` +
/// the upper-case hex of its HMAC, as SQLite's `hex()` wrote it.
pub fn legacy_refresh_id(hash: &[u8; 32]) -> String {
    use std::fmt::Write;
    let mut id = String::with_capacity(65);
    id.push('h');
    for b in hash {
        let _ = write!(id, "{b:02X}");
    }
    id
}

#[async_trait]
impl TokenStore for SqliteStore {
    fn announce_grant(&self) -> GrantAnnouncement {
        GrantAnnouncement::counted(&self.gathering.coming)
    }

    async fn record_grant(&self, grant: NewGrant) -> StoreResult<bool> {
        self.submit(|tx| WriteJob::Grant(grant, tx)).await
    }

    async fn find_refresh_token(&self, id: &str) -> StoreResult<Option<RefreshLookup>> {
        let id = id.to_owned();
        Ok(
            checked_hash(self.readers.with(move |c| refresh_token(c, &id)).await?)?
                .map(|(found, _)| found),
        )
    }

    async fn find_refresh_token_by_hash(
        &self,
        hash: &[u8; 32],
    ) -> StoreResult<Option<RefreshLookup>> {
        self.find_refresh_token(&legacy_refresh_id(hash)).await
    }

    async fn rotate_refresh_token(&self, rotation: Rotation) -> StoreResult<bool> {
        self.submit(|tx| WriteJob::Rotate(rotation, tx)).await
    }

    async fn spend_refresh_token(&self, spend: SpendRefresh) -> StoreResult<SpentRefresh> {
        self.submit(|tx| WriteJob::Spend(spend, tx)).await
    }

    async fn get_family(&self, id: &str) -> StoreResult<Option<FamilyRecord>> {
        let id = id.to_owned();
        self.read(move |c| {
            Ok(
                c.prepare_cached("SELECT * FROM token_families WHERE id = ?1")?
                    .query_row([id], family_from_row)
                    .optional()?,
            )
        })
        .await
    }

    async fn list_families(
        &self,
        client: &ClientId,
        label: Option<&str>,
        limit: Option<u32>,
    ) -> StoreResult<Vec<FamilyRecord>> {
        // SQLite: a negative limit is none.
        let limit = limit.map_or(-1, i64::from);
        let (client, label) = (client.to_string(), label.map(str::to_owned));
        self.read(move |c| {
            let mut stmt = c.prepare_cached(
                "SELECT * FROM token_families WHERE client_id = ?1 AND (?2 IS NULL OR label = ?2) \
                 ORDER BY created_at DESC, id LIMIT ?3",
            )?;
            let rows = stmt.query_map(params![client, label, limit], family_from_row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn list_labels(&self, client: &ClientId, now: i64) -> StoreResult<Vec<LabelRecord>> {
        let client = client.to_string();
        self.read(move |c| {
            // One pass over the client's families, summed per label here: its live
            // families and its last issue (kept on the families, migration 13).
            // They are indexed by client and time, not by label (see migration 6;
            // an index by label cost every grant 18% of the token rate, see
            // migration 12), and SQLite's GROUP BY sorted every family by label
            // first: summing in a map took the sites page of a client with about
            // 130,000 families from 91–93 ms to 34–55 ms (`portcullis-bench
            // growth`). The index by client carries every column read here
            // (migration 14), so the families come from it, not from their
            // scattered rows. One read transaction: the labels and the families
            // are read at one point in time.
            let tx = c.unchecked_transaction()?;
            let mut per_label: std::collections::HashMap<String, (i64, i64)> =
                std::collections::HashMap::new();
            {
                let mut stmt = tx.prepare_cached(SITES_OF_A_CLIENT)?;
                let mut rows = stmt.query(params![client, now])?;
                while let Some(r) = rows.next()? {
                    let label = r.get_ref(0)?.as_str().map_err(|e| {
                        rusqlite::Error::FromSqlConversionFailure(
                            0,
                            rusqlite::types::Type::Text,
                            Box::new(e),
                        )
                    })?;
                    let (live, issued): (i64, i64) = (r.get(1)?, r.get(2)?);
                    match per_label.get_mut(label) {
                        Some(sum) => {
                            sum.0 += live;
                            sum.1 = sum.1.max(issued);
                        }
                        None => {
                            per_label.insert(label.to_owned(), (live, issued));
                        }
                    }
                }
            }
            let mut stmt = tx.prepare_cached(
                "SELECT name, created_at, last_issued_at, last_used_at, uploads FROM labels \
                 WHERE client_id = ?1 ORDER BY name",
            )?;
            let rows = stmt.query_map(params![client], |r| {
                let name: String = r.get("name")?;
                let (live, issued) = per_label.get(&name).copied().unwrap_or((0, 0));
                let own: Option<i64> = r.get("last_issued_at")?;
                let last_issued = own.unwrap_or(0).max(issued);
                Ok(LabelRecord {
                    name,
                    created_at: r.get("created_at")?,
                    last_issued_at: (last_issued != 0).then_some(last_issued),
                    last_used_at: r.get("last_used_at")?,
                    uploads: r.get("uploads")?,
                    live_families: live,
                })
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
    }

    async fn record_usage(&self, uses: &[Usage]) -> StoreResult<()> {
        if uses.is_empty() {
            return Ok(());
        }
        let uses = uses.to_vec();
        self.write(move |tx| {
            let mut family = tx.prepare_cached(
                "UPDATE token_families SET last_used_at = max(coalesce(last_used_at, 0), ?1) \
                 WHERE id = ?2",
            )?;
            let mut label = tx.prepare_cached(
                "UPDATE labels SET last_used_at = max(coalesce(last_used_at, 0), ?1) \
                 WHERE client_id = ?2 AND name = ?3",
            )?;
            for u in &uses {
                family.execute(params![u.at, u.family_id])?;
                if let Some(l) = &u.label {
                    label.execute(params![u.at, u.client_id, l])?;
                }
            }
            Ok(())
        })
        .await
    }
}

/// Whether each client is active, read inside one group commit's transaction:
/// what that transaction will commit against, read once per client per batch
/// instead of once per grant.
pub(super) type ActiveClients = std::collections::HashMap<String, bool>;

/// SPEC §8: a grant commits only while its client is active. The status is read
/// inside the grant's own transaction (`BEGIN IMMEDIATE`: no other writer, of this
/// process or another, can change it before the commit), so once a disable or
/// delete has committed no grant for that client commits after it, in any
/// process. `false`: the client is not active, or the code the grant spends
/// cannot be spent; nothing was written.
pub(super) fn insert_grant(
    tx: &Connection,
    g: &NewGrant,
    active: &mut ActiveClients,
) -> StoreResult<bool> {
    if !client_active(tx, &g.client_id, active)? {
        return Ok(false);
    }
    if let Some(code) = &g.spends_code {
        // Spent here, before anything is written, so a code already spent (or
        // expired) leaves the grant unrecorded: of two exchanges of one code,
        // only the first to commit issues anything. With the code's own family
        // the row keeps its size (see migration 11).
        let spent = tx
            .prepare_cached(
                "UPDATE authorization_codes SET spent = 1, family_id = ?2 \
                 WHERE code_hash = ?3 AND spent = 0 AND expires_at > ?1",
            )?
            .execute(params![g.created_at, g.family_id, code.as_slice()])?;
        if spent == 0 {
            return Ok(false);
        }
    }
    let scopes = g.scopes.to_string();
    tx.prepare_cached(
        "INSERT INTO token_families (id, client_id, label, subject, scopes, grant_type, \
         created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        g.family_id,
        g.client_id,
        g.label,
        g.subject,
        scopes,
        g.grant_type,
        g.created_at,
        g.expires_at
    ])?;
    if let Some(r) = &g.refresh_token {
        tx.prepare_cached(
            "INSERT INTO refresh_tokens (id, token_hash, family_id, scopes, created_at, \
             expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            r.id,
            r.hash.as_slice(),
            g.family_id,
            scopes,
            g.created_at,
            r.expires_at
        ])?;
    }
    if let Some(label) = &g.label {
        tx.prepare_cached(
            // A new label only: an existing label's issue time is its families'
            // (migration 13), so its page is read here, not rewritten.
            "INSERT INTO labels (client_id, name, created_at, last_issued_at) \
             VALUES (?1, ?2, ?3, ?3) ON CONFLICT (client_id, name) DO NOTHING",
        )?
        .execute(params![g.client_id, label, g.created_at])?;
    }
    super::audit::insert(
        tx,
        &NewAuditEvent {
            at: g.created_at,
            kind: AuditKind::TokenIssue,
            actor: g.actor.clone(),
            target: Some(g.family_id.clone()),
            client_id: Some(g.client_id.clone()),
            label: g.label.clone(),
            detail: None,
        },
    )?;
    Ok(true)
}

/// A client's families as its sites page sums them: label, live (1 or 0), last
/// issue. `?1` the client, `?2` now.
pub(super) const SITES_OF_A_CLIENT: &str = "SELECT label, revoked_at IS NULL AND expires_at > ?2, coalesce(last_issued_at, created_at) \
     FROM token_families WHERE client_id = ?1 AND label IS NOT NULL";

/// The statement that spends a refresh token in [`rotate`]: `?1` now, `?2` the
/// successor's selector, `?3` the selector, `?4` the family, `?5` the client, `?6`
/// the token's hash.
pub(super) const SPEND_REFRESH_TOKEN: &str = "UPDATE refresh_tokens SET spent_at = ?1, replaced_by = ?2 \
 WHERE id = ?3 AND token_hash = ?6 AND spent_at IS NULL AND expires_at > ?1 \
 AND family_id = ?4 \
 AND EXISTS (SELECT 1 FROM token_families f JOIN clients c ON c.id = f.client_id \
             WHERE f.id = ?4 AND +f.client_id = ?5 AND f.revoked_at IS NULL \
             AND c.status = 'active')";

/// RFC 6749 §10.4 / RFC 9700 §4.14: one statement spends the token only if it is
/// unspent, unexpired, the one presented (selector and hash), in this family,
/// owned by this client and not revoked, so of N concurrent refreshes exactly one
/// changes a row. `+f.client_id`: the family is found by its id. With statistics
/// (`ANALYZE`), SQLite 3.51 chose the index by client instead and read every
/// family of the client per refresh: 366 refreshes a second instead of 10,000
/// for a client with 150,000 families (`portcullis-bench growth`).
pub(super) fn rotate(tx: &Connection, r: &Rotation) -> StoreResult<bool> {
    let spent = tx.prepare_cached(SPEND_REFRESH_TOKEN)?.execute(params![
        r.now,
        r.new.id,
        r.old_id,
        r.family_id,
        r.client_id,
        r.old_hash.as_slice()
    ])?;
    if spent != 1 {
        return Ok(false);
    }
    record_rotation(tx, r, FamilyRow::Id(&r.family_id))?;
    Ok(true)
}

/// A rotation whose token, family and client [`spend`] has read and checked in
/// this transaction: the same writes as [`rotate`]'s, by key.
fn rotate_found(tx: &Connection, r: &Rotation, family_rowid: i64) -> StoreResult<()> {
    let spent = tx
        .prepare_cached(
            "UPDATE refresh_tokens SET spent_at = ?1, replaced_by = ?2 \
             WHERE id = ?3 AND spent_at IS NULL",
        )?
        .execute(params![r.now, r.new.id, r.old_id])?;
    if spent != 1 {
        // Read unspent a moment ago in this transaction.
        return Err(StoreError::Backend(
            "a refresh token changed under its spend".into(),
        ));
    }
    record_rotation(tx, r, FamilyRow::Rowid(family_rowid))
}

/// The family row a rotation updates: by its id, or by the rowid a read in the
/// same transaction gave.
enum FamilyRow<'a> {
    Id(&'a str),
    Rowid(i64),
}

/// A rotation's writes once its token is spent: its grace answer if it keeps one
/// (in a table of its own, migration 15, so that a spend without one writes
/// nothing there), the successor, the family's expiry and last issue (its
/// label's, migration 13), and the audit event.
fn record_rotation(tx: &Connection, r: &Rotation, family: FamilyRow<'_>) -> StoreResult<()> {
    if let Some(answer) = &r.grace_response {
        tx.prepare_cached(
            "INSERT INTO refresh_grace (id, spent_at, response) VALUES (?1, ?2, ?3)",
        )?
        .execute(params![r.old_id, r.now, answer])?;
    }
    tx.prepare_cached(
        "INSERT INTO refresh_tokens (id, token_hash, family_id, scopes, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        r.new.id,
        r.new.hash.as_slice(),
        r.family_id,
        r.scopes.to_string(),
        r.now,
        r.new.expires_at
    ])?;
    match family {
        FamilyRow::Id(id) => tx
            .prepare_cached(
                "UPDATE token_families SET expires_at = max(expires_at, ?1), \
                 last_issued_at = ?3 WHERE id = ?2",
            )?
            .execute(params![r.family_expires_at, id, r.now])?,
        FamilyRow::Rowid(rowid) => tx
            .prepare_cached(
                "UPDATE token_families SET expires_at = max(expires_at, ?1), \
                 last_issued_at = ?3 WHERE rowid = ?2",
            )?
            .execute(params![r.family_expires_at, rowid, r.now])?,
    };
    super::audit::insert(tx, &r.audit)
}
