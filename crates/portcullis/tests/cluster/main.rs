//! Several `portcullis serve` processes on one PostgreSQL database act as one
//! server (SPEC §8): tokens, refresh rotation and reuse detection, revocation,
//! client changes and key rotation reach every node; nothing acknowledged is lost
//! when a node is killed; a node whose database goes away answers 503 and
//! recovers by itself. Every test here runs on PostgreSQL (the test server of
//! `.ci/test`, or one the testkit starts), whatever `PORTCULLIS_TEST_ENGINE` says.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod proxy;

use portcullis_testkit::http::*;
use portcullis_testkit::{Engine, TestServer};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// The binary under test.
fn bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_portcullis"))
}

/// Every node has the same issuer (behind one load balancer, one name).
const ISSUER: [&str; 4] = [
    "--issuer",
    "http://portcullis.test",
    "--signing-alg",
    "ES256",
];

/// How soon a change made on one node must be honoured by the others (SPEC §8).
const PROPAGATION: Duration = Duration::from_secs(1);

/// `n` nodes on one new PostgreSQL database and one master key.
fn nodes(n: usize) -> Vec<TestServer> {
    let first = TestServer::start_with(bin(), Engine::Postgres, &ISSUER).expect("node starts");
    let mut all = Vec::with_capacity(n);
    for _ in 1..n {
        all.push(first.join(&ISSUER).expect("node joins"));
    }
    all.insert(0, first);
    all
}

async fn admin_post(s: &TestServer, token: &str, path: &str) -> reqwest::Response {
    http()
        .post(format!("{}/admin/api/v1{path}", s.url))
        .bearer_auth(token)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_token_from_one_node_works_on_the_others() {
    let n = nodes(3);
    let (id, secret) = n[0].create_client("Sunrise Care", &[]).unwrap();
    let t = get_token(&n[1], &id, &secret, &[("label", "home-1")]).await;
    for node in &n {
        let r = whoami(node, &at(&t)).await;
        assert_eq!(r.status(), 200);
        let me: Value = r.json().await.unwrap();
        assert_eq!(me["client_id"], id.as_str());
        assert_eq!(me["label"], "home-1");
    }
}

#[tokio::test]
async fn time_passes_for_every_node_at_once() {
    let n = nodes(2);
    let (id, secret) = n[0].create_client("Day pass", &[]).unwrap();
    let t = get_token(&n[0], &id, &secret, &[]).await;
    assert_eq!(whoami(&n[1], &at(&t)).await.status(), 200);
    // The test clock is the cluster's: advanced through one node, it moves for all.
    n[1].advance_clock(86_400 + 1).unwrap();
    for node in &n {
        let r = whoami(node, &at(&t)).await;
        assert_eq!(r.status(), 401, "{}", node.url);
        assert!(challenge(&r).unwrap().contains("expired"));
    }
}

#[tokio::test]
async fn a_refresh_on_one_node_then_reuse_on_another_revokes_that_family_only() {
    let n = nodes(2);
    let (id, secret) = n[0].create_client("Reuse", &[]).unwrap();
    let one = get_token(&n[0], &id, &secret, &[("label", "home-1")]).await;
    let two = get_token(&n[0], &id, &secret, &[("label", "home-2")]).await;
    let r = refresh(&n[1], &id, &secret, &rt(&one), None).await;
    assert_eq!(r.status(), 200);
    let rotated: Value = r.json().await.unwrap();
    // The spent token again, on the other node: reuse.
    let (status, error, ..) =
        oauth_error(refresh(&n[0], &id, &secret, &rt(&one), None).await).await;
    assert_eq!((status, error.as_str()), (400, "invalid_grant"));
    // That family is gone everywhere: its newest refresh token and its access tokens.
    let (status, ..) = oauth_error(refresh(&n[0], &id, &secret, &rt(&rotated), None).await).await;
    assert_eq!(status, 400);
    for node in &n {
        let refused = eventually(PROPAGATION, || async {
            whoami(node, &at(&rotated)).await.status() == 401
        })
        .await;
        assert!(
            refused,
            "the family's access token is refused on {}",
            node.url
        );
    }
    // The other family lives on.
    assert_eq!(whoami(&n[1], &at(&two)).await.status(), 200);
    assert_eq!(
        refresh(&n[1], &id, &secret, &rt(&two), None).await.status(),
        200
    );
    let detected = n[0].audit_events("token.reuse_detected").unwrap();
    assert_eq!(detected.len(), 1, "{detected:?}");
}

#[tokio::test]
async fn of_eight_concurrent_refreshes_over_two_nodes_exactly_one_wins() {
    let n = nodes(2);
    let (id, secret) = n[0].create_client("Race", &[]).unwrap();
    let t = get_token(&n[0], &id, &secret, &[("label", "home-1")]).await;
    let statuses = concurrent_refreshes(&[&n[0], &n[1]], &id, &secret, &rt(&t), 8).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 400),
        "{statuses:?}"
    );
}

#[tokio::test]
async fn an_access_token_revoked_on_one_node_is_refused_by_the_other_within_a_second() {
    let n = nodes(2);
    let (id, secret) = n[0].create_client("Revoked", &[]).unwrap();
    let t = get_token(&n[0], &id, &secret, &[]).await;
    // Node B has verified it (and may have it cached).
    assert_eq!(whoami(&n[1], &at(&t)).await.status(), 200);
    let r = post_basic(&n[0], "/oauth/revoke", &id, &secret, &[("token", &at(&t))]).await;
    assert_eq!(r.status(), 200);
    let revoked = Instant::now();
    let refused = eventually(PROPAGATION, || async {
        whoami(&n[1], &at(&t)).await.status() == 401
    })
    .await;
    assert!(
        refused,
        "still accepted {:?} after the revocation",
        revoked.elapsed()
    );
}

#[tokio::test]
async fn a_client_disabled_on_one_node_gets_nothing_more_from_the_other() {
    let n = nodes(2);
    let admin = admin_token(&n[1]).await;
    let (id, secret) = n[0].create_client("Disabled", &[]).unwrap();
    let t = get_token(&n[0], &id, &secret, &[("label", "home-1")]).await;
    // Node A has the client in its cache and its token verified.
    assert_eq!(whoami(&n[0], &at(&t)).await.status(), 200);
    let r = admin_post(&n[1], &admin, &format!("/clients/{id}/disable")).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // At once: the grant's own write checks the client's status.
    let r = token_basic(&n[0], &id, &secret, &[("grant_type", "client_credentials")]).await;
    assert_eq!(r.status(), 401, "a new token for a disabled client");
    let (status, ..) = oauth_error(refresh(&n[0], &id, &secret, &rt(&t), None).await).await;
    assert!(status == 400 || status == 401, "a refresh: {status}");
    // Within a second: the tokens it holds.
    let refused = eventually(PROPAGATION, || async {
        whoami(&n[0], &at(&t)).await.status() == 401
    })
    .await;
    assert!(refused, "the disabled client's token is still accepted");
}

#[tokio::test]
async fn a_key_rotated_on_one_node_signs_tokens_the_other_accepts() {
    let n = nodes(2);
    let admin = admin_token(&n[0]).await;
    let (id, secret) = n[0].create_client("Keys", &[]).unwrap();
    let before = get_token(&n[0], &id, &secret, &[]).await;
    let r = admin_post(&n[0], &admin, "/keys/rotate").await;
    assert_eq!(r.status(), 201);
    let new_kid = r.json::<Value>().await.unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(kid(&at(&before)), new_kid);
    // Both nodes sign with the new key and accept each other's tokens.
    for (signer, verifier) in [(&n[0], &n[1]), (&n[1], &n[0])] {
        let signed_new = eventually(PROPAGATION, || async {
            kid(&at(&get_token(signer, &id, &secret, &[]).await)) == new_kid
        })
        .await;
        assert!(signed_new, "{} signs with the new key", signer.url);
        let t = get_token(signer, &id, &secret, &[]).await;
        assert_eq!(whoami(verifier, &at(&t)).await.status(), 200);
    }
    // Tokens signed before the rotation still verify everywhere.
    for node in &n {
        assert_eq!(whoami(node, &at(&before)).await.status(), 200);
    }
}

#[tokio::test]
async fn no_acknowledged_upload_is_lost_when_a_node_is_killed() {
    let mut n = nodes(2);
    let (id, secret) = n[0].create_client("Uploads", &[]).unwrap();
    let token = at(&get_token(&n[0], &id, &secret, &[("label", "home-1")]).await);
    let url = n[0].url.clone();
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (url, token) = (url.clone(), token.clone());
            tokio::spawn(async move {
                let client = http();
                for i in 0..25 {
                    let r = client
                        .post(format!("{url}/api/v1/data"))
                        .bearer_auth(&token)
                        .header("content-type", "application/json")
                        .body(format!(r#"{{"records":[{{"worker":{w},"n":{i}}}]}}"#))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 201);
                }
            })
        })
        .collect();
    for w in workers {
        w.await.unwrap();
    }
    // 200 acknowledged; the node dies at once, without a chance to flush anything.
    n[0].kill_hard().unwrap();
    let r = http()
        .get(format!("{}/api/v1/indicators", n[1].url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let indicators: Value = r.json().await.unwrap();
    assert_eq!(indicators["total_records"], 200, "{indicators}");
}

/// Signs in as the first admin on `s` (the sign-in form, its CSRF cookie and
/// field): the session's `Cookie` header value.
async fn admin_session_cookie(s: &TestServer) -> String {
    let password = s
        .banner
        .iter()
        .find_map(|l| l.split("with password: ").nth(1))
        .expect("the first start prints the admin password")
        .trim()
        .to_owned();
    let page = http()
        .get(format!("{}/admin/login", s.url))
        .send()
        .await
        .unwrap();
    let cookie_value = |r: &reqwest::Response, name: &str| {
        r.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|v| v.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.split(';').next())
            .map(str::to_owned)
            .unwrap()
    };
    let login_csrf = cookie_value(&page, "pc_login_csrf");
    let html = page.text().await.unwrap();
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).unwrap() + marker.len();
    let field = &html[start..start + html[start..].find('"').unwrap()];
    let r = http()
        .post(format!("{}/admin/login", s.url))
        .header("cookie", format!("pc_login_csrf={login_csrf}"))
        .form(&[
            ("csrf", field),
            ("username", "admin"),
            ("password", &password),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "signed in");
    format!("pc_admin={}", cookie_value(&r, "pc_admin"))
}

// Two runtime threads: the proxy forwards on one while the test waits on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_database_goes_away_answers_503_and_recovers_by_itself() {
    let a = TestServer::start_with(bin(), Engine::Postgres, &ISSUER).unwrap();
    let cut = proxy::Cutoff::start(&a.database_url()).await;
    let b = tokio::task::block_in_place(|| a.join_via(&cut.database_url(), &ISSUER)).unwrap();
    let (id, secret) = a.create_client("Outage", &[]).unwrap();
    let admin = admin_session_cookie(&a).await;
    let dashboard = |s: &TestServer| {
        http()
            .get(format!("{}/admin", s.url))
            .header("cookie", admin.clone())
            .send()
    };
    assert_eq!(dashboard(&b).await.unwrap().status(), 200);
    assert_eq!(
        token_basic(&b, &id, &secret, &[("grant_type", "client_credentials")])
            .await
            .status(),
        200
    );

    cut.cut().await;
    let started = Instant::now();
    let ready = http()
        .get(format!("{}/readyz", b.url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let r = token_basic(&b, &id, &secret, &[("grant_type", "client_credentials")]).await;
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    let (_, error, ..) = oauth_error(r).await;
    assert_eq!(error, "temporarily_unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered within 5 s, not hung: {:?}",
        started.elapsed()
    );
    // A signed-in admin is told the database is away, not sent to sign in again.
    let page = dashboard(&b).await.unwrap();
    assert_eq!(page.status(), 503);
    assert!(page.headers().contains_key("retry-after"));
    // The node whose database is there serves on.
    assert_eq!(
        token_basic(&a, &id, &secret, &[("grant_type", "client_credentials")])
            .await
            .status(),
        200
    );

    cut.restore().await;
    let recovered = eventually(Duration::from_secs(15), || async {
        http()
            .get(format!("{}/readyz", b.url))
            .send()
            .await
            .is_ok_and(|r| r.status() == 200)
    })
    .await;
    assert!(recovered, "ready again once the database is back");
    let t = get_token(&b, &id, &secret, &[]).await;
    assert_eq!(whoami(&a, &at(&t)).await.status(), 200);
}
