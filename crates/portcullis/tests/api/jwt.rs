//! Issued tokens verified by an independent JWT implementation (jsonwebtoken)
//! against the served JWKS, for every signing algorithm.

use crate::helpers::*;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use serde_json::Value;

async fn check_alg(alg: &str) {
    let s = server(&["--signing-alg", alg]);
    let (id, secret) = s.create_client("JWT", &[]).unwrap();
    let body = get_token(
        &s,
        &id,
        &secret,
        &[("label", "care-home-042"), ("scope", "upload-data")],
    )
    .await;
    let token = body["access_token"].as_str().unwrap();
    check_token(&s, &id, alg, token).await;
}

/// `token` verifies with jsonwebtoken against the served JWKS, with the claims a
/// labelled `upload-data` token carries; with a byte changed it does not.
async fn check_token(s: &TestServer, id: &str, alg: &str, token: &str) {
    let jwks: JwkSet = serde_json::from_value(jwks(s).await).unwrap();
    let header = decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("at+jwt"));
    assert_eq!(format!("{:?}", header.alg), alg);
    let kid = header.kid.clone().unwrap();
    let jwk = jwks.find(&kid).expect("the token's kid is in the JWKS");
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut v = Validation::new(header.alg);
    v.set_issuer(&[&s.url]);
    v.set_audience(&[&s.url]);
    v.leeway = 0;
    v.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    let data = decode::<Value>(token, &key, &v).unwrap();
    let c = data.claims;
    assert_eq!(c["sub"], id);
    assert_eq!(c["client_id"], id);
    assert_eq!(c["scope"], "upload-data");
    assert_eq!(c["scopes"], serde_json::json!(["upload-data"]));
    assert_eq!(c["label"], "care-home-042");
    assert_eq!(
        c["exp"].as_i64().unwrap() - c["iat"].as_i64().unwrap(),
        86400
    );
    assert_eq!(c["nbf"], c["iat"]);
    assert!(c["jti"].as_str().unwrap().len() > 16);

    // A token with a byte changed fails the same independent check.
    let mut forged = token.to_owned();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    assert!(decode::<Value>(&forged, &key, &v).is_err());
}

/// The value of `portcullis_{es256,eddsa}_signatures_total{presigned="…"}` in a
/// scrape.
async fn presigned_signatures(s: &TestServer, alg: &str, presigned: bool) -> f64 {
    let text = http()
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!(
        "portcullis_{}_signatures_total{{presigned=\"{presigned}\"}} ",
        alg.to_ascii_lowercase()
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn es256_tokens_signed_with_presigned_nonces_verify_and_are_counted() {
    presigned_tokens_verify_and_are_counted("ES256").await;
}

#[tokio::test]
async fn eddsa_tokens_signed_with_presigned_nonces_verify_and_are_counted() {
    presigned_tokens_verify_and_are_counted("EdDSA").await;
}

async fn presigned_tokens_verify_and_are_counted(alg: &str) {
    let s = server(&["--signing-alg", alg]);
    let (id, secret) = s.create_client("Presigned", &[]).unwrap();
    let params = [("label", "care-home-042"), ("scope", "upload-data")];
    // The first signature starts the thread that presigns; it is made whole
    // unless that thread, on an idle core, has made a half before it looks (a
    // race the server does not mind). Tokens issued after the thread has filled
    // some use its nonce halves.
    let first = get_token(&s, &id, &secret, &params).await;
    let mut tokens = vec![first["access_token"].as_str().unwrap().to_owned()];
    assert_eq!(
        presigned_signatures(&s, alg, false).await + presigned_signatures(&s, alg, true).await,
        1.0,
        "the first is counted once"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while presigned_signatures(&s, alg, true).await < 3.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no presigned signature within 30 s"
        );
        let body = get_token(&s, &id, &secret, &params).await;
        tokens.push(body["access_token"].as_str().unwrap().to_owned());
        // Poll gently: the thread that presigns runs at the lowest priority.
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let whole = presigned_signatures(&s, alg, false).await;
    assert_eq!(
        whole + presigned_signatures(&s, alg, true).await,
        tokens.len() as f64,
        "every {alg} signature is counted once"
    );
    let signatures: std::collections::HashSet<&str> = tokens
        .iter()
        .map(|t| t.rsplit('.').next().unwrap())
        .collect();
    assert_eq!(signatures.len(), tokens.len());
    for token in &tokens {
        check_token(&s, &id, alg, token).await;
    }

    // A refresh with presigned halves ready signs after its commit: its access
    // token verifies the same, and a second use of the spent token is refused.
    let rt = first["refresh_token"].as_str().unwrap();
    let before = presigned_signatures(&s, alg, true).await;
    let r = refresh(&s, &id, &secret, rt, None).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    check_token(&s, &id, alg, body["access_token"].as_str().unwrap()).await;
    assert_eq!(presigned_signatures(&s, alg, true).await, before + 1.0);
    let again = refresh(&s, &id, &secret, rt, None).await;
    assert_eq!(again.status(), 400);
}

#[tokio::test]
async fn rs256_tokens_verify_with_an_independent_library() {
    check_alg("RS256").await;
}

#[tokio::test]
async fn es256_tokens_verify_with_an_independent_library() {
    check_alg("ES256").await;
}

#[tokio::test]
async fn eddsa_tokens_verify_with_an_independent_library() {
    check_alg("EdDSA").await;
}

#[tokio::test]
async fn a_label_free_token_has_no_label_claim_and_unique_jtis() {
    let s = server(&[]);
    let (id, secret) = s.create_client("NoLabel", &[]).unwrap();
    let a = get_token(&s, &id, &secret, &[]).await;
    let b = get_token(&s, &id, &secret, &[]).await;
    let claims = |t: &Value| jwt_claims(&at(t));
    assert!(claims(&a).get("label").is_none());
    assert_ne!(claims(&a)["jti"], claims(&b)["jti"]);
}
