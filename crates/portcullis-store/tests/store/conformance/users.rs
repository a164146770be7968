//! End users: accounts, passwords and status (disabling a user revokes the
//! tokens issued on their behalf), and web sessions; with what they allowed
//! applications in [`consents`] and the authorization codes of the authorization
//! code flow in [`codes`], all re-exported here.

pub mod codes;
pub mod consents;

pub use codes::*;
pub use consents::*;

use super::fixtures::*;
use portcullis_store::prelude::*;
use portcullis_store::{NewGrant, Revocation, RevokeScope, StoreError, UserRecord, UserSessionRow};

/// Ids of the families revoked now, in order.
fn sorted_ids(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

/// Every live revocation, by target.
async fn sorted_revocations<S: Store + ?Sized>(s: &S) -> Vec<Revocation> {
    let mut revs = revocations(s).await;
    revs.sort_by(|a, b| a.target.cmp(&b.target));
    revs
}

/// The `token.revoke` events of `at`, by target: (target, client, actor kind).
async fn family_revocation_events<S: Store + ?Sized>(
    s: &S,
    at: i64,
) -> Vec<(Option<String>, Option<String>, String)> {
    let mut events: Vec<_> = audit_of(s, "token.revoke")
        .await
        .into_iter()
        .filter(|e| e.at == at)
        .map(|e| (e.target, e.client_id, e.actor_kind))
        .collect();
    events.sort();
    events
}

/// `(target, client, actor kind)` as [`family_revocation_events`] lists it.
fn revoke_event(
    family: &str,
    client: &str,
    actor: &str,
) -> (Option<String>, Option<String>, String) {
    (Some(family.into()), Some(client.into()), actor.into())
}

// Accounts.

pub async fn a_created_user_reads_back_by_id_and_by_name_and_users_are_listed_by_name<
    S: Store + ?Sized,
>(
    s: &S,
) {
    assert!(s.list_users().await.unwrap().is_empty());
    assert_eq!(s.get_user(ALICE).await.unwrap(), None);
    assert_eq!(s.find_user("alice").await.unwrap(), None);

    // Created out of name order, so the listing has to sort.
    create_user(s, "usr_z", "zoe").await;
    let disabled = UserRecord {
        active: false,
        created_at: 20,
        updated_at: 30,
        ..user(BOB, "bob")
    };
    s.create_user(&disabled, &user_event(20, "user.create", BOB))
        .await
        .unwrap();
    create_user(s, ALICE, "alice").await;

    assert_eq!(s.get_user(ALICE).await.unwrap(), Some(user(ALICE, "alice")));
    assert_eq!(s.get_user(BOB).await.unwrap(), Some(disabled.clone()));
    assert_eq!(
        s.find_user("alice").await.unwrap(),
        Some(user(ALICE, "alice"))
    );
    assert_eq!(s.find_user("bob").await.unwrap(), Some(disabled.clone()));
    assert_eq!(s.find_user(ALICE).await.unwrap(), None, "names, not ids");
    assert_eq!(s.get_user("alice").await.unwrap(), None, "ids, not names");
    assert_eq!(
        s.list_users().await.unwrap(),
        [user(ALICE, "alice"), disabled, user("usr_z", "zoe")]
    );

    let events = audit_of(s, "user.create").await;
    assert_eq!(events.len(), 3, "one audit event per user");
    assert_eq!(events[0].target.as_deref(), Some(ALICE));
    assert_eq!(events[0].actor_kind, "admin");
}

pub async fn a_user_name_can_be_taken_only_once<S: Store + ?Sized>(s: &S) {
    create_user(s, ALICE, "alice").await;
    let twin = UserRecord {
        password_hash: "$argon2id$twin".into(),
        ..user(BOB, "alice")
    };
    let err = s
        .create_user(&twin, &user_event(20, "user.create", BOB))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(s.get_user(BOB).await.unwrap(), None);
    assert_eq!(
        s.find_user("alice").await.unwrap(),
        Some(user(ALICE, "alice"))
    );
    assert_eq!(s.list_users().await.unwrap().len(), 1);
    assert_eq!(
        audit_of(s, "user.create").await.len(),
        1,
        "no audit event for the refused user"
    );

    let same_id = user(ALICE, "alice2");
    let err = s
        .create_user(&same_id, &user_event(30, "user.create", ALICE))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(s.find_user("alice2").await.unwrap(), None);
    assert_eq!(audit_of(s, "user.create").await.len(), 1);
}

pub async fn a_new_password_replaces_the_hash_and_ends_only_that_users_sessions<
    S: Store + ?Sized,
>(
    s: &S,
) {
    create_user(s, ALICE, "alice").await;
    create_user(s, BOB, "bob").await;
    s.create_user_session(&session(1, ALICE, 100, 1000))
        .await
        .unwrap();
    s.create_user_session(&session(2, ALICE, 100, 1000))
        .await
        .unwrap();
    s.create_user_session(&session(3, BOB, 100, 1000))
        .await
        .unwrap();

    s.set_user_password(
        ALICE,
        "$argon2id$new",
        300,
        &user_event(300, "user.password", ALICE),
    )
    .await
    .unwrap();
    let got = s.get_user(ALICE).await.unwrap().unwrap();
    assert_eq!(got.password_hash, "$argon2id$new");
    assert_eq!(got.updated_at, 300);
    assert_eq!(got.created_at, 10);
    assert!(got.active);
    assert_eq!(s.get_user(BOB).await.unwrap(), Some(user(BOB, "bob")));
    assert_eq!(s.get_user_session(&[1; 32], 300).await.unwrap(), None);
    assert_eq!(s.get_user_session(&[2; 32], 300).await.unwrap(), None);
    assert_eq!(
        s.get_user_session(&[3; 32], 300).await.unwrap(),
        Some(session(3, BOB, 100, 1000)),
        "another user's session goes on"
    );
    let events = audit_of(s, "user.password").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].target.as_deref(), Some(ALICE));
}

pub async fn every_change_to_a_missing_user_is_not_found_and_writes_nothing<S: Store + ?Sized>(
    s: &S,
) {
    create_user(s, ALICE, "alice").await;
    s.create_user_session(&session(1, ALICE, 100, 1000))
        .await
        .unwrap();
    create(s, PC).await;
    granted(s, user_grant(PC, "fam_1", ALICE)).await;
    let before = all_audit(s).await;

    let err = s
        .set_user_password(
            "usr_ghost",
            "$argon2id$x",
            300,
            &user_event(300, "user.password", "usr_ghost"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    for active in [false, true] {
        let kind = if active {
            "user.enable"
        } else {
            "user.disable"
        };
        let err = s
            .set_user_status(
                "usr_ghost",
                active,
                300,
                2000,
                &user_event(300, kind, "usr_ghost"),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    }

    assert_eq!(s.list_users().await.unwrap(), [user(ALICE, "alice")]);
    assert_eq!(all_audit(s).await, before, "no audit event");
    assert!(revocations(s).await.is_empty());
    assert_eq!(family(s, "fam_1").await.revoked_at, None);
    assert!(s.get_user_session(&[1; 32], 300).await.unwrap().is_some());
}

// Sessions.

pub async fn user_sessions_live_until_they_expire_and_end_when_deleted<S: Store + ?Sized>(s: &S) {
    create_user(s, ALICE, "alice").await;
    let first = session(1, ALICE, 100, 1000);
    let second = UserSessionRow {
        source: None,
        ..session(2, ALICE, 100, 1000)
    };
    s.create_user_session(&first).await.unwrap();
    s.create_user_session(&second).await.unwrap();

    assert_eq!(
        s.get_user_session(&[1; 32], 500).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(
        s.get_user_session(&[2; 32], 500).await.unwrap(),
        Some(second.clone())
    );
    assert_eq!(s.get_user_session(&[3; 32], 500).await.unwrap(), None);

    s.touch_user_session(&[1; 32], 600).await.unwrap();
    let touched = s.get_user_session(&[1; 32], 600).await.unwrap().unwrap();
    assert_eq!(touched.last_seen_at, 600);
    assert_eq!(touched.expires_at, 1000, "touching does not extend expiry");
    assert_eq!(
        s.get_user_session(&[2; 32], 600).await.unwrap(),
        Some(second.clone()),
        "touching one session leaves the others"
    );
    assert_eq!(
        s.get_user_session(&[1; 32], 1000).await.unwrap(),
        None,
        "expired"
    );
    assert_eq!(s.get_user_session(&[1; 32], 5000).await.unwrap(), None);

    s.delete_user_session(&[1; 32]).await.unwrap();
    assert_eq!(s.get_user_session(&[1; 32], 500).await.unwrap(), None);
    assert_eq!(
        s.get_user_session(&[2; 32], 500).await.unwrap(),
        Some(second)
    );
    s.delete_user_session(&[9; 32]).await.unwrap();
    s.touch_user_session(&[9; 32], 600).await.unwrap();
    assert_eq!(s.get_user_session(&[9; 32], 600).await.unwrap(), None);
}

pub async fn a_new_user_session_drops_the_expired_ones<S: Store + ?Sized>(s: &S) {
    create_user(s, ALICE, "alice").await;
    create_user(s, BOB, "bob").await;
    s.create_user_session(&session(1, ALICE, 100, 500))
        .await
        .unwrap();
    s.create_user_session(&session(2, BOB, 100, 500))
        .await
        .unwrap();
    s.create_user_session(&session(3, ALICE, 100, 2000))
        .await
        .unwrap();
    // Asked for as if it were still 400, an expired session that was kept would
    // show.
    assert!(s.get_user_session(&[1; 32], 400).await.unwrap().is_some());

    s.create_user_session(&session(4, BOB, 600, 3000))
        .await
        .unwrap();
    assert_eq!(s.get_user_session(&[1; 32], 400).await.unwrap(), None);
    assert_eq!(s.get_user_session(&[2; 32], 400).await.unwrap(), None);
    assert_eq!(
        s.get_user_session(&[3; 32], 600).await.unwrap(),
        Some(session(3, ALICE, 100, 2000)),
        "a live session stays"
    );
    assert_eq!(
        s.get_user_session(&[4; 32], 600).await.unwrap(),
        Some(session(4, BOB, 600, 3000))
    );
}

pub async fn a_disabled_users_session_is_not_returned<S: Store + ?Sized>(s: &S) {
    create_user(s, ALICE, "alice").await;
    s.set_user_status(
        ALICE,
        false,
        200,
        2000,
        &user_event(200, "user.disable", ALICE),
    )
    .await
    .unwrap();
    // A session written after the user was disabled (a sign-in that raced the
    // disable) is still refused: the user's status is part of the read.
    s.create_user_session(&session(1, ALICE, 300, 1000))
        .await
        .unwrap();
    assert_eq!(s.get_user_session(&[1; 32], 300).await.unwrap(), None);

    s.set_user_status(
        ALICE,
        true,
        400,
        2000,
        &user_event(400, "user.enable", ALICE),
    )
    .await
    .unwrap();
    assert_eq!(
        s.get_user_session(&[1; 32], 400).await.unwrap(),
        Some(session(1, ALICE, 300, 1000))
    );
}

// Status.

pub async fn disabling_a_user_revokes_exactly_their_live_authorization_code_families<
    S: Store + ?Sized,
>(
    s: &S,
) {
    create(s, PC).await;
    create(s, OTHER).await;
    create_user(s, ALICE, "alice").await;
    create_user(s, BOB, "bob").await;
    granted(s, user_grant(PC, "fam_a1", ALICE)).await;
    granted(s, user_grant(OTHER, "fam_a2", ALICE)).await;
    granted(
        s,
        NewGrant {
            expires_at: 250,
            refresh_token: None,
            ..user_grant(PC, "fam_a_expired", ALICE)
        },
    )
    .await;
    granted(s, user_grant(PC, "fam_a_revoked", ALICE)).await;
    s.revoke_families(
        RevokeScope::Family {
            id: "fam_a_revoked",
            client: None,
        },
        150,
        "admin",
        1500,
        &admin_event(150, "token.revoke", PC),
    )
    .await
    .unwrap();
    // A client acting for itself whose subject happens to read like the user's id
    // holds no grant of the user's.
    granted(
        s,
        NewGrant {
            subject: ALICE.into(),
            ..grant(PC, "fam_cc", None)
        },
    )
    .await;
    granted(s, user_grant(PC, "fam_b", BOB)).await;
    s.create_user_session(&session(1, ALICE, 100, 1000))
        .await
        .unwrap();
    s.create_user_session(&session(2, BOB, 100, 1000))
        .await
        .unwrap();
    let revokes_before = audit_of(s, "token.revoke").await.len();

    let revoked = s
        .set_user_status(
            ALICE,
            false,
            300,
            2000,
            &user_event(300, "user.disable", ALICE),
        )
        .await
        .unwrap();
    assert_eq!(sorted_ids(revoked), ["fam_a1", "fam_a2"]);

    let got = s.get_user(ALICE).await.unwrap().unwrap();
    assert!(!got.active);
    assert_eq!(got.updated_at, 300);
    assert_eq!(family(s, "fam_a1").await.revoked_at, Some(300));
    assert_eq!(family(s, "fam_a2").await.revoked_at, Some(300));
    assert_eq!(family(s, "fam_a_expired").await.revoked_at, None);
    assert_eq!(
        family(s, "fam_a_revoked").await.revoked_at,
        Some(150),
        "revoked once"
    );
    assert_eq!(family(s, "fam_cc").await.revoked_at, None);
    assert_eq!(family(s, "fam_b").await.revoked_at, None);

    assert_eq!(
        sorted_revocations(s)
            .await
            .iter()
            .map(rev)
            .collect::<Vec<_>>(),
        [
            ("family", "fam_a1", None, 2000),
            ("family", "fam_a2", None, 2000),
            ("family", "fam_a_revoked", None, 1500),
        ]
    );
    // What every node's denylist reads.
    let mut fed: Vec<_> = s
        .revocation_feed(None, 300)
        .await
        .unwrap()
        .revocations
        .into_iter()
        .filter(|r| r.expires_at == 2000)
        .map(|r| (r.kind, r.target))
        .collect();
    fed.sort();
    assert_eq!(
        fed,
        [
            ("family".to_owned(), "fam_a1".to_owned()),
            ("family".to_owned(), "fam_a2".to_owned())
        ]
    );

    let disables = audit_of(s, "user.disable").await;
    assert_eq!(disables.len(), 1);
    assert_eq!(disables[0].target.as_deref(), Some(ALICE));
    assert_eq!(
        audit_of(s, "token.revoke").await.len(),
        revokes_before + 2,
        "one audit event per family"
    );
    assert_eq!(
        family_revocation_events(s, 300).await,
        [
            revoke_event("fam_a1", PC, "admin"),
            revoke_event("fam_a2", OTHER, "admin")
        ]
    );

    assert_eq!(s.get_user_session(&[1; 32], 300).await.unwrap(), None);
    assert!(s.get_user_session(&[2; 32], 300).await.unwrap().is_some());
    assert!(
        s.get_user(BOB).await.unwrap().unwrap().active,
        "other users stay"
    );

    // Disabling again finds nothing left to revoke.
    let again = s
        .set_user_status(
            ALICE,
            false,
            400,
            2000,
            &user_event(400, "user.disable", ALICE),
        )
        .await
        .unwrap();
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(revocations(s).await.len(), 3);
}

pub async fn enabling_a_user_revokes_nothing<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    create_user(s, ALICE, "alice").await;
    granted(s, user_grant(PC, "fam_a1", ALICE)).await;
    s.create_user_session(&session(1, ALICE, 100, 1000))
        .await
        .unwrap();

    let revoked = s
        .set_user_status(
            ALICE,
            true,
            300,
            2000,
            &user_event(300, "user.enable", ALICE),
        )
        .await
        .unwrap();
    assert!(revoked.is_empty(), "{revoked:?}");
    let got = s.get_user(ALICE).await.unwrap().unwrap();
    assert!(got.active);
    assert_eq!(got.updated_at, 300);
    assert_eq!(family(s, "fam_a1").await.revoked_at, None);
    assert!(revocations(s).await.is_empty());
    assert!(audit_of(s, "token.revoke").await.is_empty());
    assert_eq!(audit_of(s, "user.enable").await.len(), 1);
    assert!(
        s.get_user_session(&[1; 32], 300).await.unwrap().is_some(),
        "enabling ends no session"
    );

    // Enabling a disabled user brings back none of what disabling revoked.
    s.set_user_status(
        ALICE,
        false,
        400,
        2000,
        &user_event(400, "user.disable", ALICE),
    )
    .await
    .unwrap();
    let revoked = s
        .set_user_status(
            ALICE,
            true,
            500,
            2000,
            &user_event(500, "user.enable", ALICE),
        )
        .await
        .unwrap();
    assert!(revoked.is_empty());
    assert!(s.get_user(ALICE).await.unwrap().unwrap().active);
    assert_eq!(family(s, "fam_a1").await.revoked_at, Some(400));
    assert_eq!(revocations(s).await.len(), 1);
}
