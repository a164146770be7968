//! Rotating the signing key (admin pages, admin API, `portcullis keys rotate`).

use crate::keyring::{KeyringError, store_new_key};
use portcullis_core::{AuditKind, Ttl};
use portcullis_crypto::{Algorithm, MasterKey};
use portcullis_store::{Actor, DynStore, KeyChange, KeyState, NewAuditEvent};

/// The longest an access token may live: the server's default or any client's own.
async fn longest_access_ttl(
    store: &DynStore,
    default_access_ttl: Ttl,
) -> Result<i64, KeyringError> {
    Ok(store
        .list_clients()
        .await?
        .iter()
        .filter_map(|c| c.access_token_ttl)
        .map(|t| t.secs_i64())
        .fold(default_access_ttl.secs_i64(), i64::max))
}

fn rotation_event(kid: &str, alg: Algorithm, actor: &Actor, now: i64) -> NewAuditEvent {
    NewAuditEvent {
        at: now,
        kind: AuditKind::KeyRotate,
        actor: actor.clone(),
        target: Some(kid.to_owned()),
        client_id: None,
        label: None,
        detail: Some(serde_json::json!({ "alg": alg.as_str() }).to_string()),
    }
}

/// Makes a new `alg` key current. The previous key verifies until the
/// longest-lived access token it may have signed expires (the longest of
/// `default_access_ttl` and every client's own lifetime). Audited as `key.rotate`,
/// in the same transaction. Returns the new `kid`.
pub async fn rotate(
    store: &DynStore,
    master: &MasterKey,
    alg: Algorithm,
    now: i64,
    default_access_ttl: Ttl,
    actor: &Actor,
) -> Result<String, KeyringError> {
    let longest = longest_access_ttl(store, default_access_ttl).await?;
    store_new_key(store, master, alg, now, longest, |kid| KeyChange {
        audit: Some(rotation_event(kid, alg, actor, now)),
        unless_current_since: None,
    })
    .await?
    .ok_or(KeyringError::NoCurrentKey)
}

/// Automatic rotation (`--key-rotation-interval`): when the current key is
/// `interval` old, a new key of the same algorithm becomes current, audited as
/// `key.rotate` by the system. Servers sharing a database may all call this; the
/// condition is checked in the rotation's own transaction, so one key results.
/// Returns the new `kid`, or `None` when no rotation was due (or another server
/// rotated first).
pub async fn rotate_if_due(
    store: &DynStore,
    master: &MasterKey,
    now: i64,
    interval: Ttl,
    default_access_ttl: Ttl,
) -> Result<Option<String>, KeyringError> {
    let keys = store.signing_keys().await?;
    let Some(current) = keys.iter().find(|k| k.state == KeyState::Current) else {
        return Ok(None);
    };
    let due_since = now.saturating_sub(interval.secs_i64());
    if current.created_at > due_since {
        return Ok(None);
    }
    let alg: Algorithm = current.alg.parse().map_err(|e: String| KeyringError::Key {
        kid: current.kid.clone(),
        source: portcullis_crypto::CryptoError::Key(e),
    })?;
    let longest = longest_access_ttl(store, default_access_ttl).await?;
    store_new_key(store, master, alg, now, longest, |kid| KeyChange {
        audit: Some(rotation_event(kid, alg, &Actor::system(), now)),
        unless_current_since: Some(due_since.saturating_add(1)),
    })
    .await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::keyring::create_signing_key;
    use portcullis_store::{AuditFilter, SqliteStore};
    use std::sync::Arc;

    #[tokio::test]
    async fn a_key_is_rotated_once_it_is_as_old_as_the_interval_and_only_once() {
        let dir = tempfile::tempdir().unwrap();
        let store: DynStore = Arc::new(SqliteStore::open(&dir.path().join("k.db")).await.unwrap());
        store.migrate().await.unwrap();
        let master = MasterKey::from_bytes(&[3; 32]).unwrap();
        let first = create_signing_key(&store, &master, Algorithm::EdDSA, 1_000, 60)
            .await
            .unwrap();
        let interval = Ttl::from_secs(500).unwrap();
        let ttl = Ttl::from_secs(60).unwrap();
        assert_eq!(
            rotate_if_due(&store, &master, 1_499, interval, ttl)
                .await
                .unwrap(),
            None
        );
        let second = rotate_if_due(&store, &master, 1_500, interval, ttl)
            .await
            .unwrap()
            .unwrap();
        assert_ne!(second, first);
        // Due again only one interval after the new key.
        assert_eq!(
            rotate_if_due(&store, &master, 1_500, interval, ttl)
                .await
                .unwrap(),
            None
        );
        assert_eq!(
            rotate_if_due(&store, &master, 1_999, interval, ttl)
                .await
                .unwrap(),
            None
        );
        let keys = store.signing_keys().await.unwrap();
        assert_eq!(keys[0].kid, second);
        assert_eq!(
            keys[0].alg, "EdDSA",
            "the same algorithm as the key it replaces"
        );
        assert_eq!(keys[1].kid, first);
        assert_eq!(
            keys[1].retire_after,
            Some(1_560),
            "the old key verifies its tokens"
        );
        let events = store
            .list_audit(&AuditFilter {
                kind: Some(AuditKind::KeyRotate),
                limit: 10,
                ..AuditFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].actor_kind, "system");
        assert_eq!(events[0].target.as_deref(), Some(second.as_str()));
    }

    #[tokio::test]
    async fn of_two_servers_rotating_at_once_one_makes_the_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let store: DynStore = Arc::new(SqliteStore::open(&dir.path().join("k.db")).await.unwrap());
        store.migrate().await.unwrap();
        let master = MasterKey::from_bytes(&[3; 32]).unwrap();
        create_signing_key(&store, &master, Algorithm::ES256, 0, 60)
            .await
            .unwrap();
        let interval = Ttl::from_secs(100).unwrap();
        let ttl = Ttl::from_secs(60).unwrap();
        let (a, b) = tokio::join!(
            rotate_if_due(&store, &master, 200, interval, ttl),
            rotate_if_due(&store, &master, 200, interval, ttl)
        );
        let made = [a.unwrap(), b.unwrap()].iter().flatten().count();
        assert_eq!(made, 1);
        assert_eq!(store.signing_keys().await.unwrap().len(), 2);
    }
}
