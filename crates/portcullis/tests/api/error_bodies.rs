//! The error contract as data: every answer below is snapshotted whole — status,
//! `Content-Type`, `WWW-Authenticate` and body — so that a change to what a caller
//! sees shows up in review as a changed `.snap` file.
//!
//! - RFC 6750 §3: the bearer-protected resource API (`/api/v1/…`), for each way a
//!   token is refused.
//! - The admin JSON API (`/admin/api/v1/…`): `{error, error_description}` bodies for
//!   each status it answers with.

use crate::helpers::*;
use reqwest::RequestBuilder;
use serde_json::{Value, json};

/// What a caller sees of an error answer.
async fn answer(req: RequestBuilder) -> Value {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    let www = challenge(&r);
    let text = r.text().await.unwrap();
    let body: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{status}: the body is not JSON ({e}): {text}"));
    json!({
        "status": status,
        "content_type": content_type,
        "www_authenticate": www,
        "body": body,
    })
}

/// `GET /api/v1/whoami` with `Authorization: Bearer {token}`.
fn whoami_with(s: &TestServer, token: &str) -> RequestBuilder {
    http()
        .get(format!("{}/api/v1/whoami", s.url))
        .bearer_auth(token)
}

#[tokio::test]
async fn rfc_6750_answers_of_the_resource_api() {
    let s = server(&[]);
    let (id, secret) = s.create_client("Errors", &[]).unwrap();
    let whoami_url = format!("{}/api/v1/whoami", s.url);

    // §3.1: no credentials at all is a challenge without an error code.
    let no_credentials = answer(http().get(&whoami_url)).await;
    insta::assert_json_snapshot!("bearer_no_credentials", no_credentials);
    assert_eq!(no_credentials["status"], 401);
    assert_eq!(
        no_credentials["www_authenticate"],
        r#"Bearer realm="portcullis""#
    );

    let malformed = answer(whoami_with(&s, "not-a-jwt")).await;
    insta::assert_json_snapshot!("bearer_malformed_token", malformed);

    let both = answer(
        http()
            .get(format!("{whoami_url}?access_token=x"))
            .bearer_auth("x"),
    )
    .await;
    insta::assert_json_snapshot!("bearer_token_in_header_and_query", both);

    let revoked = get_token(&s, &id, &secret, &[]).await;
    let r = post_basic(
        &s,
        "/oauth/revoke",
        &id,
        &secret,
        &[("token", &at(&revoked))],
    )
    .await;
    assert_eq!(r.status(), 200);
    let revoked = answer(whoami_with(&s, &at(&revoked))).await;
    insta::assert_json_snapshot!("bearer_revoked_token", revoked);

    // §3.1 insufficient_scope: whoami needs no scope; uploads need `upload-data`.
    let viewer = access_token(&s, &id, &secret, &[("scope", "view-indicator")]).await;
    let insufficient = answer(
        http()
            .post(format!("{}/api/v1/data", s.url))
            .bearer_auth(&viewer)
            .header("content-type", "application/json")
            .body(r#"{"records":[{"a":1}]}"#),
    )
    .await;
    insta::assert_json_snapshot!("bearer_insufficient_scope", insufficient);
    assert_eq!(insufficient["status"], 403);

    // Last: a day and a second later, a token of the default lifetime has expired.
    let expiring = access_token(&s, &id, &secret, &[]).await;
    s.advance_clock(86_400 + 1).unwrap();
    let expired = answer(whoami_with(&s, &expiring)).await;
    insta::assert_json_snapshot!("bearer_expired_token", expired);
}

/// `{method} /admin/api/v1{path}` with the bearer `token`.
fn admin_call(s: &TestServer, token: &str, method: reqwest::Method, path: &str) -> RequestBuilder {
    http()
        .request(method, format!("{}/admin/api/v1{path}", s.url))
        .bearer_auth(token)
}

#[tokio::test]
async fn admin_api_error_bodies() {
    use reqwest::Method;

    let s = server(&[]);
    let admin = admin_token(&s).await;
    let (id, secret) = s.create_client("Care home", &[]).unwrap();

    let unauthenticated = answer(http().get(format!("{}/admin/api/v1/clients", s.url))).await;
    insta::assert_json_snapshot!("admin_unauthenticated", unauthenticated);
    assert_eq!(unauthenticated["status"], 401);

    let bad_token = answer(admin_call(&s, "not-a-jwt", Method::GET, "/clients")).await;
    insta::assert_json_snapshot!("admin_bad_token", bad_token);

    let no_admin_scope = access_token(&s, &id, &secret, &[]).await;
    let forbidden = answer(admin_call(&s, &no_admin_scope, Method::GET, "/clients")).await;
    insta::assert_json_snapshot!("admin_insufficient_scope", forbidden);
    assert_eq!(forbidden["status"], 403);

    let not_found = answer(admin_call(&s, &admin, Method::GET, "/clients/pc_nope")).await;
    insta::assert_json_snapshot!("admin_not_found", not_found);
    assert_eq!(not_found["status"], 404);

    let invalid =
        answer(admin_call(&s, &admin, Method::POST, "/scopes").json(&json!({"name": "Bad Name"})))
            .await;
    insta::assert_json_snapshot!("admin_invalid_field", invalid);
    assert_eq!(invalid["status"], 400);

    let unknown_member = answer(
        admin_call(&s, &admin, Method::POST, "/clients").json(&json!({"name": "x", "surprise": 1})),
    )
    .await;
    insta::assert_json_snapshot!("admin_unknown_member", unknown_member);

    let malformed = answer(
        admin_call(&s, &admin, Method::POST, "/clients")
            .header("content-type", "application/json")
            .body("{"),
    )
    .await;
    insta::assert_json_snapshot!("admin_malformed_json", malformed);

    let bad_query = answer(admin_call(&s, &admin, Method::GET, "/audit?limit=0")).await;
    insta::assert_json_snapshot!("admin_invalid_query", bad_query);

    let scope = json!({"name": "read-reports", "description": "Reports"});
    let r = admin_call(&s, &admin, Method::POST, "/scopes")
        .json(&scope)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let conflict = answer(admin_call(&s, &admin, Method::POST, "/scopes").json(&scope)).await;
    insta::assert_json_snapshot!("admin_conflict", conflict);
    assert_eq!(conflict["status"], 409);

    let too_large = answer(
        admin_call(&s, &admin, Method::POST, "/scopes")
            .header("content-type", "application/json")
            .body(vec![b' '; 70 * 1024]),
    )
    .await;
    insta::assert_json_snapshot!("admin_too_large", too_large);
    assert_eq!(too_large["status"], 413);
}
