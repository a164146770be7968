//! The group-commit writer for SQLite: the hot writes (grants, refresh rotations,
//! data uploads, audit events) go to one thread that owns one synchronous connection. It takes
//! every job waiting, applies them all in one `BEGIN IMMEDIATE … COMMIT`, and
//! answers each job when the commit (and its fsync) is done.
//!
//! One thread with prepared statements makes a batch one run of SQLite calls; the
//! async driver needed a hop to its worker thread per statement, and on a busy
//! machine those hops cost more than the statements. Durability is not traded for
//! speed: `synchronous = FULL`, and nothing is acknowledged before its commit.

use crate::{NewAuditEvent, NewGrant, NewUpload, Rotation, StoreError, StoreResult, UploadOutcome};
use rusqlite::{Connection, OpenFlags, TransactionBehavior, params};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Most jobs in one group commit.
const MAX_BATCH: usize = 512;

/// How many jobs may wait for the writer before senders wait too.
const QUEUE: usize = 4096;

/// A write that waits for the next group commit.
pub(crate) enum WriteJob {
    Grant(NewGrant, oneshot::Sender<StoreResult<()>>),
    Rotate(Rotation, oneshot::Sender<StoreResult<bool>>),
    Upload(NewUpload, oneshot::Sender<StoreResult<UploadOutcome>>),
    Audit(NewAuditEvent, oneshot::Sender<StoreResult<()>>),
}

/// What a job did inside a batch.
enum Outcome {
    Done,
    Rotated(bool),
    Uploaded(UploadOutcome),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        use rusqlite::ffi;
        match &e {
            rusqlite::Error::SqliteFailure(f, _) => match f.extended_code {
                ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
                    Self::Conflict("refers to something that does not exist".into())
                }
                ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                    Self::Conflict("already exists".into())
                }
                _ => Self::Backend(e.to_string()),
            },
            _ => Self::Backend(e.to_string()),
        }
    }
}

/// Opens the writer's connection to the (existing) database at `path` and starts
/// its thread; the thread ends when every sender is dropped.
pub(crate) fn spawn(path: &Path) -> StoreResult<mpsc::Sender<WriteJob>> {
    let conn = open(path)?;
    let (tx, rx) = mpsc::channel(QUEUE);
    std::thread::Builder::new()
        .name("portcullis-writer".into())
        .spawn(move || run(conn, rx))
        .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;
    Ok(tx)
}

fn open(path: &Path) -> StoreResult<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // The pooled connections' settings, but a 64 MiB page cache and memory-mapped
    // reads: the pages a batch updates (the tails of the indexes, the labels) stay
    // in memory instead of going through read() for every insert.
    conn.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
         PRAGMA cache_size = -65536; PRAGMA mmap_size = 268435456; PRAGMA temp_store = memory;",
    )?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

/// Gathers waiting writes and applies them in one transaction. If the batch fails
/// (one bad row), each job is retried alone so only the bad one is refused.
fn run(mut conn: Connection, mut rx: mpsc::Receiver<WriteJob>) {
    let mut batch: Vec<WriteJob> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let applied = apply_batch(&mut conn, &batch);
        tracing::debug!(
            jobs = batch.len(),
            micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            "group commit"
        );
        match applied {
            Ok(outcomes) => {
                for (job, outcome) in batch.drain(..).zip(outcomes) {
                    reply(job, Ok(outcome));
                }
            }
            Err(_) if batch.len() > 1 => {
                for job in batch.drain(..) {
                    let one = std::slice::from_ref(&job);
                    let result = apply_batch(&mut conn, one).and_then(|mut o| {
                        o.pop()
                            .ok_or_else(|| StoreError::Backend("empty batch result".into()))
                    });
                    reply(job, result);
                }
            }
            Err(e) => {
                for job in batch.drain(..) {
                    reply(job, Err(StoreError::Backend(e.to_string())));
                }
            }
        }
    }
}

fn reply(job: WriteJob, result: StoreResult<Outcome>) {
    let mismatch = || StoreError::Backend("mismatched batch result".into());
    match job {
        WriteJob::Grant(_, tx) | WriteJob::Audit(_, tx) => {
            let _ = tx.send(result.map(|_| ()));
        }
        WriteJob::Rotate(_, tx) => {
            let _ = tx.send(result.and_then(|o| match o {
                Outcome::Rotated(b) => Ok(b),
                _ => Err(mismatch()),
            }));
        }
        WriteJob::Upload(_, tx) => {
            let _ = tx.send(result.and_then(|o| match o {
                Outcome::Uploaded(u) => Ok(u),
                _ => Err(mismatch()),
            }));
        }
    }
}

/// Applies a batch in one transaction; returns one outcome per job.
fn apply_batch(conn: &mut Connection, jobs: &[WriteJob]) -> StoreResult<Vec<Outcome>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut outcomes = Vec::with_capacity(jobs.len());
    for job in jobs {
        outcomes.push(match job {
            WriteJob::Grant(g, _) => {
                insert_grant(&tx, g)?;
                Outcome::Done
            }
            WriteJob::Rotate(r, _) => Outcome::Rotated(rotate(&tx, r)?),
            WriteJob::Upload(u, _) => Outcome::Uploaded(upload(&tx, u)?),
            WriteJob::Audit(e, _) => {
                insert_audit(&tx, e)?;
                Outcome::Done
            }
        });
    }
    tx.commit()?;
    Ok(outcomes)
}

fn insert_grant(tx: &Connection, g: &NewGrant) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO token_families (id, client_id, label, subject, scopes, grant_type, \
         created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        g.family_id,
        g.client_id,
        g.label,
        g.subject,
        g.scopes,
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
            g.scopes,
            g.created_at,
            r.expires_at
        ])?;
    }
    if let Some(label) = &g.label {
        tx.prepare_cached(
            "INSERT INTO labels (client_id, name, created_at, last_issued_at) \
             VALUES (?1, ?2, ?3, ?3) ON CONFLICT (client_id, name) DO UPDATE SET \
             last_issued_at = max(coalesce(labels.last_issued_at, 0), excluded.last_issued_at)",
        )?
        .execute(params![g.client_id, label, g.created_at])?;
    }
    insert_audit(
        tx,
        &NewAuditEvent {
            at: g.created_at,
            kind: "token.issue".into(),
            actor: g.actor.clone(),
            target: Some(g.family_id.clone()),
            client_id: Some(g.client_id.clone()),
            label: g.label.clone(),
            detail: None,
        },
    )
}

/// RFC 6749 §10.4 / RFC 9700 §4.14: one statement spends the token only if it is
/// unspent, unexpired, the one presented (selector and hash), in this family,
/// owned by this client and not revoked, so of N concurrent refreshes exactly one
/// changes a row.
fn rotate(tx: &Connection, r: &Rotation) -> StoreResult<bool> {
    let spent = tx
        .prepare_cached(
            "UPDATE refresh_tokens SET spent_at = ?1, replaced_by = ?2, grace_response = ?3 \
             WHERE id = ?4 AND token_hash = ?7 AND spent_at IS NULL AND expires_at > ?1 \
             AND family_id = ?5 \
             AND EXISTS (SELECT 1 FROM token_families f WHERE f.id = ?5 AND f.client_id = ?6 \
                         AND f.revoked_at IS NULL)",
        )?
        .execute(params![
            r.now,
            r.new.id,
            r.grace_response.as_deref(),
            r.old_id,
            r.family_id,
            r.client_id,
            r.old_hash.as_slice()
        ])?;
    if spent != 1 {
        return Ok(false);
    }
    tx.prepare_cached(
        "INSERT INTO refresh_tokens (id, token_hash, family_id, scopes, created_at, expires_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        r.new.id,
        r.new.hash.as_slice(),
        r.family_id,
        r.scopes,
        r.now,
        r.new.expires_at
    ])?;
    tx.prepare_cached("UPDATE token_families SET expires_at = max(expires_at, ?1) WHERE id = ?2")?
        .execute(params![r.family_expires_at, r.family_id])?;
    tx.prepare_cached(
        "UPDATE labels SET last_issued_at = ?1 WHERE client_id = ?2 \
         AND name = (SELECT label FROM token_families WHERE id = ?3)",
    )?
    .execute(params![r.now, r.client_id, r.family_id])?;
    insert_audit(tx, &r.audit)?;
    Ok(true)
}

/// Stores one batch: the batch row (unless its idempotency key was seen), its
/// records, and the counters indicators read.
fn upload(tx: &Connection, u: &NewUpload) -> StoreResult<UploadOutcome> {
    let n = i64::try_from(u.records.len()).unwrap_or(i64::MAX);
    let inserted = tx
        .prepare_cached(
            "INSERT INTO data_batches (id, client_id, label, token_id, records, received_at, \
             idempotency_key, body_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
             ON CONFLICT DO NOTHING",
        )?
        .execute(params![
            u.batch_id,
            u.client_id,
            u.label,
            u.token_id,
            n,
            u.received_at,
            u.idempotency_key,
            u.body_hash.as_slice()
        ])?;
    if inserted == 0 {
        let mut stmt = tx.prepare_cached(
            "SELECT id, records, body_hash FROM data_batches \
             WHERE client_id = ?1 AND idempotency_key = ?2",
        )?;
        let mut rows = stmt.query(params![u.client_id, u.idempotency_key])?;
        let row = rows
            .next()?
            .ok_or_else(|| StoreError::Conflict("batch id collision".into()))?;
        let hash: Option<Vec<u8>> = row.get("body_hash")?;
        if hash.as_deref() != Some(u.body_hash.as_slice()) {
            return Ok(UploadOutcome::KeyReused);
        }
        return Ok(UploadOutcome::Replayed {
            batch_id: row.get("id")?,
            accepted: row.get("records")?,
        });
    }
    let mut record =
        tx.prepare_cached("INSERT INTO data_records (batch_id, seq, body) VALUES (?1, ?2, ?3)")?;
    for (seq, body) in (0_i64..).zip(&u.records) {
        record.execute(params![u.batch_id, seq, body])?;
    }
    tx.prepare_cached(
        "INSERT INTO indicator_counters (client_id, label, records, batches, last_upload_at) \
         VALUES (?1, ?2, ?3, 1, ?4) ON CONFLICT (client_id, label) DO UPDATE SET \
         records = records + excluded.records, batches = batches + 1, \
         last_upload_at = max(coalesce(last_upload_at, 0), excluded.last_upload_at)",
    )?
    .execute(params![
        u.client_id,
        u.label.as_deref().unwrap_or(""),
        n,
        u.received_at
    ])?;
    if let Some(label) = &u.label {
        tx.prepare_cached(
            "INSERT INTO labels (client_id, name, created_at, last_used_at, uploads) \
             VALUES (?1, ?2, ?3, ?3, 1) ON CONFLICT (client_id, name) DO UPDATE SET \
             uploads = uploads + 1, \
             last_used_at = max(coalesce(last_used_at, 0), excluded.last_used_at)",
        )?
        .execute(params![u.client_id, label, u.received_at])?;
    }
    Ok(UploadOutcome::Stored {
        batch_id: u.batch_id.clone(),
        accepted: n,
    })
}

fn insert_audit(tx: &Connection, e: &NewAuditEvent) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO audit_events (at, kind, actor_kind, actor_id, target, client_id, label, \
         source, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        e.at,
        e.kind,
        e.actor.kind,
        e.actor.id,
        e.target,
        e.client_id,
        e.label,
        e.actor.source,
        e.detail
    ])?;
    Ok(())
}
