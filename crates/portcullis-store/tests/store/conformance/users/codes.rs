//! Authorization codes (RFC 6749 §4.1.2): spent once, a second use reported as
//! reuse with the family the first one yielded, and kept an hour past expiry
//! for that.

use super::super::fixtures::*;
use portcullis_store::prelude::*;
use portcullis_store::{CodeRedemption, NewCode};
use std::sync::Arc;

pub async fn a_code_is_redeemed_once_as_stored_then_reported_as_reused_with_its_family<
    S: Store + ?Sized,
>(
    s: &S,
) {
    create(s, PC).await;
    create_user(s, ALICE, "alice").await;
    let stored = code("code_1", PC, ALICE);
    s.create_code(&stored).await.unwrap();
    let bare = NewCode {
        hash: digest("code_2"),
        redirect_uri_given: false,
        scopes: ss("upload-data"),
        ..code("code_2", PC, ALICE)
    };
    s.create_code(&bare).await.unwrap();

    assert_eq!(
        s.redeem_code(&digest("code_1"), "fam_1", 120)
            .await
            .unwrap(),
        CodeRedemption::Redeemed(stored)
    );
    assert_eq!(
        s.redeem_code(&digest("code_2"), "fam_2", 130)
            .await
            .unwrap(),
        CodeRedemption::Redeemed(bare)
    );
    let reused = CodeRedemption::Reused {
        client_id: PC.into(),
        family_id: Some("fam_1".into()),
    };
    assert_eq!(
        s.redeem_code(&digest("code_1"), "fam_again", 125)
            .await
            .unwrap(),
        reused,
        "the family of the first use, not of this one"
    );
    assert_eq!(
        s.redeem_code(&digest("code_1"), "fam_late", 500)
            .await
            .unwrap(),
        reused,
        "a spent code is reuse even after it expired"
    );
}

pub async fn an_expired_or_unknown_code_is_unknown<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    create_user(s, ALICE, "alice").await;
    s.create_code(&code("code_1", PC, ALICE)).await.unwrap();
    assert_eq!(
        s.redeem_code(&digest("code_1"), "fam_1", 161)
            .await
            .unwrap(),
        CodeRedemption::Unknown
    );
    assert_eq!(
        s.redeem_code(&digest("code_1"), "fam_1", 500)
            .await
            .unwrap(),
        CodeRedemption::Unknown,
        "an expired code stays unknown: trying it did not spend it"
    );
    assert_eq!(
        s.redeem_code(&digest("code_nope"), "fam_1", 120)
            .await
            .unwrap(),
        CodeRedemption::Unknown
    );
}

pub async fn of_eight_concurrent_redemptions_of_one_code_exactly_one_wins<S: Store + ?Sized>(
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
                let got = s.redeem_code(&digest("code_1"), &family, 120).await;
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
        .filter(|(_, got)| matches!(got, CodeRedemption::Redeemed(_)))
        .map(|(family, _)| family.clone())
        .collect();
    assert_eq!(winners.len(), 1, "{outcomes:?}");
    let reused = CodeRedemption::Reused {
        client_id: PC.into(),
        family_id: Some(winners[0].clone()),
    };
    for (family, got) in &outcomes {
        if *family != winners[0] {
            assert_eq!(*got, reused, "{family}");
        }
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
    assert!(matches!(
        s.redeem_code(&digest("code_used"), "fam_1", 120)
            .await
            .unwrap(),
        CodeRedemption::Redeemed(_)
    ));
    assert!(matches!(
        s.redeem_code(&digest("code_recent"), "fam_2", 950)
            .await
            .unwrap(),
        CodeRedemption::Redeemed(_)
    ));

    // Within the hour after expiry (160): kept, so a late second use is still
    // recognised as reuse.
    assert_eq!(s.prune(160 + 3599).await.unwrap().codes, 0);
    assert_eq!(
        s.redeem_code(&digest("code_used"), "fam_x", 160 + 3599)
            .await
            .unwrap(),
        CodeRedemption::Reused {
            client_id: PC.into(),
            family_id: Some("fam_1".into()),
        }
    );

    // Past it: gone, used or not; the younger code stays.
    assert_eq!(s.prune(160 + 3601).await.unwrap().codes, 2);
    assert_eq!(
        s.redeem_code(&digest("code_used"), "fam_x", 160 + 3601)
            .await
            .unwrap(),
        CodeRedemption::Unknown
    );
    assert_eq!(
        s.redeem_code(&digest("code_recent"), "fam_x", 160 + 3601)
            .await
            .unwrap(),
        CodeRedemption::Reused {
            client_id: PC.into(),
            family_id: Some("fam_2".into()),
        }
    );
    assert_eq!(s.prune(160 + 3601).await.unwrap().codes, 0);
}
