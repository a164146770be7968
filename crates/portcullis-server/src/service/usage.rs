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

    /// Writes and clears what is pending.
    pub async fn flush(&self, store: &DynStore) -> StoreResult<usize> {
        let batch: Vec<Usage> = match self.pending.lock() {
            Ok(mut m) => m.drain().map(|(_, u)| u).collect(),
            Err(_) => return Ok(0),
        };
        store.record_usage(&batch).await?;
        Ok(batch.len())
    }
}
