//! Grants, families, labels, refresh tokens: recording grants, listing
//! families and labels, refresh token rotation, and usage.

use super::fixtures::*;
use portcullis_store::prelude::*;
use portcullis_store::{
    Actor, FamilyRecord, LabelRecord, NewAuditEvent, NewGrant, NewRefresh, RefreshKey, RevokeScope,
    Rotation, SpendRefresh, Usage,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

pub async fn a_grant_for_an_unknown_client_writes_nothing<S: Store + ?Sized>(s: &S) {
    assert!(
        !s.record_grant(grant("pc_ghost", "fam_1", Some("home")))
            .await
            .unwrap()
    );
    assert!(s.get_family("fam_1").await.unwrap().is_none());
    assert!(s.find_refresh_token(&rt("fam_1")).await.unwrap().is_none());
    assert!(
        s.list_labels(&cid("pc_ghost"), 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(all_audit(s).await.is_empty());
}

pub async fn a_grant_records_its_family_refresh_token_label_and_audit_event<S: Store + ?Sized>(
    s: &S,
) {
    create(s, PC).await;
    let g = NewGrant {
        scopes: ss("upload-data view-indicator"),
        ..grant(PC, "fam_1", Some("home"))
    };
    granted(s, g).await;
    let fam = FamilyRecord {
        id: "fam_1".into(),
        client_id: PC.into(),
        label: Some("home".into()),
        subject: PC.into(),
        scopes: ss("upload-data view-indicator"),
        grant_type: "client_credentials".into(),
        created_at: 100,
        last_used_at: None,
        expires_at: 1000,
        revoked_at: None,
    };
    assert_eq!(family(s, "fam_1").await, fam);

    let found = s.find_refresh_token(&rt("fam_1")).await.unwrap().unwrap();
    assert_eq!(found.id, rt("fam_1"));
    assert_eq!(found.token_hash, digest(&rt("fam_1")));
    assert_eq!(found.family, fam);
    assert_eq!(found.scopes.to_vec(), ["upload-data", "view-indicator"]);
    assert_eq!(found.expires_at, 1000);
    assert_eq!(found.spent_at, None);
    assert_eq!(found.grace_response, None);
    assert!(!found.successor_unused, "an unspent token has no successor");

    assert_eq!(
        s.list_labels(&cid(PC), 100).await.unwrap(),
        [LabelRecord {
            name: "home".into(),
            created_at: 100,
            last_issued_at: Some(100),
            last_used_at: None,
            uploads: 0,
            live_families: 1,
        }]
    );
    granted(
        s,
        NewGrant {
            created_at: 150,
            ..grant(PC, "fam_2", Some("home"))
        },
    )
    .await;
    let labels = s.list_labels(&cid(PC), 150).await.unwrap();
    assert_eq!(labels.len(), 1);
    assert_eq!(labels[0].created_at, 100);
    assert_eq!(labels[0].last_issued_at, Some(150));
    assert_eq!(labels[0].live_families, 2);

    let events = audit_of(s, "token.issue").await;
    assert_eq!(events.len(), 2);
    let first = &events[1];
    assert_eq!(first.at, 100);
    assert_eq!(first.target.as_deref(), Some("fam_1"));
    assert_eq!(first.client_id.as_deref(), Some(PC));
    assert_eq!(first.label.as_deref(), Some("home"));
    assert_eq!(first.actor_kind, "client");
    assert_eq!(first.actor_id.as_deref(), Some(PC));
    assert_eq!(first.source.as_deref(), Some("192.0.2.7"));
}

pub async fn a_grant_without_refresh_token_or_label_records_only_its_family<S: Store + ?Sized>(
    s: &S,
) {
    create(s, PC).await;
    granted(
        s,
        NewGrant {
            refresh_token: None,
            ..grant(PC, "fam_1", None)
        },
    )
    .await;
    let fam = family(s, "fam_1").await;
    assert_eq!(fam.label, None);
    assert!(s.find_refresh_token(&rt("fam_1")).await.unwrap().is_none());
    assert!(s.list_labels(&cid(PC), 100).await.unwrap().is_empty());
    assert_eq!(audit_of(s, "token.issue").await.len(), 1);
}

pub async fn a_grant_reusing_a_family_id_is_refused_and_changes_nothing<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    create(s, OTHER).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    let twin = NewGrant {
        refresh_token: Some(NewRefresh {
            id: "rt_twin".into(),
            hash: digest("rt_twin"),
            expires_at: 1000,
        }),
        created_at: 200,
        ..grant(OTHER, "fam_1", Some("elsewhere"))
    };
    s.record_grant(twin).await.unwrap_err();
    let fam = family(s, "fam_1").await;
    assert_eq!((fam.client_id.as_str(), fam.created_at), (PC, 100));
    assert!(s.find_refresh_token("rt_twin").await.unwrap().is_none());
    assert!(s.list_labels(&cid(OTHER), 200).await.unwrap().is_empty());
    assert_eq!(audit_of(s, "token.issue").await.len(), 1);
}

pub async fn families_are_listed_newest_first_and_by_label<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    create(s, OTHER).await;
    for (fam, label, at) in [
        ("fam_1", Some("home-a"), 100),
        ("fam_3", Some("home-a"), 300),
        ("fam_2", Some("home-b"), 200),
        ("fam_4", None, 400),
    ] {
        granted(
            s,
            NewGrant {
                created_at: at,
                ..grant(PC, fam, label)
            },
        )
        .await;
    }
    granted(s, grant(OTHER, "fam_o", Some("home-a"))).await;
    let ids = |fams: Vec<FamilyRecord>| fams.into_iter().map(|f| f.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list_families(&cid(PC), None, None).await.unwrap()),
        ["fam_4", "fam_3", "fam_2", "fam_1"]
    );
    assert_eq!(
        ids(s.list_families(&cid(PC), None, Some(2)).await.unwrap()),
        ["fam_4", "fam_3"],
        "the newest, as many as asked for"
    );
    assert_eq!(
        ids(s
            .list_families(&cid(PC), Some("home-a"), None)
            .await
            .unwrap()),
        ["fam_3", "fam_1"]
    );
    assert!(
        s.list_families(&cid(PC), Some("nowhere"), None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.list_families(&cid("pc_none"), None, None)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn each_label_counts_its_own_live_families_and_revokes_only_them<S: Store + ?Sized>(
    s: &S,
) {
    create(s, PC).await;
    let labelled = |family: &str, label: &str, expires: i64| NewGrant {
        expires_at: expires,
        ..grant(PC, family, Some(label))
    };
    granted(s, labelled("fam_a1", "home-a", 1000)).await;
    granted(s, labelled("fam_a2", "home-a", 1000)).await;
    granted(s, labelled("fam_a3", "home-a", 1000)).await;
    granted(s, labelled("fam_b1", "home-b", 150)).await;
    granted(s, labelled("fam_c1", "home-c", 1000)).await;
    let id = cid(PC);
    let audit = NewAuditEvent::new(200, k("token.revoke"), Actor::cli_admin());
    let revoked = s
        .revoke_families(
            RevokeScope::Family {
                id: "fam_a3",
                client: Some(&id),
            },
            200,
            "admin",
            2000,
            &audit,
        )
        .await
        .unwrap();
    assert_eq!(revoked, ["fam_a3"]);

    let live: Vec<(String, i64)> = s
        .list_labels(&id, 200)
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.name, l.live_families))
        .collect();
    assert_eq!(
        live,
        [
            ("home-a".to_owned(), 2),
            ("home-b".to_owned(), 0),
            ("home-c".to_owned(), 1)
        ]
    );

    let revoked = s
        .revoke_families(
            RevokeScope::Client {
                client: &id,
                label: Some("home-c"),
            },
            300,
            "admin",
            2000,
            &audit,
        )
        .await
        .unwrap();
    assert_eq!(revoked, ["fam_c1"]);
    assert_eq!(family(s, "fam_a1").await.revoked_at, None);
    let live = s.list_labels(&id, 300).await.unwrap();
    assert_eq!(live.iter().map(|l| l.live_families).sum::<i64>(), 2);
}

pub async fn a_rotation_spends_the_token_and_stores_its_successor<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    granted(
        s,
        NewGrant {
            scopes: ss("upload-data view-indicator"),
            ..grant(PC, "fam_1", Some("home"))
        },
    )
    .await;
    let r = Rotation {
        new: NewRefresh {
            id: "rt_2".into(),
            hash: digest("rt_2"),
            expires_at: 1500,
        },
        family_expires_at: 1500,
        grace_response: Some(vec![1, 2, 3]),
        ..rotation(PC, "fam_1", &rt("fam_1"), "rt_2", 200)
    };
    assert!(s.rotate_refresh_token(r).await.unwrap());

    let old = s.find_refresh_token(&rt("fam_1")).await.unwrap().unwrap();
    assert_eq!(old.spent_at, Some(200));
    assert_eq!(old.grace_response.as_deref(), Some(&[1u8, 2, 3][..]));
    assert!(old.successor_unused);
    let new = s.find_refresh_token("rt_2").await.unwrap().unwrap();
    assert_eq!(new.token_hash, digest("rt_2"));
    assert_eq!(
        new.scopes.to_vec(),
        ["upload-data"],
        "the successor's own scopes"
    );
    assert_eq!(new.expires_at, 1500);
    assert_eq!(new.spent_at, None);
    assert!(!new.successor_unused);
    assert_eq!(new.family.id, "fam_1");
    assert_eq!(
        new.family.scopes.to_vec(),
        ["upload-data", "view-indicator"]
    );
    assert_eq!(
        new.family.expires_at, 1500,
        "the family lasts as its tokens"
    );

    let labels = s.list_labels(&cid(PC), 200).await.unwrap();
    assert_eq!(labels[0].last_issued_at, Some(200));
    let events = audit_of(s, "token.refresh").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].at, 200);
    assert_eq!(events[0].target.as_deref(), Some("fam_1"));

    // A later rotation with an earlier family expiry does not shorten the family.
    let r = Rotation {
        family_expires_at: 1200,
        ..rotation(PC, "fam_1", "rt_2", "rt_3", 300)
    };
    assert!(s.rotate_refresh_token(r).await.unwrap());
    assert_eq!(family(s, "fam_1").await.expires_at, 1500);
}

pub async fn a_spent_token_reports_its_successor_unused_until_the_successor_is_spent<
    S: Store + ?Sized,
>(
    s: &S,
) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", None)).await;
    let first = rt("fam_1");
    let unused = |sel: &str| {
        let sel = sel.to_owned();
        async move {
            s.find_refresh_token(&sel)
                .await
                .unwrap()
                .unwrap()
                .successor_unused
        }
    };
    assert!(!unused(&first).await);
    assert!(
        s.rotate_refresh_token(rotation(PC, "fam_1", &first, "rt_2", 200))
            .await
            .unwrap()
    );
    assert!(unused(&first).await, "spent, its successor not yet used");
    assert!(!unused("rt_2").await);
    assert!(
        s.rotate_refresh_token(rotation(PC, "fam_1", "rt_2", "rt_3", 300))
            .await
            .unwrap()
    );
    assert!(!unused(&first).await, "its successor has been used");
    assert!(unused("rt_2").await);
    assert!(!unused("rt_3").await);
}

pub async fn a_token_is_rotated_only_once<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", None)).await;
    assert!(
        s.rotate_refresh_token(rotation(PC, "fam_1", &rt("fam_1"), "rt_2", 200))
            .await
            .unwrap()
    );
    assert!(
        !s.rotate_refresh_token(rotation(PC, "fam_1", &rt("fam_1"), "rt_x", 210))
            .await
            .unwrap()
    );
    assert_eq!(
        spent_at(s, &rt("fam_1")).await,
        Some(200),
        "first spend kept"
    );
    assert!(s.find_refresh_token("rt_x").await.unwrap().is_none());
    assert_eq!(spent_at(s, "rt_2").await, None);
    assert_eq!(audit_of(s, "token.refresh").await.len(), 1);
}

pub async fn a_rotation_to_a_taken_selector_fails_and_spends_nothing<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    granted(s, grant(PC, "fam_2", None)).await;
    let r = Rotation {
        family_expires_at: 1500,
        ..rotation(PC, "fam_1", &rt("fam_1"), &rt("fam_2"), 200)
    };
    s.rotate_refresh_token(r).await.unwrap_err();
    assert_eq!(spent_at(s, &rt("fam_1")).await, None, "nothing spent");
    let other = s.find_refresh_token(&rt("fam_2")).await.unwrap().unwrap();
    assert_eq!(other.family.id, "fam_2", "the taken selector is untouched");
    assert_eq!(other.token_hash, digest(&rt("fam_2")));
    assert_eq!(family(s, "fam_1").await.expires_at, 1000);
    assert!(audit_of(s, "token.refresh").await.is_empty());
    assert!(
        s.rotate_refresh_token(rotation(PC, "fam_1", &rt("fam_1"), "rt_new", 300))
            .await
            .unwrap(),
        "the token can still be rotated"
    );
}

pub async fn of_eight_concurrent_rotations_of_one_token_exactly_one_wins<S: Store + ?Sized>(
    s: Arc<S>,
) {
    create(&*s, PC).await;
    granted(&*s, grant(PC, "fam_1", None)).await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let s = Arc::clone(&s);
            tokio::spawn(async move {
                let next = format!("rt_next_{i}");
                s.rotate_refresh_token(rotation(PC, "fam_1", &rt("fam_1"), &next, 200))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
    assert_eq!(spent_at(&*s, &rt("fam_1")).await, Some(200));
    let mut successors = 0;
    for i in 0..8 {
        let found = s.find_refresh_token(&format!("rt_next_{i}")).await.unwrap();
        successors += usize::from(found.is_some());
    }
    assert_eq!(successors, 1, "only the winner's successor is stored");
    assert_eq!(audit_of(&*s, "token.refresh").await.len(), 1);
}

pub async fn of_eight_concurrent_spends_of_one_token_exactly_one_rotates<S: Store + ?Sized>(
    s: Arc<S>,
) {
    create(&*s, PC).await;
    granted(&*s, grant(PC, "fam_1", None)).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let s = Arc::clone(&s);
            let spend = spend_into(&rt("fam_1"), &format!("rt_next_{i}"), 200, &calls);
            tokio::spawn(async move { s.spend_refresh_token(spend).await.unwrap() })
        })
        .collect();
    let mut rotated = 0;
    for t in tasks {
        let spent = t.await.unwrap();
        if spent.rotated.is_some() {
            rotated += 1;
            let found = spent.found.expect("the winner found the token");
            assert_eq!(found.spent_at, None, "the winner found it unspent");
        }
    }
    assert_eq!(rotated, 1);
    let mut successors = 0;
    for i in 0..8 {
        let found = s.find_refresh_token(&format!("rt_next_{i}")).await.unwrap();
        successors += usize::from(found.is_some());
    }
    assert_eq!(successors, 1, "only the winner's successor is stored");
    assert_eq!(audit_of(&*s, "token.refresh").await.len(), 1);
}

pub async fn concurrent_grants_are_all_recorded<S: Store + ?Sized>(s: Arc<S>) {
    create(&*s, PC).await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let s = Arc::clone(&s);
            tokio::spawn(async move {
                s.record_grant(grant(PC, &format!("fam_{i}"), Some("home")))
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap());
    }
    assert_eq!(
        s.list_families(&cid(PC), None, None).await.unwrap().len(),
        8
    );
    assert_eq!(audit_of(&*s, "token.issue").await.len(), 8);
    let labels = s.list_labels(&cid(PC), 100).await.unwrap();
    assert_eq!(labels.len(), 1);
    assert_eq!(labels[0].live_families, 8);
}

pub async fn a_rotation_must_present_the_stored_hash_not_just_the_selector<S: Store + ?Sized>(
    s: &S,
) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", None)).await;
    let forged = Rotation {
        old_hash: [7; 32],
        ..rotation(PC, "fam_1", &rt("fam_1"), "rt_2", 200)
    };
    assert!(!s.rotate_refresh_token(forged).await.unwrap());
    assert_eq!(spent_at(s, &rt("fam_1")).await, None);
    assert!(s.find_refresh_token("rt_2").await.unwrap().is_none());
    assert!(
        s.rotate_refresh_token(rotation(PC, "fam_1", &rt("fam_1"), "rt_2", 200))
            .await
            .unwrap()
    );
}

pub async fn an_expired_token_cannot_be_rotated<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    granted(
        s,
        NewGrant {
            refresh_token: Some(NewRefresh {
                id: rt("fam_1"),
                hash: digest(&rt("fam_1")),
                expires_at: 500,
            }),
            ..grant(PC, "fam_1", None)
        },
    )
    .await;
    assert!(
        !s.rotate_refresh_token(rotation(PC, "fam_1", &rt("fam_1"), "rt_2", 600))
            .await
            .unwrap()
    );
    assert_eq!(spent_at(s, &rt("fam_1")).await, None);
    assert!(s.find_refresh_token("rt_2").await.unwrap().is_none());
    assert!(audit_of(s, "token.refresh").await.is_empty());
}

pub async fn a_token_cannot_be_rotated_by_another_client_or_for_another_family<
    S: Store + ?Sized,
>(
    s: &S,
) {
    create(s, PC).await;
    create(s, OTHER).await;
    granted(s, grant(PC, "fam_1", None)).await;
    granted(s, grant(OTHER, "fam_o", None)).await;
    // The other client presents this client's token, naming its family.
    assert!(
        !s.rotate_refresh_token(rotation(OTHER, "fam_1", &rt("fam_1"), "rt_2", 200))
            .await
            .unwrap()
    );
    // Or naming its own family.
    assert!(
        !s.rotate_refresh_token(rotation(OTHER, "fam_o", &rt("fam_1"), "rt_2", 200))
            .await
            .unwrap()
    );
    // The owner names a family the token is not of.
    assert!(
        !s.rotate_refresh_token(rotation(PC, "fam_o", &rt("fam_1"), "rt_2", 200))
            .await
            .unwrap()
    );
    assert_eq!(spent_at(s, &rt("fam_1")).await, None);
    assert_eq!(spent_at(s, &rt("fam_o")).await, None);
    assert!(s.find_refresh_token("rt_2").await.unwrap().is_none());
    assert!(audit_of(s, "token.refresh").await.is_empty());
}

pub async fn a_token_of_a_revoked_family_cannot_be_rotated<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", None)).await;
    let revoked = s
        .revoke_families(
            RevokeScope::Family {
                id: "fam_1",
                client: None,
            },
            150,
            "reuse",
            2000,
            &NewAuditEvent::new(150, k("token.revoke"), Actor::system()),
        )
        .await
        .unwrap();
    assert_eq!(revoked, ["fam_1"]);
    let found = s.find_refresh_token(&rt("fam_1")).await.unwrap().unwrap();
    assert_eq!(
        found.family.revoked_at,
        Some(150),
        "the lookup shows the revocation"
    );
    assert!(
        !s.rotate_refresh_token(rotation(PC, "fam_1", &rt("fam_1"), "rt_2", 200))
            .await
            .unwrap()
    );
    assert_eq!(spent_at(s, &rt("fam_1")).await, None);
    assert!(s.find_refresh_token("rt_2").await.unwrap().is_none());
}

pub async fn an_unknown_token_is_not_found_and_cannot_be_rotated<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", None)).await;
    assert!(s.find_refresh_token("rt_nope").await.unwrap().is_none());
    assert!(
        !s.rotate_refresh_token(rotation(PC, "fam_1", "rt_nope", "rt_2", 200))
            .await
            .unwrap()
    );
    assert!(s.find_refresh_token("rt_2").await.unwrap().is_none());
}

/// A judge that spends an unspent token into `next` at `now`, and refuses a spent
/// one, counting its calls.
fn spend_into(old: &str, next: &str, now: i64, calls: &Arc<AtomicUsize>) -> SpendRefresh {
    let calls = Arc::clone(calls);
    let next = next.to_owned();
    SpendRefresh {
        key: RefreshKey::Selector(old.to_owned()),
        client_id: PC.into(),
        judge: Box::new(move |found| {
            calls.fetch_add(1, Ordering::SeqCst);
            found.spent_at.is_none().then(|| Rotation {
                old_hash: found.token_hash,
                ..rotation(PC, &found.family.id, &found.id, &next, now)
            })
        }),
    }
}

/// A spend whose judge refuses whatever it finds.
fn refuse(key: RefreshKey) -> SpendRefresh {
    SpendRefresh {
        key,
        client_id: PC.into(),
        judge: Box::new(|_| None),
    }
}

pub async fn a_spend_judges_the_token_as_its_write_finds_it_and_rotates_it_once<
    S: Store + ?Sized,
>(
    s: &S,
) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let spent = s
        .spend_refresh_token(spend_into(&rt("fam_1"), "rt_2", 200, &calls))
        .await
        .unwrap();
    let found = spent.found.expect("the token is found");
    assert_eq!(found.id, rt("fam_1"));
    assert_eq!(found.token_hash, digest(&rt("fam_1")));
    assert_eq!(found.spent_at, None, "as found, before the spend");
    assert_eq!(found.family.label.as_deref(), Some("home"));
    assert_eq!(
        spent.rotated.map(|r| r.to_vec()),
        Some(vec!["upload-data".to_owned()])
    );
    assert_eq!(spent_at(s, &rt("fam_1")).await, Some(200));
    assert_eq!(spent_at(s, "rt_2").await, None);
    assert_eq!(audit_of(s, "token.refresh").await.len(), 1);

    // Presented again: found spent, the judge refuses, nothing changes.
    let again = s
        .spend_refresh_token(spend_into(&rt("fam_1"), "rt_x", 300, &calls))
        .await
        .unwrap();
    assert_eq!(again.found.and_then(|f| f.spent_at), Some(200));
    assert!(again.rotated.is_none());
    assert!(s.find_refresh_token("rt_x").await.unwrap().is_none());
    assert_eq!(audit_of(s, "token.refresh").await.len(), 1);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

pub async fn a_spend_its_judge_refuses_or_its_conditions_forbid_changes_nothing<
    S: Store + ?Sized,
>(
    s: &S,
) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", None)).await;
    let refused = s
        .spend_refresh_token(refuse(RefreshKey::Selector(rt("fam_1"))))
        .await
        .unwrap();
    assert!(refused.found.is_some() && refused.rotated.is_none());
    assert_eq!(spent_at(s, &rt("fam_1")).await, None);

    // The judge says yes, but the write's own conditions hold too: a rotation
    // presenting another hash spends nothing.
    let forged = s
        .spend_refresh_token(SpendRefresh {
            key: RefreshKey::Selector(rt("fam_1")),
            client_id: PC.into(),
            judge: Box::new(|found| {
                Some(Rotation {
                    old_hash: digest("forged"),
                    ..rotation(PC, &found.family.id, &found.id, "rt_2", 200)
                })
            }),
        })
        .await
        .unwrap();
    assert!(forged.rotated.is_none());
    assert_eq!(spent_at(s, &rt("fam_1")).await, None);
    assert!(s.find_refresh_token("rt_2").await.unwrap().is_none());
    assert!(audit_of(s, "token.refresh").await.is_empty());

    // Nor one for another client, or once the token has expired (at 1000), or
    // once the client is disabled.
    let judged_yes = |client: &'static str, now: i64| SpendRefresh {
        key: RefreshKey::Selector(rt("fam_1")),
        client_id: client.into(),
        judge: Box::new(move |found| {
            Some(Rotation {
                old_hash: found.token_hash,
                ..rotation(client, &found.family.id, &found.id, "rt_2", now)
            })
        }),
    };
    for (client, now) in [("other", 200), (PC, 1000)] {
        let spent = s
            .spend_refresh_token(judged_yes(client, now))
            .await
            .unwrap();
        assert!(spent.rotated.is_none(), "{client} at {now}");
    }
    s.disable_client(&cid(PC), 300, 2000, &admin_event(300, "client.disable", PC))
        .await
        .unwrap();
    let spent = s.spend_refresh_token(judged_yes(PC, 400)).await.unwrap();
    assert!(spent.rotated.is_none());
    assert_eq!(spent_at(s, &rt("fam_1")).await, None);
    assert!(s.find_refresh_token("rt_2").await.unwrap().is_none());
    assert!(audit_of(s, "token.refresh").await.is_empty());
}

pub async fn a_spend_of_an_unknown_token_finds_nothing_and_never_judges<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", None)).await;
    let calls = Arc::new(AtomicUsize::new(0));
    let spent = s
        .spend_refresh_token(spend_into("rt_nope", "rt_2", 200, &calls))
        .await
        .unwrap();
    assert!(spent.found.is_none() && spent.rotated.is_none());
    let by_hash = s
        .spend_refresh_token(refuse(RefreshKey::Hash(digest("never issued"))))
        .await
        .unwrap();
    assert!(by_hash.found.is_none());
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert!(s.find_refresh_token("rt_2").await.unwrap().is_none());
}

pub async fn usage_moves_last_used_forward_only<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    granted(s, grant(PC, "fam_2", Some("home"))).await;
    let usage = |family: &str, label: Option<&str>, at| Usage {
        family_id: family.into(),
        client_id: PC.into(),
        label: label.map(Into::into),
        at,
    };
    s.record_usage(&[]).await.unwrap();
    s.record_usage(&[usage("fam_1", Some("home"), 300)])
        .await
        .unwrap();
    assert_eq!(family(s, "fam_1").await.last_used_at, Some(300));
    assert_eq!(family(s, "fam_2").await.last_used_at, None);
    let labels = s.list_labels(&cid(PC), 300).await.unwrap();
    assert_eq!(labels[0].last_used_at, Some(300));

    s.record_usage(&[usage("fam_1", Some("home"), 250), usage("fam_2", None, 400)])
        .await
        .unwrap();
    assert_eq!(
        family(s, "fam_1").await.last_used_at,
        Some(300),
        "never backwards"
    );
    assert_eq!(family(s, "fam_2").await.last_used_at, Some(400));
    let labels = s.list_labels(&cid(PC), 400).await.unwrap();
    assert_eq!(
        labels[0].last_used_at,
        Some(300),
        "a use without a label leaves labels alone"
    );
}
