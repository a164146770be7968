//! `portcullis-guard` against the real server: each test starts the `portcullis`
//! binary on a free loopback port and a small axum service, guarded by the crate,
//! in this process on another; tokens come from the real token endpoint.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::routing::{get, post};
use axum::{Json, Router};
use portcullis_guard::{Caller, Guard, GuardConfig, IntrospectionConfig, RequireScope};
use portcullis_testkit::TestServer;
use portcullis_testkit::http::*;
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn server() -> TestServer {
    TestServer::start(Path::new(env!("CARGO_BIN_EXE_portcullis")), &[]).expect("server starts")
}

/// A guard for the server's default issuer, which is also the audience.
fn config(s: &TestServer) -> GuardConfig {
    GuardConfig::new(s.url.clone(), s.url.clone())
}

async fn whoami(caller: Caller) -> Json<Value> {
    Json(json!({
        "client_id": caller.client_id,
        "sub": caller.subject,
        "label": caller.label,
        "scopes": caller.scopes,
        "jti": caller.jti,
    }))
}

/// Serves `/hello` (any valid token) and `/upload` (`upload-data`) on `127.0.0.1:0`.
async fn guarded_service(guard: Guard) -> String {
    let guard = Arc::new(guard);
    let app = Router::new()
        .route("/hello", get(whoami))
        .route(
            "/upload",
            post(whoami).route_layer(RequireScope::new("upload-data")),
        )
        .layer(guard.layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test]
async fn a_guarded_service_accepts_a_real_token_and_sees_client_label_and_scopes() {
    let s = server();
    let (id, secret) = s.create_client("Sunrise", &[]).unwrap();
    let token = access_token(&s, &id, &secret, &[("label", "care-home-042")]).await;
    let svc = guarded_service(Guard::discover(config(&s)).await.unwrap()).await;

    let (status, _, body) = send(http().get(format!("{svc}/hello")).bearer_auth(&token)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["client_id"], id);
    assert_eq!(body["sub"], id);
    assert_eq!(body["label"], "care-home-042");
    assert_eq!(body["scopes"], json!(["upload-data", "view-indicator"]));
    assert!(body["jti"].as_str().unwrap().contains('.'));
    let (status, _, _) = send(http().post(format!("{svc}/upload")).bearer_auth(&token)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn require_scope_refuses_a_real_token_without_upload_data() {
    let s = server();
    let (id, secret) = s.create_client("Viewer", &[]).unwrap();
    let token = access_token(&s, &id, &secret, &[("scope", "view-indicator")]).await;
    let svc = guarded_service(Guard::discover(config(&s)).await.unwrap()).await;

    let (status, www, body) = send(http().post(format!("{svc}/upload")).bearer_auth(&token)).await;
    assert_eq!(status, 403);
    assert_eq!(
        www.as_deref(),
        Some(
            r#"Bearer realm="portcullis", error="insufficient_scope", error_description="this request needs the upload-data scope", scope="upload-data""#
        )
    );
    assert_eq!(body["error"], "insufficient_scope");
    let (status, _, _) = send(http().get(format!("{svc}/hello")).bearer_auth(&token)).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_guard_answers_bad_requests_exactly_as_the_server_does() {
    let s = server();
    let (id, secret) = s.create_client("Same", &[]).unwrap();
    let token = access_token(&s, &id, &secret, &[]).await;
    let svc = guarded_service(Guard::discover(config(&s)).await.unwrap()).await;
    // No token; two Authorization headers; header and query; query only.
    let request = |case: u8, base: &str| {
        let bearer = format!("Bearer {token}");
        match case {
            0 => http().get(base),
            1 => http()
                .get(base)
                .header("authorization", &bearer)
                .header("authorization", &bearer),
            2 => http()
                .get(format!("{base}?access_token={token}"))
                .header("authorization", &bearer),
            _ => http().get(format!("{base}?access_token={token}")),
        }
    };
    for case in 0..4 {
        let ours = send(request(case, &format!("{svc}/hello"))).await;
        let theirs = send(request(case, &format!("{}/api/v1/whoami", s.url))).await;
        assert!(ours.0 == 400 || ours.0 == 401, "{ours:?}");
        assert_eq!(ours, theirs);
    }
}

#[tokio::test]
async fn a_signing_key_rotation_mid_run_is_followed_by_one_refetch() {
    let s = server();
    let (id, secret) = s.create_client("Rotating", &[]).unwrap();
    let svc = guarded_service(Guard::discover(config(&s)).await.unwrap()).await;
    let old = access_token(&s, &id, &secret, &[]).await;
    let (status, _, _) = send(http().get(format!("{svc}/hello")).bearer_auth(&old)).await;
    assert_eq!(status, 200);

    let rotated = s.cli_json(&["keys", "rotate", "--json"]).unwrap();
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    assert_ne!(new_kid, kid(&old));
    // The running server picks the new key up within about a second.
    let deadline = Instant::now() + Duration::from_secs(10);
    let new = loop {
        let t = access_token(&s, &id, &secret, &[]).await;
        if kid(&t) == new_kid {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "the server never signed with the new key"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    for token in [&new, &old] {
        let (status, _, body) = send(http().get(format!("{svc}/hello")).bearer_auth(token)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["client_id"], id);
    }
}

#[tokio::test]
async fn with_introspection_a_revoked_token_is_refused_after_the_cache_ttl() {
    let s = server();
    let (guard_id, guard_secret) = s
        .create_client("Guard", &["--scope", "introspect"])
        .unwrap();
    let (id, secret) = s.create_client("Care home app", &[]).unwrap();
    let ic =
        IntrospectionConfig::new(guard_id, guard_secret).with_cache_ttl(Duration::from_millis(200));
    let guard = Guard::discover(config(&s).with_introspection(ic))
        .await
        .unwrap();
    let svc = guarded_service(guard).await;
    let token = access_token(&s, &id, &secret, &[("label", "care-home-007")]).await;
    let other = access_token(&s, &id, &secret, &[("label", "care-home-008")]).await;
    for t in [&token, &other] {
        let (status, _, body) = send(http().get(format!("{svc}/hello")).bearer_auth(t)).await;
        assert_eq!(status, 200, "{body}");
    }

    let r = post_basic(&s, "/oauth/revoke", &id, &secret, &[("token", &token)]).await;
    assert_eq!(r.status(), 200);

    let deadline = Instant::now() + Duration::from_secs(5);
    let (www, body) = loop {
        let (status, www, body) =
            send(http().get(format!("{svc}/hello")).bearer_auth(&token)).await;
        if status == 401 {
            break (www, body);
        }
        assert_eq!(status, 200, "{body}");
        assert!(
            Instant::now() < deadline,
            "the revoked token is still accepted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        www.unwrap()
            .starts_with(r#"Bearer realm="portcullis", error="invalid_token""#)
    );
    assert_eq!(body["error"], "invalid_token");
    assert_eq!(
        body["error_description"],
        "the token is no longer active (revoked?)"
    );
    // Revoking an access token revokes it alone.
    let (status, _, _) = send(http().get(format!("{svc}/hello")).bearer_auth(&other)).await;
    assert_eq!(status, 200);
}
