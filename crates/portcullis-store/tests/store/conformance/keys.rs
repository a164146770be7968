//! Signing keys.

use portcullis_store::prelude::*;
use portcullis_store::{KeyState, StoredKey};

pub async fn a_new_signing_key_becomes_current_and_the_old_one_previous<S: Store + ?Sized>(s: &S) {
    assert!(s.signing_keys().await.unwrap().is_empty());
    let key = |kid: &str, alg: &str, at| StoredKey {
        kid: kid.into(),
        alg: alg.into(),
        private_key_enc: kid.as_bytes().to_vec(),
        public_jwk: format!(r#"{{"kid":"{kid}"}}"#),
        state: KeyState::Current,
        created_at: at,
        retire_after: None,
    };
    s.add_signing_key(&key("k1", "ES256", 100), 0)
        .await
        .unwrap();
    let keys = s.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].kid, "k1");
    assert_eq!(keys[0].alg, "ES256");
    assert_eq!(keys[0].private_key_enc, b"k1");
    assert_eq!(keys[0].public_jwk, r#"{"kid":"k1"}"#);
    assert_eq!(keys[0].state, KeyState::Current);
    assert_eq!(keys[0].created_at, 100);
    assert_eq!(keys[0].retire_after, None);

    s.add_signing_key(&key("k2", "EdDSA", 200), 900)
        .await
        .unwrap();
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

    s.add_signing_key(&key("k3", "RS256", 300), 1200)
        .await
        .unwrap();
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
