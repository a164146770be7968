//! `GET /metrics`: Prometheus text exposition of what the server did, with
//! bounded labels (route templates, never concrete paths).

use crate::helpers::*;
use portcullis_testkit::TestServer;
use serde_json::Value;

/// The value of one series (`name{labels}`) in an exposition, if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

async fn scrape(s: &TestServer) -> String {
    let r = http()
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "text/plain; version=0.0.4"
    );
    r.text().await.unwrap()
}

#[tokio::test]
async fn counts_tokens_failures_uploads_and_requests_by_route_template() {
    let s = server(&[]);
    let (id, secret) = s.create_client("Group", &[]).unwrap();
    let before = scrape(&s).await;
    assert_eq!(sample(&before, "portcullis_refreshes_total"), Some(0.0));
    assert_eq!(sample(&before, "portcullis_denylist_entries"), Some(0.0));

    let issued = get_token(&s, &id, &secret, &[("label", "home-1")]).await;
    // A second time: the series' handles are kept after their first use.
    get_token(&s, &id, &secret, &[("label", "home-2")]).await;
    let at = issued["access_token"].as_str().unwrap();
    let rt = issued["refresh_token"].as_str().unwrap();
    let wrong = token_basic(
        &s,
        &id,
        "pcs_wrong",
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(wrong.status(), 401);
    let up = http()
        .post(format!("{}/api/v1/data", s.url))
        .bearer_auth(at)
        .header("content-type", "application/json")
        .body(r#"{"records":[{"hr":61},{"hr":64},{"hr":70}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(up.status(), 201);
    // Rotate once, then present the spent token again: reuse revokes the family.
    let form = [("grant_type", "refresh_token"), ("refresh_token", rt)];
    let rotated = token_basic(&s, &id, &secret, &form).await;
    assert_eq!(rotated.status(), 200);
    let _: Value = rotated.json().await.unwrap();
    assert_eq!(token_basic(&s, &id, &secret, &form).await.status(), 400);
    let random = http()
        .get(format!("{}/no/such/path-7f3a", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(random.status(), 404);

    let text = scrape(&s).await;
    let expect = [
        (
            r#"portcullis_tokens_issued_total{alg="RS256",grant="client_credentials"}"#,
            2.0,
        ),
        (
            r#"portcullis_tokens_issued_total{alg="RS256",grant="refresh_token"}"#,
            1.0,
        ),
        ("portcullis_refreshes_total", 1.0),
        ("portcullis_refresh_reuse_detected_total", 1.0),
        (r#"portcullis_revocations_total{kind="family"}"#, 1.0),
        ("portcullis_client_auth_failures_total", 1.0),
        ("portcullis_uploads_total", 1.0),
        ("portcullis_uploaded_records_total", 3.0),
        ("portcullis_denylist_entries", 1.0),
        (
            r#"portcullis_http_requests_total{method="POST",route="/oauth/token",status="200"}"#,
            3.0,
        ),
        (
            r#"portcullis_http_requests_total{method="POST",route="/oauth/token",status="401"}"#,
            1.0,
        ),
        (
            r#"portcullis_http_requests_total{method="POST",route="/oauth/token",status="400"}"#,
            1.0,
        ),
        (
            r#"portcullis_http_requests_total{method="POST",route="/api/v1/data",status="201"}"#,
            1.0,
        ),
        (
            r#"portcullis_http_requests_total{method="GET",route="/metrics",status="200"}"#,
            1.0,
        ),
        (
            r#"portcullis_http_requests_total{method="GET",route="unmatched",status="404"}"#,
            1.0,
        ),
        (
            r#"portcullis_http_request_duration_seconds_count{method="POST",route="/oauth/token"}"#,
            5.0,
        ),
        (
            r#"portcullis_http_request_duration_seconds_bucket{method="POST",route="/oauth/token",le="2.5"}"#,
            5.0,
        ),
    ];
    for (series, value) in expect {
        assert_eq!(sample(&text, series), Some(value), "{series} in:\n{text}");
    }
    assert!(text.contains("# TYPE portcullis_http_request_duration_seconds histogram"));
    assert!(text.contains(r#"le="0.0005""#));
    // Concrete paths never become label values.
    assert!(!text.contains("path-7f3a"), "{text}");
}
