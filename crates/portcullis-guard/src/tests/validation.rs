//! One token at a time: what is accepted and every way a token is refused.

use super::*;
use crate::{BearerError, Guard, GuardError};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

fn refused(r: Result<crate::Claims, BearerError>) -> String {
    match r {
        Err(BearerError::InvalidToken(d)) => d,
        other => panic!("expected invalid_token, got {other:?}"),
    }
}

#[tokio::test]
async fn a_valid_token_of_each_algorithm_is_accepted_and_its_claims_read() {
    let (rsa, ec, ed) = (TestKey::rsa("r1"), TestKey::ec("e1"), TestKey::ed("d1"));
    let issuer = FakeIssuer::start(&[&rsa, &ec, &ed]).await;
    let guard = issuer.guard().await;
    for key in [&rsa, &ec, &ed] {
        let c = guard.verify(&key.sign(&issuer.claims())).await.unwrap();
        assert_eq!(c.client_id, "pc_client");
        assert_eq!(c.label.as_deref(), Some("care-home-042"));
        assert_eq!(c.scope_list(), ["upload-data", "view-indicator"]);
        assert_eq!(c.iss, issuer.url);
    }
    // Keys are parsed once: verifying never fetched the JWKS again.
    assert_eq!(issuer.jwks_hits(), 1);
}

#[tokio::test]
async fn alg_none_is_refused() {
    let key = TestKey::rsa("k1");
    let issuer = FakeIssuer::start(&[&key]).await;
    let guard = issuer.guard().await;
    for header in [
        json!({"alg": "none", "typ": "at+jwt", "kid": "k1"}),
        json!({"alg": "none", "typ": "at+jwt"}),
        json!({"alg": "None", "typ": "at+jwt", "kid": "k1"}),
    ] {
        let unsigned = format!(
            "{}.{}.",
            b64(header.to_string()),
            b64(issuer.claims().to_string())
        );
        refused(guard.verify(&unsigned).await);
    }
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused_even_if_hs256_is_configured() {
    let key = TestKey::rsa("k1");
    let issuer = FakeIssuer::start(&[&key]).await;
    let config = issuer
        .config()
        .with_algorithms([Algorithm::RS256, Algorithm::HS256]);
    let guard = Guard::discover(config).await.unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some("k1".into());
    for secret in [key.public_der.clone(), key.jwk.to_string().into_bytes()] {
        let forged = jsonwebtoken::encode(
            &header,
            &issuer.claims(),
            &EncodingKey::from_secret(&secret),
        )
        .unwrap();
        let why = refused(guard.verify(&forged).await);
        assert!(why.contains("algorithm"), "{why}");
    }
}

#[tokio::test]
async fn only_hmac_in_the_allow_list_is_a_configuration_error() {
    let key = TestKey::rsa("k1");
    let issuer = FakeIssuer::start(&[&key]).await;
    let config = issuer.config().with_algorithms([Algorithm::HS256]);
    assert!(matches!(
        Guard::discover(config).await,
        Err(GuardError::Config(_))
    ));
}

#[tokio::test]
async fn a_token_signed_by_another_key_under_our_kid_is_refused() {
    let ours = TestKey::rsa("k1");
    let theirs = TestKey::rsa("k1");
    let issuer = FakeIssuer::start(&[&ours]).await;
    let guard = issuer.guard().await;
    let why = refused(guard.verify(&theirs.sign(&issuer.claims())).await);
    assert_eq!(why, "the token's signature is invalid");
    // Same with an EC key claiming our RSA kid: the algorithm is not the key's.
    let ec = TestKey::ec("k1");
    let why = refused(guard.verify(&ec.sign(&issuer.claims())).await);
    assert_eq!(why, "the token's alg is not its key's algorithm");
}

#[tokio::test]
async fn the_header_alg_must_equal_the_keys_alg_even_within_the_allow_list() {
    let key = TestKey::rsa("k1"); // published with alg RS256
    let issuer = FakeIssuer::start(&[&key]).await;
    let config = issuer
        .config()
        .with_algorithms([Algorithm::RS256, Algorithm::RS384]);
    let guard = Guard::discover(config).await.unwrap();
    let mut header = key.header();
    header.alg = Algorithm::RS384;
    // A genuine RS384 signature by the right private key: still refused.
    let token = key.sign_with(&header, &issuer.claims());
    let why = refused(guard.verify(&token).await);
    assert_eq!(why, "the token's alg is not its key's algorithm");
}

#[tokio::test]
async fn a_tampered_payload_is_refused() {
    let key = TestKey::ec("k1");
    let issuer = FakeIssuer::start(&[&key]).await;
    let guard = issuer.guard().await;
    let token = key.sign(&issuer.claims());
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims = issuer.claims();
    claims["scope"] = "admin upload-data".into();
    let forged = format!("{}.{}.{}", parts[0], b64(claims.to_string()), parts[2]);
    assert_eq!(
        refused(guard.verify(&forged).await),
        "the token's signature is invalid"
    );
    guard.verify(&token).await.unwrap();
}

#[tokio::test]
async fn issuer_and_audience_must_be_ours() {
    let key = TestKey::ed("k1");
    let issuer = FakeIssuer::start(&[&key]).await;
    let guard = issuer.guard().await;
    let mut c = issuer.claims();
    c["iss"] = "https://evil.test".into();
    assert_eq!(
        refused(guard.verify(&key.sign(&c)).await),
        "the token is from another issuer"
    );
    let mut c = issuer.claims();
    c["aud"] = "https://other-api.test".into();
    assert_eq!(
        refused(guard.verify(&key.sign(&c)).await),
        "the token is not meant for this audience"
    );
    let mut c = issuer.claims();
    c["aud"] = json!(["https://other-api.test", AUDIENCE]);
    guard.verify(&key.sign(&c)).await.unwrap();
}

#[tokio::test]
async fn expiry_is_honoured_with_the_leeway_and_not_beyond() {
    let key = TestKey::rsa("k1");
    let issuer = FakeIssuer::start(&[&key]).await;
    let guard = issuer.guard().await; // leeway 30 s
    let mut c = issuer.claims();
    c["exp"] = (now() - 10).into();
    guard.verify(&key.sign(&c)).await.unwrap();
    c["exp"] = (now() - 60).into();
    assert_eq!(
        refused(guard.verify(&key.sign(&c)).await),
        "the token has expired"
    );
    let strict = Guard::discover(issuer.config().with_leeway(Duration::ZERO))
        .await
        .unwrap();
    c["exp"] = (now() - 10).into();
    refused(strict.verify(&key.sign(&c)).await);
}

#[tokio::test]
async fn a_token_not_valid_yet_is_refused_beyond_the_leeway() {
    let key = TestKey::rsa("k1");
    let issuer = FakeIssuer::start(&[&key]).await;
    let guard = issuer.guard().await;
    let mut c = issuer.claims();
    c["nbf"] = (now() + 10).into();
    guard.verify(&key.sign(&c)).await.unwrap();
    c["nbf"] = (now() + 120).into();
    assert_eq!(
        refused(guard.verify(&key.sign(&c)).await),
        "the token is not valid yet (nbf)"
    );
}

#[tokio::test]
async fn a_token_over_8_kib_is_refused_before_parsing() {
    let key = TestKey::rsa("k1");
    let issuer = FakeIssuer::start(&[&key]).await;
    let guard = issuer.guard().await;
    let mut c = issuer.claims();
    c["padding"] = "x".repeat(6000).into();
    let token = key.sign(&c);
    assert!(token.len() > 8 * 1024);
    assert_eq!(
        refused(guard.verify(&token).await),
        "the token is larger than 8 KiB"
    );
    // Not even a JWT: refused for its size, not its shape.
    assert_eq!(
        refused(guard.verify(&"a".repeat(8 * 1024 + 1)).await),
        "the token is larger than 8 KiB"
    );
    // A large but permitted token is fine.
    c["padding"] = "x".repeat(3000).into();
    guard.verify(&key.sign(&c)).await.unwrap();
}

#[tokio::test]
async fn only_at_jwt_typed_tokens_are_access_tokens() {
    let key = TestKey::ec("k1");
    let issuer = FakeIssuer::start(&[&key]).await;
    let guard = issuer.guard().await;
    for typ in [Some("JWT"), None, Some("at+jwt+x")] {
        let mut h = key.header();
        h.typ = typ.map(str::to_owned);
        let why = refused(guard.verify(&key.sign_with(&h, &issuer.claims())).await);
        assert!(why.contains("typ must be at+jwt"), "{why}");
    }
    for typ in ["application/at+jwt", "AT+JWT"] {
        let mut h = key.header();
        h.typ = Some(typ.into());
        guard
            .verify(&key.sign_with(&h, &issuer.claims()))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn crit_headers_missing_kids_and_missing_claims_are_refused() {
    let key = TestKey::rsa("k1");
    let issuer = FakeIssuer::start(&[&key]).await;
    let guard = issuer.guard().await;
    let mut h = key.header();
    h.crit = Some(vec!["exp".into()]);
    refused(guard.verify(&key.sign_with(&h, &issuer.claims())).await);
    let mut h = key.header();
    h.kid = None;
    assert_eq!(
        refused(guard.verify(&key.sign_with(&h, &issuer.claims())).await),
        "the token has no kid"
    );
    for claim in ["client_id", "jti", "sub", "exp", "iat", "aud", "iss"] {
        let mut c = issuer.claims();
        c.as_object_mut().unwrap().remove(claim);
        refused(guard.verify(&key.sign(&c)).await);
    }
    for garbage in ["", "a.b.c", "....", "eyJ.eyJ.sig"] {
        refused(guard.verify(garbage).await);
    }
}

#[tokio::test]
async fn discovery_requires_the_exact_issuer_and_a_usable_key() {
    let key = TestKey::rsa("k1");
    let issuer = FakeIssuer::start(&[&key]).await;
    *issuer.state.metadata_issuer.lock().unwrap() = Some(format!("{}/", issuer.url));
    assert!(matches!(
        Guard::discover(issuer.config()).await,
        Err(GuardError::IssuerMismatch { .. })
    ));
    *issuer.state.metadata_issuer.lock().unwrap() = None;
    Guard::discover(issuer.config()).await.unwrap();

    // Keys without alg, for encryption, symmetric, or of a disallowed algorithm are skipped.
    let mut no_alg = key.jwk.clone();
    no_alg.as_object_mut().unwrap().remove("alg");
    let mut enc = key.jwk.clone();
    enc["use"] = "enc".into();
    let oct = json!({"kty": "oct", "alg": "HS256", "kid": "h", "k": b64("secret")});
    let odd = json!({"kty": "weird", "kid": "w"});
    issuer.publish_raw(json!({"keys": [no_alg, enc, oct, odd]}));
    assert!(matches!(
        Guard::discover(issuer.config()).await,
        Err(GuardError::NoUsableKeys(_))
    ));
    issuer.publish(&[&key]);
    let only_ec = issuer.config().with_algorithms([Algorithm::ES256]);
    assert!(matches!(
        Guard::discover(only_ec).await,
        Err(GuardError::NoUsableKeys(_))
    ));

    issuer.publish_raw(Value::String("not a jwks".into()));
    assert!(matches!(
        Guard::discover(issuer.config()).await,
        Err(GuardError::Malformed { .. })
    ));
}

#[tokio::test]
async fn a_bad_key_next_to_good_ones_does_not_spoil_the_set() {
    let key = TestKey::ed("k1");
    let issuer = FakeIssuer::start(&[]).await;
    let broken = json!({"kty": "RSA", "alg": "RS256", "kid": "bad", "n": "!!", "e": "AQAB"});
    issuer.publish_raw(json!({"keys": [broken, {"kty": "nonsense"}, key.jwk.clone()]}));
    let guard = issuer.guard().await;
    guard.verify(&key.sign(&issuer.claims())).await.unwrap();
}

#[tokio::test]
async fn a_cached_verification_ends_when_the_token_expires() {
    let key = TestKey::rsa("k1");
    let issuer = FakeIssuer::start(&[&key]).await;
    let guard = Guard::discover(issuer.config().with_leeway(Duration::ZERO))
        .await
        .unwrap();
    let mut c = issuer.claims();
    c["exp"] = (now() + 1).into();
    let token = key.sign(&c);
    guard.verify(&token).await.unwrap();
    guard.verify(&token).await.unwrap();
    assert!(
        eventually(Duration::from_secs(5), || async {
            guard.verify(&token).await
                == Err(BearerError::InvalidToken("the token has expired".into()))
        })
        .await
    );
}
