//! When each token family and label was last used at the resource API, recorded
//! cheaply: a request only touches an in-memory map, and a background task writes
//! the map to the database every few seconds (and at shutdown).

use portcullis_store::{DynStore, StoreResult, Usage};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// Pending last-use times, by family.
#[derive(Debug, Default)]
pub struct LabelUsage {
    pending: Mutex<HashMap<String, Usage>>,
    /// Failed client authentications per UTC day, for the dashboard.
    failed_auth: Mutex<HashMap<i64, i64>>,
    /// Tokens issued (grants, refreshes, mints) per UTC day, for the dashboard.
    tokens: Mutex<HashMap<i64, i64>>,
    /// The dashboard's live sites as last counted, and when (server time).
    live_sites: Mutex<Option<(i64, i64)>>,
    /// Whether a count of the live sites is under way.
    counting: AtomicBool,
}

impl LabelUsage {
    /// Notes a use of a token of `family_id` at `now`.
    pub fn record(&self, family_id: &str, client: &str, label: Option<&str>, now: i64) {
        let Ok(mut m) = self.pending.lock() else {
            return;
        };
        match m.get_mut(family_id) {
            Some(u) => u.at = u.at.max(now),
            None => {
                m.insert(
                    family_id.to_owned(),
                    Usage {
                        family_id: family_id.to_owned(),
                        client_id: client.to_owned(),
                        label: label.map(str::to_owned),
                        at: now,
                    },
                );
            }
        }
    }

    /// Counts a failed client authentication.
    pub fn count_failed_auth(&self, now: i64) {
        count_day(&self.failed_auth, now);
    }

    /// Counts a token response (a grant, a refresh or a mint).
    pub fn count_token(&self, now: i64) {
        count_day(&self.tokens, now);
    }

    /// The live sites as last counted, if a count was made: the count reads
    /// every live family (seconds on a database of millions), so a view never
    /// waits for it. A view that finds no count, or one older than
    /// [`LIVE_SITES_FRESH`] seconds, starts a count in the background (one at a
    /// time) and shows what there is; nothing is counted while nobody looks.
    pub fn live_sites(self: &Arc<Self>, store: &DynStore, now: i64) -> Option<i64> {
        let last = self.live_sites.lock().ok().and_then(|m| *m);
        if last.is_none_or(|(at, _)| now - at > LIVE_SITES_FRESH)
            && !self.counting.swap(true, Ordering::AcqRel)
        {
            let (this, store) = (Arc::clone(self), Arc::clone(store));
            tokio::spawn(async move {
                match store.count_live_sites(now).await {
                    Ok(n) => {
                        if let Ok(mut m) = this.live_sites.lock() {
                            *m = Some((now, n));
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot count the live sites"),
                }
                this.counting.store(false, Ordering::Release);
            });
        }
        last.map(|(_, n)| n)
    }

    /// Writes and clears what is pending.
    pub async fn flush(&self, store: &DynStore) -> StoreResult<usize> {
        let batch: Vec<Usage> = match self.pending.lock() {
            Ok(mut m) => m.drain().map(|(_, u)| u).collect(),
            Err(_) => return Ok(0),
        };
        store.record_usage(&batch).await?;
        let mut counts = drain_counts(&self.failed_auth, "client_auth_failed");
        counts.extend(drain_counts(&self.tokens, TOKENS_ISSUED));
        store.bump_daily_counters(&counts).await?;
        Ok(batch.len())
    }
}

/// How old, in seconds, a count of live sites may be before a view starts another.
pub const LIVE_SITES_FRESH: i64 = 60;

/// The daily counter of tokens issued.
pub const TOKENS_ISSUED: &str = "tokens_issued";

/// Adds one to `now`'s day in `m`.
fn count_day(m: &Mutex<HashMap<i64, i64>>, now: i64) {
    if let Ok(mut m) = m.lock() {
        *m.entry(portcullis_core::time::day_start(now)).or_insert(0) += 1;
    }
}

/// Takes the counts of `m` as `kind` counters.
fn drain_counts(m: &Mutex<HashMap<i64, i64>>, kind: &str) -> Vec<(i64, String, i64)> {
    match m.lock() {
        Ok(mut m) => m
            .drain()
            .map(|(day, n)| (day, kind.to_owned(), n))
            .collect(),
        Err(_) => Vec::new(),
    }
}
