//! The one writer of this process: a thread that owns the only read-write
//! connection and runs every write.
//!
//! - **Hot writes** (grants, refresh grants, uploads, audit events) are
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
use crate::{
    NewAuditEvent, NewGrant, NewUpload, Rotation, SpendRefresh, SpentRefresh, StoreError,
    StoreResult, UploadOutcome,
};
use rusqlite::{Connection, Transaction, TransactionBehavior};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, oneshot};

/// Most jobs in one group commit.
const MAX_BATCH: usize = 512;

/// How many jobs may wait for the writer before senders wait too.
const QUEUE: usize = 4096;

/// A group commit of fewer hot jobs than this waits (at most [`GATHER_WAIT`])
/// for grants that were announced and are still being signed. Each commit writes
/// the last page of every B-tree its jobs touch and syncs the log: a commit of
/// one or two grants costs nearly what one of a dozen does. When signing is slow
/// (RS256: 260 µs of CPU a token) grants arrive one by one and were committed one
/// or two at a time; with ES256 and EdDSA under load, the wait for the previous
/// commit's fsync already gathers more than this, and nothing waits.
const SMALL_BATCH: usize = 8;

/// The longest a small batch waits for announced grants.
const GATHER_WAIT: Duration = Duration::from_millis(1);

/// What the writer shares with the tasks that hand it hot jobs, so that a small
/// batch can wait for announced grants without polling: each poll was a sleep
/// and a wake-up of the writer, and each wake-up took a core from a signature
/// (RS256 commits of 7 grants cost 10 voluntary switches of the writer each).
#[derive(Debug)]
pub(crate) struct Gathering {
    /// Grants announced and not yet submitted (see [`crate::GrantAnnouncement`]).
    pub(crate) coming: Arc<AtomicUsize>,
    /// Hot jobs handed to the writer so far.
    sent: AtomicUsize,
    /// While a small batch waits: the count of `sent` that fills it;
    /// `usize::MAX` otherwise.
    wake_at: AtomicUsize,
    /// The writer's thread, which a waiting batch parks.
    writer: OnceLock<Thread>,
}

impl Default for Gathering {
    fn default() -> Self {
        Self {
            coming: Arc::default(),
            sent: AtomicUsize::new(0),
            wake_at: AtomicUsize::new(usize::MAX),
            writer: OnceLock::new(),
        }
    }
}

impl Gathering {
    /// A hot job was queued for the writer: wakes a waiting batch once it is
    /// full or no grant is announced any more (an announcement ends just before
    /// its job is queued).
    pub(crate) fn queued(&self) {
        let sent = self.sent.fetch_add(1, Ordering::SeqCst) + 1;
        let wake_at = self.wake_at.load(Ordering::SeqCst);
        if wake_at != usize::MAX
            && (sent >= wake_at || self.coming.load(Ordering::SeqCst) == 0)
            && let Some(writer) = self.writer.get()
        {
            writer.unpark();
        }
    }
}

/// A change that runs its own transaction on the writer's connection and answers
/// its caller itself.
pub(crate) type TxnJob = Box<dyn FnOnce(&mut Connection) + Send>;

/// A write for the writer thread.
pub(crate) enum WriteJob {
    Grant(NewGrant, oneshot::Sender<StoreResult<bool>>),
    Rotate(Rotation, oneshot::Sender<StoreResult<bool>>),
    Spend(SpendRefresh, oneshot::Sender<StoreResult<SpentRefresh>>),
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
    Spent(Box<SpentRefresh>),
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
pub(crate) fn spawn(
    path: &Path,
    health: Arc<WriteHealth>,
    gathering: Arc<Gathering>,
) -> StoreResult<mpsc::Sender<WriteJob>> {
    let conn = conn::open(path, Role::Writer)?;
    let (tx, rx) = mpsc::channel(QUEUE);
    std::thread::Builder::new()
        .name("portcullis-writer".into())
        .spawn(move || {
            let _ = gathering.writer.set(std::thread::current());
            run(conn, rx, &health, &gathering);
        })
        .map_err(|e| StoreError::Backend(format!("cannot start the writer thread: {e}")))?;
    Ok(tx)
}

/// Gathers waiting writes: the hot ones in one transaction (if that fails, each is
/// retried alone so only the bad one is refused), then the others, one
/// transaction each.
fn run(
    mut conn: Connection,
    mut rx: mpsc::Receiver<WriteJob>,
    health: &WriteHealth,
    gathering: &Gathering,
) {
    let mut batch: Vec<WriteJob> = Vec::with_capacity(MAX_BATCH);
    let mut others: Vec<TxnJob> = Vec::new();
    let mut cpu = CpuGauge::new();
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
        if !batch.is_empty() && others.is_empty() {
            gather_announced(&mut rx, &mut batch, &mut others, gathering, &mut cpu);
        }
        if !batch.is_empty() {
            commit_hot(&mut conn, &mut batch, health);
        }
        for f in others.drain(..) {
            f(&mut conn);
        }
    }
}

/// Lets a small batch wait for announced grants (see [`SMALL_BATCH`]) while this
/// process keeps the cores busy: it stops when the batch is no longer small, when
/// no grant is announced any more, when another kind of change arrives, or after
/// [`GATHER_WAIT`]. Nobody waits when nothing is announced (a lone request commits
/// at once) or when the cores have time to spare: then a wait would only add
/// latency (ES256 at 16 connections lost 11% of its rate when every small batch
/// waited), while with the cores saturated every commit's cost is taken from
/// signing.
fn gather_announced(
    rx: &mut mpsc::Receiver<WriteJob>,
    batch: &mut Vec<WriteJob>,
    others: &mut Vec<TxnJob>,
    gathering: &Gathering,
    cpu: &mut CpuGauge,
) {
    let coming = &gathering.coming;
    if batch.len() >= SMALL_BATCH || coming.load(Ordering::Relaxed) == 0 || !cpu.saturated() {
        return;
    }
    let deadline = Instant::now() + GATHER_WAIT;
    'wait: loop {
        // Jobs counted in `seen` were queued before this look, so it finds them;
        // a job queued during the look may be counted twice below, which only
        // wakes this thread early (it looks again), never late.
        let seen = gathering.sent.load(Ordering::SeqCst);
        while batch.len() < SMALL_BATCH && others.is_empty() {
            match rx.try_recv() {
                Ok(WriteJob::Txn(f)) => others.push(f),
                Ok(hot) => batch.push(hot),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => break 'wait,
            }
        }
        let lacking = SMALL_BATCH.saturating_sub(batch.len());
        let now = Instant::now();
        if lacking == 0 || !others.is_empty() || now >= deadline {
            break;
        }
        // Senders wake this thread once as many more jobs as the batch lacks are
        // queued (or none is announced any more); until then it sleeps.
        let wake_at = seen + lacking;
        gathering.wake_at.store(wake_at, Ordering::SeqCst);
        // A sender that queued a job before that store did not see it: look
        // again instead of sleeping (both sides are `SeqCst`, so at least one of
        // them sees the other).
        if gathering.sent.load(Ordering::SeqCst) >= wake_at {
            continue;
        }
        if coming.load(Ordering::SeqCst) == 0 {
            break;
        }
        std::thread::park_timeout(deadline - now);
    }
    gathering.wake_at.store(usize::MAX, Ordering::SeqCst);
}

/// Whether this process has kept the machine's cores busy lately: its CPU time
/// (from `/proc/self/stat`, every [`CpuGauge::EVERY`] at most) over the time
/// passed, against 70% of the cores it may use. Where `/proc` cannot be read,
/// never. (At 85%, RS256 at 16 connections had two steady states: gathering, at
/// 87% of two cores, or committing a grant or two at a time, which left the cores
/// at 75% and was 15–20% slower. At 4 and 8 connections the process stays at or
/// under 70% either way.)
struct CpuGauge {
    cores: f64,
    at: Instant,
    ticks: Option<u64>,
    saturated: bool,
}

impl CpuGauge {
    const EVERY: Duration = Duration::from_millis(200);
    /// `/proc`'s clock ticks per second (`USER_HZ`, 100 on Linux).
    const TICKS_PER_SEC: f64 = 100.0;

    fn new() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        Self {
            cores: f64::from(u32::try_from(cores).unwrap_or(u32::MAX)),
            at: Instant::now(),
            ticks: process_cpu_ticks(),
            saturated: false,
        }
    }

    fn saturated(&mut self) -> bool {
        let elapsed = self.at.elapsed();
        if elapsed >= Self::EVERY {
            let ticks = process_cpu_ticks();
            if let (Some(now), Some(before)) = (ticks, self.ticks) {
                self.saturated = busy(now.saturating_sub(before), elapsed, self.cores);
            }
            self.ticks = ticks;
            self.at = Instant::now();
        }
        self.saturated
    }
}

/// Whether `ticks` of CPU time over `elapsed` is at least 70% of `cores`.
fn busy(ticks: u64, elapsed: Duration, cores: f64) -> bool {
    ticks as f64 / CpuGauge::TICKS_PER_SEC >= 0.70 * cores * elapsed.as_secs_f64()
}

/// User and system CPU time of this process so far, in clock ticks.
fn process_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // After the command name (in parentheses, which may hold anything) come the
    // fields from the third on; utime and stime are the 14th and 15th.
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime.saturating_add(stime))
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
        WriteJob::Spend(_, tx) => {
            let _ = tx.send(result.and_then(|o| match o {
                Outcome::Spent(s) => Ok(*s),
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
                WriteJob::Spend(s, _) => {
                    Outcome::Spent(Box::new(super::tokens::spend(tx, s, &mut active)?))
                }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_process_cpu_time_is_read_from_proc_and_grows() {
        let Some(before) = process_cpu_ticks() else {
            // No /proc here: the gauge never reports saturation.
            assert!(!CpuGauge::new().saturated());
            return;
        };
        // Burn a few clock ticks (10 ms each) of CPU.
        let started = Instant::now();
        let mut x = 0u64;
        while started.elapsed() < Duration::from_millis(60) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let after = process_cpu_ticks();
        assert!(after.is_some_and(|a| a > before), "{before} -> {after:?}");
    }

    #[test]
    fn busy_is_70_percent_of_the_cores() {
        let window = Duration::from_millis(200);
        // Two cores for 200 ms: 40 ticks at most, 28 is 70%.
        assert!(busy(40, window, 2.0));
        assert!(busy(28, window, 2.0));
        assert!(!busy(27, window, 2.0));
        assert!(!busy(0, window, 2.0));
        // One core: 14 of 20 ticks.
        assert!(busy(14, window, 1.0));
        assert!(!busy(13, window, 1.0));
    }

    #[test]
    fn nothing_waits_before_the_first_measure() {
        assert!(!CpuGauge::new().saturated());
    }

    /// Queues `n` jobs from another thread, as the tasks do, and tells whether
    /// the writer (this thread) was unparked: it parks for up to 10 s and sees
    /// its token at once if a sender unparked it.
    fn woken_after(gathering: &Arc<Gathering>, n: usize) -> bool {
        let sender = {
            let gathering = Arc::clone(gathering);
            std::thread::spawn(move || (0..n).for_each(|_| gathering.queued()))
        };
        sender.join().unwrap();
        let started = Instant::now();
        std::thread::park_timeout(Duration::from_secs(10));
        started.elapsed() < Duration::from_secs(5)
    }

    #[test]
    fn a_waiting_batch_is_woken_once_it_has_what_it_lacks() {
        let gathering = Arc::new(Gathering::default());
        let _ = gathering.writer.set(std::thread::current());
        let _signing = crate::GrantAnnouncement::counted(&gathering.coming);
        // Nobody waits: queuing wakes nobody, and counts.
        (0..3).for_each(|_| gathering.queued());
        assert_eq!(gathering.sent.load(Ordering::SeqCst), 3);
        // A batch that lacks two jobs is woken by the second.
        gathering.wake_at.store(3 + 2, Ordering::SeqCst);
        assert!(woken_after(&gathering, 2));
    }

    #[test]
    fn a_waiting_batch_is_woken_when_nothing_is_announced_any_more() {
        let gathering = Arc::new(Gathering::default());
        let _ = gathering.writer.set(std::thread::current());
        let signing = crate::GrantAnnouncement::counted(&gathering.coming);
        gathering.wake_at.store(8, Ordering::SeqCst);
        // The last announced grant is submitted: its job wakes the batch though
        // it lacks seven more.
        drop(signing);
        assert!(woken_after(&gathering, 1));
    }

    #[test]
    fn an_announcement_counts_until_dropped() {
        let count = Arc::new(AtomicUsize::new(0));
        let a = crate::GrantAnnouncement::counted(&count);
        let b = crate::GrantAnnouncement::counted(&count);
        assert_eq!(count.load(Ordering::Relaxed), 2);
        drop(a);
        assert_eq!(count.load(Ordering::Relaxed), 1);
        drop(b);
        assert_eq!(count.load(Ordering::Relaxed), 0);
        drop(crate::GrantAnnouncement::uncounted());
        assert_eq!(count.load(Ordering::Relaxed), 0);
    }
}
