//! End users and their grants, administered: the admin API (`/admin/api/v1/users…`)
//! and the admin pages (`/admin/users…`). Grants are real ones, made by driving the
//! authorization code flow as a browser would; taking them away is checked where it
//! matters, at the resource API, where their tokens stop working at once.

use crate::admin::{Browser, first_admin_password};
use crate::admin_api::{call, json_of};
use crate::authorize::{self, Fixture, PASSWORD, fixture, oauth_http, query};
use crate::helpers::*;
use oauth2::{AuthorizationCode, TokenResponse};
use portcullis_testkit::TestServer;
use reqwest::Method;
use serde_json::json;

/// Drives the flow for `scopes` (signing in and allowing as needed) and exchanges
/// the code: the access token the application gets.
async fn token_for(f: &Fixture, b: &mut authorize::Browser, scopes: &[&str]) -> String {
    let (url, _, verifier) = f.authorize_url(scopes);
    let back = b.authorize(&f.s, &url, true).await;
    let tokens = f
        .oauth()
        .exchange_code(AuthorizationCode::new(query(&back)["code"].clone()))
        .set_pkce_verifier(verifier)
        .request_async(&oauth_http)
        .await
        .unwrap();
    tokens.access_token().secret().clone()
}

/// The status of a sign-in at `/account`: 303 when it worked, 401 when refused.
async fn sign_in(s: &TestServer, name: &str, password: &str) -> u16 {
    let mut b = authorize::Browser::new();
    let page = b.get(&format!("{}/account", s.url)).await;
    let csrf = page.field("csrf");
    b.post(
        &format!("{}/account/login", s.url),
        &[("csrf", &csrf), ("username", name), ("password", password)],
    )
    .await
    .status
}

async fn status_of(s: &TestServer, token: &str) -> u16 {
    whoami(s, token).await.status().as_u16()
}

/// (status, error, error_description) of a refusal.
async fn refusal(r: reqwest::Response) -> (u16, String, String) {
    let (status, error, description, _) = oauth_error(r).await;
    (status, error, description)
}

#[tokio::test]
async fn users_are_created_listed_disabled_and_given_a_new_password_over_the_api() {
    let s = server(&[]);
    let at = admin_token(&s).await;
    let created = json_of(
        call(
            &s,
            &at,
            Method::POST,
            "/users",
            Some(json!({"name": "alice@example.org", "password": PASSWORD})),
        )
        .await,
        201,
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("usr_"), "{created}");
    assert_eq!(created["name"], "alice@example.org");
    assert_eq!(created["status"], "active");
    let mut keys: Vec<&str> = created
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, ["created_at", "id", "name", "status"], "no password");

    // A taken name, a short password, a name with a space, no password: refused,
    // naming what was wrong, and nothing is created.
    let r = call(
        &s,
        &at,
        Method::POST,
        "/users",
        Some(json!({"name": "alice@example.org", "password": "another password"})),
    )
    .await;
    let (status, error, desc) = refusal(r).await;
    assert_eq!((status, error.as_str()), (409, "conflict"));
    assert!(desc.contains("already exists"), "{desc}");
    for (body, field) in [
        (json!({"name": "bob", "password": "short"}), "password"),
        (json!({"name": "b ob", "password": PASSWORD}), "name"),
        (json!({"name": "bob"}), "password"),
    ] {
        let r = call(&s, &at, Method::POST, "/users", Some(body.clone())).await;
        let (status, error, desc) = refusal(r).await;
        assert_eq!((status, error.as_str()), (400, "invalid_request"), "{body}");
        assert!(desc.contains(field), "{body}: {desc}");
    }
    let listed = json_of(call(&s, &at, Method::GET, "/users", None).await, 200).await;
    assert_eq!(listed, json!([created]));

    // Shown by id; a name is not an id.
    let shown = json_of(
        call(&s, &at, Method::GET, &format!("/users/{id}"), None).await,
        200,
    )
    .await;
    assert_eq!(shown, created);
    for path in ["/users/alice@example.org", "/users/usr_nobody"] {
        let r = call(&s, &at, Method::GET, path, None).await;
        assert_eq!(refusal(r).await.0, 404, "{path}");
    }

    // Disabled: the CLI lists the same JSON, and the user cannot sign in.
    let disabled = json_of(
        call(&s, &at, Method::POST, &format!("/users/{id}/disable"), None).await,
        200,
    )
    .await;
    assert_eq!(disabled["status"], "disabled");
    let cli = s.cli_json(&["user", "list", "--json"]).unwrap();
    assert_eq!(cli, json!([disabled]));
    assert_eq!(sign_in(&s, "alice@example.org", PASSWORD).await, 401);
    let enabled = json_of(
        call(&s, &at, Method::POST, &format!("/users/{id}/enable"), None).await,
        200,
    )
    .await;
    assert_eq!(enabled["status"], "active");
    assert_eq!(sign_in(&s, "alice@example.org", PASSWORD).await, 303);

    // A new password: a short one is refused; then the old one stops working.
    let reset = format!("/users/{id}/reset-password");
    let r = call(
        &s,
        &at,
        Method::POST,
        &reset,
        Some(json!({"password": "short"})),
    )
    .await;
    assert_eq!(refusal(r).await.0, 400);
    let r = call(
        &s,
        &at,
        Method::POST,
        "/users/usr_nobody/reset-password",
        Some(json!({"password": "a brand new password"})),
    )
    .await;
    assert_eq!(refusal(r).await.0, 404);
    json_of(
        call(
            &s,
            &at,
            Method::POST,
            &reset,
            Some(json!({"password": "a brand new password"})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(sign_in(&s, "alice@example.org", PASSWORD).await, 401);
    assert_eq!(
        sign_in(&s, "alice@example.org", "a brand new password").await,
        303
    );

    // Audited, with the bearer's client as the actor.
    for kind in [
        "user.create",
        "user.disable",
        "user.enable",
        "user.password",
    ] {
        let events = s.audit_events(kind).unwrap();
        assert_eq!(events.len(), 1, "{kind}");
        assert_eq!(events[0]["actor"]["kind"], "client", "{kind}");
        assert_eq!(events[0]["target"], id.as_str(), "{kind}");
    }
}

#[tokio::test]
async fn the_user_endpoints_need_credentials() {
    let s = server(&[]);
    let body = json!({"name": "mallory", "password": PASSWORD, "scope": "upload-data"});
    for (method, path) in [
        (Method::GET, "/users"),
        (Method::POST, "/users"),
        (Method::GET, "/users/usr_x"),
        (Method::POST, "/users/usr_x/disable"),
        (Method::POST, "/users/usr_x/enable"),
        (Method::POST, "/users/usr_x/reset-password"),
        (Method::GET, "/users/usr_x/grants"),
        (Method::DELETE, "/users/usr_x/grants/pc_x"),
        (Method::POST, "/users/usr_x/grants/pc_x/remove-scope"),
    ] {
        let r = http()
            .request(method.clone(), format!("{}/admin/api/v1{path}", s.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, error, _, www) = oauth_error(r).await;
        assert_eq!((status, error.as_str()), (401, "invalid_token"), "{path}");
        assert_eq!(
            www.as_deref(),
            Some("Bearer realm=\"portcullis\""),
            "{path}"
        );
    }
    assert_eq!(s.cli_json(&["user", "list", "--json"]).unwrap(), json!([]));
}

#[tokio::test]
async fn a_grant_is_listed_narrowed_and_revoked_over_the_api_and_its_tokens_stop_at_once() {
    let f = fixture();
    let at = admin_token(&f.s).await;
    let grants = format!("/users/{}/grants", f.user_id);
    let grant = format!("{grants}/{}", f.client_id);
    let remove = format!("{grant}/remove-scope");
    let (s, token, path) = (&f.s, at.as_str(), grants.as_str());
    let list =
        move || async move { json_of(call(s, token, Method::GET, path, None).await, 200).await };
    assert_eq!(list().await, json!([]));
    // No grant yet: nothing to revoke or narrow.
    let r = call(&f.s, &at, Method::DELETE, &grant, None).await;
    assert_eq!(refusal(r).await.0, 404);
    let r = call(
        &f.s,
        &at,
        Method::POST,
        &remove,
        Some(json!({"scope": "view-indicator"})),
    )
    .await;
    assert_eq!(refusal(r).await.0, 404);

    let mut b = authorize::Browser::new();
    let first = token_for(&f, &mut b, &["view-indicator", "upload-data"]).await;
    assert_eq!(status_of(&f.s, &first).await, 200);
    let listed = list().await;
    let g = &listed.as_array().unwrap()[..];
    assert_eq!(g.len(), 1, "{listed}");
    assert_eq!(g[0]["client_id"], f.client_id.as_str());
    assert_eq!(g[0]["client_name"], "Care Diary");
    let mut scopes: Vec<&str> = g[0]["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    scopes.sort_unstable();
    assert_eq!(scopes, ["upload-data", "view-indicator"]);
    assert!(g[0]["created_at"].is_string());
    assert!(g[0].get("last_used_at").is_some());

    // A scope the grant does not include: 404, and its tokens keep working.
    let r = call(
        &f.s,
        &at,
        Method::POST,
        &remove,
        Some(json!({"scope": "introspect"})),
    )
    .await;
    assert_eq!(refusal(r).await.0, 404);
    assert_eq!(status_of(&f.s, &first).await, 200);

    // One scope removed: the grant as it now is; its tokens stop at once.
    let narrowed = json_of(
        call(
            &f.s,
            &at,
            Method::POST,
            &remove,
            Some(json!({"scope": "upload-data"})),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(narrowed["scopes"], json!(["view-indicator"]));
    assert_eq!(narrowed["client_id"], f.client_id.as_str());
    assert_eq!(status_of(&f.s, &first).await, 401);

    // The scope left needs no consent again; removing it too ends the grant.
    let second = token_for(&f, &mut b, &["view-indicator"]).await;
    assert_eq!(status_of(&f.s, &second).await, 200);
    let r = call(
        &f.s,
        &at,
        Method::POST,
        &remove,
        Some(json!({"scope": "view-indicator"})),
    )
    .await;
    assert_eq!(r.status(), 204);
    assert_eq!(status_of(&f.s, &second).await, 401);
    assert_eq!(list().await, json!([]));

    // Allowed again, then revoked as a whole.
    let third = token_for(&f, &mut b, &["view-indicator"]).await;
    assert_eq!(status_of(&f.s, &third).await, 200);
    let r = call(&f.s, &at, Method::DELETE, &grant, None).await;
    assert_eq!(r.status(), 204);
    assert_eq!(status_of(&f.s, &third).await, 401);
    assert_eq!(list().await, json!([]));
    let r = call(&f.s, &at, Method::DELETE, &grant, None).await;
    assert_eq!(refusal(r).await.0, 404);

    // Unknown user.
    let r = call(&f.s, &at, Method::GET, "/users/usr_nobody/grants", None).await;
    assert_eq!(refusal(r).await.0, 404);

    // Audited, with the bearer's client as the actor.
    for kind in ["consent.narrow", "consent.revoke"] {
        let events = f.s.audit_events(kind).unwrap();
        assert!(!events.is_empty(), "{kind}");
        assert_eq!(events[0]["actor"]["kind"], "client", "{kind}");
        assert_eq!(events[0]["client_id"], f.client_id.as_str(), "{kind}");
    }
}

/// The `usr_…` id of the first user linked from a page.
fn linked_user_id(html: &str) -> String {
    let i = html.find("/admin/users/usr_").unwrap() + "/admin/users/".len();
    let j = html[i..].find('"').unwrap() + i;
    html[i..j].to_owned()
}

#[tokio::test]
async fn an_admin_creates_disables_and_resets_a_user_in_the_browser() {
    let s = server(&[]);
    let mut b = Browser::new(&s);
    b.login("admin", &first_admin_password(&s)).await;
    let (html, csrf) = b.page("/admin/users").await;
    assert!(html.contains("<a href=\"/admin/users\" aria-current=\"page\">Users</a>"));
    assert!(html.contains("No users yet"));
    let users = || s.cli_json(&["user", "list", "--json"]).unwrap();

    // A forged form is refused and creates nothing.
    let form = [("name", "alice"), ("password", PASSWORD)];
    assert_eq!(b.post("/admin/users", &form, None).await.status(), 403);
    let mut wrong = form.to_vec();
    wrong.push(("csrf", "not-the-token"));
    assert_eq!(b.post("/admin/users", &wrong, None).await.status(), 403);
    assert_eq!(users(), json!([]));

    // Refusals are shown next to their field, the name kept.
    let r = b
        .post(
            "/admin/users",
            &[("csrf", &csrf), ("name", "alice"), ("password", "short")],
            None,
        )
        .await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("a password is 8 to 1024 characters"),
        "{html}"
    );
    assert!(html.contains("value=\"alice\""));
    let r = b
        .post(
            "/admin/users",
            &[("csrf", &csrf), ("name", "al ice"), ("password", PASSWORD)],
            None,
        )
        .await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("a user name is"));
    assert_eq!(users(), json!([]));

    let ok = [
        ("csrf", csrf.as_str()),
        ("name", "alice"),
        ("password", PASSWORD),
    ];
    let r = b.post("/admin/users", &ok, None).await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("User alice created."), "{html}");
    let id = linked_user_id(&html);
    assert_eq!(users()[0]["id"], id.as_str());
    let r = b.post("/admin/users", &ok, None).await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("already exists"));

    // The user's page; disable, and the CLI agrees; enable.
    let page = format!("/admin/users/{id}");
    let (html, csrf) = b.page(&page).await;
    assert!(html.contains("alice") && html.contains("badge active"));
    assert!(html.contains("has not allowed any application"));
    let status = format!("{page}/status");
    let r = b
        .post(&status, &[("csrf", &csrf), ("status", "disabled")], None)
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("badge disabled"));
    assert_eq!(users()[0]["status"], "disabled");
    assert_eq!(sign_in(&s, "alice", PASSWORD).await, 401);
    let r = b
        .post(&status, &[("csrf", &csrf), ("status", "active")], None)
        .await;
    assert!(r.text().await.unwrap().contains("badge active"));
    assert_eq!(users()[0]["status"], "active");

    // Reset the password.
    let reset = format!("{page}/reset-password");
    let r = b
        .post(&reset, &[("csrf", &csrf), ("password", "short")], None)
        .await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("a password is"));
    assert_eq!(sign_in(&s, "alice", PASSWORD).await, 303);
    let r = b
        .post(
            &reset,
            &[("csrf", &csrf), ("password", "a brand new password")],
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Password set"));
    assert_eq!(sign_in(&s, "alice", PASSWORD).await, 401);
    assert_eq!(sign_in(&s, "alice", "a brand new password").await, 303);

    // The list shows the user; an unknown one is 404.
    let (html, _) = b.page("/admin/users").await;
    assert!(html.contains(&format!("<a href=\"/admin/users/{id}\">alice</a>")));
    assert_eq!(b.get("/admin/users/usr_nobody").await.status(), 404);
    let admins = s.audit_events("user.disable").unwrap();
    assert_eq!(admins[0]["actor"], json!({"kind": "admin", "id": "admin"}));
}

#[tokio::test]
async fn an_admin_sees_a_users_grants_in_plain_words_and_takes_them_away_in_the_browser() {
    let f = fixture();
    let mut ub = authorize::Browser::new();
    let first = token_for(&f, &mut ub, &["view-indicator", "upload-data"]).await;
    let mut b = Browser::new(&f.s);
    b.login("admin", &first_admin_password(&f.s)).await;
    let page = format!("/admin/users/{}", f.user_id);
    let (html, csrf) = b.page(&page).await;
    for shown in [
        "Care Diary",
        "Read indicators computed from uploaded data",
        "Send data records to the resource API",
        "Revoke access",
    ] {
        assert!(html.contains(shown), "{shown}: {html}");
    }
    let grant = format!("{page}/grants/{}", f.client_id);

    // A forged revocation is refused and the tokens keep working.
    let forged = b.post(&format!("{grant}/revoke"), &[], None).await;
    assert_eq!(forged.status(), 403);
    let forged = b
        .post(
            &format!("{grant}/revoke"),
            &[("csrf", &csrf)],
            Some("https://evil.example"),
        )
        .await;
    assert_eq!(forged.status(), 403);
    assert_eq!(status_of(&f.s, &first).await, 200);

    // One scope removed: the page no longer lists it; the tokens stop at once.
    let r = b
        .post(
            &format!("{grant}/remove-scope"),
            &[("csrf", &csrf), ("scope", "upload-data")],
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("Removed upload-data"), "{html}");
    assert!(!html.contains("<code>upload-data</code>"));
    assert!(html.contains("<code>view-indicator</code>"));
    assert_eq!(status_of(&f.s, &first).await, 401);

    // Access revoked altogether.
    let second = token_for(&f, &mut ub, &["view-indicator"]).await;
    assert_eq!(status_of(&f.s, &second).await, 200);
    let r = b
        .post(&format!("{grant}/revoke"), &[("csrf", &csrf)], None)
        .await;
    assert_eq!(r.status(), 200);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("has not allowed any application")
    );
    assert_eq!(status_of(&f.s, &second).await, 401);
    let r = b
        .post(&format!("{grant}/revoke"), &[("csrf", &csrf)], None)
        .await;
    assert_eq!(r.status(), 404);
    let events = f.s.audit_events("consent.revoke").unwrap();
    assert_eq!(events[0]["actor"], json!({"kind": "admin", "id": "admin"}));
}
