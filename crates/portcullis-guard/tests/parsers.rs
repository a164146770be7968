//! Property tests of the guard's parsers of untrusted input: the `Authorization`
//! header (and the `access_token` query parameter), and the bearer token itself,
//! its JWS header and its claims.
//!
//! The guard is pointed at a fake issuer on `127.0.0.1:0` that serves metadata and
//! a JWKS with one Ed25519 key. Arbitrary and near-valid tokens and headers never
//! panic and are refused with RFC 6750's own answers (`invalid_token`, or
//! `invalid_request` for a token sent twice); valid ones pass.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair as _};
use axum::Json;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use portcullis_guard::{BearerError, Caller, Claims, Guard, GuardConfig, bearer_token};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

const AUDIENCE: &str = "https://api.test";
const KID: &str = "k1";

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

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn b64(b: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

/// A fake issuer with one Ed25519 key, and a guard that trusts it.
struct Fixture {
    rt: tokio::runtime::Runtime,
    issuer: String,
    key: Ed25519KeyPair,
    guard: Guard,
}

impl Fixture {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let key = Ed25519KeyPair::generate().unwrap();
        let jwk = json!({
            "kty": "OKP", "use": "sig", "alg": "EdDSA", "kid": KID, "crv": "Ed25519",
            "x": b64(key.public_key().as_ref()),
        });
        let (issuer, guard) = rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let issuer = format!("http://{}", listener.local_addr().unwrap());
            let metadata = json!({"issuer": issuer, "jwks_uri": format!("{issuer}/jwks.json")});
            let jwks = json!({"keys": [jwk]});
            let app = axum::Router::new()
                .route(
                    "/.well-known/oauth-authorization-server",
                    get(move || async move { Json(metadata) }),
                )
                .route("/jwks.json", get(move || async move { Json(jwks) }));
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            let guard = Guard::discover(GuardConfig::new(issuer.clone(), AUDIENCE))
                .await
                .unwrap();
            (issuer, guard)
        });
        Self {
            rt,
            issuer,
            key,
            guard,
        }
    }

    /// Signs any header and claims with the issuer's key.
    fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        format!("{input}.{}", b64(self.key.sign(input.as_bytes())))
    }

    fn header(&self) -> Value {
        json!({"alg": "EdDSA", "typ": "at+jwt", "kid": KID})
    }

    fn claims(&self) -> Value {
        let now = now();
        json!({
            "iss": self.issuer, "sub": "pc_client", "aud": AUDIENCE, "client_id": "pc_client",
            "jti": "fam_1.abc", "iat": now, "nbf": now, "exp": now + 3600,
            "scope": "upload-data", "scopes": ["upload-data"], "label": "care-home-042",
        })
    }

    fn verify(&self, token: &str) -> Result<Claims, BearerError> {
        self.rt.block_on(self.guard.verify(token))
    }
}

/// The status and `error` of the answer a refusal makes (RFC 6750 §3.1).
fn answer(e: BearerError) -> (StatusCode, String) {
    let resp = e.with_realm("portcullis").into_response();
    let status = resp.status();
    let body = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(axum::body::to_bytes(resp.into_body(), usize::MAX))
        .unwrap();
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (
        status,
        json["error"].as_str().unwrap_or_default().to_owned(),
    )
}

fn is_invalid_token(e: BearerError) -> bool {
    answer(e) == (StatusCode::UNAUTHORIZED, "invalid_token".to_owned())
}

fn recase(s: &str, mask: u64) -> String {
    s.chars()
        .enumerate()
        .map(|(i, c)| {
            if mask >> (i % 64) & 1 == 1 {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            }
        })
        .collect()
}

fn replace_char(s: &str, at: usize, c: char) -> String {
    let at = at % s.chars().count().max(1);
    s.chars()
        .enumerate()
        .map(|(i, x)| if i == at { c } else { x })
        .collect()
}

/// An `Authorization` value of any shape.
fn authorization_value() -> impl Strategy<Value = Vec<u8>> {
    let scheme = prop_oneof![
        Just("Bearer"),
        Just("bearer"),
        Just("BEARER"),
        Just("Basic"),
        Just("DPoP"),
        Just("")
    ];
    let sep = prop_oneof![Just(" "), Just("  "), Just("\t"), Just(""), Just(" \t ")];
    let token = prop_oneof![
        "[A-Za-z0-9_.-]{0,80}",
        any::<String>(),
        any::<Vec<u8>>().prop_map(|b| STANDARD.encode(b)),
    ];
    prop_oneof![
        (scheme, sep, token, "[ \\t]{0,2}")
            .prop_map(|(s, sep, t, tail)| format!("{s}{sep}{t}{tail}").into_bytes()),
        any::<Vec<u8>>(),
    ]
}

fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("?access_token=x".to_owned()),
        Just("?a=1&access_token=".to_owned()),
        Just("?access%5Ftoken=x".to_owned()),
        "\\?[a-z_=&%0-9]{0,30}",
    ]
}

#[test]
fn authorization_headers_of_any_shape_give_the_token_or_rfc_6750_errors() {
    let headers = proptest::collection::vec(authorization_value(), 0..3);
    run((headers, query()), |(values, q)| {
        let values: Vec<HeaderValue> = values
            .iter()
            .filter_map(|v| HeaderValue::from_bytes(v).ok())
            .collect();
        let mut req = Request::builder().uri(format!("/hello{q}"));
        for v in &values {
            req = req.header(header::AUTHORIZATION, v.clone());
        }
        let (parts, ()) = req.body(()).unwrap().into_parts();
        let in_query = form_urlencoded::parse(q.trim_start_matches('?').as_bytes())
            .any(|(k, _)| k == "access_token");
        match bearer_token(&parts) {
            Ok(token) => {
                prop_assert!(values.len() == 1 && !in_query);
                let value = values[0].to_str().unwrap();
                let (scheme, rest) = value.split_once(' ').unwrap();
                prop_assert!(scheme.eq_ignore_ascii_case("bearer"), "{}", value);
                prop_assert_eq!(token, rest.trim());
                prop_assert!(!token.is_empty());
            }
            Err(e) => {
                let (status, code) = answer(e.clone());
                match status {
                    StatusCode::BAD_REQUEST => {
                        prop_assert_eq!(code.as_str(), "invalid_request");
                        prop_assert!(values.len() > 1 || in_query, "{:?}", e);
                    }
                    StatusCode::UNAUTHORIZED => {
                        prop_assert_eq!(code.as_str(), "invalid_token");
                        prop_assert!(values.len() <= 1 && !in_query, "{:?}", e);
                    }
                    other => prop_assert!(false, "{} for {:?}", other, e),
                }
            }
        }
        Ok(())
    });
}

#[test]
fn arbitrary_tokens_are_invalid_token() {
    let fx = Fixture::new();
    let token = prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,90}",
        any::<(Vec<u8>, Vec<u8>, Vec<u8>)>().prop_map(|(h, p, s)| format!(
            "{}.{}.{}",
            b64(h),
            b64(p),
            b64(s)
        )),
        // Very long tokens, over and under the 8 KiB limit.
        (1usize..20_000).prop_map(|n| format!("{}.e30.AA", "e".repeat(n))),
    ];
    run(token, |t| {
        let e = fx.verify(&t).unwrap_err();
        prop_assert!(is_invalid_token(e.clone()), "{:?} for {:?}", e, t);
        Ok(())
    });
}

#[test]
fn a_valid_token_with_one_character_changed_is_invalid_token() {
    let fx = Fixture::new();
    let token = fx.sign(&fx.header(), &fx.claims());
    assert!(fx.verify(&token).is_ok());
    run(
        (
            any::<usize>(),
            prop_oneof![
                any::<char>(),
                "[A-Za-z0-9_.=+/-]".prop_map(|s| s.chars().next().unwrap())
            ],
            any::<bool>(),
        ),
        |(at, c, cut)| {
            let changed = if cut {
                token[..at % token.len()].to_owned()
            } else {
                replace_char(&token, at, c)
            };
            prop_assume!(changed != token);
            let e = fx.verify(&changed).unwrap_err();
            prop_assert!(is_invalid_token(e.clone()), "{:?} for {}", e, changed);
            Ok(())
        },
    );
}

#[test]
fn valid_tokens_pass_whatever_the_scheme_case_and_spacing() {
    let fx = Fixture::new();
    let token = fx.sign(&fx.header(), &fx.claims());
    run(
        (any::<u64>(), 1usize..4, "[ \\t]{0,2}"),
        |(mask, spaces, tail)| {
            let value = format!(
                "{}{}{token}{tail}",
                recase("bearer", mask),
                " ".repeat(spaces)
            );
            let (parts, ()) = Request::builder()
                .uri("/hello")
                .header(header::AUTHORIZATION, value)
                .body(())
                .unwrap()
                .into_parts();
            let got = bearer_token(&parts).unwrap();
            prop_assert_eq!(got, token.as_str());
            let claims = fx.verify(got).unwrap();
            prop_assert_eq!(claims.client_id.as_str(), "pc_client");
            Ok(())
        },
    );
}

/// A JWS header of any shape, mostly near the right one.
fn jws_header() -> impl Strategy<Value = Value> {
    let alg = prop_oneof![
        6 => Just(json!("EdDSA")),
        1 => Just(json!("none")),
        1 => Just(json!("HS256")),
        1 => Just(json!("RS256")),
        1 => Just(json!("ES256")),
        1 => Just(json!(null)),
        1 => any::<String>().prop_map(Value::from),
    ];
    let typ = prop_oneof![
        4 => Just(json!("at+jwt")),
        2 => Just(json!("AT+JWT")),
        2 => Just(json!("application/at+jwt")),
        1 => Just(json!("JWT")),
        1 => Just(json!(null)),
        1 => any::<String>().prop_map(Value::from),
    ];
    let kid = prop_oneof![6 => Just(json!(KID)), 1 => Just(json!(null)), 1 => Just(json!(5)), 1 => "[a-z0-9]{0,8}".prop_map(Value::from)];
    let crit = prop_oneof![Just(json!(["exp"])), Just(json!([])), Just(json!("x"))];
    (
        proptest::option::weighted(0.9, alg),
        proptest::option::weighted(0.9, typ),
        proptest::option::weighted(0.9, kid),
        proptest::option::weighted(0.1, crit),
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
fn jws_headers_of_any_shape_pass_only_when_they_name_the_key_typ_and_algorithm() {
    let fx = Fixture::new();
    let passed = AtomicUsize::new(0);
    run(jws_header(), |h| {
        let token = fx.sign(&h, &fx.claims());
        let typ = h
            .get("typ")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_ascii_lowercase();
        let expected = h.get("alg") == Some(&json!("EdDSA"))
            && h.get("kid") == Some(&json!(KID))
            && (typ == "at+jwt" || typ == "application/at+jwt")
            && h.get("crit").is_none();
        match fx.verify(&token) {
            Ok(_) => {
                prop_assert!(expected, "{} passed", h);
                passed.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                prop_assert!(!expected, "{} refused: {:?}", h, e);
                prop_assert!(is_invalid_token(e.clone()), "{:?} for {}", e, h);
            }
        }
        Ok(())
    });
    assert!(passed.load(Ordering::Relaxed) > 0);
}

/// Claims with members missing, of the wrong type, or at extremes.
fn claims_changes() -> impl Strategy<Value = Vec<(usize, Option<Value>)>> {
    let value = prop_oneof![
        Just(json!(null)),
        Just(json!(0)),
        Just(json!(-1)),
        Just(json!(1.5)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MAX)),
        Just(json!("x")),
        Just(json!([])),
        Just(json!({})),
        Just(json!(AUDIENCE)),
        Just(json!([AUDIENCE, "other"])),
        Just(json!("")),
        any::<String>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![Just(-3600i64), Just(3600), Just(-7200), Just(100_000)]
            .prop_map(|d| { Value::from(i64::try_from(now()).unwrap() + d) }),
    ];
    proptest::collection::vec((0usize..11, proptest::option::weighted(0.85, value)), 0..4)
}

const NAMES: [&str; 11] = [
    "iss",
    "sub",
    "aud",
    "client_id",
    "jti",
    "iat",
    "nbf",
    "exp",
    "scope",
    "scopes",
    "label",
];

fn change_claims(mut claims: Value, changes: &[(usize, Option<Value>)]) -> Value {
    for (i, v) in changes {
        match v {
            Some(v) => claims[NAMES[*i]] = v.clone(),
            None => {
                claims.as_object_mut().unwrap().remove(NAMES[*i]);
            }
        }
    }
    claims
}

#[test]
fn claims_of_any_shape_are_refused_or_accepted_by_the_rules() {
    let fx = Fixture::new();
    let passed = AtomicUsize::new(0);
    run(claims_changes(), |changes| {
        let claims = change_claims(fx.claims(), &changes);
        let token = fx.sign(&fx.header(), &claims);
        let now = now();
        let expected = serde_json::from_value::<Claims>(claims.clone())
            .ok()
            .filter(|c| {
                c.iss == fx.issuer
                    && c.aud.contains(AUDIENCE)
                    && c.exp >= now.saturating_sub(30)
                    && c.nbf.is_none_or(|nbf| nbf <= now + 30)
            });
        match fx.verify(&token) {
            Ok(c) => {
                prop_assert_eq!(Some(&c), expected.as_ref());
                passed.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                prop_assert!(expected.is_none(), "{} refused: {:?}", claims, e);
                prop_assert!(is_invalid_token(e.clone()), "{:?} for {}", e, claims);
            }
        }
        Ok(())
    });
    assert!(passed.load(Ordering::Relaxed) > 0);
}

/// Found by the property below: a token the issuer signed with an `exp` past
/// `i64::MAX` seconds passes `Guard::verify`, and then `Caller::from` panics
/// (`UNIX_EPOCH + Duration::from_secs(exp)` overflows `SystemTime`), so the
/// `Caller` extractor and `RequireScope` panic on it instead of answering.
#[test]
fn every_verified_token_becomes_a_caller() {
    let fx = Fixture::new();
    run(
        (
            prop_oneof![any::<u64>(), Just(u64::MAX)],
            proptest::option::of(any::<String>()),
        ),
        |(exp, label)| {
            let mut claims = fx.claims();
            claims["exp"] = json!(exp);
            claims["label"] = json!(label);
            let token = fx.sign(&fx.header(), &claims);
            if let Ok(c) = fx.verify(&token) {
                let caller = Caller::from(c);
                prop_assert!(caller.expires_at >= UNIX_EPOCH);
            }
            Ok(())
        },
    );
}
