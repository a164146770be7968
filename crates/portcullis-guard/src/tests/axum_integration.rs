//! The extractor and the scope layer inside an axum router, answered exactly
//! like the Portcullis server's resource API.

use super::*;
use crate::{BearerError, Caller, Guard, IntrospectionConfig, RequireScope};
use axum::body::{Body, to_bytes};
use axum::http::{Request, StatusCode, header};
use axum::routing::{get, post};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tower::ServiceExt;

async fn whoami(caller: Caller) -> Json<Value> {
    Json(json!({
        "client_id": caller.client_id,
        "label": caller.label,
        "scopes": caller.scopes,
        "jti": caller.jti,
    }))
}

fn app(guard: &Arc<Guard>) -> Router {
    Router::new()
        .route("/hello", get(whoami))
        .route(
            "/upload",
            post(whoami).route_layer(RequireScope::new("upload-data")),
        )
        .route(
            "/admin",
            get(|| async { "secret" }).route_layer(RequireScope::new("admin")),
        )
        .layer(guard.layer())
}

struct Answer {
    status: StatusCode,
    www: Option<String>,
    retry_after: Option<String>,
    body: Value,
}

async fn call(app: &Router, req: Request<Body>) -> Answer {
    let r = app.clone().oneshot(req).await.unwrap();
    let status = r.status();
    let h = |name| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let www = h(header::WWW_AUTHENTICATE);
    let retry_after = h(header::RETRY_AFTER);
    let bytes = to_bytes(r.into_body(), 1 << 20).await.unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    Answer {
        status,
        www,
        retry_after,
        body,
    }
}

fn get_with(uri: &str, token: Option<&str>) -> Request<Body> {
    let mut b = Request::get(uri);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    b.body(Body::empty()).unwrap()
}

fn post_with(uri: &str, token: &str) -> Request<Body> {
    Request::post(uri)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap()
}

#[tokio::test]
async fn the_caller_extractor_exposes_client_label_and_scopes() {
    let key = TestKey::rsa("k1");
    let issuer = FakeIssuer::start(&[&key]).await;
    let guard = Arc::new(issuer.guard().await);
    let app = app(&guard);
    let token = key.sign(&issuer.claims());
    let a = call(&app, get_with("/hello", Some(&token))).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.body,
        json!({"client_id": "pc_client", "label": "care-home-042",
               "scopes": ["upload-data", "view-indicator"], "jti": "fam_1.abc"})
    );
    let a = call(&app, post_with("/upload", &token)).await;
    assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    assert_eq!(a.body["client_id"], "pc_client");
}

#[tokio::test]
async fn errors_are_the_servers_rfc_6750_answers() {
    let key = TestKey::rsa("k1");
    let issuer = FakeIssuer::start(&[&key]).await;
    let guard = Arc::new(issuer.guard().await);
    let app = app(&guard);

    let a = call(&app, get_with("/hello", None)).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    // No credentials at all: the realm, no error code (RFC 6750 §3.1).
    assert_eq!(a.www.as_deref(), Some(r#"Bearer realm="portcullis""#));
    assert_eq!(
        a.body,
        json!({"error": "invalid_token", "error_description": "no bearer token"})
    );

    let mut c = issuer.claims();
    c["exp"] = (now() - 3600).into();
    let a = call(&app, get_with("/hello", Some(&key.sign(&c)))).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        a.www.as_deref(),
        Some(
            r#"Bearer realm="portcullis", error="invalid_token", error_description="the token has expired""#
        )
    );

    // A token without upload-data: 403 naming the scope.
    let mut c = issuer.claims();
    c["scope"] = "view-indicator".into();
    c["scopes"] = json!(["view-indicator"]);
    let a = call(&app, post_with("/upload", &key.sign(&c))).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(
        a.www.as_deref(),
        Some(
            r#"Bearer realm="portcullis", error="insufficient_scope", error_description="this request needs the upload-data scope", scope="upload-data""#
        )
    );
    assert_eq!(
        a.body,
        json!({"error": "insufficient_scope",
               "error_description": "this request needs the upload-data scope"})
    );
    // An invalid token on a scoped route is 401, not 403.
    let a = call(&app, post_with("/upload", "nonsense")).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let token = key.sign(&issuer.claims());
    let a = call(&app, get_with("/admin", Some(&token))).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_token_sent_twice_is_an_invalid_request() {
    let key = TestKey::ec("k1");
    let issuer = FakeIssuer::start(&[&key]).await;
    let guard = Arc::new(issuer.guard().await);
    let app = app(&guard);
    let token = key.sign(&issuer.claims());

    let two_headers = Request::get("/hello")
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let a = call(&app, two_headers).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.body["error"], "invalid_request");
    assert!(
        a.www
            .unwrap()
            .starts_with(r#"Bearer realm="portcullis", error="invalid_request""#)
    );

    let a = call(
        &app,
        get_with(&format!("/hello?access_token={token}"), Some(&token)),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        a.body["error_description"],
        "the token was sent both in the header and in the query"
    );
    let a = call(
        &app,
        get_with(&format!("/hello?access_token={token}"), None),
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    // Other query parameters are fine.
    let a = call(&app, get_with("/hello?page=2", Some(&token))).await;
    assert_eq!(a.status, StatusCode::OK);
    // Basic, or no scheme, is not a bearer token.
    let basic = Request::get("/hello")
        .header(header::AUTHORIZATION, "Basic YTpi")
        .body(Body::empty())
        .unwrap();
    assert_eq!(call(&app, basic).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_realm_is_configurable() {
    let key = TestKey::rsa("k1");
    let issuer = FakeIssuer::start(&[&key]).await;
    let guard = Arc::new(
        Guard::discover(issuer.config().with_realm("care-data"))
            .await
            .unwrap(),
    );
    let app = app(&guard);
    let a = call(&app, get_with("/hello", None)).await;
    assert_eq!(a.www.as_deref(), Some(r#"Bearer realm="care-data""#));
    let a = call(&app, get_with("/hello", Some("not-a-jwt"))).await;
    assert!(
        a.www
            .unwrap()
            .starts_with(r#"Bearer realm="care-data", error="invalid_token""#)
    );
    let a = call(&app, get_with("/admin", Some(&key.sign(&issuer.claims())))).await;
    assert!(
        a.www
            .unwrap()
            .starts_with(r#"Bearer realm="care-data", error="insufficient_scope""#)
    );
}

#[tokio::test]
async fn an_unreachable_introspection_endpoint_is_a_503_with_retry_after() {
    let key = TestKey::rsa("k1");
    let issuer = FakeIssuer::start(&[&key]).await;
    let ic = IntrospectionConfig::new("pc_guard", "s");
    let guard = Arc::new(
        Guard::discover(issuer.config().with_introspection(ic))
            .await
            .unwrap(),
    );
    issuer
        .state
        .introspection_status
        .store(502, Ordering::SeqCst);
    let a = call(
        &app(&guard),
        get_with("/hello", Some(&key.sign(&issuer.claims()))),
    )
    .await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(a.body["error"], "temporarily_unavailable");
    assert_eq!(a.retry_after.as_deref(), Some("5"));
    assert_eq!(a.www, None, "the token was not found invalid");
}

#[tokio::test]
async fn a_route_without_the_guard_layer_is_a_500_not_an_open_door() {
    let key = TestKey::rsa("k1");
    let issuer = FakeIssuer::start(&[&key]).await;
    let token = key.sign(&issuer.claims());
    let app = Router::new().route("/hello", get(whoami)).route(
        "/upload",
        post(whoami).route_layer(RequireScope::new("upload-data")),
    );
    let a = call(&app, get_with("/hello", Some(&token))).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(a.body["error"], "server_error");
    let a = call(&app, post_with("/upload", &token)).await;
    assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
}

#[tokio::test]
async fn the_scope_layer_and_the_extractor_verify_the_token_once() {
    let key = TestKey::rsa("k1");
    let issuer = FakeIssuer::start(&[&key]).await;
    let ic = IntrospectionConfig::new("pc_guard", "s").with_cache_ttl(Duration::ZERO);
    let guard = Arc::new(
        Guard::discover(issuer.config().with_introspection(ic))
            .await
            .unwrap(),
    );
    let a = call(
        &app(&guard),
        post_with("/upload", &key.sign(&issuer.claims())),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    // With no caching, a second verification would have asked again.
    assert_eq!(issuer.introspection_hits(), 1);
}

#[test]
fn bearer_errors_render_without_a_guard() {
    use axum::response::IntoResponse;
    let r = BearerError::InvalidToken("bad \"quote\" \\ é".into())
        .with_realm("r")
        .into_response();
    assert_eq!(
        r.headers()[header::WWW_AUTHENTICATE],
        r#"Bearer realm="r", error="invalid_token", error_description="bad quote  ""#
    );
}
