//! Admin users and sessions.

use portcullis_store::prelude::*;
use portcullis_store::{AdminSessionRow, StoreError};

pub async fn admin_users_are_counted_created_once_and_their_passwords_replaced<
    S: Store + ?Sized,
>(
    s: &S,
) {
    assert_eq!(s.count_admin_users().await.unwrap(), 0);
    assert_eq!(s.admin_password_hash("alice").await.unwrap(), None);
    s.create_admin_user("alice", "$argon2id$one", 100)
        .await
        .unwrap();
    s.create_admin_user("bob", "$argon2id$bob", 100)
        .await
        .unwrap();
    assert_eq!(s.count_admin_users().await.unwrap(), 2);
    let err = s
        .create_admin_user("alice", "$argon2id$two", 200)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        s.admin_password_hash("alice").await.unwrap().as_deref(),
        Some("$argon2id$one")
    );
    s.set_admin_password("alice", "$argon2id$three", 300)
        .await
        .unwrap();
    assert_eq!(
        s.admin_password_hash("alice").await.unwrap().as_deref(),
        Some("$argon2id$three")
    );
    assert_eq!(
        s.admin_password_hash("bob").await.unwrap().as_deref(),
        Some("$argon2id$bob")
    );
    let err = s
        .set_admin_password("carol", "$argon2id$x", 300)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(s.count_admin_users().await.unwrap(), 2);
}

pub async fn admin_sessions_live_until_they_expire_and_end_when_deleted<S: Store + ?Sized>(s: &S) {
    s.create_admin_user("alice", "$argon2id$one", 100)
        .await
        .unwrap();
    let session = AdminSessionRow {
        id_hash: [1; 32],
        user_name: "alice".into(),
        csrf_token: "csrf-1".into(),
        created_at: 100,
        last_seen_at: 100,
        expires_at: 1000,
        source: Some("198.51.100.4".into()),
    };
    s.create_admin_session(&session).await.unwrap();
    let other = AdminSessionRow {
        id_hash: [2; 32],
        csrf_token: "csrf-2".into(),
        source: None,
        ..session.clone()
    };
    s.create_admin_session(&other).await.unwrap();

    assert_eq!(
        s.get_admin_session(&[1; 32], 500).await.unwrap(),
        Some(session.clone())
    );
    assert_eq!(s.get_admin_session(&[3; 32], 500).await.unwrap(), None);
    s.touch_admin_session(&[1; 32], 600).await.unwrap();
    let touched = s.get_admin_session(&[1; 32], 600).await.unwrap().unwrap();
    assert_eq!(touched.last_seen_at, 600);
    assert_eq!(touched.expires_at, 1000, "touching does not extend expiry");
    assert_eq!(
        s.get_admin_session(&[1; 32], 1000).await.unwrap(),
        None,
        "expired"
    );

    s.delete_admin_session(&[1; 32]).await.unwrap();
    assert_eq!(s.get_admin_session(&[1; 32], 500).await.unwrap(), None);
    assert_eq!(
        s.get_admin_session(&[2; 32], 500).await.unwrap(),
        Some(other)
    );
    s.delete_admin_session(&[9; 32]).await.unwrap();
}
