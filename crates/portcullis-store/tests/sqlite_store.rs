//! The SQLite store against a real database file: atomic rotation and pruning.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use portcullis_core::{Client, ClientId, ClientStatus, GrantType, ScopeName, Ttl};
use portcullis_store::prelude::*;
use portcullis_store::{
    Actor, NewAuditEvent, NewGrant, NewRefresh, RevokeScope, Rotation, SqliteStore, Store,
};
use std::sync::Arc;

fn event(kind: &str) -> NewAuditEvent {
    NewAuditEvent::new(0, kind, Actor::system())
}

async fn store() -> (tempfile::TempDir, Arc<SqliteStore>) {
    let dir = tempfile::tempdir().unwrap();
    let s = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
    s.migrate().await.unwrap();
    (dir, Arc::new(s))
}

fn client() -> Client {
    Client {
        id: ClientId::parse("pc_test").unwrap(),
        name: "t".into(),
        scopes: [ScopeName::parse("upload-data").unwrap()]
            .into_iter()
            .collect(),
        grant_types: vec![GrantType::ClientCredentials, GrantType::RefreshToken],
        redirect_uris: vec![],
        status: ClientStatus::Active,
        created_at: 0,
        access_token_ttl: None,
        refresh_token_ttl: None,
        issue_refresh_token: true,
        refresh_reuse_grace: Ttl::from_secs_allow_zero(0).unwrap(),
    }
}

fn grant(family: &str, hash: u8, expires: i64) -> NewGrant {
    NewGrant {
        family_id: family.into(),
        client_id: "pc_test".into(),
        label: Some("home".into()),
        subject: "pc_test".into(),
        scopes: "upload-data".into(),
        grant_type: "client_credentials".into(),
        created_at: 100,
        expires_at: expires,
        refresh_token: Some(NewRefresh {
            id: format!("r{hash}"),
            hash: [hash; 32],
            expires_at: expires,
        }),
        actor: Actor::system(),
    }
}

fn rotation(old: u8, new: u8, now: i64) -> Rotation {
    Rotation {
        old_id: format!("r{old}"),
        old_hash: [old; 32],
        family_id: "fam_a".into(),
        client_id: "pc_test".into(),
        now,
        new: NewRefresh {
            id: format!("r{new}"),
            hash: [new; 32],
            expires_at: 1000,
        },
        scopes: "upload-data".into(),
        family_expires_at: 1000,
        grace_response: None,
        audit: NewAuditEvent {
            at: now,
            kind: "token.refresh".into(),
            actor: Actor::system(),
            target: None,
            client_id: None,
            label: None,
            detail: None,
        },
    }
}

#[tokio::test]
async fn migrations_are_applied_once() {
    let (_d, s) = store().await;
    assert_eq!(s.migrate().await.unwrap(), 0);
}

#[tokio::test]
async fn of_concurrent_rotations_of_one_token_exactly_one_wins() {
    let (_d, s) = store().await;
    s.create_client(&client(), &[9; 32], &event("client.create"))
        .await
        .unwrap();
    s.record_grant(grant("fam_a", 1, 1000)).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..16u8 {
        let s = Arc::clone(&s);
        tasks.push(tokio::spawn(async move {
            s.rotate_refresh_token(rotation(1, 100 + i, 200))
                .await
                .unwrap()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
    let old = s.find_refresh_token("r1").await.unwrap().unwrap();
    assert_eq!(old.spent_at, Some(200));
}

#[tokio::test]
async fn a_foreign_or_revoked_family_cannot_be_rotated() {
    let (_d, s) = store().await;
    s.create_client(&client(), &[9; 32], &event("client.create"))
        .await
        .unwrap();
    s.record_grant(grant("fam_a", 1, 1000)).await.unwrap();
    let mut foreign = rotation(1, 2, 200);
    foreign.client_id = "pc_other".into();
    assert!(!s.rotate_refresh_token(foreign).await.unwrap());
    let mut expired = rotation(1, 2, 5000);
    expired.now = 5000;
    assert!(!s.rotate_refresh_token(expired).await.unwrap());
    assert!(
        s.find_refresh_token("r1")
            .await
            .unwrap()
            .unwrap()
            .spent_at
            .is_none()
    );
}

#[tokio::test]
async fn pruning_keeps_what_reuse_detection_needs_until_the_family_expires() {
    let (_d, s) = store().await;
    s.create_client(&client(), &[9; 32], &event("client.create"))
        .await
        .unwrap();
    s.record_grant(grant("fam_a", 1, 1000)).await.unwrap();
    assert!(s.rotate_refresh_token(rotation(1, 2, 200)).await.unwrap());
    // Long after the spend, but before the family expires: the spent token stays,
    // so presenting it again is still recognised as reuse.
    let p = s.prune(900).await.unwrap();
    assert_eq!(p.families, 0);
    let spent = s.find_refresh_token("r1").await.unwrap().unwrap();
    assert_eq!(spent.spent_at, Some(200));
    // Once every token of the family has expired, it all goes.
    let p = s.prune(1000).await.unwrap();
    assert_eq!(p.families, 1);
    assert!(s.find_refresh_token("r1").await.unwrap().is_none());
    assert!(s.find_refresh_token("r2").await.unwrap().is_none());
}

#[tokio::test]
async fn revocations_are_kept_until_their_tokens_expire() {
    let (_d, s) = store().await;
    s.revoke_access_token("fam_x.1", 100, 500, &event("token.revoke"))
        .await
        .unwrap();
    assert_eq!(s.revocations_since(0, 400).await.unwrap().len(), 1);
    let p = s.prune(499).await.unwrap();
    assert_eq!(p.revocations, 0);
    let p = s.prune(500).await.unwrap();
    assert_eq!(p.revocations, 1);
    assert!(s.revocations_since(0, 100).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_rotation_must_present_the_stored_hash_not_just_the_selector() {
    let (_d, s) = store().await;
    s.create_client(&client(), &[9; 32], &event("client.create"))
        .await
        .unwrap();
    s.record_grant(grant("fam_a", 1, 1000)).await.unwrap();
    let found = s.find_refresh_token("r1").await.unwrap().unwrap();
    assert_eq!(found.token_hash, [1; 32]);
    let mut forged = rotation(1, 2, 200);
    forged.old_hash = [7; 32];
    assert!(!s.rotate_refresh_token(forged).await.unwrap());
    assert!(s.find_refresh_token("r2").await.unwrap().is_none());
    assert!(s.rotate_refresh_token(rotation(1, 2, 200)).await.unwrap());
}

#[tokio::test]
async fn each_label_counts_its_own_live_families_and_revokes_only_them() {
    let (_d, s) = store().await;
    s.create_client(&client(), &[9; 32], &event("client.create"))
        .await
        .unwrap();
    let labelled = |family: &str, hash: u8, label: &str, expires: i64| NewGrant {
        label: Some(label.into()),
        ..grant(family, hash, expires)
    };
    s.record_grant(labelled("fam_a1", 1, "home-a", 1000))
        .await
        .unwrap();
    s.record_grant(labelled("fam_a2", 2, "home-a", 1000))
        .await
        .unwrap();
    s.record_grant(labelled("fam_a3", 3, "home-a", 1000))
        .await
        .unwrap();
    s.record_grant(labelled("fam_b1", 4, "home-b", 150))
        .await
        .unwrap();
    s.record_grant(labelled("fam_c1", 5, "home-c", 1000))
        .await
        .unwrap();
    let id = ClientId::parse("pc_test").unwrap();
    let revoked = s
        .revoke_families(
            RevokeScope::Family {
                id: "fam_a3",
                client: Some(&id),
            },
            200,
            "admin",
            2000,
            &event("token.revoke"),
        )
        .await
        .unwrap();
    assert_eq!(revoked, vec!["fam_a3".to_owned()]);

    let live: Vec<(String, i64)> = s
        .list_labels(&id, 200)
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.name, l.live_families))
        .collect();
    assert_eq!(
        live,
        vec![
            ("home-a".to_owned(), 2),
            ("home-b".to_owned(), 0),
            ("home-c".to_owned(), 1)
        ]
    );
    let of_a: Vec<String> = s
        .list_families(&id, Some("home-a"))
        .await
        .unwrap()
        .into_iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(of_a.len(), 3);
    assert!(of_a.iter().all(|f| f.starts_with("fam_a")));

    let revoked = s
        .revoke_families(
            RevokeScope::Client {
                client: &id,
                label: Some("home-c"),
            },
            300,
            "admin",
            2000,
            &event("token.revoke"),
        )
        .await
        .unwrap();
    assert_eq!(revoked, vec!["fam_c1".to_owned()]);
    let live = s.list_labels(&id, 300).await.unwrap();
    assert_eq!(live.iter().map(|l| l.live_families).sum::<i64>(), 2);
}
