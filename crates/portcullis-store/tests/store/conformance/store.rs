//! The database as a whole (migrations, ping, settings) and housekeeping:
//! what pruning drops and what it keeps.

use super::fixtures::*;
use portcullis_core::{Client, Ttl};
use portcullis_store::prelude::*;
use portcullis_store::{Actor, NewAuditEvent, RevokeScope, Rotation};

pub async fn migrating_again_applies_nothing_and_keeps_what_was_stored<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    s.put_setting("issuer", "https://auth.example")
        .await
        .unwrap();
    assert_eq!(s.migrate().await.unwrap(), 0);
    assert_eq!(s.migrate().await.unwrap(), 0);
    assert!(s.get_client(&cid(PC)).await.unwrap().is_some());
    assert_eq!(
        s.get_setting("issuer").await.unwrap().as_deref(),
        Some("https://auth.example")
    );
}

pub async fn a_migrated_store_answers_ping<S: Store + ?Sized>(s: &S) {
    s.ping().await.unwrap();
}

pub async fn settings_are_absent_until_put_and_a_put_replaces_them<S: Store + ?Sized>(s: &S) {
    assert_eq!(s.get_setting("issuer").await.unwrap(), None);
    s.put_setting("issuer", "https://a.example").await.unwrap();
    s.put_setting("other", "x").await.unwrap();
    assert_eq!(
        s.get_setting("issuer").await.unwrap().as_deref(),
        Some("https://a.example")
    );
    s.put_setting("issuer", "https://b.example").await.unwrap();
    assert_eq!(
        s.get_setting("issuer").await.unwrap().as_deref(),
        Some("https://b.example")
    );
    assert_eq!(s.get_setting("other").await.unwrap().as_deref(), Some("x"));
}

pub async fn an_initialised_setting_keeps_its_first_value<S: Store + ?Sized>(s: &S) {
    assert_eq!(s.init_setting("check", "first").await.unwrap(), "first");
    assert_eq!(s.init_setting("check", "second").await.unwrap(), "first");
    assert_eq!(
        s.get_setting("check").await.unwrap().as_deref(),
        Some("first")
    );
}

pub async fn of_concurrent_initialisations_of_a_setting_one_wins_for_all<S: Store + ?Sized>(
    s: std::sync::Arc<S>,
) {
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let s = std::sync::Arc::clone(&s);
            tokio::spawn(async move { s.init_setting("check", &format!("v{i}")).await.unwrap() })
        })
        .collect();
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(t.await.unwrap());
    }
    seen.dedup();
    assert_eq!(seen.len(), 1, "{seen:?}");
}

pub async fn pruning_keeps_what_reuse_detection_needs_until_the_family_expires<
    S: Store + ?Sized,
>(
    s: &S,
) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", None)).await;
    assert!(
        s.rotate_refresh_token(rotation(PC, "fam_1", &rt("fam_1"), "rt_2", 200))
            .await
            .unwrap()
    );
    // Long after the spend, but before the family expires: the spent token stays,
    // so presenting it again is still recognised as reuse.
    let p = s.prune(900).await.unwrap();
    assert_eq!(p.families, 0);
    assert_eq!(spent_at(s, &rt("fam_1")).await, Some(200));
    assert!(family(s, "fam_1").await.revoked_at.is_none());
    // Once every token of the family has expired, it all goes.
    let p = s.prune(1000).await.unwrap();
    assert_eq!(p.families, 1);
    assert!(s.get_family("fam_1").await.unwrap().is_none());
    assert!(s.find_refresh_token(&rt("fam_1")).await.unwrap().is_none());
    assert!(s.find_refresh_token("rt_2").await.unwrap().is_none());
    assert_eq!(s.prune(1000).await.unwrap(), Default::default());
}

pub async fn a_label_keeps_its_last_issue_after_its_families_are_pruned<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    assert!(
        s.rotate_refresh_token(rotation(PC, "fam_1", &rt("fam_1"), "rt_2", 200))
            .await
            .unwrap()
    );
    assert_eq!(s.prune(1000).await.unwrap().families, 1);
    let labels = s.list_labels(&cid(PC), 1000).await.unwrap();
    assert_eq!(labels.len(), 1);
    assert_eq!(labels[0].last_issued_at, Some(200));
    assert_eq!(labels[0].live_families, 0);
}

pub async fn pruning_keeps_a_revoked_family_until_it_expires<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    s.revoke_families(
        RevokeScope::Family {
            id: "fam_1",
            client: None,
        },
        150,
        "reuse",
        5000,
        &NewAuditEvent::new(150, k("token.revoke"), Actor::system()),
    )
    .await
    .unwrap();
    let p = s.prune(999).await.unwrap();
    assert_eq!(p.families, 0);
    assert_eq!(p.revocations, 0);
    let found = s.find_refresh_token(&rt("fam_1")).await.unwrap().unwrap();
    assert_eq!(found.family.revoked_at, Some(150), "a revoked family stays");
    let p = s.prune(1000).await.unwrap();
    assert_eq!(p.families, 1);
    assert_eq!(p.revocations, 0, "its revocation lasts until deny_until");
    assert_eq!(revocations(s).await.len(), 1);
    assert!(s.get_family("fam_1").await.unwrap().is_none());
    assert!(s.find_refresh_token(&rt("fam_1")).await.unwrap().is_none());
    assert!(s.get_client(&cid(PC)).await.unwrap().is_some());
}

pub async fn pruning_drops_grace_answers_after_the_grace_but_keeps_the_spent_token<
    S: Store + ?Sized,
>(
    s: &S,
) {
    create_client(
        s,
        &Client {
            refresh_reuse_grace: Ttl::from_secs_allow_zero(60).unwrap(),
            ..client(PC)
        },
    )
    .await;
    granted(s, grant(PC, "fam_1", None)).await;
    let r = Rotation {
        grace_response: Some(vec![4, 5, 6]),
        ..rotation(PC, "fam_1", &rt("fam_1"), "rt_2", 200)
    };
    assert!(s.rotate_refresh_token(r).await.unwrap());
    let p = s.prune(250).await.unwrap();
    assert_eq!(p.grace_responses, 0, "still within the grace");
    let old = s.find_refresh_token(&rt("fam_1")).await.unwrap().unwrap();
    assert_eq!(old.grace_response.as_deref(), Some(&[4u8, 5, 6][..]));

    let p = s.prune(400).await.unwrap();
    assert_eq!(p.grace_responses, 1);
    assert_eq!(p.families, 0);
    let old = s.find_refresh_token(&rt("fam_1")).await.unwrap().unwrap();
    assert_eq!(old.grace_response, None);
    assert_eq!(old.spent_at, Some(200), "the spent token stays for reuse");
    assert!(old.successor_unused);
}

pub async fn revocations_are_kept_until_their_tokens_expire<S: Store + ?Sized>(s: &S) {
    let audit = NewAuditEvent::new(100, k("token.revoke"), Actor::system());
    s.revoke_access_token("jti_1", 100, 500, &audit)
        .await
        .unwrap();
    s.revoke_access_token("jti_2", 100, 800, &audit)
        .await
        .unwrap();
    assert_eq!(s.revocations_since(0, 400).await.unwrap().len(), 2);
    let p = s.prune(499).await.unwrap();
    assert_eq!(p.revocations, 0);
    let p = s.prune(500).await.unwrap();
    assert_eq!(p.revocations, 1);
    let left = revocations(s).await;
    assert_eq!(
        left.iter().map(rev).collect::<Vec<_>>(),
        [("token", "jti_2", None, 800)]
    );
}
