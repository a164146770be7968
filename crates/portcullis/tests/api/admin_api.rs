//! The admin JSON API (`/admin/api/v1/…`): authentication (bearer with the `admin`
//! scope, or an admin session with its CSRF token), the client, token, scope, key and
//! audit operations, JSON errors, and the OpenAPI document.

use crate::admin::{Browser, first_admin_password};
use crate::helpers::*;
use portcullis_testkit::TestServer;
use reqwest::header::COOKIE;
use reqwest::{Method, Response};
use serde_json::{Value, json};

pub(crate) async fn call(
    s: &TestServer,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Response {
    let mut req = http()
        .request(method, format!("{}/admin/api/v1{path}", s.url))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

pub(crate) async fn json_of(r: Response, status: u16) -> Value {
    let got = r.status().as_u16();
    let text = r.text().await.unwrap();
    assert_eq!(got, status, "{text}");
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn credentials_are_required_and_need_the_admin_scope() {
    let s = server(&[]);
    let r = http()
        .get(format!("{}/admin/api/v1/clients", s.url))
        .send()
        .await
        .unwrap();
    let (status, error, _, www) = oauth_error(r).await;
    assert_eq!(status, 401);
    assert_eq!(error, "invalid_token");
    assert_eq!(www.as_deref(), Some("Bearer realm=\"portcullis\""));

    let r = call(&s, "not-a-jwt", Method::GET, "/clients", None).await;
    assert_eq!(r.status(), 401);

    let (id, secret) = s.create_client("Care home", &[]).unwrap();
    let t = get_token(&s, &id, &secret, &[]).await;
    let r = call(
        &s,
        t["access_token"].as_str().unwrap(),
        Method::GET,
        "/clients",
        None,
    )
    .await;
    let (status, error, _, _) = oauth_error(r).await;
    assert_eq!(status, 403);
    assert_eq!(error, "insufficient_scope");
}

#[tokio::test]
async fn clients_are_created_shown_updated_and_their_tokens_minted_and_revoked() {
    let s = server(&[]);
    let at = admin_token(&s).await;

    let created = json_of(
        call(
            &s,
            &at,
            Method::POST,
            "/clients",
            Some(
                json!({"name": "Sunrise Care", "scopes": ["upload-data", "view-indicator"],
                "access_token_ttl": "1h", "refresh_reuse_grace": "10s"}),
            ),
        )
        .await,
        201,
    )
    .await;
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(created["access_token_ttl"], 3600);
    assert_eq!(created["refresh_reuse_grace"], 10);
    // The secret works at the token endpoint, and is never shown again.
    get_token(&s, &id, &secret, &[]).await;
    let shown = json_of(
        call(&s, &at, Method::GET, &format!("/clients/{id}"), None).await,
        200,
    )
    .await;
    assert!(shown.get("client_secret").is_none());
    let listed = json_of(call(&s, &at, Method::GET, "/clients", None).await, 200).await;
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["client_id"] == id.as_str())
    );

    // The CLI's --json and the API's body are the same JSON.
    let cli = s.cli_json(&["client", "show", &id, "--json"]).unwrap();
    assert_eq!(cli, shown);

    // A bad update is refused, naming the field, and changes nothing.
    let (status, error, desc, _) = oauth_error(
        call(
            &s,
            &at,
            Method::PUT,
            &format!("/clients/{id}"),
            Some(json!({"name": "Renamed", "redirect_uris": ["not a uri"]})),
        )
        .await,
    )
    .await;
    assert_eq!((status, error.as_str()), (400, "invalid_request"));
    assert!(desc.contains("redirect_uris"), "{desc}");
    let again = json_of(
        call(&s, &at, Method::GET, &format!("/clients/{id}"), None).await,
        200,
    )
    .await;
    assert_eq!(again, shown);
    let updated = json_of(
        call(
            &s,
            &at,
            Method::PUT,
            &format!("/clients/{id}"),
            Some(
                json!({"name": "Sunrise Care Group", "scopes": ["upload-data", "view-indicator"]}),
            ),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(updated["name"], "Sunrise Care Group");
    assert_eq!(updated["access_token_ttl"], Value::Null);

    // Mint for a label, list, revoke the label: the token is refused.
    let minted = json_of(
        call(
            &s,
            &at,
            Method::POST,
            &format!("/clients/{id}/tokens"),
            Some(json!({"label": "care-home-042", "scopes": ["view-indicator"]})),
        )
        .await,
        201,
    )
    .await;
    let family = minted["id"].as_str().unwrap().to_owned();
    let token = minted["access_token"].as_str().unwrap().to_owned();
    assert_eq!(minted["token_type"], "Bearer");
    assert_eq!(minted["scope"], "view-indicator");
    assert_eq!(whoami(&s, &token).await.status(), 200);
    let families = json_of(
        call(
            &s,
            &at,
            Method::GET,
            &format!("/clients/{id}/tokens?label=care-home-042"),
            None,
        )
        .await,
        200,
    )
    .await;
    assert_eq!(families.as_array().unwrap().len(), 1);
    assert_eq!(families[0]["id"], family.as_str());
    let labels = json_of(
        call(&s, &at, Method::GET, &format!("/clients/{id}/labels"), None).await,
        200,
    )
    .await;
    assert!(
        labels
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["name"] == "care-home-042")
    );
    let revoked = json_of(
        call(
            &s,
            &at,
            Method::POST,
            &format!("/clients/{id}/revoke"),
            Some(json!({"label": "care-home-042"})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(revoked["revoked"], json!([family]));
    assert_eq!(whoami(&s, &token).await.status(), 401);

    // Unknown client: 404; rotate secret: the new one works.
    let r = call(&s, &at, Method::GET, "/clients/pc_nope", None).await;
    assert_eq!(oauth_error(r).await.0, 404);
    let rotated = json_of(
        call(
            &s,
            &at,
            Method::POST,
            &format!("/clients/{id}/rotate-secret"),
            Some(json!({})),
        )
        .await,
        200,
    )
    .await;
    get_token(&s, &id, rotated["client_secret"].as_str().unwrap(), &[]).await;

    // The audit log names the bearer's client as the actor.
    let audit = json_of(
        call(
            &s,
            &at,
            Method::GET,
            &format!("/audit?client={id}&kind=token.revoke&limit=10"),
            None,
        )
        .await,
        200,
    )
    .await;
    let events = audit.as_array().unwrap();
    assert!(!events.is_empty());
    assert_eq!(events[0]["actor"]["kind"], "client");
    let r = call(&s, &at, Method::GET, "/audit?limit=0", None).await;
    assert_eq!(oauth_error(r).await.0, 400);

    // Delete: 204, then 404.
    let r = call(&s, &at, Method::DELETE, &format!("/clients/{id}"), None).await;
    assert_eq!(r.status(), 204);
    let r = call(&s, &at, Method::GET, &format!("/clients/{id}"), None).await;
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn scopes_keys_and_malformed_bodies() {
    let s = server(&[]);
    let at = admin_token(&s).await;
    let created = json_of(
        call(
            &s,
            &at,
            Method::POST,
            "/scopes",
            Some(json!({"name": "read-reports", "description": "Reports"})),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(
        created,
        json!({"name": "read-reports", "description": "Reports"})
    );
    let r = call(
        &s,
        &at,
        Method::POST,
        "/scopes",
        Some(json!({"name": "read-reports"})),
    )
    .await;
    assert_eq!(oauth_error(r).await.1, "conflict");
    let r = call(
        &s,
        &at,
        Method::POST,
        "/scopes",
        Some(json!({"name": "Bad Name"})),
    )
    .await;
    let (status, _, desc, _) = oauth_error(r).await;
    assert_eq!(status, 400);
    assert!(desc.starts_with("name"), "{desc}");
    let scopes = json_of(call(&s, &at, Method::GET, "/scopes", None).await, 200).await;
    assert!(
        scopes
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == "read-reports")
    );

    let keys = json_of(call(&s, &at, Method::GET, "/keys", None).await, 200).await;
    assert_eq!(keys.as_array().unwrap().len(), 1);
    let rotated = json_of(
        call(
            &s,
            &at,
            Method::POST,
            "/keys/rotate",
            Some(json!({"alg": "ES256"})),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(rotated["alg"], "ES256");
    assert_eq!(rotated["state"], "current");
    let keys = json_of(call(&s, &at, Method::GET, "/keys", None).await, 200).await;
    assert_eq!(keys.as_array().unwrap().len(), 2);
    assert!(
        keys.as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == rotated["kid"] && k["state"] == "current")
    );
    // The admin token signed by the previous key still works.
    json_of(call(&s, &at, Method::GET, "/keys", None).await, 200).await;

    for body in [
        "{",
        "[]",
        "{\"name\": 5}",
        "{\"name\": \"x\", \"surprise\": 1}",
    ] {
        let r = http()
            .post(format!("{}/admin/api/v1/clients", s.url))
            .bearer_auth(&at)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let (status, error, _, _) = oauth_error(r).await;
        assert_eq!((status, error.as_str()), (400, "invalid_request"), "{body}");
    }
    let r = http()
        .post(format!("{}/admin/api/v1/scopes", s.url))
        .bearer_auth(&at)
        .header("content-type", "application/json")
        .body(vec![b' '; 70 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}

#[tokio::test]
async fn a_session_cookie_works_but_unsafe_methods_need_the_csrf_header() {
    let s = server(&[]);
    let mut b = Browser::new(&s);
    b.login("admin", &first_admin_password(&s)).await;
    let (_, csrf) = b.page("/admin/clients").await;
    let cookie = b.cookie_header();
    let r = http()
        .get(format!("{}/admin/api/v1/scopes", s.url))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let post = |token: Option<&str>| {
        let mut req = http()
            .post(format!("{}/admin/api/v1/scopes", s.url))
            .header(COOKIE, &cookie)
            .json(&json!({"name": "from-session"}));
        if let Some(t) = token {
            req = req.header("x-csrf-token", t);
        }
        req.send()
    };
    assert_eq!(post(None).await.unwrap().status(), 403);
    assert_eq!(post(Some("wrong")).await.unwrap().status(), 403);
    assert_eq!(post(Some(&csrf)).await.unwrap().status(), 201);
}

#[tokio::test]
async fn the_openapi_document_lists_the_paths() {
    let s = server(&[]);
    let r = http()
        .get(format!("{}/admin/api/v1/openapi.json", s.url))
        .send()
        .await
        .unwrap();
    let doc = json_of(r, 200).await;
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for p in [
        "/admin/api/v1/clients",
        "/admin/api/v1/clients/{id}",
        "/admin/api/v1/clients/{id}/tokens",
        "/admin/api/v1/clients/{id}/revoke",
        "/admin/api/v1/scopes",
        "/admin/api/v1/keys/rotate",
        "/admin/api/v1/audit",
    ] {
        assert!(doc["paths"].get(p).is_some(), "{p}");
    }
}

#[tokio::test]
async fn swagger_ui_is_served_with_its_own_csp_only_there() {
    let s = server(&[]);
    let r = http()
        .get(format!("{}/admin/api/docs/", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("style-src 'self' 'unsafe-inline'"), "{csp}");
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(r.text().await.unwrap().contains("swagger"));
    let r = http()
        .get(format!("{}/admin/api/docs/swagger-initializer.js", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("/admin/api/v1/openapi.json")
    );
    let r = http()
        .get(format!("{}/admin/api/v1/openapi.json", s.url))
        .send()
        .await
        .unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(!csp.contains("unsafe-inline"), "{csp}");
}
