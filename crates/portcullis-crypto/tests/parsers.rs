//! Property tests of the crypto crate's parsers of untrusted input: compact JWS
//! (the header, the claims, the signature), base64url, presented secrets and
//! public JWKs.
//!
//! Arbitrary and near-valid inputs (a valid token with one character changed,
//! headers of every shape re-signed with the right key, very long tokens) never
//! panic and never verify unless they are exactly what was signed.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_lc_rs::signature::Ed25519KeyPair;
use portcullis_crypto::keys::verify_jws;
use portcullis_crypto::{
    Algorithm, Jwk, JwsError, PlainToken, SigningKey, TokenKind, VerifyingKey, b64, is_ordered_id,
    ordered_id,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

fn config() -> Config {
    Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Runs `test` on [`config`]'s number of values of `strategy`; a failure panics
/// with the smallest failing value proptest found.
fn run<S: Strategy>(strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let mut runner = TestRunner::new(config());
    if let Err(e) = runner.run(&strategy, test) {
        panic!("{e}");
    }
}

/// One key of each algorithm, generated once for the whole file (RSA takes a while).
fn keys() -> &'static [(Vec<u8>, SigningKey, VerifyingKey)] {
    static KEYS: OnceLock<Vec<(Vec<u8>, SigningKey, VerifyingKey)>> = OnceLock::new();
    KEYS.get_or_init(|| {
        [Algorithm::ES256, Algorithm::EdDSA, Algorithm::RS256]
            .into_iter()
            .map(|alg| {
                let (der, key) = SigningKey::generate(alg).unwrap();
                let vk = key.verifying_key().unwrap();
                (der, key, vk)
            })
            .collect()
    })
}

fn claims() -> Value {
    json!({"iss": "https://iss", "sub": "pc_x", "aud": "https://aud", "exp": 4_000_000_000_i64,
           "scope": "upload-data", "jti": "fam_x.1"})
}

/// Verifies with the key set of this file.
fn verify(token: &str) -> Result<Vec<u8>, JwsError> {
    verify_jws(token, |kid| {
        keys()
            .iter()
            .find(|(_, _, vk)| vk.kid() == kid)
            .map(|(_, _, vk)| vk)
    })
}

/// Arbitrary strings shaped more or less like compact JWS.
fn token_like() -> impl Strategy<Value = String> {
    let part = prop_oneof![
        "[A-Za-z0-9_-]{0,60}",
        "[A-Za-z0-9_=+/-]{0,60}",
        any::<Vec<u8>>().prop_map(b64::encode),
        any::<String>(),
    ];
    prop_oneof![
        any::<String>(),
        "[ -~]{0,200}",
        proptest::collection::vec(part, 0..6).prop_map(|p| p.join(".")),
        // Very long tokens.
        (1usize..30_000).prop_map(|n| format!(
            "{}.{}.{}",
            "e".repeat(n),
            "A".repeat(n),
            "_".repeat(n)
        )),
    ]
}

#[test]
fn arbitrary_tokens_never_panic_and_never_verify() {
    run(token_like(), |t| {
        prop_assert!(verify(&t).is_err(), "{t:?} verified");
        Ok(())
    });
}

#[test]
fn a_valid_token_with_one_character_changed_does_not_verify() {
    run(
        (0usize..3, any::<usize>(), any::<char>()),
        |(which, at, c)| {
            let (_, key, _) = &keys()[which];
            let token = key.sign_jwt(&claims()).unwrap();
            prop_assert_eq!(
                verify(&token).map(|p| serde_json::from_slice::<Value>(&p).unwrap()),
                Ok(claims())
            );
            let at = at % token.len();
            let mut changed = token.clone();
            changed.replace_range(at..at + 1, c.encode_utf8(&mut [0; 4]));
            prop_assume!(changed != token);
            prop_assert!(verify(&changed).is_err(), "{changed:?} verified");
            // Cut short, or grown.
            prop_assert!(verify(&token[..at]).is_err());
            let grown = format!("{token}{c}");
            prop_assert!(verify(&grown).is_err());
            Ok(())
        },
    );
}

#[test]
fn a_valid_token_with_one_bit_flipped_does_not_verify() {
    run((0usize..3, any::<usize>(), 0u8..8), |(which, at, bit)| {
        let (_, key, _) = &keys()[which];
        let token = key.sign_jwt(&claims()).unwrap();
        let mut bytes = token.clone().into_bytes();
        let at = at % bytes.len();
        bytes[at] ^= 1 << bit;
        // A flipped bit that is no longer UTF-8 never reaches the verifier as &str.
        if let Ok(changed) = String::from_utf8(bytes) {
            prop_assert!(verify(&changed).is_err(), "{changed:?} verified");
        }
        Ok(())
    });
}

/// A JWS header of any shape: every field present or absent, of the right type or not.
fn header() -> impl Strategy<Value = Value> {
    let alg = prop_oneof![
        8 => Just(json!("EdDSA")),
        1 => Just(json!("eddsa")),
        1 => Just(json!("none")),
        1 => Just(json!("HS256")),
        1 => Just(json!("ES256")),
        1 => Just(json!("RS256")),
        1 => Just(json!(null)),
        1 => Just(json!(1)),
        1 => any::<String>().prop_map(Value::from),
    ];
    let typ = prop_oneof![
        6 => Just(json!("at+jwt")),
        2 => Just(json!("application/at+jwt")),
        1 => Just(json!("AT+JWT")),
        1 => Just(json!("JWT")),
        1 => Just(json!(null)),
        1 => Just(json!(["at+jwt"])),
        1 => any::<String>().prop_map(Value::from),
    ];
    let kid = prop_oneof![
        8 => Just(Value::from("KEY")),
        1 => Just(json!(null)),
        1 => Just(json!(7)),
        1 => any::<String>().prop_map(Value::from),
    ];
    let crit = prop_oneof![
        Just(json!(["exp"])),
        Just(json!([])),
        Just(json!(null)),
        Just(json!("x"))
    ];
    (
        proptest::option::weighted(0.9, alg),
        proptest::option::weighted(0.9, typ),
        proptest::option::weighted(0.9, kid),
        proptest::option::weighted(0.2, crit),
    )
        .prop_map(|(alg, typ, kid, crit)| {
            let mut h = serde_json::Map::new();
            for (k, v) in [("alg", alg), ("typ", typ), ("kid", kid), ("crit", crit)] {
                if let Some(v) = v {
                    h.insert(k.into(), v);
                }
            }
            Value::Object(h)
        })
}

#[test]
fn headers_of_any_shape_verify_only_when_they_name_the_key_and_its_algorithm() {
    let (der, key, _) = &keys()[1];
    assert_eq!(key.alg(), Algorithm::EdDSA);
    let pair = Ed25519KeyPair::from_pkcs8(der).unwrap();
    let kid = key.kid().to_owned();
    let verified = AtomicUsize::new(0);
    run(
        (
            header(),
            prop_oneof![Just(claims()), any::<String>().prop_map(Value::from)],
        ),
        |(mut h, payload)| {
            if h.get("kid") == Some(&Value::from("KEY")) {
                h["kid"] = Value::from(kid.clone());
            }
            let input = format!(
                "{}.{}",
                b64::encode(h.to_string()),
                b64::encode(payload.to_string())
            );
            let token = format!("{input}.{}", b64::encode(pair.sign(input.as_bytes())));
            let expected_ok = h.get("alg") == Some(&json!("EdDSA"))
                && h.get("kid") == Some(&Value::from(kid.clone()))
                && matches!(
                    h.get("typ").and_then(Value::as_str),
                    Some("at+jwt" | "application/at+jwt")
                )
                && h.get("crit").is_none_or(Value::is_null);
            let got = verify(&token);
            prop_assert_eq!(got.is_ok(), expected_ok, "header {} gave {:?}", h, got);
            if expected_ok {
                verified.fetch_add(1, Ordering::Relaxed);
            }
            if let Ok(p) = got {
                prop_assert_eq!(serde_json::from_slice::<Value>(&p).unwrap(), payload);
            }
            Ok(())
        },
    );
    // Not vacuous: some of the generated headers were the right one.
    assert!(verified.load(Ordering::Relaxed) > 0);
}

#[test]
fn base64url_never_panics_and_round_trips() {
    run(
        (
            prop_oneof![any::<String>(), "[A-Za-z0-9_=+/-]{0,100}"],
            any::<Vec<u8>>(),
        ),
        |(s, bytes)| {
            if let Some(b) = b64::decode(&s) {
                prop_assert_eq!(b64::encode(&b), s);
            }
            prop_assert_eq!(b64::decode(&b64::encode(&bytes)), Some(bytes));
            Ok(())
        },
    );
}

#[test]
fn presented_secrets_never_panic_and_selectors_round_trip() {
    let kinds = prop_oneof![
        Just(TokenKind::ClientSecret),
        Just(TokenKind::RefreshToken),
        Just(TokenKind::AuthorizationCode),
        Just(TokenKind::AdminSession),
    ];
    let presented = prop_oneof![
        any::<String>(),
        "pc[a-z]_[0-9A-Z]{0,30}\\.[A-Za-z0-9_-]{0,50}",
        "pcr_[0-9A-HJKMNP-TV-Z]{26}\\.[A-Za-z0-9_-]{43}",
    ];
    run(
        (kinds.clone(), kinds, presented, any::<u64>()),
        |(kind, other, s, millis)| {
            if let Some(sel) = PlainToken::selector(kind, &s) {
                prop_assert!(is_ordered_id(sel));
                prop_assert!(s.starts_with(kind.prefix()));
            }
            let sel = ordered_id("", millis).unwrap();
            let t = PlainToken::generate_with_selector(kind, &sel).unwrap();
            prop_assert_eq!(PlainToken::selector(kind, t.expose()), Some(sel.as_str()));
            if other != kind {
                prop_assert_eq!(PlainToken::selector(other, t.expose()), None);
            }
            // Without a selector: none found.
            let plain = PlainToken::generate(kind).unwrap();
            prop_assert_eq!(PlainToken::selector(kind, plain.expose()), None);
            Ok(())
        },
    );
}

fn jwk() -> impl Strategy<Value = Jwk> {
    let opt = || {
        proptest::option::of(prop_oneof![
            any::<String>(),
            "[A-Za-z0-9_-]{0,400}",
            any::<Vec<u8>>().prop_map(b64::encode),
        ])
    };
    let kty = prop_oneof![Just("RSA"), Just("EC"), Just("OKP"), Just("oct"), Just("")];
    let alg = prop_oneof![
        Just("RS256"),
        Just("ES256"),
        Just("EdDSA"),
        Just("HS256"),
        Just("none")
    ];
    let crv = proptest::option::of(prop_oneof![
        Just("P-256"),
        Just("Ed25519"),
        Just("P-384"),
        Just("X25519")
    ]);
    (kty, alg, crv, opt(), opt(), opt(), opt(), any::<String>()).prop_map(
        |(kty, alg, crv, n, e, x, y, kid)| Jwk {
            kty: kty.into(),
            kid,
            use_: "sig".into(),
            alg: alg.into(),
            n,
            e,
            crv: crv.map(Into::into),
            x,
            y,
        },
    )
}

#[test]
fn public_jwks_of_any_shape_never_panic() {
    run(
        (jwk(), 0usize..3, 0usize..4, "[A-Za-z0-9_-]{0,100}"),
        |(j, which, field, s)| {
            if let Ok(vk) = VerifyingKey::from_jwk(&j) {
                prop_assert_eq!(vk.alg().as_str(), j.alg.as_str());
                prop_assert_eq!(vk.kid(), j.kid.as_str());
            }
            let _ = j.thumbprint();
            // A real key with one of its members replaced.
            let real = keys()[which].1.jwk().clone();
            prop_assert!(VerifyingKey::from_jwk(&real).is_ok());
            let mut changed = real.clone();
            match field {
                0 => changed.n = Some(s.clone()),
                1 => changed.e = Some(s.clone()),
                2 => changed.x = Some(s.clone()),
                _ => changed.y = Some(s.clone()),
            }
            let used = match real.alg.as_str() {
                "RS256" => field <= 1,
                "ES256" => field >= 2,
                _ => field == 2,
            };
            if let Ok(vk) = VerifyingKey::from_jwk(&changed) {
                // Another key (a member it uses was changed) does not verify the real
                // key's tokens.
                let token = keys()[which].1.sign_jwt(&claims()).unwrap();
                let verified = verify_jws(&token, |_| Some(&vk)).is_ok();
                prop_assert!(
                    !(verified && used && changed != real),
                    "{:?} verified",
                    changed
                );
            }
            Ok(())
        },
    );
}
