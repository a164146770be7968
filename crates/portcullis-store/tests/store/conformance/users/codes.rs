//! Authorization codes (RFC 6749 §4.1.2): read as stored, spent once by the
//! write that records the grant they yield, a second use reported as reuse with
//! the family the first one yielded, and kept an hour past expiry for that.

use super::super::fixtures::*;
use portcullis_store::prelude::*;
use portcullis_store::{NewCode, NewGrant, NewRefresh, StoredCode};
use std::sync::Arc;

/// `user_grant` of `family` to PC for ALICE at `at`, spending the code `name`.
fn spending(name: &str, family: &str, at: i64) -> NewGrant {
    NewGrant {
        created_at: at,
        spends_code: Some(digest(name)),
        refresh_token: Some(NewRefresh {
            id: rt(family),
            hash: digest(&rt(family)),
            expires_at: 1000,
        }),
        ..user_grant(PC, family, ALICE)
    }
}

async fn stored<S: Store + ?Sized>(s: &S, name: &str) -> Option<StoredCode> {
    s.find_code(&digest(name)).await.unwrap()
}

/// `code` as stored, spent by the grant of `family` or not.
fn as_stored(code: NewCode, spent_by: Option<&str>) -> StoredCode {
    StoredCode {
        code: NewCode {
            family_id: spent_by.map(str::to_owned).or(code.family_id.clone()),
            ..code
        },
        spent: spent_by.is_some(),
        user_active: true,
    }
}

pub async fn a_code_is_spent_once_by_the_grant_that_records_it<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    create_user(s, ALICE, "alice").await;
    let first = code("code_1", PC, ALICE);
    s.create_code(&first).await.unwrap();
    let bare = NewCode {
        hash: digest("code_2"),
        redirect_uri_given: false,
        scopes: ss("upload-data"),
        ..code("code_2", PC, ALICE)
    };
    s.create_code(&bare).await.unwrap();
    assert_eq!(
        stored(s, "code_1").await,
        Some(as_stored(first.clone(), None))
    );

    assert!(
        s.record_grant(spending("code_1", "fam_1", 120))
            .await
            .unwrap()
    );
    assert!(
        s.record_grant(spending("code_2", "fam_2", 130))
            .await
            .unwrap()
    );
    assert_eq!(
        stored(s, "code_1").await,
        Some(as_stored(first.clone(), Some("fam_1")))
    );
    assert_eq!(
        stored(s, "code_2").await,
        Some(as_stored(bare, Some("fam_2")))
    );
    assert_eq!(family(s, "fam_1").await.subject, ALICE);

    assert!(
        !s.record_grant(spending("code_1", "fam_again", 125))
            .await
            .unwrap(),
        "a spent code records nothing"
    );
    assert!(s.get_family("fam_again").await.unwrap().is_none());
    assert!(
        s.find_refresh_token(&rt("fam_again"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        stored(s, "code_1").await,
        Some(as_stored(first, Some("fam_1"))),
        "the family of the first use, not of this one"
    );
}

pub async fn an_expired_or_unknown_code_or_an_inactive_client_spends_nothing<S: Store + ?Sized>(
    s: &S,
) {
    create(s, PC).await;
    create_user(s, ALICE, "alice").await;
    let c = code("code_1", PC, ALICE);
    s.create_code(&c).await.unwrap();
    assert!(
        !s.record_grant(spending("code_1", "fam_1", 160))
            .await
            .unwrap()
    );
    assert!(s.get_family("fam_1").await.unwrap().is_none());
    assert_eq!(
        stored(s, "code_1").await,
        Some(as_stored(c.clone(), None)),
        "an expired code stays unspent: trying it wrote nothing"
    );
    assert!(
        !s.record_grant(spending("code_nope", "fam_2", 120))
            .await
            .unwrap()
    );
    assert!(s.get_family("fam_2").await.unwrap().is_none());
    assert_eq!(stored(s, "code_nope").await, None);

    // A grant its client may no longer have leaves the code as it was.
    let c3 = code("code_3", PC, ALICE);
    s.create_code(&c3).await.unwrap();
    s.disable_client(&cid(PC), 110, 2000, &admin_event(110, "client.disable", PC))
        .await
        .unwrap();
    assert!(
        !s.record_grant(spending("code_3", "fam_3", 120))
            .await
            .unwrap()
    );
    assert_eq!(stored(s, "code_3").await, Some(as_stored(c3, None)));
}

pub async fn a_code_reads_whether_its_user_is_active<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    create_user(s, ALICE, "alice").await;
    s.create_code(&code("code_1", PC, ALICE)).await.unwrap();
    assert!(stored(s, "code_1").await.unwrap().user_active);
    s.set_user_status(
        ALICE,
        false,
        110,
        2000,
        &user_event(110, "user.disable", ALICE),
    )
    .await
    .unwrap();
    assert!(!stored(s, "code_1").await.unwrap().user_active);
}

pub async fn of_eight_concurrent_grants_spending_one_code_exactly_one_is_recorded<
    S: Store + ?Sized,
>(
    s: Arc<S>,
) {
    create(&*s, PC).await;
    create_user(&*s, ALICE, "alice").await;
    s.create_code(&code("code_1", PC, ALICE)).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let s = Arc::clone(&s);
            tokio::spawn(async move {
                let family = format!("fam_{i}");
                let got = s.record_grant(spending("code_1", &family, 120)).await;
                (family, got.unwrap())
            })
        })
        .collect();
    let mut outcomes = Vec::new();
    for t in tasks {
        outcomes.push(t.await.unwrap());
    }
    let winners: Vec<_> = outcomes
        .iter()
        .filter(|(_, recorded)| *recorded)
        .map(|(family, _)| family.clone())
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let spent = stored(&*s, "code_1").await.unwrap();
    assert!(spent.spent);
    assert_eq!(spent.code.family_id.as_deref(), Some(winners[0].as_str()));
    for (family, _) in &outcomes {
        let recorded = s.get_family(family).await.unwrap().is_some();
        assert_eq!(recorded, *family == winners[0], "{family}");
    }
}

pub async fn pruning_keeps_a_code_an_hour_past_its_expiry_for_reuse_detection<S: Store + ?Sized>(
    s: &S,
) {
    create(s, PC).await;
    create_user(s, ALICE, "alice").await;
    s.create_code(&code("code_used", PC, ALICE)).await.unwrap();
    s.create_code(&code("code_unused", PC, ALICE))
        .await
        .unwrap();
    s.create_code(&NewCode {
        created_at: 900,
        expires_at: 1000,
        ..code("code_recent", PC, ALICE)
    })
    .await
    .unwrap();
    assert!(
        s.record_grant(spending("code_used", "fam_1", 120))
            .await
            .unwrap()
    );
    assert!(
        s.record_grant(spending("code_recent", "fam_2", 950))
            .await
            .unwrap()
    );

    // Within the hour after expiry (160): kept, so a late second use is still
    // recognised as reuse.
    assert_eq!(s.prune(160 + 3599).await.unwrap().codes, 0);
    let used = stored(s, "code_used").await.unwrap();
    assert_eq!(
        (used.spent, used.code.family_id.as_deref()),
        (true, Some("fam_1"))
    );

    // Past it: gone, used or not; the younger code stays.
    assert_eq!(s.prune(160 + 3601).await.unwrap().codes, 2);
    assert_eq!(stored(s, "code_used").await, None);
    assert_eq!(stored(s, "code_unused").await, None);
    let recent = stored(s, "code_recent").await.unwrap();
    assert_eq!(
        (recent.spent, recent.code.family_id.as_deref()),
        (true, Some("fam_2"))
    );
    assert_eq!(s.prune(160 + 3601).await.unwrap().codes, 0);
}
