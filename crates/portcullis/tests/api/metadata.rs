//! Discovery (RFC 8414), JWKS (RFC 7517) and health endpoints.

use crate::helpers::*;
use serde_json::Value;

#[tokio::test]
async fn metadata_describes_this_server() {
    let s = server(&["--issuer", "https://auth.care.example"]);
    let r = http()
        .get(format!("{}/.well-known/oauth-authorization-server", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    insta::assert_json_snapshot!("metadata", body);
}

#[tokio::test]
async fn jwks_serves_public_keys_only() {
    for alg in ["RS256", "ES256", "EdDSA"] {
        let s = server(&["--signing-alg", alg]);
        let r = http()
            .get(format!("{}/.well-known/jwks.json", s.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["cache-control"]
                .to_str()
                .unwrap()
                .contains("max-age")
        );
        let body: Value = r.json().await.unwrap();
        let keys = body["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1);
        let k = &keys[0];
        assert_eq!(k["alg"], alg);
        assert_eq!(k["use"], "sig");
        assert!(k["kid"].as_str().unwrap().len() >= 43);
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(k.get(private).is_none(), "{alg} JWK leaks {private}");
        }
        let shape: Vec<&String> = k.as_object().unwrap().keys().collect();
        insta::assert_json_snapshot!(format!("jwk_members_{alg}"), shape);
    }
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let s = server(&[]);
    let r = http()
        .get(format!("{}/healthz", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http()
        .get(format!("{}/readyz", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["status"], "ready");
    let r = http()
        .get(format!("{}/no/such/thing", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
}

#[tokio::test]
async fn another_method_on_an_oauth_endpoint_is_405_with_allow_and_a_json_error() {
    let s = server(&[]);
    for (method, path, allow) in [
        (reqwest::Method::GET, "/oauth/token", "POST"),
        (reqwest::Method::PUT, "/oauth/revoke", "POST"),
        (reqwest::Method::DELETE, "/oauth/introspect", "POST"),
        (reqwest::Method::POST, "/.well-known/jwks.json", "GET, HEAD"),
        (
            reqwest::Method::POST,
            "/.well-known/oauth-authorization-server",
            "GET, HEAD",
        ),
    ] {
        let r = http()
            .request(method.clone(), format!("{}{path}", s.url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 405, "{method} {path}");
        assert_eq!(r.headers()["allow"], allow, "{method} {path}");
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "invalid_request", "{method} {path}");
    }
}

#[tokio::test]
async fn strict_transport_security_is_sent_when_the_issuer_is_https() {
    let plain = server(&[]);
    let r = http()
        .get(format!("{}/.well-known/jwks.json", plain.url))
        .send()
        .await
        .unwrap();
    assert!(!r.headers().contains_key("strict-transport-security"));
    let tls = server(&["--issuer", "https://auth.example.test"]);
    for path in ["/.well-known/jwks.json", "/healthz", "/admin/login"] {
        let r = http()
            .get(format!("{}{path}", tls.url))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.headers()["strict-transport-security"],
            "max-age=31536000",
            "{path}"
        );
    }
}
