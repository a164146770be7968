//! Revocations: of families and of access tokens, and listing them.

use super::fixtures::*;
use portcullis_store::prelude::*;
use portcullis_store::{Actor, NewAuditEvent, NewGrant, Revocation, RevokeScope};

pub async fn revoking_families_records_a_revocation_and_an_audit_event_per_family<
    S: Store + ?Sized,
>(
    s: &S,
) {
    create(s, PC).await;
    create(s, OTHER).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    granted(s, grant(PC, "fam_2", None)).await;
    granted(
        s,
        NewGrant {
            refresh_token: None,
            expires_at: 250,
            ..grant(PC, "fam_old", Some("home"))
        },
    )
    .await;
    granted(s, grant(OTHER, "fam_o", Some("home"))).await;

    let audit = NewAuditEvent {
        detail: Some(r#"{"reason":"admin"}"#.into()),
        ..NewAuditEvent::new(300, k("token.revoke"), Actor::cli_admin())
    };
    let mut revoked = s
        .revoke_families(
            RevokeScope::Client {
                client: &cid(PC),
                label: None,
            },
            300,
            "admin",
            2000,
            &audit,
        )
        .await
        .unwrap();
    revoked.sort();
    assert_eq!(revoked, ["fam_1", "fam_2"], "live families only");
    assert_eq!(family(s, "fam_1").await.revoked_at, Some(300));
    assert_eq!(family(s, "fam_2").await.revoked_at, Some(300));
    assert_eq!(family(s, "fam_old").await.revoked_at, None);
    assert_eq!(family(s, "fam_o").await.revoked_at, None);

    let mut revs: Vec<_> = revocations(s).await;
    revs.sort_by(|a, b| a.target.cmp(&b.target));
    assert_eq!(
        revs.iter().map(rev).collect::<Vec<_>>(),
        [
            ("family", "fam_1", None, 2000),
            ("family", "fam_2", None, 2000)
        ]
    );

    let mut events = audit_of(s, "token.revoke").await;
    events.sort_by(|a, b| a.target.cmp(&b.target));
    assert_eq!(events.len(), 2, "one audit event per family");
    let summary: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.target.as_deref(),
                e.client_id.as_deref(),
                e.label.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (Some("fam_1"), Some(PC), Some("home")),
            (Some("fam_2"), Some(PC), None)
        ]
    );
    for e in &events {
        assert_eq!(e.at, 300);
        assert_eq!(e.actor_kind, "admin");
        assert_eq!(e.actor_id.as_deref(), Some("cli"));
        assert_eq!(e.detail.as_deref(), Some(r#"{"reason":"admin"}"#));
    }
}

pub async fn a_family_is_revoked_only_for_its_own_client_and_only_once<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    create(s, OTHER).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    let audit = NewAuditEvent::new(300, k("token.revoke"), Actor::cli_admin());
    let other = cid(OTHER);
    let foreign = RevokeScope::Family {
        id: "fam_1",
        client: Some(&other),
    };
    let revoked = s
        .revoke_families(foreign, 300, "client", 2000, &audit)
        .await
        .unwrap();
    assert!(revoked.is_empty());
    assert_eq!(family(s, "fam_1").await.revoked_at, None);
    assert!(revocations(s).await.is_empty());
    assert!(audit_of(s, "token.revoke").await.is_empty());

    let own = cid(PC);
    let scope = RevokeScope::Family {
        id: "fam_1",
        client: Some(&own),
    };
    let revoked = s
        .revoke_families(scope, 300, "client", 2000, &audit)
        .await
        .unwrap();
    assert_eq!(revoked, ["fam_1"]);
    let revoked = s
        .revoke_families(scope, 400, "client", 3000, &audit)
        .await
        .unwrap();
    assert!(revoked.is_empty(), "already revoked");
    assert_eq!(
        family(s, "fam_1").await.revoked_at,
        Some(300),
        "first revocation kept"
    );
    assert_eq!(revocations(s).await.len(), 1);
    assert_eq!(audit_of(s, "token.revoke").await.len(), 1);

    let none = s
        .revoke_families(
            RevokeScope::Family {
                id: "fam_missing",
                client: None,
            },
            300,
            "admin",
            2000,
            &audit,
        )
        .await
        .unwrap();
    assert!(none.is_empty());
}

pub async fn a_revoked_access_token_is_listed_until_its_expiry<S: Store + ?Sized>(s: &S) {
    let audit = NewAuditEvent {
        target: Some("jti_1".into()),
        ..NewAuditEvent::new(100, k("token.revoke"), Actor::cli_admin())
    };
    s.revoke_access_token("jti_1", 100, 500, &audit)
        .await
        .unwrap();
    let revs = s.revocations_since(0, 100).await.unwrap();
    assert_eq!(
        revs.iter().map(rev).collect::<Vec<_>>(),
        [("token", "jti_1", None, 500)]
    );
    assert_eq!(s.revocations_since(0, 499).await.unwrap().len(), 1);
    assert!(
        s.revocations_since(0, 500).await.unwrap().is_empty(),
        "gone once the token has expired"
    );
    let events = audit_of(s, "token.revoke").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].target.as_deref(), Some("jti_1"));
}

pub async fn revocations_are_listed_after_a_given_id_oldest_first<S: Store + ?Sized>(s: &S) {
    let audit = NewAuditEvent::new(100, k("token.revoke"), Actor::cli_admin());
    for (jti, exp) in [("jti_1", 500), ("jti_2", 300), ("jti_3", 500)] {
        s.revoke_access_token(jti, 100, exp, &audit).await.unwrap();
    }
    let all = s.revocations_since(0, 100).await.unwrap();
    let targets = |revs: &[Revocation]| revs.iter().map(|r| r.target.clone()).collect::<Vec<_>>();
    assert_eq!(targets(&all), ["jti_1", "jti_2", "jti_3"]);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "by id");
    let after_first = s.revocations_since(all[0].id, 100).await.unwrap();
    assert_eq!(targets(&after_first), ["jti_2", "jti_3"]);
    assert!(
        s.revocations_since(all[2].id, 100)
            .await
            .unwrap()
            .is_empty()
    );
    let live = s.revocations_since(0, 300).await.unwrap();
    assert_eq!(
        targets(&live),
        ["jti_1", "jti_3"],
        "expired ones are left out"
    );
}
