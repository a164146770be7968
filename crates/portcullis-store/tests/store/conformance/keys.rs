//! Signing keys.

use super::fixtures::{all_audit, k};
use portcullis_store::prelude::*;
use portcullis_store::{Actor, KeyChange, KeyState, NewAuditEvent, StoredKey};

pub async fn a_new_signing_key_becomes_current_and_the_old_one_previous<S: Store + ?Sized>(s: &S) {
    assert!(s.signing_keys().await.unwrap().is_empty());
    assert!(
        s.add_signing_key(&key("k1", "ES256", 100), 0, &KeyChange::default())
            .await
            .unwrap()
    );
    let keys = s.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].kid, "k1");
    assert_eq!(keys[0].alg, "ES256");
    assert_eq!(keys[0].private_key_enc, b"k1");
    assert_eq!(keys[0].public_jwk, r#"{"kid":"k1"}"#);
    assert_eq!(keys[0].state, KeyState::Current);
    assert_eq!(keys[0].created_at, 100);
    assert_eq!(keys[0].retire_after, None);

    assert!(
        s.add_signing_key(&key("k2", "EdDSA", 200), 900, &KeyChange::default())
            .await
            .unwrap()
    );
    let keys = s.signing_keys().await.unwrap();
    let summary: Vec<_> = keys
        .iter()
        .map(|k| (k.kid.as_str(), k.state.as_str(), k.retire_after))
        .collect();
    assert_eq!(
        summary,
        [("k2", "current", None), ("k1", "previous", Some(900))]
    );
    assert_eq!(keys[0].alg, "EdDSA");

    assert!(
        s.add_signing_key(&key("k3", "RS256", 300), 1200, &KeyChange::default())
            .await
            .unwrap()
    );
    let keys = s.signing_keys().await.unwrap();
    assert_eq!(keys[0].kid, "k3", "current first");
    assert_eq!(keys[0].state, KeyState::Current);
    assert_eq!(
        keys.iter().filter(|k| k.state == KeyState::Current).count(),
        1,
        "one current key"
    );
    let k2 = keys.iter().find(|k| k.kid == "k2").unwrap();
    assert_eq!(
        (k2.state.as_str(), k2.retire_after),
        ("previous", Some(1200))
    );
}

/// A key as the caller stores it (the private key is opaque to the store).
pub(crate) fn key(kid: &str, alg: &str, at: i64) -> StoredKey {
    StoredKey {
        kid: kid.into(),
        alg: alg.into(),
        private_key_enc: kid.as_bytes().to_vec(),
        public_jwk: format!(r#"{{"kid":"{kid}"}}"#),
        state: KeyState::Current,
        created_at: at,
        retire_after: None,
    }
}

pub async fn an_automatic_rotation_is_skipped_when_the_current_key_is_recent<S: Store + ?Sized>(
    s: &S,
) {
    assert!(
        s.add_signing_key(&key("k1", "ES256", 100), 0, &KeyChange::default())
            .await
            .unwrap()
    );
    let automatic = |at: i64, since: i64| KeyChange {
        audit: Some(NewAuditEvent {
            target: Some(format!("k{at}")),
            ..NewAuditEvent::new(at, k("key.rotate"), Actor::system())
        }),
        unless_current_since: Some(since),
    };
    // Another node rotated at 100: a rotation due for keys made before 100 skips.
    assert!(
        !s.add_signing_key(&key("k2", "ES256", 150), 500, &automatic(150, 100))
            .await
            .unwrap()
    );
    assert_eq!(s.signing_keys().await.unwrap().len(), 1);
    assert!(
        all_audit(s).await.is_empty(),
        "a skipped rotation is not audited"
    );
    // Due for keys made before 101: k1 is replaced, and the change is audited with it.
    assert!(
        s.add_signing_key(&key("k3", "ES256", 150), 500, &automatic(150, 101))
            .await
            .unwrap()
    );
    let keys = s.signing_keys().await.unwrap();
    assert_eq!(
        (keys[0].kid.as_str(), keys[0].state),
        ("k3", KeyState::Current)
    );
    let events = all_audit(s).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].kind, "key.rotate");
}
