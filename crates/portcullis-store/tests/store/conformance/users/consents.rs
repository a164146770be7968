//! Consents: what a user allowed an application, widened by each new consent,
//! listed with the application's name and last use, ended or narrowed (with the
//! token families issued under it), and gone with the application.

use super::super::fixtures::*;
use super::{family_revocation_events, revoke_event, sorted_ids, sorted_revocations};
use portcullis_store::prelude::*;
use portcullis_store::{NewGrant, StoreError, Usage};
use std::sync::Arc;

pub async fn a_consent_is_created_then_widened_and_read_back_with_the_client_name<
    S: Store + ?Sized,
>(
    s: &S,
) {
    create(s, PC).await;
    create_user(s, ALICE, "alice").await;
    assert_eq!(s.get_consent(ALICE, PC).await.unwrap(), None);

    s.put_consent(
        &consent(ALICE, PC, "upload-data", 100),
        &consent_event(100, "consent.give", ALICE, PC),
    )
    .await
    .unwrap();
    let got = s.get_consent(ALICE, PC).await.unwrap().unwrap();
    assert_eq!((got.user_id.as_str(), got.client_id.as_str()), (ALICE, PC));
    assert_eq!(got.client_name, format!("client {PC}"));
    assert_eq!(got.scopes, ss("upload-data"));
    assert_eq!((got.created_at, got.updated_at), (100, 100));

    // A second consent adds to the first: it never takes away what was allowed.
    s.put_consent(
        &consent(ALICE, PC, "view-indicator", 200),
        &consent_event(200, "consent.give", ALICE, PC),
    )
    .await
    .unwrap();
    let got = s.get_consent(ALICE, PC).await.unwrap().unwrap();
    assert_eq!(got.scopes, ss("upload-data view-indicator"));
    assert_eq!((got.created_at, got.updated_at), (100, 200));

    s.put_consent(
        &consent(ALICE, PC, "upload-data", 300),
        &consent_event(300, "consent.give", ALICE, PC),
    )
    .await
    .unwrap();
    let got = s.get_consent(ALICE, PC).await.unwrap().unwrap();
    assert_eq!(got.scopes, ss("upload-data view-indicator"));

    let events = audit_of(s, "consent.give").await;
    assert_eq!(events.len(), 3, "one audit event per consent");
    assert_eq!(events[0].client_id.as_deref(), Some(PC));
    assert_eq!(events[0].actor_kind, "user");
    assert_eq!(s.get_consent(BOB, PC).await.unwrap(), None);
    assert_eq!(s.get_consent(ALICE, OTHER).await.unwrap(), None);
}

pub async fn consents_are_listed_with_the_client_name_and_the_last_use_of_their_tokens<
    S: Store + ?Sized,
>(
    s: &S,
) {
    create(s, PC).await;
    create(s, OTHER).await;
    create_user(s, ALICE, "alice").await;
    create_user(s, BOB, "bob").await;
    for (user, client) in [(ALICE, PC), (ALICE, OTHER), (BOB, PC)] {
        s.put_consent(
            &consent(user, client, "upload-data", 100),
            &consent_event(100, "consent.give", user, client),
        )
        .await
        .unwrap();
    }
    granted(s, user_grant(PC, "fam_a1", ALICE)).await;
    granted(s, user_grant(PC, "fam_a2", ALICE)).await;
    granted(s, user_grant(PC, "fam_b", BOB)).await;
    // The client's own tokens, under a subject that reads like the user's id, are
    // no use of the user's grant.
    granted(
        s,
        NewGrant {
            subject: ALICE.into(),
            ..grant(PC, "fam_cc", None)
        },
    )
    .await;
    let usage = |family: &str, at| Usage {
        family_id: family.into(),
        client_id: PC.into(),
        label: None,
        at,
    };
    s.record_usage(&[
        usage("fam_a1", 300),
        usage("fam_a2", 400),
        usage("fam_b", 700),
        usage("fam_cc", 900),
    ])
    .await
    .unwrap();

    let listed = s.list_consents(ALICE).await.unwrap();
    let summary: Vec<_> = listed
        .iter()
        .map(|c| {
            (
                c.user_id.as_str(),
                c.client_id.as_str(),
                c.client_name.clone(),
                c.scopes.to_string(),
                c.last_used_at,
            )
        })
        .collect();
    // By the application's name: "client pc_other" before "client pc_test".
    assert_eq!(
        summary,
        [
            (
                ALICE,
                OTHER,
                format!("client {OTHER}"),
                "upload-data".to_owned(),
                None
            ),
            (
                ALICE,
                PC,
                format!("client {PC}"),
                "upload-data".to_owned(),
                Some(400)
            ),
        ]
    );
    assert_eq!((listed[1].created_at, listed[1].updated_at), (100, 100));
    let bobs = s.list_consents(BOB).await.unwrap();
    assert_eq!(bobs.len(), 1);
    assert_eq!(bobs[0].last_used_at, Some(700));
    assert!(s.list_consents("usr_ghost").await.unwrap().is_empty());
}

pub async fn revoking_a_consent_deletes_it_and_revokes_only_that_clients_families_of_the_user<
    S: Store + ?Sized,
>(
    s: &S,
) {
    create(s, PC).await;
    create(s, OTHER).await;
    create_user(s, ALICE, "alice").await;
    create_user(s, BOB, "bob").await;
    for (user, client) in [(ALICE, PC), (ALICE, OTHER), (BOB, PC)] {
        s.put_consent(
            &consent(user, client, "upload-data", 100),
            &consent_event(100, "consent.give", user, client),
        )
        .await
        .unwrap();
    }
    granted(s, user_grant(PC, "fam_a1", ALICE)).await;
    granted(s, user_grant(PC, "fam_a2", ALICE)).await;
    granted(s, user_grant(OTHER, "fam_a_other", ALICE)).await;
    granted(s, user_grant(PC, "fam_b", BOB)).await;
    granted(
        s,
        NewGrant {
            subject: ALICE.into(),
            ..grant(PC, "fam_cc", None)
        },
    )
    .await;

    let revoked = s
        .revoke_consent(
            ALICE,
            PC,
            None,
            300,
            2000,
            &consent_event(300, "consent.revoke", ALICE, PC),
        )
        .await
        .unwrap();
    assert_eq!(sorted_ids(revoked.revoked), ["fam_a1", "fam_a2"]);
    assert!(revoked.narrowed.is_empty());
    assert_eq!(s.get_consent(ALICE, PC).await.unwrap(), None);
    let left: Vec<_> = s
        .list_consents(ALICE)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.client_id)
        .collect();
    assert_eq!(left, [OTHER]);
    assert!(s.get_consent(BOB, PC).await.unwrap().is_some());

    assert_eq!(family(s, "fam_a1").await.revoked_at, Some(300));
    assert_eq!(family(s, "fam_a2").await.revoked_at, Some(300));
    assert_eq!(family(s, "fam_a_other").await.revoked_at, None);
    assert_eq!(family(s, "fam_b").await.revoked_at, None);
    assert_eq!(family(s, "fam_cc").await.revoked_at, None);
    assert_eq!(
        sorted_revocations(s)
            .await
            .iter()
            .map(rev)
            .collect::<Vec<_>>(),
        [
            ("family", "fam_a1", None, 2000),
            ("family", "fam_a2", None, 2000)
        ]
    );
    assert_eq!(audit_of(s, "consent.revoke").await.len(), 1);
    assert_eq!(audit_of(s, "token.revoke").await.len(), 2);
    assert_eq!(
        family_revocation_events(s, 300).await,
        [
            revoke_event("fam_a1", PC, "user"),
            revoke_event("fam_a2", PC, "user")
        ]
    );

    // Once ended, there is nothing more to end.
    let err = s
        .revoke_consent(
            ALICE,
            PC,
            None,
            400,
            2000,
            &consent_event(400, "consent.revoke", ALICE, PC),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
}

pub async fn narrowing_a_consent_narrows_its_families_and_revokes_their_access_tokens<
    S: Store + ?Sized,
>(
    s: &S,
) {
    create(s, PC).await;
    create(s, OTHER).await;
    create_user(s, ALICE, "alice").await;
    s.put_consent(
        &consent(ALICE, PC, "upload-data view-indicator", 100),
        &consent_event(100, "consent.give", ALICE, PC),
    )
    .await
    .unwrap();
    granted(
        s,
        NewGrant {
            scopes: ss("upload-data view-indicator"),
            ..user_grant(PC, "fam_a1", ALICE)
        },
    )
    .await;
    granted(
        s,
        NewGrant {
            scopes: ss("view-indicator"),
            ..user_grant(PC, "fam_a2", ALICE)
        },
    )
    .await;
    granted(s, user_grant(OTHER, "fam_a_other", ALICE)).await;

    let change = s
        .revoke_consent(
            ALICE,
            PC,
            Some(&ss("upload-data")),
            300,
            2000,
            &consent_event(300, "consent.narrow", ALICE, PC),
        )
        .await
        .unwrap();
    // A family keeping a scope is narrowed (its refresh tokens live on); one
    // keeping none is revoked whole.
    assert_eq!(change.narrowed, ["fam_a1"]);
    assert_eq!(change.revoked, ["fam_a2"]);
    let got = s.get_consent(ALICE, PC).await.unwrap().unwrap();
    assert_eq!(got.scopes, ss("upload-data"));
    assert_eq!((got.created_at, got.updated_at), (100, 300));
    let a1 = family(s, "fam_a1").await;
    assert_eq!((a1.revoked_at, a1.scopes), (None, ss("upload-data")));
    assert_eq!(family(s, "fam_a2").await.revoked_at, Some(300));
    assert_eq!(family(s, "fam_a_other").await.revoked_at, None);
    assert_eq!(
        sorted_revocations(s)
            .await
            .iter()
            .map(rev)
            .collect::<Vec<_>>(),
        [
            ("family", "fam_a1", Some(300), 2000),
            ("family", "fam_a2", None, 2000)
        ]
    );
    assert_eq!(audit_of(s, "consent.narrow").await.len(), 1);
    assert_eq!(
        family_revocation_events(s, 300).await,
        [
            revoke_event("fam_a1", PC, "user"),
            revoke_event("fam_a2", PC, "user")
        ]
    );
}

pub async fn revoking_a_missing_consent_is_not_found_and_changes_nothing<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    create(s, OTHER).await;
    create_user(s, ALICE, "alice").await;
    s.put_consent(
        &consent(ALICE, PC, "upload-data", 100),
        &consent_event(100, "consent.give", ALICE, PC),
    )
    .await
    .unwrap();
    // Tokens of OTHER for the user, but no consent to OTHER on record.
    granted(s, user_grant(OTHER, "fam_a_other", ALICE)).await;
    granted(s, user_grant(PC, "fam_a1", ALICE)).await;
    let before = all_audit(s).await;

    for keep in [None, Some(ss("upload-data"))] {
        for (user, client) in [(ALICE, OTHER), ("usr_ghost", PC), (ALICE, "pc_ghost")] {
            let err = s
                .revoke_consent(
                    user,
                    client,
                    keep.as_ref(),
                    300,
                    2000,
                    &consent_event(300, "consent.revoke", user, client),
                )
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
        }
    }
    assert_eq!(family(s, "fam_a_other").await.revoked_at, None);
    assert_eq!(family(s, "fam_a1").await.revoked_at, None);
    assert!(revocations(s).await.is_empty());
    assert_eq!(all_audit(s).await, before, "no audit event");
    assert_eq!(
        s.get_consent(ALICE, PC).await.unwrap().unwrap().scopes,
        ss("upload-data")
    );
    assert_eq!(s.list_consents(ALICE).await.unwrap().len(), 1);
}

pub async fn deleting_a_client_removes_the_consents_and_codes_given_to_it<S: Store + ?Sized>(
    s: &S,
) {
    create(s, PC).await;
    create(s, OTHER).await;
    create_user(s, ALICE, "alice").await;
    create_user(s, BOB, "bob").await;
    for (user, client) in [(ALICE, PC), (ALICE, OTHER), (BOB, PC)] {
        s.put_consent(
            &consent(user, client, "upload-data", 100),
            &consent_event(100, "consent.give", user, client),
        )
        .await
        .unwrap();
    }
    s.create_code(&code("code_pc", PC, ALICE)).await.unwrap();
    s.create_code(&code("code_other", OTHER, ALICE))
        .await
        .unwrap();

    s.delete_client(&cid(PC), 120, 2000, &admin_event(120, "client.delete", PC))
        .await
        .unwrap();
    assert_eq!(s.get_consent(ALICE, PC).await.unwrap(), None);
    assert_eq!(s.get_consent(BOB, PC).await.unwrap(), None);
    assert!(s.list_consents(BOB).await.unwrap().is_empty());
    let left: Vec<_> = s
        .list_consents(ALICE)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.client_id)
        .collect();
    assert_eq!(left, [OTHER]);
    assert_eq!(s.find_code(&digest("code_pc")).await.unwrap(), None);
    assert_eq!(
        s.find_code(&digest("code_other"))
            .await
            .unwrap()
            .map(|c| c.code),
        Some(code("code_other", OTHER, ALICE))
    );
}

pub async fn concurrent_consents_to_one_application_all_end_up_in_it<S: Store + ?Sized>(s: Arc<S>) {
    create(&*s, PC).await;
    create_user(&*s, ALICE, "alice").await;
    // Several rounds, each starting with no consent on record: the first consent
    // given for an application is the one two requests can race to create.
    for round in 0..4 {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let s = Arc::clone(&s);
                tokio::spawn(async move {
                    let scope = format!("s{round}-{i}");
                    s.put_consent(
                        &consent(ALICE, PC, &scope, 100),
                        &consent_event(100, "consent.give", ALICE, PC),
                    )
                    .await
                    .unwrap();
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let got = s.get_consent(ALICE, PC).await.unwrap().unwrap();
        let want: Vec<String> = (0..8).map(|i| format!("s{round}-{i}")).collect();
        assert_eq!(got.scopes.to_string(), want.join(" "), "round {round}");
        s.revoke_consent(
            ALICE,
            PC,
            None,
            200,
            2000,
            &consent_event(200, "consent.revoke", ALICE, PC),
        )
        .await
        .unwrap();
    }
}
