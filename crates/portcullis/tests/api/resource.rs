//! The resource API (SPEC §6): uploads and indicators, scopes, bad bodies.

use crate::helpers::*;
use portcullis_testkit::TestServer;
use serde_json::{Value, json};

async fn upload(s: &TestServer, token: &str, body: &str, key: Option<&str>) -> reqwest::Response {
    let mut r = http()
        .post(format!("{}/api/v1/data", s.url))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(k) = key {
        r = r.header("idempotency-key", k);
    }
    r.send().await.unwrap()
}

async fn indicators(s: &TestServer, token: &str) -> Value {
    let r = http()
        .get(format!("{}/api/v1/indicators", s.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test]
async fn uploads_are_stored_per_care_home_and_counted_in_indicators() {
    let s = server(&[]);
    let (id, secret) = s.create_client("Group", &[]).unwrap();
    let h1 = at(&get_token(&s, &id, &secret, &[("label", "home-1")]).await);
    let h2 = at(&get_token(&s, &id, &secret, &[("label", "home-2")]).await);
    let r = upload(
        &s,
        &h1,
        r#"{"records":[{"hr":61},{"hr":64},{"hr":70}]}"#,
        None,
    )
    .await;
    assert_eq!(r.status(), 201);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["accepted"], 3);
    assert!(body["batch_id"].as_str().unwrap().starts_with("bat_"));
    assert_eq!(
        upload(&s, &h2, r#"{"records":[{"x":1}]}"#, None)
            .await
            .status(),
        201
    );
    assert_eq!(
        upload(&s, &h2, r#"{"records":[{"x":2}]}"#, None)
            .await
            .status(),
        201
    );
    let v = indicators(&s, &h1).await;
    assert_eq!(v["client_id"], id);
    assert_eq!(v["total_records"], 5);
    let sites = v["sites"].as_array().unwrap();
    assert_eq!(sites.len(), 2);
    assert_eq!(sites[0]["label"], "home-1");
    assert_eq!(
        (sites[0]["records"].clone(), sites[0]["batches"].clone()),
        (json!(3), json!(1))
    );
    assert_eq!(
        (sites[1]["records"].clone(), sites[1]["batches"].clone()),
        (json!(2), json!(2))
    );
    assert!(sites[1]["last_upload_at"].as_str().unwrap().ends_with('Z'));
    // Another client sees only its own.
    let (other, osecret) = s.create_client("Other", &[]).unwrap();
    let o = at(&get_token(&s, &other, &osecret, &[]).await);
    assert_eq!(indicators(&s, &o).await["total_records"], 0);
}

#[tokio::test]
async fn scopes_limit_what_a_token_may_do() {
    let s = server(&[]);
    let (id, secret) = s.create_client("Scoped", &[]).unwrap();
    let viewer = at(&get_token(&s, &id, &secret, &[("scope", "view-indicator")]).await);
    let uploader = at(&get_token(&s, &id, &secret, &[("scope", "upload-data")]).await);
    let r = upload(&s, &viewer, r#"{"records":[{"a":1}]}"#, None).await;
    assert_eq!(r.status(), 403);
    let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        www.contains("error=\"insufficient_scope\"") && www.contains("scope=\"upload-data\""),
        "{www}"
    );
    let r = http()
        .get(format!("{}/api/v1/indicators", s.url))
        .bearer_auth(&uploader)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("scope=\"view-indicator\"")
    );
    let r = http()
        .post(format!("{}/api/v1/data", s.url))
        .header("content-type", "application/json")
        .body(r#"{"records":[{"a":1}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(indicators(&s, &viewer).await["total_records"], 0);
}

#[tokio::test]
async fn bad_bodies_are_refused_with_the_reason_and_nothing_is_written() {
    let s = server(&[]);
    let (id, secret) = s.create_client("Sloppy", &[]).unwrap();
    let t = at(&get_token(&s, &id, &secret, &[("label", "home-1")]).await);
    let big_record = format!(
        r#"{{"records":[{{"a":1}},{{"blob":"{}"}}]}}"#,
        "x".repeat(17 * 1024)
    );
    let many = format!(r#"{{"records":[{}]}}"#, vec![r#"{"a":1}"#; 1001].join(","));
    let huge = format!(
        r#"{{"records":[{}]}}"#,
        vec![format!(r#"{{"b":"{}"}}"#, "y".repeat(15 * 1024)); 80].join(",")
    );
    let cases: Vec<(&str, String, u16, &str)> = vec![
        ("bad json", "{\"records\": [".into(), 400, "not valid JSON"),
        ("not an object", "[1,2]".into(), 400, "records"),
        ("empty", r#"{"records":[]}"#.into(), 400, "empty"),
        (
            "non-object record",
            r#"{"records":[{"a":1},[2],{"c":3}]}"#.into(),
            400,
            "record 1",
        ),
        ("record over 16 KiB", big_record, 413, "record 1"),
        ("over 1000 records", many, 413, "1001"),
        ("body over 1 MiB", huge, 413, "1 MiB"),
    ];
    for (why, body, status, says) in cases {
        let r = upload(&s, &t, &body, None).await;
        assert_eq!(r.status().as_u16(), status, "{why}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "invalid_request", "{why}");
        assert!(
            v["error_description"].as_str().unwrap().contains(says),
            "{why}: {v}"
        );
    }
    let r = http()
        .post(format!("{}/api/v1/data", s.url))
        .bearer_auth(&t)
        .header("content-type", "text/plain")
        .body(r#"{"records":[{"a":1}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v = indicators(&s, &t).await;
    assert_eq!(v["total_records"], 0, "{v}");
    assert_eq!(v["sites"], json!([]));
}

#[tokio::test]
async fn a_retried_upload_with_an_idempotency_key_is_stored_once() {
    let s = server(&[]);
    let (id, secret) = s.create_client("Retry", &[]).unwrap();
    let t = at(&get_token(&s, &id, &secret, &[("label", "home-1")]).await);
    let body = r#"{"records":[{"a":1},{"a":2}]}"#;
    let first = upload(&s, &t, body, Some("upload-2026-11-23-001")).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = upload(&s, &t, body, Some("upload-2026-11-23-001")).await;
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again, first);
    let v = indicators(&s, &t).await;
    assert_eq!(
        (v["total_records"].clone(), v["sites"][0]["batches"].clone()),
        (json!(2), json!(1))
    );
    let other = upload(
        &s,
        &t,
        r#"{"records":[{"a":3}]}"#,
        Some("upload-2026-11-23-001"),
    )
    .await;
    assert_eq!(other.status(), 422);
    let r = upload(&s, &t, body, Some("bad key with spaces")).await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn an_acknowledged_upload_survives_a_crash() {
    let issuer = ["--issuer", "http://portcullis.test"];
    let mut s = server(&issuer);
    let (id, secret) = s.create_client("Durable", &[]).unwrap();
    let t = at(&get_token(&s, &id, &secret, &[("label", "home-1")]).await);
    assert_eq!(
        upload(&s, &t, r#"{"records":[{"a":1}]}"#, None)
            .await
            .status(),
        201
    );
    s.kill_hard().unwrap();
    s.restart(&issuer).unwrap();
    assert_eq!(indicators(&s, &t).await["total_records"], 1);
    assert_eq!(whoami(&s, &t).await.status(), 200);
}
