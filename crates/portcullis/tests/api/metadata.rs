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
