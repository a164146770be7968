//! Atomicity: a change whose audit event cannot be written leaves nothing.

use super::Backend;
use super::fixtures::*;
use portcullis_core::scope::BUILT_IN;
use portcullis_core::{Client, ClientStatus, GrantType, RedirectUri, Ttl};
use portcullis_store::prelude::*;
use portcullis_store::{
    Actor, NewAuditEvent, RefreshKey, RevokeScope, Rotation, ScopeRecord, SpendRefresh, StoreError,
};

pub async fn an_injected_failure_hits_only_its_own_kind<B: Backend>(b: &B, s: &B::S) {
    b.fail_audit_inserts_of(s, "client.update").await;
    s.append_audit(&NewAuditEvent::new(
        100,
        k("client.update"),
        Actor::system(),
    ))
    .await
    .unwrap_err();
    s.append_audit(&NewAuditEvent::new(
        100,
        k("client.enable"),
        Actor::system(),
    ))
    .await
    .unwrap();
    create(s, PC).await;
    let kinds: Vec<String> = all_audit(s).await.into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, ["client.create", "client.enable"]);
}

pub async fn a_client_creation_that_cannot_be_audited_creates_nothing<B: Backend>(b: &B, s: &B::S) {
    create(s, OTHER).await;
    b.fail_audit_inserts_of(s, "client.create").await;
    s.create_client(&client(PC), &[1; 32], &admin_event(10, "client.create", PC))
        .await
        .unwrap_err();
    assert!(s.get_client(&cid(PC)).await.unwrap().is_none());
    assert!(s.get_client_auth(&cid(PC), 10).await.unwrap().is_none());
    assert_eq!(s.list_clients().await.unwrap(), [client(OTHER)]);
    assert!(
        !s.record_grant(grant(PC, "fam_1", None)).await.unwrap(),
        "no half-created client takes grants"
    );
}

pub async fn an_update_that_cannot_be_audited_changes_nothing<B: Backend>(b: &B, s: &B::S) {
    create(s, PC).await;
    b.fail_audit_inserts_of(s, "client.update").await;
    let edited = Client {
        name: "renamed".into(),
        scopes: scope_set(&["view-indicator"]),
        grant_types: vec![GrantType::AuthorizationCode],
        redirect_uris: vec![RedirectUri::parse("https://app.example/cb").unwrap()],
        access_token_ttl: Ttl::from_secs(60),
        issue_refresh_token: false,
        ..client(PC)
    };
    s.update_client(&edited, 300, &admin_event(300, "client.update", PC))
        .await
        .unwrap_err();
    assert_eq!(s.get_client(&cid(PC)).await.unwrap(), Some(client(PC)));
}

pub async fn a_disable_that_cannot_be_audited_changes_nothing<B: Backend>(b: &B, s: &B::S) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    granted(s, grant(PC, "fam_2", None)).await;
    b.fail_audit_inserts_of(s, "client.disable").await;
    s.disable_client(&cid(PC), 300, 2000, &admin_event(300, "client.disable", PC))
        .await
        .unwrap_err();

    let got = s.get_client(&cid(PC)).await.unwrap().unwrap();
    assert_eq!(got.status, ClientStatus::Active);
    assert_eq!(family(s, "fam_1").await.revoked_at, None);
    assert_eq!(family(s, "fam_2").await.revoked_at, None);
    assert!(revocations(s).await.is_empty(), "no client revocation");
    assert_eq!(
        s.list_labels(&cid(PC), 300).await.unwrap()[0].live_families,
        1
    );
    // The client still works.
    assert!(
        s.rotate_refresh_token(rotation(PC, "fam_1", &rt("fam_1"), "rt_next", 400))
            .await
            .unwrap()
    );
    granted(s, grant(PC, "fam_3", None)).await;
}

pub async fn an_enable_that_cannot_be_audited_changes_nothing<B: Backend>(b: &B, s: &B::S) {
    create(s, PC).await;
    s.disable_client(&cid(PC), 300, 2000, &admin_event(300, "client.disable", PC))
        .await
        .unwrap();
    b.fail_audit_inserts_of(s, "client.enable").await;
    s.enable_client(&cid(PC), 400, &admin_event(400, "client.enable", PC))
        .await
        .unwrap_err();
    let got = s.get_client(&cid(PC)).await.unwrap().unwrap();
    assert_eq!(got.status, ClientStatus::Disabled);
    assert!(!s.record_grant(grant(PC, "fam_1", None)).await.unwrap());
}

pub async fn a_delete_that_cannot_be_audited_changes_nothing<B: Backend>(b: &B, s: &B::S) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    s.store_upload(upload(PC, "b1", Some("home"), None))
        .await
        .unwrap();
    b.fail_audit_inserts_of(s, "client.delete").await;
    s.delete_client(&cid(PC), 300, 2000, &admin_event(300, "client.delete", PC))
        .await
        .unwrap_err();

    assert_eq!(s.get_client(&cid(PC)).await.unwrap(), Some(client(PC)));
    assert_eq!(secrets(s, PC, 300).await, vec![digest(PC)]);
    assert_eq!(family(s, "fam_1").await.revoked_at, None);
    assert!(s.find_refresh_token(&rt("fam_1")).await.unwrap().is_some());
    assert_eq!(s.list_labels(&cid(PC), 300).await.unwrap().len(), 1);
    assert_eq!(s.site_counters(&cid(PC)).await.unwrap().len(), 1);
    assert!(revocations(s).await.is_empty(), "no client revocation");
    assert!(
        s.rotate_refresh_token(rotation(PC, "fam_1", &rt("fam_1"), "rt_next", 400))
            .await
            .unwrap()
    );
}

pub async fn a_secret_rotation_that_cannot_be_audited_changes_nothing<B: Backend>(b: &B, s: &B::S) {
    create(s, PC).await;
    b.fail_audit_inserts_of(s, "client.rotate_secret").await;
    s.rotate_client_secret(
        &cid(PC),
        &[0xB; 32],
        500,
        200,
        &admin_event(200, "client.rotate_secret", PC),
    )
    .await
    .unwrap_err();
    assert_eq!(secrets(s, PC, 200).await, vec![digest(PC)]);
    assert_eq!(
        secrets(s, PC, 100_000).await,
        vec![digest(PC)],
        "and it does not expire"
    );
}

pub async fn a_scope_creation_that_cannot_be_audited_creates_nothing<B: Backend>(b: &B, s: &B::S) {
    b.fail_audit_inserts_of(s, "scope.create").await;
    let reports = ScopeRecord {
        name: "reports".into(),
        description: "Read monthly reports".into(),
        created_at: 500,
    };
    s.create_scope(
        &reports,
        &NewAuditEvent::new(500, k("scope.create"), Actor::cli_admin()),
    )
    .await
    .unwrap_err();
    let scopes = s.list_scopes().await.unwrap();
    assert!(scopes.iter().all(|sc| sc.name != "reports"));
    assert_eq!(scopes.len(), BUILT_IN.len());
    let c = Client {
        scopes: scope_set(&["reports"]),
        ..client(PC)
    };
    let err = s
        .create_client(&c, &[1; 32], &admin_event(10, "client.create", PC))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(_)),
        "the scope is unknown: {err:?}"
    );
}

pub async fn a_family_revocation_that_cannot_be_audited_changes_nothing<B: Backend>(
    b: &B,
    s: &B::S,
) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    granted(s, grant(PC, "fam_2", Some("home"))).await;
    b.fail_audit_inserts_of(s, "token.revoke").await;
    let audit = NewAuditEvent::new(300, k("token.revoke"), Actor::cli_admin());
    let id = cid(PC);
    s.revoke_families(
        RevokeScope::Client {
            client: &id,
            label: None,
        },
        300,
        "admin",
        2000,
        &audit,
    )
    .await
    .unwrap_err();
    s.revoke_families(
        RevokeScope::Client {
            client: &id,
            label: Some("home"),
        },
        300,
        "admin",
        2000,
        &audit,
    )
    .await
    .unwrap_err();
    s.revoke_families(
        RevokeScope::Family {
            id: "fam_2",
            client: Some(&id),
        },
        300,
        "admin",
        2000,
        &audit,
    )
    .await
    .unwrap_err();
    assert_eq!(family(s, "fam_1").await.revoked_at, None);
    assert_eq!(family(s, "fam_2").await.revoked_at, None);
    assert!(revocations(s).await.is_empty(), "no family revocation");
    assert_eq!(s.list_labels(&id, 300).await.unwrap()[0].live_families, 2);
    assert!(
        s.rotate_refresh_token(rotation(PC, "fam_2", &rt("fam_2"), "rt_next", 400))
            .await
            .unwrap()
    );
}

pub async fn an_access_token_revocation_that_cannot_be_audited_changes_nothing<B: Backend>(
    b: &B,
    s: &B::S,
) {
    b.fail_audit_inserts_of(s, "token.revoke").await;
    s.revoke_access_token(
        "jti_1",
        100,
        500,
        &NewAuditEvent::new(100, k("token.revoke"), Actor::cli_admin()),
    )
    .await
    .unwrap_err();
    assert!(revocations(s).await.is_empty());
}

pub async fn a_grant_that_cannot_be_audited_writes_nothing<B: Backend>(b: &B, s: &B::S) {
    create(s, PC).await;
    b.fail_audit_inserts_of(s, "token.issue").await;
    s.record_grant(grant(PC, "fam_1", Some("home")))
        .await
        .unwrap_err();
    assert!(s.get_family("fam_1").await.unwrap().is_none());
    assert!(s.find_refresh_token(&rt("fam_1")).await.unwrap().is_none());
    assert!(s.list_labels(&cid(PC), 100).await.unwrap().is_empty());
}

pub async fn a_refresh_that_cannot_be_audited_spends_nothing<B: Backend>(b: &B, s: &B::S) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    b.fail_audit_inserts_of(s, "token.refresh").await;
    let r = Rotation {
        family_expires_at: 1500,
        ..rotation(PC, "fam_1", &rt("fam_1"), "rt_2", 200)
    };
    s.rotate_refresh_token(r).await.unwrap_err();
    assert_eq!(spent_at(s, &rt("fam_1")).await, None);
    assert!(s.find_refresh_token("rt_2").await.unwrap().is_none());
    assert_eq!(family(s, "fam_1").await.expires_at, 1000);
    assert_eq!(
        s.list_labels(&cid(PC), 200).await.unwrap()[0].last_issued_at,
        Some(100)
    );
}

pub async fn a_refresh_spend_that_cannot_be_audited_spends_nothing<B: Backend>(b: &B, s: &B::S) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    b.fail_audit_inserts_of(s, "token.refresh").await;
    s.spend_refresh_token(SpendRefresh {
        key: RefreshKey::Selector(rt("fam_1")),
        client_id: PC.into(),
        judge: Box::new(|found| {
            Some(Rotation {
                family_expires_at: 1500,
                ..rotation(PC, &found.family.id, &found.id, "rt_2", 200)
            })
        }),
    })
    .await
    .unwrap_err();
    assert_eq!(spent_at(s, &rt("fam_1")).await, None);
    assert!(s.find_refresh_token("rt_2").await.unwrap().is_none());
    assert_eq!(family(s, "fam_1").await.expires_at, 1000);
}

pub async fn a_key_rotation_that_cannot_be_audited_changes_nothing<B: Backend>(b: &B, s: &B::S) {
    use portcullis_store::{Actor, KeyChange, KeyState, NewAuditEvent};
    let key = super::keys::key;
    s.add_signing_key(&key("k1", "ES256", 100), 0, &KeyChange::default())
        .await
        .unwrap();
    b.fail_audit_inserts_of(s, "key.rotate").await;
    let change = KeyChange {
        audit: Some(NewAuditEvent::new(200, k("key.rotate"), Actor::system())),
        unless_current_since: None,
    };
    s.add_signing_key(&key("k2", "EdDSA", 200), 900, &change)
        .await
        .unwrap_err();
    let keys = s.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(
        (keys[0].kid.as_str(), keys[0].state),
        ("k1", KeyState::Current)
    );
}

pub async fn a_user_creation_that_cannot_be_audited_creates_nothing<B: Backend>(b: &B, s: &B::S) {
    b.fail_audit_inserts_of(s, "user.create").await;
    s.create_user(&user(ALICE, "alice"), &user_event(10, "user.create", ALICE))
        .await
        .unwrap_err();
    assert_eq!(s.get_user(ALICE).await.unwrap(), None);
    assert_eq!(s.find_user("alice").await.unwrap(), None);
    assert!(s.list_users().await.unwrap().is_empty());
}

pub async fn a_password_change_that_cannot_be_audited_changes_nothing<B: Backend>(b: &B, s: &B::S) {
    create_user(s, ALICE, "alice").await;
    s.create_user_session(&session(1, ALICE, 100, 1000))
        .await
        .unwrap();
    b.fail_audit_inserts_of(s, "user.password").await;
    s.set_user_password(
        ALICE,
        "$argon2id$new",
        300,
        &user_event(300, "user.password", ALICE),
    )
    .await
    .unwrap_err();
    assert_eq!(s.get_user(ALICE).await.unwrap(), Some(user(ALICE, "alice")));
    assert!(s.get_user_session(&[1; 32], 300).await.unwrap().is_some());
}

pub async fn a_user_disable_that_cannot_be_audited_changes_nothing<B: Backend>(b: &B, s: &B::S) {
    create(s, PC).await;
    create_user(s, ALICE, "alice").await;
    granted(s, user_grant(PC, "fam_1", ALICE)).await;
    s.create_user_session(&session(1, ALICE, 100, 1000))
        .await
        .unwrap();
    // The user's own event, then the per-family ones written after the families
    // were marked: either failing leaves everything as it was.
    for kind in ["token.revoke", "user.disable"] {
        b.fail_audit_inserts_of(s, kind).await;
        s.set_user_status(
            ALICE,
            false,
            300,
            2000,
            &user_event(300, "user.disable", ALICE),
        )
        .await
        .unwrap_err();
        assert!(s.get_user(ALICE).await.unwrap().unwrap().active, "{kind}");
        assert_eq!(family(s, "fam_1").await.revoked_at, None, "{kind}");
        assert!(revocations(s).await.is_empty(), "{kind}");
        assert!(
            s.get_user_session(&[1; 32], 300).await.unwrap().is_some(),
            "{kind}"
        );
    }
}

pub async fn a_consent_that_cannot_be_audited_is_not_recorded<B: Backend>(b: &B, s: &B::S) {
    create(s, PC).await;
    create_user(s, ALICE, "alice").await;
    s.put_consent(
        &consent(ALICE, PC, "upload-data", 100),
        &consent_event(100, "consent.give", ALICE, PC),
    )
    .await
    .unwrap();
    b.fail_audit_inserts_of(s, "consent.give").await;
    s.put_consent(
        &consent(ALICE, PC, "view-indicator", 200),
        &consent_event(200, "consent.give", ALICE, PC),
    )
    .await
    .unwrap_err();
    let got = s.get_consent(ALICE, PC).await.unwrap().unwrap();
    assert_eq!((got.scopes, got.updated_at), (ss("upload-data"), 100));
}

pub async fn a_consent_revocation_that_cannot_be_audited_changes_nothing<B: Backend>(
    b: &B,
    s: &B::S,
) {
    create(s, PC).await;
    create_user(s, ALICE, "alice").await;
    s.put_consent(
        &consent(ALICE, PC, "upload-data view-indicator", 100),
        &consent_event(100, "consent.give", ALICE, PC),
    )
    .await
    .unwrap();
    granted(s, user_grant(PC, "fam_1", ALICE)).await;
    for kind in ["token.revoke", "consent.revoke"] {
        b.fail_audit_inserts_of(s, kind).await;
        for keep in [None, Some(ss("upload-data"))] {
            s.revoke_consent(
                ALICE,
                PC,
                keep.as_ref(),
                300,
                2000,
                &consent_event(300, "consent.revoke", ALICE, PC),
            )
            .await
            .unwrap_err();
            let got = s.get_consent(ALICE, PC).await.unwrap();
            assert_eq!(
                got.map(|c| c.scopes),
                Some(ss("upload-data view-indicator")),
                "{kind} {keep:?}"
            );
            assert_eq!(family(s, "fam_1").await.revoked_at, None, "{kind}");
            assert!(revocations(s).await.is_empty(), "{kind}");
        }
    }
}
