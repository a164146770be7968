//! Revocation that reaches self-contained JWTs, with no database read per request.
//!
//! Every revocation is written to the `revocations` table and applied to this
//! in-memory set at once on the node that made it; every node loads the live
//! entries at start and reads new ones from the store's revocation feed when the
//! store announces them (PostgreSQL `NOTIFY`) and twice a second regardless, so a
//! revocation reaches all nodes sharing the database within a second (SPEC §8).
//! The feed may repeat a revocation (it reads with an overlap, so that none that
//! commits late is missed): applying one is idempotent. After the store's change
//! feed was interrupted, everything is read again ([`Denylist::resync`]). Entries
//! are dropped when every token they cover has expired.
//!
//! Ids are kept as 64-bit keyed hashes (per-process random key), not strings: a
//! million revoked ids cost about 20 MiB, and a lookup is one hash and one probe.
//! A false positive needs a 64-bit collision with a server-generated random id.

use portcullis_core::AccessClaims;
use portcullis_store::{Revocation, RevocationStore, StoreResult};
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::RwLock;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Default)]
struct Sets {
    /// Hash of a family id → when the entry may be dropped.
    families: HashMap<u64, i64>,
    /// Hash of a jti → expiry.
    tokens: HashMap<u64, i64>,
    /// Client id → (tokens issued at or before this are revoked, expiry).
    clients: HashMap<String, (i64, i64)>,
    /// Hash of a family id → (its access tokens issued at or before this are
    /// revoked, expiry): a grant narrowed by its user; the family's refresh
    /// tokens live on.
    families_before: HashMap<u64, (i64, i64)>,
}

/// The in-memory denylist.
#[derive(Debug, Default)]
pub struct Denylist {
    sets: RwLock<Sets>,
    hasher: RandomState,
    /// Where the next read of the feed starts (`None`: read everything); held
    /// for the whole read, so reads never overlap.
    cursor: tokio::sync::Mutex<Option<i64>>,
    /// Set by [`Denylist::resync`]: the next read reads everything.
    reload: AtomicBool,
}

impl Denylist {
    fn key(&self, s: &str) -> u64 {
        self.hasher.hash_one(s)
    }

    /// Why `claims` are revoked, if they are.
    pub fn revoked(&self, claims: &AccessClaims) -> Option<&'static str> {
        let sets = self.sets.read().ok()?;
        // One hash of the family id serves both family checks.
        let family = claims.family_id().map(|f| self.key(f));
        if let Some(fam) = family
            && sets.families.contains_key(&fam)
        {
            return Some("the token's grant has been revoked");
        }
        if sets.tokens.contains_key(&self.key(&claims.jti)) {
            return Some("the token has been revoked");
        }
        if let Some((before, _)) = sets.clients.get(&claims.client_id)
            && claims.iat <= *before
        {
            return Some("the client's tokens have been revoked");
        }
        if let Some(fam) = family
            && let Some((before, _)) = sets.families_before.get(&fam)
            && claims.iat <= *before
        {
            return Some("the grant has changed: refresh the token");
        }
        None
    }

    /// The `iat` for a token of `family_id` issued `now`: `now`, or just after the
    /// time its access tokens were revoked up to, if that is not yet past (so a
    /// token issued after a narrowing is never caught by it).
    pub fn issue_time(&self, family_id: &str, now: i64) -> i64 {
        let Ok(sets) = self.sets.read() else {
            return now;
        };
        if sets.families_before.is_empty() {
            return now;
        }
        match sets.families_before.get(&self.key(family_id)) {
            Some((before, _)) if *before >= now => before + 1,
            _ => now,
        }
    }

    /// Whether a family is revoked (for refresh tokens and introspection).
    pub fn family_revoked(&self, family_id: &str) -> bool {
        self.sets
            .read()
            .map(|s| s.families.contains_key(&self.key(family_id)))
            .unwrap_or(false)
    }

    /// Applies revocations (idempotent).
    pub fn apply(&self, revs: &[Revocation]) {
        let Ok(mut sets) = self.sets.write() else {
            return;
        };
        for r in revs {
            match r.kind.as_str() {
                "family" => match r.issued_before {
                    None => {
                        sets.families.insert(self.key(&r.target), r.expires_at);
                    }
                    Some(before) => {
                        let e = sets
                            .families_before
                            .entry(self.key(&r.target))
                            .or_insert((before, r.expires_at));
                        e.0 = e.0.max(before);
                        e.1 = e.1.max(r.expires_at);
                    }
                },
                "token" => {
                    sets.tokens.insert(self.key(&r.target), r.expires_at);
                }
                "client" => {
                    let before = r.issued_before.unwrap_or(r.expires_at);
                    let e = sets
                        .clients
                        .entry(r.target.clone())
                        .or_insert((before, r.expires_at));
                    e.0 = e.0.max(before);
                    e.1 = e.1.max(r.expires_at);
                }
                _ => {}
            }
        }
    }

    /// Adds a family revoked on this node (before the poll would see it).
    pub fn add_family(&self, family_id: &str, expires_at: i64) {
        if let Ok(mut s) = self.sets.write() {
            s.families.insert(self.key(family_id), expires_at);
        }
    }

    /// Adds an access token revoked on this node.
    pub fn add_token(&self, jti: &str, expires_at: i64) {
        if let Ok(mut s) = self.sets.write() {
            s.tokens.insert(self.key(jti), expires_at);
        }
    }

    /// Adds, on this node, the revocation of a family's access tokens issued at or
    /// before `issued_before` (its grant was narrowed).
    pub fn add_family_before(&self, family_id: &str, issued_before: i64, expires_at: i64) {
        self.apply(&[Revocation {
            id: 0,
            kind: "family".into(),
            target: family_id.into(),
            issued_before: Some(issued_before),
            expires_at,
        }]);
    }

    /// Adds a client-wide revocation made on this node.
    pub fn add_client(&self, client_id: &str, issued_before: i64, expires_at: i64) {
        self.apply(&[Revocation {
            id: 0,
            kind: "client".into(),
            target: client_id.into(),
            issued_before: Some(issued_before),
            expires_at,
        }]);
    }

    /// Reads the revocations recorded since the last read (all live ones on the
    /// first read, or after [`Denylist::resync`]); returns how many were read.
    pub async fn poll(&self, store: &dyn RevocationStore, now: i64) -> StoreResult<usize> {
        let mut cursor = self.cursor.lock().await;
        if self.reload.swap(false, Ordering::AcqRel) {
            *cursor = None;
        }
        let feed = store.revocation_feed(*cursor, now).await?;
        self.apply(&feed.revocations);
        *cursor = Some(feed.cursor);
        Ok(feed.revocations.len())
    }

    /// Makes the next [`Denylist::poll`] read every live revocation again (after
    /// announcements of changes may have been lost).
    pub fn resync(&self) {
        self.reload.store(true, Ordering::Release);
    }

    /// Drops entries whose tokens have all expired.
    pub fn expire(&self, now: i64) {
        if let Ok(mut s) = self.sets.write() {
            s.families.retain(|_, exp| *exp > now);
            s.tokens.retain(|_, exp| *exp > now);
            s.clients.retain(|_, (_, exp)| *exp > now);
            s.families_before.retain(|_, (_, exp)| *exp > now);
        }
    }

    /// Number of entries (for metrics and the benchmark).
    pub fn len(&self) -> usize {
        self.sets
            .read()
            .map(|s| s.families.len() + s.tokens.len() + s.clients.len() + s.families_before.len())
            .unwrap_or(0)
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use portcullis_core::Audience;

    fn claims(jti: &str, client: &str, iat: i64) -> AccessClaims {
        AccessClaims {
            iss: "i".into(),
            sub: client.into(),
            aud: Audience::One("a".into()),
            client_id: client.into(),
            jti: jti.into(),
            iat,
            nbf: iat,
            exp: iat + 60,
            scope: String::new(),
            scopes: vec![],
            label: None,
        }
    }

    #[test]
    fn families_tokens_and_clients_are_refused_until_they_expire() {
        let d = Denylist::default();
        d.add_family("fam_a", 100);
        d.add_token("fam_b.x", 100);
        d.add_client("pc_c", 50, 100);
        assert!(d.revoked(&claims("fam_a.1", "pc_z", 10)).is_some());
        assert!(d.revoked(&claims("fam_b.x", "pc_z", 10)).is_some());
        assert!(d.revoked(&claims("fam_b.y", "pc_z", 10)).is_none());
        assert!(d.revoked(&claims("fam_q.1", "pc_c", 50)).is_some());
        assert!(d.revoked(&claims("fam_q.1", "pc_c", 51)).is_none());
        // A narrowed grant: its tokens until then, not the ones refreshed after.
        d.add_family_before("fam_n", 60, 100);
        assert!(d.revoked(&claims("fam_n.1", "pc_z", 60)).is_some());
        assert!(d.revoked(&claims("fam_n.2", "pc_z", 61)).is_none());
        assert!(!d.family_revoked("fam_n"), "its refresh tokens live on");
        d.expire(100);
        assert!(d.is_empty());
    }

    #[test]
    fn a_million_revoked_ids_fit_and_answer_quickly() {
        let d = Denylist::default();
        let revs: Vec<Revocation> = (0..1_000_000)
            .map(|i| Revocation {
                id: i,
                kind: "family".into(),
                target: format!("fam_{i:022}"),
                issued_before: None,
                expires_at: i64::MAX,
            })
            .collect();
        d.apply(&revs);
        assert_eq!(d.len(), 1_000_000);
        assert!(
            d.revoked(&claims("fam_0000000000000000000042.x", "pc", 1))
                .is_some()
        );
        assert!(d.revoked(&claims("fam_other.x", "pc", 1)).is_none());
    }
}
