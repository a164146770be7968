//! A short-lived cache of clients and their secret hashes.
//!
//! Every token request authenticates a client and every resource request checks
//! that its client is still active; reading the database each time would be the
//! bottleneck. A change made through this process is honoured at once
//! ([`ClientCache::forget`]); one made by another node on PostgreSQL is announced
//! and forgotten as soon as it commits; and entries live one second regardless,
//! so a change by another process (the CLI, a node whose announcement was lost)
//! is honoured within a second.

use portcullis_core::ClientId;
use portcullis_store::{ClientAuth, ClientStore, StoreResult};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

const TTL: Duration = Duration::from_secs(1);
const MAX_ENTRIES: usize = 100_000;

/// The cache.
#[derive(Debug, Default)]
pub struct ClientCache {
    map: RwLock<HashMap<ClientId, (Arc<ClientAuth>, Instant)>>,
}

impl ClientCache {
    /// The client and its valid secret hashes, from memory if fresh.
    pub async fn get(
        &self,
        store: &dyn ClientStore,
        id: &ClientId,
        now: i64,
    ) -> StoreResult<Option<Arc<ClientAuth>>> {
        if let Ok(map) = self.map.read()
            && let Some((c, at)) = map.get(id)
            && at.elapsed() < TTL
        {
            return Ok(Some(Arc::clone(c)));
        }
        let Some(fresh) = store.get_client_auth(id, now).await? else {
            self.forget(id);
            return Ok(None);
        };
        let fresh = Arc::new(fresh);
        if let Ok(mut map) = self.map.write() {
            if map.len() >= MAX_ENTRIES {
                map.retain(|_, (_, at)| at.elapsed() < TTL);
            }
            if map.len() < MAX_ENTRIES {
                map.insert(id.clone(), (Arc::clone(&fresh), Instant::now()));
            }
        }
        Ok(Some(fresh))
    }

    /// The client read from the database now (and cached), bypassing the cache:
    /// for a secret that did not match a cached entry, which may be one rotated in
    /// by another process a moment ago.
    pub async fn get_fresh(
        &self,
        store: &dyn ClientStore,
        id: &ClientId,
        now: i64,
    ) -> StoreResult<Option<Arc<ClientAuth>>> {
        self.forget(id);
        self.get(store, id, now).await
    }

    /// Drops every client, so each next read sees the database.
    pub fn clear(&self) {
        if let Ok(mut map) = self.map.write() {
            map.clear();
        }
    }

    /// Drops a client so the next read sees the database.
    pub fn forget(&self, id: &ClientId) {
        if let Ok(mut map) = self.map.write() {
            map.remove(id);
        }
    }
}
