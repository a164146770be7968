//! Scopes, and clients and their secrets: creation, listing, updates, secret
//! rotation, disabling, enabling and deleting.

use super::fixtures::*;
use portcullis_core::scope::BUILT_IN;
use portcullis_core::{Client, ClientStatus, GrantType, RedirectUri, Ttl};
use portcullis_store::prelude::*;
use portcullis_store::{Actor, NewAuditEvent, ScopeRecord, StoreError};

pub async fn a_fresh_store_has_the_built_in_scopes<S: Store + ?Sized>(s: &S) {
    let scopes = s.list_scopes().await.unwrap();
    let mut expected: Vec<ScopeRecord> = BUILT_IN
        .iter()
        .map(|(name, description)| ScopeRecord {
            name: (*name).into(),
            description: (*description).into(),
            created_at: 0,
        })
        .collect();
    expected.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(scopes, expected);
}

pub async fn a_created_scope_is_listed_by_name_and_can_be_given_to_clients<S: Store + ?Sized>(
    s: &S,
) {
    let reports = ScopeRecord {
        name: "reports".into(),
        description: "Read monthly reports".into(),
        created_at: 500,
    };
    let audit = NewAuditEvent {
        target: Some("reports".into()),
        ..NewAuditEvent::new(500, k("scope.create"), Actor::cli_admin())
    };
    s.create_scope(&reports, &audit).await.unwrap();
    let scopes = s.list_scopes().await.unwrap();
    assert!(scopes.contains(&reports));
    assert_eq!(scopes.len(), BUILT_IN.len() + 1);
    assert!(
        scopes.windows(2).all(|w| w[0].name < w[1].name),
        "listed by name"
    );
    let events = audit_of(s, "scope.create").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].target.as_deref(), Some("reports"));

    let c = Client {
        scopes: scope_set(&["reports", "upload-data"]),
        ..client(PC)
    };
    create_client(s, &c).await;
    assert_eq!(s.get_client(&cid(PC)).await.unwrap(), Some(c));
}

pub async fn a_scope_can_be_created_only_once<S: Store + ?Sized>(s: &S) {
    let audit = NewAuditEvent::new(500, k("scope.create"), Actor::cli_admin());
    let reports = ScopeRecord {
        name: "reports".into(),
        description: "first".into(),
        created_at: 500,
    };
    s.create_scope(&reports, &audit).await.unwrap();
    let again = ScopeRecord {
        description: "second".into(),
        ..reports.clone()
    };
    let err = s.create_scope(&again, &audit).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let builtin = ScopeRecord {
        name: "upload-data".into(),
        description: "mine".into(),
        created_at: 500,
    };
    let err = s.create_scope(&builtin, &audit).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    let scopes = s.list_scopes().await.unwrap();
    assert!(scopes.contains(&reports), "the first one stays as it was");
    assert_eq!(scopes.len(), BUILT_IN.len() + 1);
    assert_eq!(audit_of(s, "scope.create").await.len(), 1);
}

pub async fn a_created_client_reads_back_as_it_was_written<S: Store + ?Sized>(s: &S) {
    let c = Client {
        id: cid(PC),
        name: "Care homes of the north".into(),
        scopes: scope_set(&["upload-data", "view-indicator"]),
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        redirect_uris: vec![
            RedirectUri::parse("https://app.example/cb").unwrap(),
            RedirectUri::parse("http://127.0.0.1:8080/cb").unwrap(),
        ],
        status: ClientStatus::Active,
        created_at: 1234,
        access_token_ttl: Ttl::from_secs(600),
        refresh_token_ttl: Ttl::from_secs(86_400),
        issue_refresh_token: false,
        refresh_reuse_grace: Ttl::from_secs_allow_zero(30).unwrap(),
    };
    s.create_client(&c, &[7; 32], &admin_event(1234, "client.create", PC))
        .await
        .unwrap();
    assert_eq!(s.get_client(&cid(PC)).await.unwrap(), Some(c.clone()));
    let auth = s.get_client_auth(&cid(PC), 2000).await.unwrap().unwrap();
    assert_eq!(auth.client, c);
    assert_eq!(auth.secret_hashes, vec![[7; 32]]);
    assert_eq!(s.list_clients().await.unwrap(), vec![c]);

    let events = audit_of(s, "client.create").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].client_id.as_deref(), Some(PC));
    assert_eq!(events[0].target.as_deref(), Some(PC));
    assert_eq!(events[0].actor_kind, "admin");
    assert_eq!(events[0].at, 1234);

    assert_eq!(s.get_client(&cid("pc_missing")).await.unwrap(), None);
    assert!(
        s.get_client_auth(&cid("pc_missing"), 0)
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn clients_are_listed_oldest_first<S: Store + ?Sized>(s: &S) {
    for (id, at) in [("pc_c", 300), ("pc_a", 100), ("pc_b", 200)] {
        create_client(
            s,
            &Client {
                created_at: at,
                ..client(id)
            },
        )
        .await;
    }
    let ids: Vec<String> = s
        .list_clients()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id.to_string())
        .collect();
    assert_eq!(ids, ["pc_a", "pc_b", "pc_c"]);
}

pub async fn a_client_id_can_be_registered_only_once<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    let twin = Client {
        name: "twin".into(),
        ..client(PC)
    };
    let err = s
        .create_client(&twin, &[9; 32], &admin_event(20, "client.create", PC))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(s.get_client(&cid(PC)).await.unwrap(), Some(client(PC)));
    assert_eq!(secrets(s, PC, 20).await, vec![digest(PC)]);
    assert_eq!(audit_of(s, "client.create").await.len(), 1);
}

pub async fn a_client_with_an_unknown_scope_is_refused_whole<S: Store + ?Sized>(s: &S) {
    let c = Client {
        scopes: scope_set(&["upload-data", "no-such-scope"]),
        ..client(PC)
    };
    let err = s
        .create_client(&c, &[1; 32], &admin_event(10, "client.create", PC))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(s.get_client(&cid(PC)).await.unwrap(), None);
    assert!(s.get_client_auth(&cid(PC), 10).await.unwrap().is_none());
    assert!(s.list_clients().await.unwrap().is_empty());
    assert!(all_audit(s).await.is_empty());
    // Nothing half-written stands in the way of registering it properly.
    create(s, PC).await;
}

pub async fn every_change_to_a_missing_client_is_not_found_and_leaves_nothing<S: Store + ?Sized>(
    s: &S,
) {
    let id = cid("pc_missing");
    let not_found = |r: Result<(), StoreError>| match r {
        Err(StoreError::NotFound(_)) => {}
        other => panic!("expected NotFound, got {other:?}"),
    };
    not_found(
        s.update_client(
            &client("pc_missing"),
            100,
            &admin_event(100, "client.update", "pc_missing"),
        )
        .await,
    );
    not_found(
        s.disable_client(
            &id,
            100,
            2000,
            &admin_event(100, "client.disable", "pc_missing"),
        )
        .await,
    );
    not_found(
        s.enable_client(&id, 100, &admin_event(100, "client.enable", "pc_missing"))
            .await,
    );
    not_found(
        s.delete_client(
            &id,
            100,
            2000,
            &admin_event(100, "client.delete", "pc_missing"),
        )
        .await,
    );
    not_found(
        s.rotate_client_secret(
            &id,
            &[3; 32],
            100,
            100,
            &admin_event(100, "client.rotate_secret", "pc_missing"),
        )
        .await,
    );
    assert!(s.get_client(&id).await.unwrap().is_none());
    assert!(
        revocations(s).await.is_empty(),
        "no revocation is left of a failed change"
    );
    assert!(
        all_audit(s).await.is_empty(),
        "no audit event is left of a failed change"
    );
}

pub async fn an_update_replaces_the_editable_settings_only<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    let edited = Client {
        name: "renamed".into(),
        scopes: scope_set(&["upload-data", "view-indicator"]),
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        redirect_uris: vec![RedirectUri::parse("https://app.example/cb").unwrap()],
        access_token_ttl: Ttl::from_secs(600),
        refresh_token_ttl: Ttl::from_secs(86_400),
        issue_refresh_token: false,
        refresh_reuse_grace: Ttl::from_secs_allow_zero(30).unwrap(),
        // Not editable: status goes through disable/enable, creation time stays.
        status: ClientStatus::Disabled,
        created_at: 999,
        ..client(PC)
    };
    s.update_client(&edited, 300, &admin_event(300, "client.update", PC))
        .await
        .unwrap();
    let expected = Client {
        status: ClientStatus::Active,
        created_at: 10,
        ..edited.clone()
    };
    assert_eq!(s.get_client(&cid(PC)).await.unwrap(), Some(expected));
    assert_eq!(
        secrets(s, PC, 300).await,
        vec![digest(PC)],
        "secrets untouched"
    );
    assert_eq!(audit_of(s, "client.update").await.len(), 1);

    // Scopes can also shrink.
    let narrower = Client {
        scopes: scope_set(&["view-indicator"]),
        ..edited
    };
    s.update_client(&narrower, 400, &admin_event(400, "client.update", PC))
        .await
        .unwrap();
    let got = s.get_client(&cid(PC)).await.unwrap().unwrap();
    assert_eq!(got.scopes, scope_set(&["view-indicator"]));
}

pub async fn an_update_to_an_unknown_scope_is_refused_and_changes_nothing<S: Store + ?Sized>(
    s: &S,
) {
    create(s, PC).await;
    let edited = Client {
        name: "renamed".into(),
        scopes: scope_set(&["no-such-scope"]),
        ..client(PC)
    };
    let err = s
        .update_client(&edited, 300, &admin_event(300, "client.update", PC))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(s.get_client(&cid(PC)).await.unwrap(), Some(client(PC)));
    assert!(audit_of(s, "client.update").await.is_empty());
}

pub async fn a_rotated_secret_overlaps_the_old_one_until_old_valid_until<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    let (old, new) = (digest(PC), [0xB; 32]);
    s.rotate_client_secret(
        &cid(PC),
        &new,
        500,
        200,
        &admin_event(200, "client.rotate_secret", PC),
    )
    .await
    .unwrap();
    assert_eq!(secrets(s, PC, 200).await, sorted(vec![old, new]));
    assert_eq!(secrets(s, PC, 499).await, sorted(vec![old, new]));
    assert_eq!(secrets(s, PC, 500).await, vec![new]);
    assert_eq!(secrets(s, PC, 100_000).await, vec![new]);
    assert_eq!(audit_of(s, "client.rotate_secret").await.len(), 1);
}

pub async fn a_secret_rotation_valid_until_now_retires_the_old_secret_at_once<S: Store + ?Sized>(
    s: &S,
) {
    create(s, PC).await;
    s.rotate_client_secret(
        &cid(PC),
        &[0xB; 32],
        200,
        200,
        &admin_event(200, "client.rotate_secret", PC),
    )
    .await
    .unwrap();
    assert_eq!(secrets(s, PC, 200).await, vec![[0xB; 32]]);
}

pub async fn a_second_secret_rotation_never_extends_an_older_secret<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    let (a, b, c) = (digest(PC), [0xB; 32], [0xC; 32]);
    let audit = admin_event(100, "client.rotate_secret", PC);
    s.rotate_client_secret(&cid(PC), &b, 500, 100, &audit)
        .await
        .unwrap();
    s.rotate_client_secret(&cid(PC), &c, 900, 200, &audit)
        .await
        .unwrap();
    assert_eq!(secrets(s, PC, 200).await, sorted(vec![a, b, c]));
    assert_eq!(
        secrets(s, PC, 600).await,
        sorted(vec![b, c]),
        "the first secret still ends at 500"
    );
    assert_eq!(secrets(s, PC, 900).await, vec![c]);
}

pub async fn disabling_a_client_revokes_its_families_and_all_its_tokens<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    create(s, OTHER).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    granted(s, grant(PC, "fam_2", None)).await;
    granted(s, grant(OTHER, "fam_o", Some("home"))).await;

    s.disable_client(&cid(PC), 300, 2000, &admin_event(300, "client.disable", PC))
        .await
        .unwrap();
    let got = s.get_client(&cid(PC)).await.unwrap().unwrap();
    assert_eq!(got.status, ClientStatus::Disabled);
    assert_eq!(family(s, "fam_1").await.revoked_at, Some(300));
    assert_eq!(family(s, "fam_2").await.revoked_at, Some(300));
    assert_eq!(
        family(s, "fam_o").await.revoked_at,
        None,
        "other clients keep theirs"
    );
    let revs = revocations(s).await;
    assert_eq!(
        revs.iter().map(rev).collect::<Vec<_>>(),
        [("client", PC, Some(300), 2000)]
    );
    let labels = s.list_labels(&cid(PC), 300).await.unwrap();
    assert_eq!(labels.len(), 1);
    assert_eq!(labels[0].live_families, 0);
    let events = audit_of(s, "client.disable").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].client_id.as_deref(), Some(PC));
}

pub async fn a_disabled_client_gets_no_grant_and_no_refresh<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    s.disable_client(&cid(PC), 300, 2000, &admin_event(300, "client.disable", PC))
        .await
        .unwrap();
    let issued = audit_of(s, "token.issue").await.len();

    assert!(
        !s.record_grant(grant(PC, "fam_2", Some("elsewhere")))
            .await
            .unwrap()
    );
    assert!(s.get_family("fam_2").await.unwrap().is_none());
    assert!(s.find_refresh_token(&rt("fam_2")).await.unwrap().is_none());
    let labels: Vec<String> = s
        .list_labels(&cid(PC), 300)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert_eq!(labels, ["home"], "no label for a refused grant");
    assert_eq!(audit_of(s, "token.issue").await.len(), issued);

    assert!(
        !s.rotate_refresh_token(rotation(PC, "fam_1", &rt("fam_1"), "rt_next", 400))
            .await
            .unwrap()
    );
    assert_eq!(spent_at(s, &rt("fam_1")).await, None);
    assert!(s.find_refresh_token("rt_next").await.unwrap().is_none());
    assert!(audit_of(s, "token.refresh").await.is_empty());
}

pub async fn enabling_a_client_allows_new_grants_but_keeps_old_tokens_revoked<S: Store + ?Sized>(
    s: &S,
) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    s.disable_client(&cid(PC), 300, 2000, &admin_event(300, "client.disable", PC))
        .await
        .unwrap();
    s.enable_client(&cid(PC), 400, &admin_event(400, "client.enable", PC))
        .await
        .unwrap();
    let got = s.get_client(&cid(PC)).await.unwrap().unwrap();
    assert_eq!(got.status, ClientStatus::Active);
    assert_eq!(audit_of(s, "client.enable").await.len(), 1);

    assert_eq!(family(s, "fam_1").await.revoked_at, Some(300));
    assert!(
        !s.rotate_refresh_token(rotation(PC, "fam_1", &rt("fam_1"), "rt_next", 450))
            .await
            .unwrap()
    );
    assert_eq!(revocations(s).await.len(), 1, "the client revocation stays");

    granted(s, grant(PC, "fam_2", Some("home"))).await;
    assert!(
        s.rotate_refresh_token(rotation(PC, "fam_2", &rt("fam_2"), "rt_next", 450))
            .await
            .unwrap()
    );
}

pub async fn deleting_a_client_removes_what_it_owns_but_keeps_its_revocation<S: Store + ?Sized>(
    s: &S,
) {
    create(s, PC).await;
    create(s, OTHER).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    granted(s, grant(OTHER, "fam_o", Some("home"))).await;
    s.store_upload(upload(PC, "b1", Some("home"), None))
        .await
        .unwrap();

    s.delete_client(&cid(PC), 300, 2000, &admin_event(300, "client.delete", PC))
        .await
        .unwrap();
    assert!(s.get_client(&cid(PC)).await.unwrap().is_none());
    assert!(s.get_client_auth(&cid(PC), 300).await.unwrap().is_none());
    let left: Vec<String> = s
        .list_clients()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id.to_string())
        .collect();
    assert_eq!(left, [OTHER]);
    assert!(s.get_family("fam_1").await.unwrap().is_none());
    assert!(s.find_refresh_token(&rt("fam_1")).await.unwrap().is_none());
    assert!(
        s.list_families(&cid(PC), None, None)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(s.list_labels(&cid(PC), 300).await.unwrap().is_empty());
    assert!(s.site_counters(&cid(PC)).await.unwrap().is_empty());
    let revs = revocations(s).await;
    assert_eq!(
        revs.iter().map(rev).collect::<Vec<_>>(),
        [("client", PC, Some(300), 2000)]
    );
    assert_eq!(audit_of(s, "client.delete").await.len(), 1);
    assert!(
        !s.record_grant(grant(PC, "fam_2", None)).await.unwrap(),
        "no grant for a deleted client"
    );

    assert!(s.get_family("fam_o").await.unwrap().is_some());
    assert!(s.find_refresh_token(&rt("fam_o")).await.unwrap().is_some());
}
