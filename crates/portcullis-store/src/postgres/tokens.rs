//! Token families, refresh tokens and labels on PostgreSQL: a group commit's
//! grants and rotations as one multi-row statement per table, the refresh token
//! lookup, and the lists the admin pages read.

use super::writer::HotJob;
use super::{PgStore, bounded, hash32, scopes};
use crate::{
    FamilyRecord, LabelRecord, NewAuditEvent, NewGrant, RefreshKey, RefreshLookup, Rotation,
    SpendRefresh, SpentRefresh, StoreResult, TokenStore, Usage,
};
use async_trait::async_trait;
use deadpool_postgres::{Object, Transaction};
use portcullis_core::{AuditKind, ClientId};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

/// Whether each client of a batch is active, read under the clients' shared locks.
pub(super) type ActiveClients = HashMap<String, bool>;

/// Takes the shared lock of each client (in id order, so batches never wait on
/// each other in a cycle); a change of a client's status takes its exclusive lock
/// ([`super::lock::client`]).
pub(super) const LOCK_CLIENTS_SHARED: &str = "SELECT count(pg_advisory_xact_lock_shared($2::int4, hashtext(id))) \
     FROM (SELECT unnest($1::text[]) AS id ORDER BY 1) ids";

/// Each client's status, read in a statement of its own after the locks were
/// taken, so a disable or delete committed before that is seen.
pub(super) const ACTIVE_CLIENTS: &str =
    "SELECT id, status = 'active' FROM clients WHERE id = ANY($1)";

pub(super) async fn lock_active_clients(
    tx: &Transaction<'_>,
    ids: &BTreeSet<&str>,
) -> StoreResult<ActiveClients> {
    if ids.is_empty() {
        return Ok(ActiveClients::new());
    }
    let ids: Vec<&str> = ids.iter().copied().collect();
    let lock = tx.prepare_cached(LOCK_CLIENTS_SHARED).await?;
    tx.query(&lock, &[&ids, &super::lock::CLIENTS]).await?;
    let stmt = tx.prepare_cached(ACTIVE_CLIENTS).await?;
    active_from(&tx.query(&stmt, &[&ids]).await?)
}

fn active_from(rows: &[Row]) -> StoreResult<ActiveClients> {
    rows.iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// The audit event of a grant.
pub(super) fn issue_event(g: &NewGrant) -> NewAuditEvent {
    NewAuditEvent {
        at: g.created_at,
        kind: AuditKind::TokenIssue,
        actor: g.actor.clone(),
        target: Some(g.family_id.clone()),
        client_id: Some(g.client_id.clone()),
        label: g.label.clone(),
        detail: None,
    }
}

/// A grant's rows are written only while its client is active: every statement
/// below keeps the rows of a client whose status (stable: the batch holds the
/// client's shared lock) is not `active` out.
macro_rules! gate {
    () => {
        "EXISTS (SELECT 1 FROM clients c WHERE c.id = x.client_id AND c.status = 'active')"
    };
}

const INSERT_FAMILIES: &str = concat!(
    "INSERT INTO token_families (id, client_id, label, subject, scopes, grant_type, \
     created_at, expires_at) SELECT * FROM unnest($1::text[], $2::text[], $3::text[], \
     $4::text[], $5::text[], $6::text[], $7::int8[], $8::int8[]) \
     AS x(id, client_id, label, subject, scopes, grant_type, created_at, expires_at) WHERE ",
    gate!()
);

macro_rules! insert_refresh {
    ($gate:expr) => {
        concat!(
            "INSERT INTO refresh_tokens (id, token_hash, family_id, scopes, created_at, \
             expires_at) SELECT id, token_hash, family_id, scopes, created_at, expires_at FROM \
             unnest($1::text[], $2::bytea[], $3::text[], $4::text[], $5::int8[], $6::int8[], \
             $7::text[]) AS x(id, token_hash, family_id, scopes, created_at, expires_at, \
             client_id) WHERE ",
            $gate
        )
    };
}

/// New refresh tokens of grants (gated on their client).
const INSERT_REFRESH: &str = insert_refresh!(gate!());
/// Successors of won rotations (the rotation checked the client).
const INSERT_SUCCESSORS: &str = insert_refresh!("true");

/// Creates the labels not seen before. An existing label's row is not touched (nor
/// locked): its last issue is read from its families (migration 0009).
const UPSERT_LABELS: &str = concat!(
    "INSERT INTO labels (client_id, name, created_at, last_issued_at) \
     SELECT client_id, name, t, t FROM unnest($1::text[], $2::text[], $3::int8[]) \
     AS x(client_id, name, t) WHERE ",
    gate!(),
    " ON CONFLICT (client_id, name) DO NOTHING"
);

/// The rows of a batch of grants, as columns for the multi-row statements.
pub(super) struct GrantRows<'a> {
    families: FamilyColumns<'a>,
    refresh: RefreshColumns<'a>,
    /// One row per label, at its latest time (a multi-row upsert may not touch a row
    /// twice), in key order (concurrent batches lock labels in the same order).
    labels: (Vec<&'a str>, Vec<&'a str>, Vec<i64>),
}

impl<'a> GrantRows<'a> {
    pub(super) fn of(grants: &[(usize, &'a NewGrant)]) -> Self {
        let mut f = FamilyColumns::default();
        let mut r = RefreshColumns::default();
        let mut labels: BTreeMap<(&str, &str), i64> = BTreeMap::new();
        for (_, g) in grants {
            let scopes = g.scopes.to_string();
            if let Some(t) = &g.refresh_token {
                r.push(
                    &t.id,
                    &t.hash,
                    &g.family_id,
                    &scopes,
                    g.created_at,
                    t.expires_at,
                );
                r.client_id.push(&g.client_id);
            }
            f.id.push(&g.family_id);
            f.client_id.push(&g.client_id);
            f.label.push(g.label.as_deref());
            f.subject.push(&g.subject);
            f.scopes.push(scopes);
            f.grant_type.push(&g.grant_type);
            f.created_at.push(g.created_at);
            f.expires_at.push(g.expires_at);
            if let Some(l) = &g.label {
                let at = labels.entry((&g.client_id, l)).or_insert(g.created_at);
                *at = (*at).max(g.created_at);
            }
        }
        Self {
            families: f,
            refresh: r,
            labels: split3(labels),
        }
    }
}

/// Spends the authorization codes of the grants whose client is active, each
/// only if unspent and unexpired at its grant's time (a code another
/// transaction is spending waits for it, then is found spent); returns the job
/// indexes of the grants whose code was not spent, which must record nothing.
pub(super) async fn spend_codes(
    tx: &Transaction<'_>,
    grants: &[(usize, &NewGrant)],
    active: &ActiveClients,
) -> StoreResult<HashSet<usize>> {
    let spending: Vec<(usize, &NewGrant, &[u8; 32])> = grants
        .iter()
        .filter(|(_, g)| active.get(&g.client_id).copied().unwrap_or(false))
        .filter_map(|(i, g)| g.spends_code.as_ref().map(|c| (*i, *g, c)))
        .collect();
    if spending.is_empty() {
        return Ok(HashSet::new());
    }
    let hashes: Vec<&[u8]> = spending.iter().map(|(_, _, c)| c.as_slice()).collect();
    let families: Vec<&str> = spending
        .iter()
        .map(|(_, g, _)| g.family_id.as_str())
        .collect();
    let times: Vec<i64> = spending.iter().map(|(_, g, _)| g.created_at).collect();
    // Two grants of one batch spending one code join the same row: it is
    // updated once, for one of them.
    let stmt = tx
        .prepare_cached(
            "UPDATE authorization_codes c SET spent = true, family_id = x.fam \
             FROM unnest($1::bytea[], $2::text[], $3::int8[]) AS x(h, fam, at) \
             WHERE c.code_hash = x.h AND NOT c.spent AND c.expires_at > x.at \
             RETURNING c.family_id",
        )
        .await?;
    let spent: HashSet<String> = tx
        .query(&stmt, &[&hashes, &families, &times])
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    Ok(spending
        .into_iter()
        .filter(|(_, g, _)| !spent.contains(&g.family_id))
        .map(|(i, _, _)| i)
        .collect())
}

/// Inserts the grants whose client is active (the caller holds the clients'
/// shared locks and read `active` after taking them); returns their job indexes.
pub(super) async fn insert_grants(
    tx: &Transaction<'_>,
    grants: &[(usize, &NewGrant)],
    active: &ActiveClients,
) -> StoreResult<HashSet<usize>> {
    if grants.is_empty() {
        return Ok(HashSet::new());
    }
    let rows = GrantRows::of(grants);
    let f = &rows.families;
    let stmt = tx.prepare_cached(INSERT_FAMILIES).await?;
    tx.execute(
        &stmt,
        &[
            &f.id,
            &f.client_id,
            &f.label,
            &f.subject,
            &f.scopes,
            &f.grant_type,
            &f.created_at,
            &f.expires_at,
        ],
    )
    .await?;
    let r = &rows.refresh;
    let stmt = tx.prepare_cached(INSERT_REFRESH).await?;
    tx.execute(
        &stmt,
        &[
            &r.id,
            &r.hash,
            &r.family_id,
            &r.scopes,
            &r.created_at,
            &r.expires_at,
            &r.client_id,
        ],
    )
    .await?;
    let (clients, names, times) = &rows.labels;
    let stmt = tx.prepare_cached(UPSERT_LABELS).await?;
    tx.execute(&stmt, &[clients, names, times]).await?;
    Ok(granted(grants, active))
}

/// The job indexes of the grants whose client is active.
fn granted(grants: &[(usize, &NewGrant)], active: &ActiveClients) -> HashSet<usize> {
    grants
        .iter()
        .filter(|(_, g)| active.get(&g.client_id).copied().unwrap_or(false))
        .map(|(i, _)| *i)
        .collect()
}

/// Every row of a batch of grants and audit events in one statement (each part
/// gated on the client being active, see [`gate!`]), answering the clients'
/// status: which grants it recorded. Data-modifying `WITH` parts all run, in one
/// snapshot, taken after the clients' locks (the statement before it).
const RECORD_GRANTS: &str = concat!(
    "WITH fam AS (INSERT INTO token_families (id, client_id, label, subject, scopes, \
     grant_type, created_at, expires_at) SELECT * FROM unnest($1::text[], $2::text[], \
     $3::text[], $4::text[], $5::text[], $6::text[], $7::int8[], $8::int8[]) \
     AS x(id, client_id, label, subject, scopes, grant_type, created_at, expires_at) WHERE ",
    gate!(),
    "), rt AS (INSERT INTO refresh_tokens (id, token_hash, family_id, scopes, created_at, \
     expires_at) SELECT id, token_hash, family_id, scopes, created_at, expires_at FROM \
     unnest($9::text[], $10::bytea[], $11::text[], $12::text[], $13::int8[], $14::int8[], \
     $15::text[]) AS x(id, token_hash, family_id, scopes, created_at, expires_at, client_id) \
     WHERE ",
    gate!(),
    "), lab AS (INSERT INTO labels (client_id, name, created_at, last_issued_at) \
     SELECT client_id, name, t, t FROM unnest($16::text[], $17::text[], $18::int8[]) \
     AS x(client_id, name, t) WHERE ",
    gate!(),
    " ON CONFLICT (client_id, name) DO NOTHING), \
     aud AS (INSERT INTO audit_events (at, kind, actor_kind, actor_id, target, client_id, \
     label, source, detail) SELECT at, kind, actor_kind, actor_id, target, client_id, label, \
     source, detail FROM unnest($19::int8[], $20::text[], $21::text[], $22::text[], \
     $23::text[], $24::text[], $25::text[], $26::text[], $27::text[], $28::text[]) \
     WITH ORDINALITY AS x(at, kind, actor_kind, actor_id, target, client_id, label, source, \
     detail, gate, n) WHERE x.gate IS NULL OR EXISTS (SELECT 1 FROM clients c \
     WHERE c.id = x.gate AND c.status = 'active') ORDER BY n) \
     SELECT id, status = 'active' FROM clients WHERE id = ANY($29)"
);

/// A batch of only grants and audit events, sent as one pipeline: `BEGIN`, the
/// clients' shared locks, [`RECORD_GRANTS`], `COMMIT`, all written before any
/// answer is read, so the whole batch costs one round trip to PostgreSQL and four
/// statements however many grants it carries. If a statement fails, PostgreSQL
/// ends the transaction at `COMMIT` with a rollback, and the error is returned:
/// nothing of the batch is kept. Returns the job indexes of the grants recorded.
pub(super) async fn record_grants_pipelined(
    conn: &Object,
    grants: &[(usize, &NewGrant)],
    audit: &super::audit::AuditColumns<'_>,
) -> StoreResult<HashSet<usize>> {
    let rows = GrantRows::of(grants);
    let ids: Vec<&str> = grants
        .iter()
        .map(|(_, g)| g.client_id.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let (lock, record) = tokio::try_join!(
        conn.prepare_cached(LOCK_CLIENTS_SHARED),
        conn.prepare_cached(RECORD_GRANTS),
    )?;
    let (f, r, (lc, ln, lt)) = (&rows.families, &rows.refresh, &rows.labels);
    let lock_params: [&(dyn ToSql + Sync); 2] = [&ids, &super::lock::CLIENTS];
    let mut params: Vec<&(dyn ToSql + Sync)> = vec![
        &f.id,
        &f.client_id,
        &f.label,
        &f.subject,
        &f.scopes,
        &f.grant_type,
        &f.created_at,
        &f.expires_at,
        &r.id,
        &r.hash,
        &r.family_id,
        &r.scopes,
        &r.created_at,
        &r.expires_at,
        &r.client_id,
        lc,
        ln,
        lt,
    ];
    params.extend(audit.params());
    params.push(&ids);
    let c: &tokio_postgres::Client = conn;
    let (begin, locked, active, commit) = tokio::join!(
        c.batch_execute("BEGIN"),
        c.query(&lock, &lock_params),
        c.query(&record, &params),
        c.batch_execute("COMMIT"),
    );
    // The first failure is the cause; those after it only say the transaction
    // was aborted. COMMIT of an aborted transaction rolls it back.
    begin?;
    locked?;
    let active = active_from(&active?)?;
    commit?;
    Ok(granted(grants, &active))
}

fn split3<'a>(m: BTreeMap<(&'a str, &'a str), i64>) -> (Vec<&'a str>, Vec<&'a str>, Vec<i64>) {
    let mut a = Vec::with_capacity(m.len());
    let mut b = Vec::with_capacity(m.len());
    let mut c = Vec::with_capacity(m.len());
    for ((x, y), z) in m {
        a.push(x);
        b.push(y);
        c.push(z);
    }
    (a, b, c)
}

#[derive(Default)]
struct FamilyColumns<'a> {
    id: Vec<&'a str>,
    client_id: Vec<&'a str>,
    label: Vec<Option<&'a str>>,
    subject: Vec<&'a str>,
    scopes: Vec<String>,
    grant_type: Vec<&'a str>,
    created_at: Vec<i64>,
    expires_at: Vec<i64>,
}

/// New refresh tokens, as columns.
#[derive(Default)]
struct RefreshColumns<'a> {
    /// Each token's client (for the gate; successors of rotations need none).
    client_id: Vec<&'a str>,
    id: Vec<&'a str>,
    hash: Vec<&'a [u8]>,
    family_id: Vec<&'a str>,
    scopes: Vec<String>,
    created_at: Vec<i64>,
    expires_at: Vec<i64>,
}

impl<'a> RefreshColumns<'a> {
    fn push(
        &mut self,
        id: &'a str,
        hash: &'a [u8; 32],
        family: &'a str,
        scopes: &str,
        at: i64,
        exp: i64,
    ) {
        self.id.push(id);
        self.hash.push(hash.as_slice());
        self.family_id.push(family);
        self.scopes.push(scopes.to_owned());
        self.created_at.push(at);
        self.expires_at.push(exp);
    }

    /// Inserts the successors of won rotations (no gate: the rotation checked).
    async fn insert_successors(&self, tx: &Transaction<'_>) -> StoreResult<()> {
        if self.id.is_empty() {
            return Ok(());
        }
        let stmt = tx.prepare_cached(INSERT_SUCCESSORS).await?;
        let no_clients: Vec<Option<&str>> = vec![None; self.id.len()];
        tx.execute(
            &stmt,
            &[
                &self.id,
                &self.hash,
                &self.family_id,
                &self.scopes,
                &self.created_at,
                &self.expires_at,
                &no_clients,
            ],
        )
        .await?;
        Ok(())
    }
}

/// RFC 6749 §10.4 / RFC 9700 §4.14: one statement spends each presented token
/// only if it is unspent, unexpired, the one presented (selector and hash), in its
/// family, owned by the client and not revoked. A second transaction spending the
/// same token (on this node or another) waits for the row and then finds it
/// spent: of N concurrent refreshes exactly one changes it. Returns the job
/// indexes that won.
pub(super) async fn rotate(
    tx: &Transaction<'_>,
    rotations: &[(usize, &Rotation)],
    active: &ActiveClients,
) -> StoreResult<HashSet<usize>> {
    // The same presentation twice in one batch can win once: the first is tried.
    // Ordered by selector, so concurrent batches lock rows in the same order.
    let mut tried: BTreeMap<(&str, &[u8]), (usize, &Rotation)> = BTreeMap::new();
    for (i, r) in rotations {
        if active.get(&r.client_id).copied().unwrap_or(false) {
            tried
                .entry((r.old_id.as_str(), r.old_hash.as_slice()))
                .or_insert((*i, r));
        }
    }
    if tried.is_empty() {
        return Ok(HashSet::new());
    }
    let mut old_id = Vec::new();
    let mut old_hash = Vec::new();
    let mut family = Vec::new();
    let mut client = Vec::new();
    let mut now = Vec::new();
    let mut new_id = Vec::new();
    let mut grace: Vec<Option<&[u8]>> = Vec::new();
    let mut job: Vec<i64> = Vec::new();
    for (i, r) in tried.values() {
        old_id.push(r.old_id.as_str());
        old_hash.push(r.old_hash.as_slice());
        family.push(r.family_id.as_str());
        client.push(r.client_id.as_str());
        now.push(r.now);
        new_id.push(r.new.id.as_str());
        grace.push(r.grace_response.as_deref());
        job.push(i64::try_from(*i).unwrap_or(i64::MAX));
    }
    let stmt = tx
        .prepare_cached(
            "UPDATE refresh_tokens r SET spent_at = x.now, replaced_by = x.new_id, \
             grace_response = x.grace \
             FROM unnest($1::text[], $2::bytea[], $3::text[], $4::text[], $5::int8[], \
             $6::text[], $7::bytea[], $8::int8[]) \
             AS x(old_id, old_hash, family_id, client_id, now, new_id, grace, job) \
             WHERE r.id = x.old_id AND r.token_hash = x.old_hash AND r.spent_at IS NULL \
             AND r.expires_at > x.now AND r.family_id = x.family_id \
             AND EXISTS (SELECT 1 FROM token_families f WHERE f.id = x.family_id \
                         AND f.client_id = x.client_id AND f.revoked_at IS NULL) \
             RETURNING x.job",
        )
        .await?;
    let won: HashSet<usize> = tx
        .query(
            &stmt,
            &[
                &old_id, &old_hash, &family, &client, &now, &new_id, &grace, &job,
            ],
        )
        .await?
        .iter()
        .map(|row| row.try_get::<_, i64>(0))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter_map(|j| usize::try_from(j).ok())
        .collect();
    if won.is_empty() {
        return Ok(won);
    }
    let mut successors = RefreshColumns::default();
    let mut families: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    let winners: Vec<&Rotation> = tried
        .values()
        .filter(|(i, _)| won.contains(i))
        .map(|(_, r)| *r)
        .collect();
    let scope_text: Vec<String> = winners.iter().map(|r| r.scopes.to_string()).collect();
    for (r, scopes) in winners.iter().zip(&scope_text) {
        successors.push(
            &r.new.id,
            &r.new.hash,
            &r.family_id,
            scopes,
            r.now,
            r.new.expires_at,
        );
        let e = families
            .entry(r.family_id.as_str())
            .or_insert((r.family_expires_at, r.now));
        e.0 = e.0.max(r.family_expires_at);
        e.1 = e.1.max(r.now);
    }
    successors.insert_successors(tx).await?;
    let mut ids = Vec::with_capacity(families.len());
    let mut expires = Vec::with_capacity(families.len());
    let mut at = Vec::with_capacity(families.len());
    for (id, (e, t)) in families {
        ids.push(id);
        expires.push(e);
        at.push(t);
    }
    let stmt = tx
        .prepare_cached(
            "UPDATE token_families f SET expires_at = GREATEST(f.expires_at, x.e), \
             last_issued_at = GREATEST(coalesce(f.last_issued_at, f.created_at), x.t) \
             FROM unnest($1::text[], $2::int8[], $3::int8[]) AS x(id, e, t) WHERE f.id = x.id",
        )
        .await?;
    tx.execute(&stmt, &[&ids, &expires, &at]).await?;
    Ok(won)
}

fn family_from_row(r: &Row) -> StoreResult<FamilyRecord> {
    Ok(FamilyRecord {
        id: r.try_get("id")?,
        client_id: r.try_get("client_id")?,
        label: r.try_get("label")?,
        subject: r.try_get("subject")?,
        scopes: scopes(r.try_get("scopes")?)?,
        grant_type: r.try_get("grant_type")?,
        created_at: r.try_get("created_at")?,
        last_used_at: r.try_get("last_used_at")?,
        expires_at: r.try_get("expires_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

const FAMILY_COLUMNS: &str = "id, client_id, label, subject, scopes, grant_type, created_at, \
     last_used_at, expires_at, revoked_at";

/// A refresh token (`r`) with its family and whether its successor is unused:
/// the columns, then the joins that follow `r`.
const REFRESH_LOOKUP: &str = "SELECT r.id AS token_id, r.token_hash, r.scopes AS token_scopes, \
     r.expires_at AS token_expires_at, r.spent_at, r.grace_response, f.id, f.client_id, \
     f.label, f.subject, f.scopes, f.grant_type, f.created_at, f.last_used_at, f.expires_at, \
     f.revoked_at, (s.id IS NOT NULL AND s.spent_at IS NULL) AS successor_unused";
const REFRESH_LOOKUP_JOINS: &str = "JOIN token_families f ON f.id = r.family_id \
     LEFT JOIN refresh_tokens s ON s.id = r.replaced_by";

fn lookup_from_row(row: &Row) -> StoreResult<RefreshLookup> {
    let hash: &[u8] = row.try_get("token_hash")?;
    Ok(RefreshLookup {
        id: row.try_get("token_id")?,
        token_hash: hash32(hash, "refresh token hash")?,
        family: family_from_row(row)?,
        scopes: scopes(row.try_get("token_scopes")?)?,
        expires_at: row.try_get("token_expires_at")?,
        spent_at: row.try_get("spent_at")?,
        grace_response: row.try_get("grace_response")?,
        successor_unused: row.try_get("successor_unused")?,
    })
}

/// The tokens a batch's refresh grants present, one statement for all, in the
/// order of `spends` (`None`: no such token). Read without locking: the rotation's
/// conditional update decides between concurrent spends, as it does after a
/// read on a pooled connection.
pub(super) async fn find_for_spends(
    tx: &Transaction<'_>,
    spends: &[(usize, &SpendRefresh)],
) -> StoreResult<Vec<Option<RefreshLookup>>> {
    let ids: Vec<&str> = spends
        .iter()
        .filter_map(|(_, s)| match &s.key {
            RefreshKey::Selector(id) => Some(id.as_str()),
            // PostgreSQL never stored tokens without a selector.
            RefreshKey::Hash(_) => None,
        })
        .collect();
    if ids.is_empty() {
        return Ok(spends.iter().map(|_| None).collect());
    }
    let stmt = tx
        // Joined from the list of ids, not `r.id = ANY($1)`: that plan
        // hash-joined a sequential scan of the families (whose rows every
        // refresh rewrites) and gave the refresh bench a 35–54 ms p99.
        .prepare_cached(&format!(
            "{REFRESH_LOOKUP} FROM unnest($1::text[]) AS k(id) \
             JOIN refresh_tokens r ON r.id = k.id {REFRESH_LOOKUP_JOINS}"
        ))
        .await?;
    let mut by_id: HashMap<String, RefreshLookup> = HashMap::new();
    for row in tx.query(&stmt, &[&ids]).await? {
        let found = lookup_from_row(&row)?;
        by_id.insert(found.id.clone(), found);
    }
    Ok(spends
        .iter()
        .map(|(_, s)| match &s.key {
            RefreshKey::Selector(id) => by_id.get(id).cloned(),
            RefreshKey::Hash(_) => None,
        })
        .collect())
}

#[async_trait]
impl TokenStore for PgStore {
    async fn record_grant(&self, grant: NewGrant) -> StoreResult<bool> {
        self.submit(|tx| HotJob::Grant(grant, tx)).await
    }

    async fn find_refresh_token(&self, id: &str) -> StoreResult<Option<RefreshLookup>> {
        bounded(async {
            let c = self.conn().await?;
            let stmt = c
                .prepare_cached(&format!(
                    "{REFRESH_LOOKUP} FROM refresh_tokens r {REFRESH_LOOKUP_JOINS} WHERE r.id = $1"
                ))
                .await?;
            c.query_opt(&stmt, &[&id])
                .await?
                .map(|row| lookup_from_row(&row))
                .transpose()
        })
        .await
    }

    async fn rotate_refresh_token(&self, rotation: Rotation) -> StoreResult<bool> {
        self.submit(|tx| HotJob::Rotate(rotation, tx)).await
    }

    async fn spend_refresh_token(&self, spend: SpendRefresh) -> StoreResult<SpentRefresh> {
        self.submit(|tx| HotJob::Spend(spend, tx)).await
    }

    async fn get_family(&self, id: &str) -> StoreResult<Option<FamilyRecord>> {
        bounded(async {
            let c = self.conn().await?;
            let stmt = c
                .prepare_cached(&format!(
                    "SELECT {FAMILY_COLUMNS} FROM token_families WHERE id = $1"
                ))
                .await?;
            c.query_opt(&stmt, &[&id])
                .await?
                .map(|r| family_from_row(&r))
                .transpose()
        })
        .await
    }

    async fn list_families(
        &self,
        client: &ClientId,
        label: Option<&str>,
        limit: Option<u32>,
    ) -> StoreResult<Vec<FamilyRecord>> {
        let limit = limit.map(i64::from);
        bounded(async {
            let c = self.conn().await?;
            let stmt = c
                .prepare_cached(&format!(
                    "SELECT {FAMILY_COLUMNS} FROM token_families WHERE client_id = $1 \
                     AND ($2::text IS NULL OR label = $2) ORDER BY created_at DESC, id \
                     LIMIT $3"
                ))
                .await?;
            c.query(&stmt, &[&client.as_str(), &label, &limit])
                .await?
                .iter()
                .map(family_from_row)
                .collect()
        })
        .await
    }

    async fn list_labels(&self, client: &ClientId, now: i64) -> StoreResult<Vec<LabelRecord>> {
        bounded(async {
            let c = self.conn().await?;
            let stmt = c
                .prepare_cached(
                    "SELECT l.name, l.created_at, \
                     GREATEST(l.last_issued_at, f.last_issued) AS last_issued_at, \
                     l.last_used_at, l.uploads, coalesce(f.live, 0) AS live FROM labels l \
                     LEFT JOIN (SELECT label, \
                       count(*) FILTER (WHERE revoked_at IS NULL AND expires_at > $2) AS live, \
                       max(coalesce(last_issued_at, created_at)) AS last_issued \
                       FROM token_families WHERE client_id = $1 AND label IS NOT NULL \
                       GROUP BY label) f ON f.label = l.name \
                     WHERE l.client_id = $1 ORDER BY l.name",
                )
                .await?;
            c.query(&stmt, &[&client.as_str(), &now])
                .await?
                .iter()
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
        })
        .await
    }

    async fn record_usage(&self, uses: &[Usage]) -> StoreResult<()> {
        if uses.is_empty() {
            return Ok(());
        }
        // Latest use per family and per label, in key order (a multi-row update
        // may not touch a row twice, and concurrent ones lock in the same order).
        let mut families: BTreeMap<&str, i64> = BTreeMap::new();
        let mut labels: BTreeMap<(&str, &str), i64> = BTreeMap::new();
        for u in uses {
            let at = families.entry(&u.family_id).or_insert(u.at);
            *at = (*at).max(u.at);
            if let Some(l) = &u.label {
                let at = labels.entry((&u.client_id, l)).or_insert(u.at);
                *at = (*at).max(u.at);
            }
        }
        let (fam_ids, fam_at): (Vec<&str>, Vec<i64>) = families.into_iter().unzip();
        let (clients, names, times) = split3(labels);
        bounded(async {
            let mut c = self.conn().await?;
            let tx = c.transaction().await?;
            tx.execute(
                "UPDATE token_families f SET last_used_at = GREATEST(coalesce(f.last_used_at, 0), x.t) \
                 FROM unnest($1::text[], $2::int8[]) AS x(id, t) WHERE f.id = x.id",
                &[&fam_ids, &fam_at],
            )
            .await?;
            tx.execute(
                "UPDATE labels l SET last_used_at = GREATEST(coalesce(l.last_used_at, 0), x.t) \
                 FROM unnest($1::text[], $2::text[], $3::int8[]) AS x(c, n, t) \
                 WHERE l.client_id = x.c AND l.name = x.n",
                &[&clients, &names, &times],
            )
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }
}
