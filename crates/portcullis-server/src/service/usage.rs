//! When each token family and label was last used at the resource API, recorded
//! cheaply: a request only touches an in-memory map, and a background task writes
//! the map to the database every few seconds (and at shutdown).

use portcullis_store::{DynStore, StoreResult, Usage};
use std::collections::HashMap;
use std::sync::Mutex;

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
        if let Ok(mut m) = self.failed_auth.lock() {
            *m.entry(now - now.rem_euclid(86_400)).or_insert(0) += 1;
        }
    }

    /// Counts a token response (a grant, a refresh or a mint).
    pub fn count_token(&self, now: i64) {
        if let Ok(mut m) = self.tokens.lock() {
            *m.entry(now - now.rem_euclid(86_400)).or_insert(0) += 1;
        }
    }

    /// The live sites as the background task last counted them
    /// ([`Self::recount_live_sites`]: the count reads every live family, which a
    /// dashboard view should not wait for on a large database); counted now only
    /// if it never was. Returns the count and when it was made.
    pub async fn live_sites(&self, store: &DynStore, now: i64) -> StoreResult<(i64, i64)> {
        let last = self.live_sites.lock().ok().and_then(|m| *m);
        match last {
            Some((at, n)) => Ok((n, at)),
            None => self.recount_live_sites(store, now).await.map(|n| (n, now)),
        }
    }

    /// Counts the live sites now and keeps the count.
    pub async fn recount_live_sites(&self, store: &DynStore, now: i64) -> StoreResult<i64> {
        let n = store.count_live_sites(now).await?;
        if let Ok(mut m) = self.live_sites.lock() {
            *m = Some((now, n));
        }
        Ok(n)
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

/// How often the background task recounts the live sites, at most, in seconds.
pub const LIVE_SITES_RECOUNT: u64 = 20;
/// The background task waits at least this many times as long as its last count
/// took before it counts again (at most 1/30 of a core on a large database).
pub const LIVE_SITES_IDLE_FACTOR: u32 = 30;

/// The daily counter of tokens issued.
pub const TOKENS_ISSUED: &str = "tokens_issued";

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
