//! Token lifecycle: refresh rotation and reuse detection, revocation (RFC 7009)
//! reaching JWTs at once, introspection (RFC 7662), the audit log.

use crate::helpers::*;
use serde_json::{Value, json};
use std::time::Duration;

fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn refresh_rotates_and_carries_the_label_and_subject_over() {
    let sv = server(&[]);
    let (id, secret) = sv.create_client("Rotate", &[]).unwrap();
    let first = get_token(&sv, &id, &secret, &[("label", "care-home-042")]).await;
    let r = refresh(&sv, &id, &secret, &s(&first, "refresh_token"), None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let second: Value = r.json().await.unwrap();
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    assert_eq!(second["scope"], first["scope"]);
    let who: Value = whoami(&sv, &s(&second, "access_token"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(who["label"], "care-home-042");
    assert_eq!(who["client_id"], id);
    // The new one works once more; the family is still one family.
    let third = refresh(&sv, &id, &secret, &s(&second, "refresh_token"), None).await;
    assert_eq!(third.status(), 200);
    let list = sv
        .cli_json(&["token", "list", "--client", &id, "--json"])
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn reusing_a_spent_refresh_token_revokes_that_family_only() {
    let sv = server(&[]);
    let (id, secret) = sv.create_client("Reuse", &[]).unwrap();
    let a1 = get_token(&sv, &id, &secret, &[("label", "home-a")]).await;
    let b1 = get_token(&sv, &id, &secret, &[("label", "home-b")]).await;
    let a2: Value = refresh(&sv, &id, &secret, &s(&a1, "refresh_token"), None)
        .await
        .json()
        .await
        .unwrap();

    // The spent token again: reuse.
    let r = refresh(&sv, &id, &secret, &s(&a1, "refresh_token"), None).await;
    let (status, error, _, _) = oauth_error(r).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));

    // Family A is dead: its current refresh token and its access tokens, at once.
    let r = refresh(&sv, &id, &secret, &s(&a2, "refresh_token"), None).await;
    assert_eq!(oauth_error(r).await.1, "invalid_grant");
    assert_eq!(whoami(&sv, &s(&a2, "access_token")).await.status(), 401);
    assert_eq!(whoami(&sv, &s(&a1, "access_token")).await.status(), 401);
    // Family B is untouched.
    assert_eq!(whoami(&sv, &s(&b1, "access_token")).await.status(), 200);
    assert_eq!(
        refresh(&sv, &id, &secret, &s(&b1, "refresh_token"), None)
            .await
            .status(),
        200
    );

    let events = sv.audit_events("token.reuse_detected").unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["label"], "home-a");
    assert_eq!(events[0]["actor"]["kind"], "client");
    assert_eq!(events[0]["source"], "127.0.0.1");
}

#[tokio::test]
async fn of_eight_concurrent_refreshes_exactly_one_succeeds() {
    let sv = server(&[]);
    let (id, secret) = sv.create_client("Race", &[]).unwrap();
    let t = get_token(&sv, &id, &secret, &[]).await;
    let rt = s(&t, "refresh_token");
    let statuses = concurrent_refreshes(&[&sv], &id, &secret, &rt, 8).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 400).count(),
        7,
        "{statuses:?}"
    );
}

#[tokio::test]
async fn a_retry_within_the_grace_gets_the_same_new_pair() {
    let sv = server(&[]);
    let (id, secret) = sv
        .create_client("Flaky network", &["--refresh-reuse-grace", "30s"])
        .unwrap();
    let t = get_token(&sv, &id, &secret, &[]).await;
    let rt = s(&t, "refresh_token");
    let first: Value = refresh(&sv, &id, &secret, &rt, None)
        .await
        .json()
        .await
        .unwrap();
    let again = refresh(&sv, &id, &secret, &rt, None).await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first);
    // Nothing was revoked: the new pair works.
    assert_eq!(whoami(&sv, &s(&first, "access_token")).await.status(), 200);
    assert_eq!(
        refresh(&sv, &id, &secret, &s(&first, "refresh_token"), None)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn a_spent_token_replayed_after_its_successor_was_used_is_reuse_even_within_grace() {
    let sv = server(&[]);
    let (id, secret) = sv
        .create_client("Stolen within grace", &["--refresh-reuse-grace", "30s"])
        .unwrap();
    let t = get_token(&sv, &id, &secret, &[]).await;
    let stolen = s(&t, "refresh_token");
    let second: Value = refresh(&sv, &id, &secret, &stolen, None)
        .await
        .json()
        .await
        .unwrap();
    // The client moves on: the successor is used.
    let third = refresh(&sv, &id, &secret, &s(&second, "refresh_token"), None).await;
    assert_eq!(third.status(), 200);
    let third: Value = third.json().await.unwrap();
    // The thief replays the first token, still within the grace: no saved answer.
    let replay = refresh(&sv, &id, &secret, &stolen, None).await;
    let (status, error, _, _) = oauth_error(replay).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    // It is reuse: the family is revoked, the client's current tokens with it, and audited.
    assert_eq!(whoami(&sv, &s(&third, "access_token")).await.status(), 401);
    assert_eq!(
        refresh(&sv, &id, &secret, &s(&third, "refresh_token"), None)
            .await
            .status(),
        400
    );
    assert_eq!(sv.audit_events("token.reuse_detected").unwrap().len(), 1);
}

#[tokio::test]
async fn a_retry_after_the_grace_is_reuse_and_revokes_the_family() {
    let sv = server(&[]);
    let (id, secret) = sv
        .create_client("Slow retry", &["--refresh-reuse-grace", "30s"])
        .unwrap();
    let t = get_token(&sv, &id, &secret, &[]).await;
    let spent = s(&t, "refresh_token");
    let first: Value = refresh(&sv, &id, &secret, &spent, None)
        .await
        .json()
        .await
        .unwrap();
    sv.advance_clock(31).unwrap();
    let late = refresh(&sv, &id, &secret, &spent, None).await;
    let (status, error, description, _) = oauth_error(late).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    assert!(description.contains("already used"), "{description}");
    // Reuse (RFC 9700 §4.14.2): the whole family goes, the pair the retry was after too.
    assert_eq!(whoami(&sv, &s(&first, "access_token")).await.status(), 401);
    let r = refresh(&sv, &id, &secret, &s(&first, "refresh_token"), None).await;
    assert_eq!(oauth_error(r).await.1, "invalid_grant");
    assert_eq!(sv.audit_events("token.reuse_detected").unwrap().len(), 1);
}

#[tokio::test]
async fn a_refresh_token_past_its_lifetime_is_invalid_grant() {
    let sv = server(&[]);
    let (id, secret) = sv
        .create_client("Hourly", &["--refresh-token-ttl", "1h"])
        .unwrap();
    let t = get_token(&sv, &id, &secret, &[]).await;
    // Shortly before its hour is out it still rotates; the new one has an hour of its own.
    sv.advance_clock(3600 - 10).unwrap();
    let r = refresh(&sv, &id, &secret, &s(&t, "refresh_token"), None).await;
    assert_eq!(r.status(), 200);
    let second: Value = r.json().await.unwrap();
    sv.advance_clock(3600 + 1).unwrap();
    let r = refresh(&sv, &id, &secret, &s(&second, "refresh_token"), None).await;
    let (status, error, description, _) = oauth_error(r).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    assert_eq!(description, "the refresh token has expired");
    // Expiry is not reuse: nothing was revoked or audited as such.
    assert!(sv.audit_events("token.reuse_detected").unwrap().is_empty());
}

#[tokio::test]
async fn refresh_may_narrow_scope_but_never_widen_it() {
    let sv = server(&[]);
    let (id, secret) = sv.create_client("Narrow", &[]).unwrap();
    let t = get_token(&sv, &id, &secret, &[]).await;
    let narrow = refresh(
        &sv,
        &id,
        &secret,
        &s(&t, "refresh_token"),
        Some("upload-data"),
    )
    .await;
    assert_eq!(narrow.status(), 200);
    let narrow: Value = narrow.json().await.unwrap();
    assert_eq!(narrow["scope"], "upload-data");
    let wide = refresh(
        &sv,
        &id,
        &secret,
        &s(&narrow, "refresh_token"),
        Some("upload-data view-indicator"),
    )
    .await;
    assert_eq!(oauth_error(wide).await.1, "invalid_scope");
    // A refused widening spends nothing.
    assert_eq!(
        refresh(&sv, &id, &secret, &s(&narrow, "refresh_token"), None)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn another_clients_refresh_token_is_invalid_grant_and_stays_valid_for_its_owner() {
    let sv = server(&[]);
    let (a, asec) = sv.create_client("Owner", &[]).unwrap();
    let (b, bsec) = sv.create_client("Thief", &[]).unwrap();
    let t = get_token(&sv, &a, &asec, &[]).await;
    let r = refresh(&sv, &b, &bsec, &s(&t, "refresh_token"), None).await;
    assert_eq!(oauth_error(r).await.1, "invalid_grant");
    assert_eq!(
        refresh(&sv, &a, &asec, &s(&t, "refresh_token"), None)
            .await
            .status(),
        200
    );
    for bad in ["pcr_nope", "garbage"] {
        let r = refresh(&sv, &a, &asec, bad, None).await;
        assert_eq!(oauth_error(r).await.1, "invalid_grant");
    }
    let r = token_basic(&sv, &a, &asec, &[("grant_type", "refresh_token")]).await;
    assert_eq!(oauth_error(r).await.1, "invalid_request");
}

#[tokio::test]
async fn a_client_without_the_refresh_grant_may_not_refresh() {
    let sv = server(&[]);
    let (id, secret) = sv
        .create_client("Access only", &["--no-refresh-token"])
        .unwrap();
    let r = refresh(&sv, &id, &secret, "pcr_whatever", None).await;
    assert_eq!(oauth_error(r).await.1, "unauthorized_client");
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_family_at_once() {
    let sv = server(&[]);
    let (id, secret) = sv.create_client("Revoke", &[]).unwrap();
    let t = get_token(&sv, &id, &secret, &[("label", "home-1")]).await;
    let other = get_token(&sv, &id, &secret, &[("label", "home-2")]).await;
    let r = post_basic(
        &sv,
        "/oauth/revoke",
        &id,
        &secret,
        &[
            ("token", &s(&t, "refresh_token")),
            ("token_type_hint", "refresh_token"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    // No polling: refused from the moment the revocation was acknowledged.
    assert_eq!(whoami(&sv, &s(&t, "access_token")).await.status(), 401);
    let r = refresh(&sv, &id, &secret, &s(&t, "refresh_token"), None).await;
    assert_eq!(oauth_error(r).await.1, "invalid_grant");
    assert_eq!(whoami(&sv, &s(&other, "access_token")).await.status(), 200);
    let list = sv
        .cli_json(&[
            "token", "list", "--client", &id, "--label", "home-1", "--json",
        ])
        .unwrap();
    assert!(list[0]["revoked_at"].is_string());
}

#[tokio::test]
async fn revoking_an_access_token_revokes_it_alone() {
    let sv = server(&[]);
    let (id, secret) = sv.create_client("Revoke AT", &[]).unwrap();
    let t = get_token(&sv, &id, &secret, &[]).await;
    // A wrong hint is only a hint.
    let r = post_basic(
        &sv,
        "/oauth/revoke",
        &id,
        &secret,
        &[
            ("token", &s(&t, "access_token")),
            ("token_type_hint", "refresh_token"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(whoami(&sv, &s(&t, "access_token")).await.status(), 401);
    let r = refresh(&sv, &id, &secret, &s(&t, "refresh_token"), None).await;
    assert_eq!(r.status(), 200);
    let fresh: Value = r.json().await.unwrap();
    assert_eq!(whoami(&sv, &s(&fresh, "access_token")).await.status(), 200);
}

#[tokio::test]
async fn rfc7009_unknown_and_foreign_tokens_change_nothing_and_callers_must_authenticate() {
    let sv = server(&[]);
    let (a, asec) = sv.create_client("A", &[]).unwrap();
    let (b, bsec) = sv.create_client("B", &[]).unwrap();
    let t = get_token(&sv, &a, &asec, &[]).await;
    for token in [
        "pcr_unknown",
        "not.a.jwt",
        &s(&t, "refresh_token"),
        &s(&t, "access_token"),
    ] {
        let r = post_basic(&sv, "/oauth/revoke", &b, &bsec, &[("token", token)]).await;
        assert_eq!(r.status(), 200, "{token}");
    }
    assert_eq!(whoami(&sv, &s(&t, "access_token")).await.status(), 200);
    assert_eq!(
        refresh(&sv, &a, &asec, &s(&t, "refresh_token"), None)
            .await
            .status(),
        200
    );
    // No client authentication: invalid_client, 401 (RFC 6749 §5.2).
    let r = http()
        .post(format!("{}/oauth/revoke", sv.url))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = post_basic(&sv, "/oauth/revoke", &a, "pcs_wrong", &[("token", "x")]).await;
    assert_eq!(r.status(), 401);
    let r = post_basic(&sv, "/oauth/revoke", &a, &asec, &[]).await;
    assert_eq!(oauth_error(r).await.1, "invalid_request");
}

#[tokio::test]
async fn introspection_of_every_kind_of_token() {
    let sv = server(&[]);
    let (id, secret) = sv.create_client("Owner", &[]).unwrap();
    let (other, osec) = sv.create_client("Other", &[]).unwrap();
    let (rs, rsec) = sv
        .create_client("Resource server", &["--scope", "introspect"])
        .unwrap();
    let t = get_token(&sv, &id, &secret, &[("label", "care-home-042")]).await;
    let at = s(&t, "access_token");
    let rt = s(&t, "refresh_token");
    let intro = |who: (&str, &str), token: &str, hint: &str| {
        let (cid, csec) = (who.0.to_owned(), who.1.to_owned());
        let token = token.to_owned();
        let hint = hint.to_owned();
        let url = sv.url.clone();
        async move {
            let r = http()
                .post(format!("{url}/oauth/introspect"))
                .basic_auth(&cid, Some(&csec))
                .form(&[
                    ("token", token.as_str()),
                    ("token_type_hint", hint.as_str()),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            assert_eq!(r.headers()["cache-control"], "no-store");
            r.json::<Value>().await.unwrap()
        }
    };
    let v = intro((&id, &secret), &at, "access_token").await;
    assert_eq!(v["active"], true);
    assert_eq!(v["client_id"], id);
    assert_eq!(v["label"], "care-home-042");
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["scope"], "upload-data view-indicator");
    for k in ["sub", "aud", "iss", "exp", "iat", "nbf", "jti"] {
        assert!(!v[k].is_null(), "{k} missing: {v}");
    }
    // The hint is a hint, not a filter.
    assert_eq!(
        intro((&id, &secret), &at, "refresh_token").await["active"],
        true
    );
    let v = intro((&id, &secret), &rt, "access_token").await;
    assert_eq!(v["active"], true);
    assert_eq!(v["token_type"], "refresh_token");
    assert_eq!(v["label"], "care-home-042");
    // Foreign: inactive for another client, active for one holding `introspect`.
    assert_eq!(
        intro((&other, &osec), &at, "").await,
        json!({"active": false})
    );
    assert_eq!(
        intro((&other, &osec), &rt, "").await,
        json!({"active": false})
    );
    assert_eq!(intro((&rs, &rsec), &at, "").await["active"], true);
    assert_eq!(intro((&rs, &rsec), &rt, "").await["active"], true);
    // Garbage.
    for g in ["", "x", "a.b.c", "pcr_nope"] {
        if g.is_empty() {
            continue;
        }
        assert_eq!(intro((&id, &secret), g, "").await, json!({"active": false}));
    }
    // Spent and revoked.
    let next: Value = refresh(&sv, &id, &secret, &rt, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        intro((&id, &secret), &rt, "").await,
        json!({"active": false})
    );
    post_basic(
        &sv,
        "/oauth/revoke",
        &id,
        &secret,
        &[("token", &s(&next, "refresh_token"))],
    )
    .await;
    assert_eq!(
        intro((&id, &secret), &s(&next, "refresh_token"), "").await,
        json!({"active": false})
    );
    assert_eq!(
        intro((&id, &secret), &s(&next, "access_token"), "").await,
        json!({"active": false})
    );
    assert_eq!(intro((&rs, &rsec), &at, "").await, json!({"active": false}));
    // Unauthenticated callers are refused.
    let r = http()
        .post(format!("{}/oauth/introspect", sv.url))
        .form(&[("token", at.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// Deleting a client through the admin API ends its refresh tokens with it: a
/// resource server that could introspect them sees them inactive once the delete
/// has answered, while another client's stay active. (On SQLite they are deleted a
/// slice at a time after the client; the store's tests check the rows.)
#[tokio::test]
async fn a_deleted_client_s_refresh_tokens_are_inactive_when_the_delete_answers() {
    let sv = server(&[]);
    let (id, secret) = sv.create_client("Closing group", &[]).unwrap();
    let (kept, ksec) = sv.create_client("Staying group", &[]).unwrap();
    let (rs, rsec) = sv
        .create_client("Resource server", &["--scope", "introspect"])
        .unwrap();
    let mut refresh_tokens = Vec::new();
    for home in ["home-1", "home-2", "home-3"] {
        let t = get_token(&sv, &id, &secret, &[("label", home)]).await;
        refresh_tokens.push(s(&t, "refresh_token"));
    }
    let other = s(&get_token(&sv, &kept, &ksec, &[]).await, "refresh_token");
    let active = |token: String| {
        let (url, rs, rsec) = (sv.url.clone(), rs.clone(), rsec.clone());
        async move {
            let r = http()
                .post(format!("{url}/oauth/introspect"))
                .basic_auth(&rs, Some(&rsec))
                .form(&[("token", token.as_str())])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()["active"] == true
        }
    };
    for rt in &refresh_tokens {
        assert!(active(rt.clone()).await);
    }
    let admin = admin_token(&sv).await;
    let r = http()
        .delete(format!("{}/admin/api/v1/clients/{id}", sv.url))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    for rt in &refresh_tokens {
        assert!(!active(rt.clone()).await, "{rt} still active");
    }
    assert!(active(other.clone()).await);
    let next = refresh(&sv, &kept, &ksec, &other, None).await;
    assert_eq!(next.status(), 200);
}

#[tokio::test]
async fn cli_revocation_reaches_a_running_server_and_survives_a_restart() {
    let issuer = ["--issuer", "http://portcullis.test"];
    let mut sv = server(&issuer);
    let (id, secret) = sv.create_client("Group", &[]).unwrap();
    let home1 = get_token(&sv, &id, &secret, &[("label", "home-1")]).await;
    let home2 = get_token(&sv, &id, &secret, &[("label", "home-2")]).await;
    let home2b = get_token(&sv, &id, &secret, &[("label", "home-2")]).await;
    let families = sv
        .cli_json(&[
            "token", "list", "--client", &id, "--label", "home-1", "--json",
        ])
        .unwrap();
    let fam = s(&families[0], "id");
    let out = sv
        .cli_json(&["token", "revoke", "--id", &fam, "--json"])
        .unwrap();
    assert_eq!(out["revoked"], json!([fam]));
    let out = sv
        .cli_json(&[
            "token", "revoke", "--client", &id, "--label", "home-2", "--json",
        ])
        .unwrap();
    assert_eq!(out["revoked"].as_array().unwrap().len(), 2);
    let refused = eventually(Duration::from_secs(2), || async {
        whoami(&sv, &s(&home1, "access_token")).await.status() == 401
            && whoami(&sv, &s(&home2, "access_token")).await.status() == 401
            && whoami(&sv, &s(&home2b, "access_token")).await.status() == 401
    });
    assert!(
        refused.await,
        "another process's revocation reaches the server within a second"
    );
    sv.restart(&issuer).unwrap();
    assert_eq!(whoami(&sv, &s(&home1, "access_token")).await.status(), 401);
    assert_eq!(whoami(&sv, &s(&home2, "access_token")).await.status(), 401);
    let out = sv.cli(&["token", "revoke", "--id", "fam_nope"]).unwrap();
    assert_eq!(out.code, 1);
    let out = sv.cli(&["token", "revoke"]).unwrap();
    assert_eq!(out.code, 1);
}

#[tokio::test]
async fn the_audit_log_records_issue_refresh_revoke_and_client_changes() {
    let sv = server(&[]);
    let (id, secret) = sv.create_client("Audited", &[]).unwrap();
    let t = get_token(&sv, &id, &secret, &[("label", "home-1")]).await;
    let n: Value = refresh(&sv, &id, &secret, &s(&t, "refresh_token"), None)
        .await
        .json()
        .await
        .unwrap();
    post_basic(
        &sv,
        "/oauth/revoke",
        &id,
        &secret,
        &[("token", &s(&n, "refresh_token"))],
    )
    .await;
    sv.cli(&["client", "disable", &id]).unwrap();
    sv.cli(&["client", "enable", &id]).unwrap();
    sv.cli(&["client", "rotate-secret", &id, "--keep-old-for", "1h"])
        .unwrap();
    let events = sv
        .cli_json(&["audit", "list", "--client", &id, "--json"])
        .unwrap();
    let kinds: Vec<&str> = events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    // SPEC §7: every client change is audited, each in the transaction of the change.
    assert_eq!(
        kinds,
        [
            "client.rotate_secret",
            "client.enable",
            "client.disable",
            "token.revoke",
            "token.refresh",
            "token.issue",
            "client.create",
        ]
    );
    assert_eq!(events[5]["label"], "home-1");
    assert_eq!(events[2]["actor"], json!({"kind": "admin", "id": "cli"}));
    assert_eq!(events[0]["target"], id.as_str());
    let text = events.to_string();
    assert!(
        !text.contains(&secret) && !text.contains("pcs_"),
        "no secret in the log"
    );
    let page = sv
        .cli_json(&["audit", "list", "--client", &id, "--limit", "2", "--json"])
        .unwrap();
    let older = sv
        .cli_json(&[
            "audit",
            "list",
            "--client",
            &id,
            "--before",
            &page[1]["id"].to_string(),
            "--json",
        ])
        .unwrap();
    assert_eq!(older.as_array().unwrap().len(), 5);
    assert_eq!(older[0]["kind"], "client.disable");
    // Scopes are audited too.
    sv.cli(&[
        "scope",
        "create",
        "read-reports",
        "--description",
        "Read reports",
    ])
    .unwrap();
    assert_eq!(
        sv.audit_events("scope.create").unwrap()[0]["target"],
        "read-reports"
    );
}

#[tokio::test]
async fn label_use_is_recorded_without_a_write_per_request() {
    let issuer = ["--issuer", "http://portcullis.test"];
    let mut sv = server(&issuer);
    let (id, secret) = sv.create_client("Used", &[]).unwrap();
    let t = get_token(&sv, &id, &secret, &[("label", "home-1")]).await;
    for _ in 0..5 {
        assert_eq!(whoami(&sv, &s(&t, "access_token")).await.status(), 200);
    }
    // Flushed in the background every few seconds, and at shutdown.
    assert_eq!(sv.terminate().unwrap(), 0);
    sv.restart(&issuer).unwrap();
    let fams = sv
        .cli_json(&["token", "list", "--client", &id, "--json"])
        .unwrap();
    assert!(fams[0]["last_used_at"].is_string(), "{fams}");
}
