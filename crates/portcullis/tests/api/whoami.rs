//! `GET /api/v1/whoami` behind the shared bearer extractor (RFC 6750).

use crate::helpers::*;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};
use std::time::Duration;

async fn assert_invalid_token(r: reqwest::Response, why: &str) {
    assert_eq!(r.status(), 401, "{why}");
    let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(
        www.starts_with(
            "Bearer realm=\"portcullis\", error=\"invalid_token\", error_description=\""
        ),
        "{why}: {www}"
    );
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_token", "{why}");
}

fn parts(token: &str) -> (String, Value, String) {
    let mut it = token.split('.');
    let h = it.next().unwrap().to_owned();
    let p: Value = serde_json::from_slice(&B64.decode(it.next().unwrap()).unwrap()).unwrap();
    (h, p, it.next().unwrap().to_owned())
}

#[tokio::test]
async fn whoami_names_the_client_and_the_care_home() {
    let s = server(&[]);
    let (id, secret) = s.create_client("Sunrise Care Group", &[]).unwrap();
    let t = get_token(&s, &id, &secret, &[("label", "care-home-042")]).await;
    let r = whoami(&s, t["access_token"].as_str().unwrap()).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["client_id"], id);
    assert_eq!(body["client_name"], "Sunrise Care Group");
    assert_eq!(body["label"], "care-home-042");
    assert_eq!(body["scopes"], json!(["upload-data", "view-indicator"]));
    assert!(body["expires_at"].as_str().unwrap().ends_with('Z'));
}

#[tokio::test]
async fn missing_malformed_and_oversized_tokens_are_invalid_token() {
    let s = server(&[]);
    let url = format!("{}/api/v1/whoami", s.url);
    // No credentials at all: a challenge with no error code (RFC 6750 §3.1).
    let r = http().get(&url).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer realm=\"portcullis\""
    );
    for (why, header) in [
        ("wrong scheme", "Basic abc"),
        ("no token", "Bearer "),
        ("garbage", "Bearer not-a-jwt"),
        ("four parts", "Bearer a.b.c.d"),
    ] {
        let r = http()
            .get(&url)
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_invalid_token(r, why).await;
    }
    let big = format!("Bearer {}", "a".repeat(8 * 1024 + 1));
    let r = http()
        .get(&url)
        .header("authorization", big)
        .send()
        .await
        .unwrap();
    assert_invalid_token(r, "oversized").await;
}

#[tokio::test]
async fn a_token_in_both_header_and_query_is_invalid_request() {
    let s = server(&[]);
    let (id, secret) = s.create_client("Twice", &[]).unwrap();
    let t = get_token(&s, &id, &secret, &[]).await;
    let at = t["access_token"].as_str().unwrap();
    let r = http()
        .get(format!("{}/api/v1/whoami?access_token={at}", s.url))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let www = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(www.contains("error=\"invalid_request\""), "{www}");
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    let s = server(&[]);
    let (id, secret) = s.create_client("Target", &[]).unwrap();
    let t = get_token(&s, &id, &secret, &[]).await;
    let token = t["access_token"].as_str().unwrap();
    let (h, mut p, sig) = parts(token);
    let kid = kid(token);

    // alg: none, with and without a signature.
    let none = B64.encode(json!({"alg": "none", "kid": kid, "typ": "at+jwt"}).to_string());
    let body = B64.encode(p.to_string());
    assert_invalid_token(whoami(&s, &format!("{none}.{body}.")).await, "alg none").await;
    assert_invalid_token(
        whoami(&s, &format!("{none}.{body}.{sig}")).await,
        "alg none + sig",
    )
    .await;

    // HS256 keyed with the public modulus (key confusion).
    let jwks = jwks(&s).await;
    let n = B64.decode(jwks["keys"][0]["n"].as_str().unwrap()).unwrap();
    let mut hs = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs.kid = Some(kid.clone());
    hs.typ = Some("at+jwt".into());
    let confused =
        jsonwebtoken::encode(&hs, &p, &jsonwebtoken::EncodingKey::from_secret(&n)).unwrap();
    assert_invalid_token(whoami(&s, &confused).await, "HS256 with the public key").await;

    // Tampered payload: wider scopes, same signature.
    p["scopes"] = json!(["upload-data", "view-indicator", "admin"]);
    let tampered = format!("{h}.{}.{sig}", B64.encode(p.to_string()));
    assert_invalid_token(whoami(&s, &tampered).await, "tampered").await;

    // Unknown kid.
    let other_kid = B64.encode(json!({"alg": "RS256", "kid": "nope", "typ": "at+jwt"}).to_string());
    let (_, p2, sig2) = parts(token);
    let unknown = format!("{other_kid}.{}.{sig2}", B64.encode(p2.to_string()));
    assert_invalid_token(whoami(&s, &unknown).await, "unknown kid").await;

    // A token from another Portcullis (other keys, other issuer).
    let other = server(&[]);
    let (oid, osecret) = other.create_client("Elsewhere", &[]).unwrap();
    let ot = get_token(&other, &oid, &osecret, &[]).await;
    assert_invalid_token(
        whoami(&s, ot["access_token"].as_str().unwrap()).await,
        "other server",
    )
    .await;

    // Signed by that other key, but claiming our kid and our issuer and audience.
    let (_, mut op, osig) = parts(ot["access_token"].as_str().unwrap());
    op["iss"] = json!(s.url);
    op["aud"] = json!(s.url);
    op["client_id"] = json!(id);
    let our_kid = B64.encode(json!({"alg": "RS256", "kid": kid, "typ": "at+jwt"}).to_string());
    let impostor = format!("{our_kid}.{}.{osig}", B64.encode(op.to_string()));
    assert_invalid_token(whoami(&s, &impostor).await, "other key under our kid").await;
}

#[tokio::test]
async fn a_token_for_another_issuer_or_audience_is_refused() {
    let mut s = server(&["--issuer", "https://a.example"]);
    let (id, secret) = s.create_client("Moved", &[]).unwrap();
    let t = get_token(&s, &id, &secret, &[]).await;
    let at = t["access_token"].as_str().unwrap().to_owned();
    assert_eq!(whoami(&s, &at).await.status(), 200);
    // Same keys, another issuer.
    s.restart(&["--issuer", "https://b.example"]).unwrap();
    assert_invalid_token(whoami(&s, &at).await, "issuer").await;
    // Same issuer, another audience.
    s.restart(&[
        "--issuer",
        "https://a.example",
        "--audience",
        "https://api.example",
    ])
    .unwrap();
    assert_invalid_token(whoami(&s, &at).await, "audience").await;
    // Back as it was: the token works again (nothing else was wrong with it).
    s.restart(&["--issuer", "https://a.example"]).unwrap();
    assert_eq!(whoami(&s, &at).await.status(), 200);
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let s = server(&[]);
    let (id, secret) = s.create_client("Brief", &[]).unwrap();
    let t = get_token(&s, &id, &secret, &[]).await;
    assert_eq!(t["expires_in"], 86_400);
    let token = at(&t);
    // Accepted, and so in the server's cache of verified tokens, which must not
    // outlive `exp`.
    assert_eq!(whoami(&s, &token).await.status(), 200);
    // The test's own seconds since the token was issued stay well under 10.
    s.advance_clock(86_400 - 10).unwrap();
    assert_eq!(whoami(&s, &token).await.status(), 200, "not yet expired");
    s.advance_clock(11).unwrap();
    let r = whoami(&s, &token).await;
    assert_eq!(r.status(), 401);
    let www = challenge(&r).unwrap();
    assert!(
        www.starts_with(r#"Bearer realm="portcullis", error="invalid_token""#),
        "{www}"
    );
    assert!(www.contains("expired"), "{www}");
    // Expired, not refused for any other reason: a new token works at the new time,
    // and so does one the CLI mints (the CLI keeps the server's time).
    let fresh = access_token(&s, &id, &secret, &[]).await;
    assert_eq!(whoami(&s, &fresh).await.status(), 200);
    let minted = s
        .cli_json(&["token", "issue", "--client", &id, "--json"])
        .unwrap();
    assert_eq!(whoami(&s, &at(&minted)).await.status(), 200);
}

#[tokio::test]
async fn tokens_of_a_disabled_or_deleted_client_stop_working_for_good() {
    let s = server(&[]);
    let (id, secret) = s.create_client("Stolen laptop", &[]).unwrap();
    let t = get_token(&s, &id, &secret, &[]).await;
    let at = t["access_token"].as_str().unwrap();
    assert_eq!(whoami(&s, at).await.status(), 200);
    s.cli(&["client", "disable", &id]).unwrap();
    let refused = eventually(Duration::from_secs(3), || async {
        whoami(&s, at).await.status() == 401
    });
    assert!(refused.await);
    // Enabling the client again does not bring its revoked tokens back; new ones work
    // (once past the second of the revocation: `iat` has one-second resolution).
    s.cli(&["client", "enable", &id]).unwrap();
    let fresh = std::sync::Mutex::new(String::new());
    let works = eventually(Duration::from_secs(4), || async {
        let r = token_basic(&s, &id, &secret, &[("grant_type", "client_credentials")]).await;
        if r.status() != 200 {
            return false;
        }
        let body: Value = r.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap().to_owned();
        let ok = whoami(&s, &token).await.status() == 200;
        *fresh.lock().unwrap() = token;
        ok
    });
    assert!(works.await);
    assert_eq!(whoami(&s, at).await.status(), 401);
    let at2 = fresh.lock().unwrap().clone();
    s.cli(&["client", "delete", &id]).unwrap();
    let gone = eventually(Duration::from_secs(3), || async {
        whoami(&s, &at2).await.status() == 401
    });
    assert!(gone.await);
}

#[tokio::test]
async fn an_admin_minted_token_is_accepted() {
    let s = server(&[]);
    let (id, _) = s.create_client("Device without OAuth", &[]).unwrap();
    let v = s
        .cli_json(&[
            "token",
            "issue",
            "--client",
            &id,
            "--label",
            "care-home-007",
            "--scope",
            "upload-data",
            "--json",
        ])
        .unwrap();
    assert!(v["id"].as_str().unwrap().starts_with("fam_"));
    assert_eq!(v["scope"], "upload-data");
    let r = whoami(&s, v["access_token"].as_str().unwrap()).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["label"], "care-home-007");
    let list = s
        .cli_json(&["token", "list", "--client", &id, "--json"])
        .unwrap();
    assert_eq!(list[0]["id"], v["id"]);
    assert_eq!(list[0]["label"], "care-home-007");
    assert_eq!(list[0]["scopes"], json!(["upload-data"]));
    assert!(list[0]["revoked_at"].is_null());
}
