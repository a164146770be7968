//! Group commit on PostgreSQL: a few writer tasks share one queue of hot writes
//! (grants, refresh grants and rotations, uploads, audit events). A writer takes every job
//! waiting (up to [`MAX_BATCH`]), applies them in one transaction with one
//! multi-row statement per table (the statements pipelined on one connection),
//! and answers each job once `COMMIT` has returned. Under light load a job is
//! committed alone at once; under heavy load one commit (one WAL flush) carries
//! hundreds. Several writers keep a commit in flight while the next batch forms.
//!
//! If a batch fails, each of its jobs is retried in its own transaction, so only
//! the job at fault is refused.

use super::{data, tokens};
use crate::health::WriteHealth;
use crate::{
    NewAuditEvent, NewGrant, NewUpload, Rotation, SpendRefresh, SpentRefresh, StoreError,
    StoreResult, UploadOutcome,
};
use deadpool_postgres::{Object, Pool};
use std::collections::BTreeSet;
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc, oneshot};

/// Most jobs in one group commit.
const MAX_BATCH: usize = 512;

/// A batch smaller than this waits (up to [`GATHER_YIELDS`] turns of the
/// scheduler, no timer) for jobs other tasks are about to submit.
const GATHER_UNTIL: usize = 32;
const GATHER_YIELDS: usize = 2;

/// How many jobs may wait before senders wait too.
const QUEUE: usize = 4096;

/// A hot write.
pub(crate) enum HotJob {
    Grant(NewGrant, oneshot::Sender<StoreResult<bool>>),
    Rotate(Rotation, oneshot::Sender<StoreResult<bool>>),
    Spend(SpendRefresh, oneshot::Sender<StoreResult<SpentRefresh>>),
    Upload(NewUpload, oneshot::Sender<StoreResult<UploadOutcome>>),
    Audit(NewAuditEvent, oneshot::Sender<StoreResult<()>>),
}

/// What a job did inside a batch.
pub(crate) enum Outcome {
    Done,
    Granted(bool),
    Rotated(bool),
    Spent(Box<SpentRefresh>),
    Uploaded(UploadOutcome),
}

/// The error a caller sees when the writers are gone.
pub(crate) fn stopped() -> StoreError {
    StoreError::Backend("the writer has stopped".into())
}

/// Starts `writers` writer tasks on `pool`; they end when every sender is dropped.
pub(crate) fn spawn(pool: Pool, writers: usize, health: Arc<WriteHealth>) -> mpsc::Sender<HotJob> {
    let (tx, rx) = mpsc::channel(QUEUE);
    let rx = Arc::new(Mutex::new(rx));
    for _ in 0..writers {
        tokio::spawn(run(pool.clone(), Arc::clone(&rx), Arc::clone(&health)));
    }
    tx
}

async fn run(pool: Pool, rx: Arc<Mutex<mpsc::Receiver<HotJob>>>, health: Arc<WriteHealth>) {
    loop {
        let mut batch = Vec::new();
        {
            let mut rx = rx.lock().await;
            let Some(first) = rx.recv().await else {
                return;
            };
            batch.push(first);
            drain(&mut rx, &mut batch);
            // A small batch: let the tasks that are about to submit (requests
            // already being handled on this runtime) run first, so that this
            // commit carries them too. PostgreSQL's cost is mostly per commit.
            for _ in 0..GATHER_YIELDS {
                if batch.len() >= GATHER_UNTIL {
                    break;
                }
                tokio::task::yield_now().await;
                drain(&mut rx, &mut batch);
            }
        }
        health.start();
        let ok = commit(&pool, batch).await;
        health.finish(&ok);
    }
}

/// The common batch, grants and audit events only, in one round trip
/// ([`tokens::record_grants_pipelined`]).
async fn apply_grants(conn: &Object, jobs: &[HotJob]) -> StoreResult<Vec<Outcome>> {
    let grants: Vec<(usize, &NewGrant)> = jobs
        .iter()
        .enumerate()
        .filter_map(|(i, j)| match j {
            HotJob::Grant(g, _) => Some((i, g)),
            _ => None,
        })
        .collect();
    let issued: Vec<NewAuditEvent> = grants.iter().map(|(_, g)| tokens::issue_event(g)).collect();
    let mut issued_events = issued.iter();
    let mut events = super::audit::AuditColumns::default();
    for job in jobs {
        match job {
            HotJob::Grant(g, _) => {
                if let Some(e) = issued_events.next() {
                    events.push(e, Some(g.client_id.as_str()));
                }
            }
            HotJob::Audit(e, _) => events.push(e, None),
            _ => {}
        }
    }
    let granted = tokens::record_grants_pipelined(conn, &grants, &events).await?;
    Ok(jobs
        .iter()
        .enumerate()
        .map(|(i, j)| match j {
            HotJob::Grant(..) => Outcome::Granted(granted.contains(&i)),
            _ => Outcome::Done,
        })
        .collect())
}

/// Moves every job waiting into `batch`, up to [`MAX_BATCH`].
fn drain(rx: &mut mpsc::Receiver<HotJob>, batch: &mut Vec<HotJob>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

/// Commits `batch` and answers its jobs; `Err` (unavailable) when the database
/// could not take it, for the write health.
async fn commit(pool: &Pool, batch: Vec<HotJob>) -> StoreResult<()> {
    let mut conn = match pool.get().await {
        Ok(c) => c,
        Err(e) => {
            let e = StoreError::from(e);
            for job in batch {
                reply(job, Err(e.clone()));
            }
            return Err(e);
        }
    };
    match apply(&mut conn, &batch).await {
        Ok(outcomes) => {
            for (job, outcome) in batch.into_iter().zip(outcomes) {
                reply(job, Ok(outcome));
            }
            Ok(())
        }
        Err(e) if batch.len() > 1 && !matches!(e, StoreError::Unavailable(_)) => {
            for job in batch {
                let one = std::slice::from_ref(&job);
                let result = apply(&mut conn, one).await.and_then(|mut o| {
                    o.pop()
                        .ok_or_else(|| StoreError::Backend("empty batch result".into()))
                });
                reply(job, result);
            }
            Ok(())
        }
        Err(e) => {
            for job in batch {
                reply(job, Err(e.clone()));
            }
            Err(e)
        }
    }
}

fn reply(job: HotJob, result: StoreResult<Outcome>) {
    let mismatch = || StoreError::Backend("mismatched batch result".into());
    match job {
        HotJob::Audit(_, tx) => {
            let _ = tx.send(result.map(|_| ()));
        }
        HotJob::Grant(_, tx) => {
            let _ = tx.send(result.and_then(|o| match o {
                Outcome::Granted(b) => Ok(b),
                _ => Err(mismatch()),
            }));
        }
        HotJob::Rotate(_, tx) => {
            let _ = tx.send(result.and_then(|o| match o {
                Outcome::Rotated(b) => Ok(b),
                _ => Err(mismatch()),
            }));
        }
        HotJob::Spend(_, tx) => {
            let _ = tx.send(result.and_then(|o| match o {
                Outcome::Spent(s) => Ok(*s),
                _ => Err(mismatch()),
            }));
        }
        HotJob::Upload(_, tx) => {
            let _ = tx.send(result.and_then(|o| match o {
                Outcome::Uploaded(u) => Ok(u),
                _ => Err(mismatch()),
            }));
        }
    }
}

/// Applies `jobs` in one transaction; one outcome per job, in order.
async fn apply(conn: &mut Object, jobs: &[HotJob]) -> StoreResult<Vec<Outcome>> {
    // A grant that spends an authorization code needs the code's answer before
    // it is written, which the one-round-trip pipeline cannot give.
    if jobs.iter().all(|j| match j {
        HotJob::Grant(g, _) => g.spends_code.is_none(),
        HotJob::Audit(..) => true,
        _ => false,
    }) {
        return apply_grants(conn, jobs).await;
    }
    let tx = conn.transaction().await?;
    // SPEC §8: a grant or refresh commits only while its client is active. The
    // batch holds its clients' locks shared and reads their status after: a
    // disable or delete committed before is seen, one not yet committed waits for
    // this transaction (and then revokes what it issued).
    let client_ids: BTreeSet<&str> = jobs
        .iter()
        .filter_map(|j| match j {
            HotJob::Grant(g, _) => Some(g.client_id.as_str()),
            HotJob::Rotate(r, _) => Some(r.client_id.as_str()),
            HotJob::Spend(s, _) => Some(s.client_id.as_str()),
            _ => None,
        })
        .collect();
    // The batch's refresh grants read their tokens in the same pipeline as the
    // clients' locks (the read does not depend on them): no round trip of its own.
    let spends: Vec<(usize, &SpendRefresh)> = jobs
        .iter()
        .enumerate()
        .filter_map(|(i, j)| match j {
            HotJob::Spend(s, _) => Some((i, s)),
            _ => None,
        })
        .collect();
    let (active, found) = tokio::try_join!(
        tokens::lock_active_clients(&tx, &client_ids),
        tokens::find_for_spends(&tx, &spends)
    )?;
    let mut outcomes: Vec<Option<Outcome>> = jobs.iter().map(|_| None).collect();
    let mut audit: Vec<(usize, NewAuditEvent)> = Vec::new();

    let mut grants: Vec<(usize, &NewGrant)> = jobs
        .iter()
        .enumerate()
        .filter_map(|(i, j)| match j {
            HotJob::Grant(g, _) => Some((i, g)),
            _ => None,
        })
        .collect();
    let unspent = tokens::spend_codes(&tx, &grants, &active).await?;
    grants.retain(|(i, _)| {
        let spent = !unspent.contains(i);
        if !spent {
            outcomes[*i] = Some(Outcome::Granted(false));
        }
        spent
    });
    let granted = tokens::insert_grants(&tx, &grants, &active).await?;
    for (i, g) in &grants {
        let ok = granted.contains(i);
        outcomes[*i] = Some(Outcome::Granted(ok));
        if ok {
            audit.push((*i, tokens::issue_event(g)));
        }
    }

    // Refresh grants in one write: their tokens (read above) are judged and spent
    // with the rotations (whose conditional update still decides).
    let judged: Vec<(usize, Rotation)> = spends
        .iter()
        .zip(&found)
        .filter_map(|((i, s), f)| Some((*i, (s.judge)(f.as_ref()?)?)))
        .collect();
    let rotations: Vec<(usize, &Rotation)> = jobs
        .iter()
        .enumerate()
        .filter_map(|(i, j)| match j {
            HotJob::Rotate(r, _) => Some((i, r)),
            _ => None,
        })
        .chain(judged.iter().map(|(i, r)| (*i, r)))
        .collect();
    let rotated = tokens::rotate(&tx, &rotations, &active).await?;
    for (i, r) in &rotations {
        let ok = rotated.contains(i);
        outcomes[*i] = Some(Outcome::Rotated(ok));
        if ok {
            audit.push((*i, r.audit.clone()));
        }
    }
    for ((i, _), found) in spends.iter().zip(found) {
        let rotated = judged
            .iter()
            .find(|(j, _)| j == i && rotated.contains(i))
            .map(|(_, r)| r.scopes.clone());
        outcomes[*i] = Some(Outcome::Spent(Box::new(SpentRefresh { found, rotated })));
    }

    for (i, job) in jobs.iter().enumerate() {
        match job {
            HotJob::Upload(u, _) => {
                outcomes[i] = Some(Outcome::Uploaded(data::upload(&tx, u).await?));
            }
            HotJob::Audit(e, _) => {
                audit.push((i, e.clone()));
                outcomes[i] = Some(Outcome::Done);
            }
            _ => {}
        }
    }
    audit.sort_by_key(|(i, _)| *i);
    let events: Vec<&NewAuditEvent> = audit.iter().map(|(_, e)| e).collect();
    super::audit::insert_many(&tx, &events).await?;
    tx.commit().await?;
    outcomes
        .into_iter()
        .map(|o| o.ok_or_else(|| StoreError::Backend("a job had no outcome".into())))
        .collect()
}
