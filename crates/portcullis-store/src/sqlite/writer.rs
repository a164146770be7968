//! The one writer of this process: a thread that owns the only read-write
//! connection and runs every write.
//!
//! - **Hot writes** (grants, refresh rotations, uploads, audit events) are
//!   group-committed: the thread takes every job waiting, applies them all in one
//!   `BEGIN IMMEDIATE … COMMIT`, and answers each when the commit (and its fsync) is
//!   done. One thread with prepared statements makes a batch one run of SQLite
//!   calls; durability is not traded for speed (`synchronous = FULL`, nothing is
//!   acknowledged before its commit).
//! - **Every other change** ([`WriteJob::Txn`]) runs on the same thread in its own
//!   `BEGIN IMMEDIATE` transaction: it holds the write lock from its first
//!   statement, so it never reads, meets another writer's commit and fails busy.

use super::conn::{self, Role};
use crate::health::WriteHealth;
use crate::{NewAuditEvent, NewGrant, NewUpload, Rotation, StoreError, StoreResult, UploadOutcome};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// Most jobs in one group commit.
const MAX_BATCH: usize = 512;

/// How many jobs may wait for the writer before senders wait too.
const QUEUE: usize = 4096;

/// A change that runs its own transaction on the writer's connection and answers
/// its caller itself.
pub(crate) type TxnJob = Box<dyn FnOnce(&mut Connection) + Send>;

/// A write for the writer thread.
pub(crate) enum WriteJob {
    Grant(NewGrant, oneshot::Sender<StoreResult<bool>>),
    Rotate(Rotation, oneshot::Sender<StoreResult<bool>>),
    Upload(NewUpload, oneshot::Sender<StoreResult<UploadOutcome>>),
    Audit(NewAuditEvent, oneshot::Sender<StoreResult<()>>),
    /// Any other change; the closure runs its own transaction and answers itself.
    Txn(TxnJob),
}

/// What a hot job did inside a batch.
enum Outcome {
    Done,
    Granted(bool),
    Rotated(bool),
    Uploaded(UploadOutcome),
}

/// The error a caller sees when the writer thread is gone.
pub(crate) fn stopped() -> StoreError {
    StoreError::Backend("the writer has stopped".into())
}

/// Runs `f` in a `BEGIN IMMEDIATE` transaction and commits it if `f` succeeds.
pub(crate) fn in_transaction<T>(
    conn: &mut Connection,
    f: impl FnOnce(&Transaction<'_>) -> StoreResult<T>,
) -> StoreResult<T> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let value = f(&tx)?;
    tx.commit()?;
    Ok(value)
}

/// Opens the writer's connection to the database at `path` (creating the file)
/// and starts its thread; the thread ends when every sender is dropped.
pub(crate) fn spawn(path: &Path, health: Arc<WriteHealth>) -> StoreResult<mpsc::Sender<WriteJob>> {
    let conn = conn::open(path, Role::Writer)?;
    let (tx, rx) = mpsc::channel(QUEUE);
    std::thread::Builder::new()
        .name("portcullis-writer".into())
        .spawn(move || run(conn, rx, &health))
        .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;
    Ok(tx)
}

/// Gathers waiting writes: the hot ones in one transaction (if that fails, each is
/// retried alone so only the bad one is refused), then the others, one
/// transaction each.
fn run(mut conn: Connection, mut rx: mpsc::Receiver<WriteJob>, health: &WriteHealth) {
    let mut batch: Vec<WriteJob> = Vec::with_capacity(MAX_BATCH);
    let mut others: Vec<TxnJob> = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                WriteJob::Txn(f) => others.push(f),
                hot => batch.push(hot),
            }
            if batch.len() + others.len() < MAX_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            commit_hot(&mut conn, &mut batch, health);
        }
        for f in others.drain(..) {
            f(&mut conn);
        }
    }
}

fn commit_hot(conn: &mut Connection, batch: &mut Vec<WriteJob>, health: &WriteHealth) {
    let started = Instant::now();
    health.start();
    let applied = apply_batch(conn, batch);
    health.finish(&applied);
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
                let result = apply_batch(conn, one).and_then(|mut o| {
                    o.pop()
                        .ok_or_else(|| StoreError::Backend("empty batch result".into()))
                });
                reply(job, result);
            }
        }
        Err(e) => {
            // A batch of one: its own error, with its kind (a conflict stays one).
            if let Some(job) = batch.pop() {
                reply(job, Err(e));
            }
            batch.clear();
        }
    }
}

fn reply(job: WriteJob, result: StoreResult<Outcome>) {
    let mismatch = || StoreError::Backend("mismatched batch result".into());
    match job {
        WriteJob::Audit(_, tx) => {
            let _ = tx.send(result.map(|_| ()));
        }
        WriteJob::Grant(_, tx) => {
            let _ = tx.send(result.and_then(|o| match o {
                Outcome::Granted(b) => Ok(b),
                _ => Err(mismatch()),
            }));
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
        WriteJob::Txn(_) => {}
    }
}

/// Applies a batch of hot jobs in one transaction; returns one outcome per job.
fn apply_batch(conn: &mut Connection, jobs: &[WriteJob]) -> StoreResult<Vec<Outcome>> {
    in_transaction(conn, |tx| {
        let mut outcomes = Vec::with_capacity(jobs.len());
        let mut active = super::tokens::ActiveClients::new();
        for job in jobs {
            outcomes.push(match job {
                WriteJob::Grant(g, _) => {
                    Outcome::Granted(super::tokens::insert_grant(tx, g, &mut active)?)
                }
                WriteJob::Rotate(r, _) => Outcome::Rotated(super::tokens::rotate(tx, r)?),
                WriteJob::Upload(u, _) => Outcome::Uploaded(super::data::upload(tx, u)?),
                WriteJob::Audit(e, _) => {
                    super::audit::insert(tx, e)?;
                    Outcome::Done
                }
                WriteJob::Txn(_) => Outcome::Done,
            });
        }
        Ok(outcomes)
    })
}
