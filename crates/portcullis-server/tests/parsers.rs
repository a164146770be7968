//! Property tests of the server's parsers of untrusted input: the form body of
//! `/oauth/*`, HTTP Basic client credentials, bearer tokens (the header and the
//! JWT's claims), and the token endpoint as a whole.
//!
//! Each property feeds arbitrary and near-valid input (valid credentials and tokens
//! with one character changed, headers with random case and spacing, percent-encoded
//! random bytes, very long values) and checks that nothing panics and that every
//! refusal is the protocol's own error: `invalid_request` for a malformed form,
//! `invalid_client` or `invalid_request` for client authentication, `invalid_token`
//! or `invalid_request` for a bearer token; valid input passes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::request::Parts;
use axum::http::{HeaderValue, Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use portcullis_core::{AccessClaims, Clock, FixedClock, GrantType, OAuthErrorCode, Ttl};
use portcullis_crypto::{Algorithm, MasterKey};
use portcullis_server::Settings;
use portcullis_server::error::{ApiError, BearerError, OAuthResponseError};
use portcullis_server::extract::bearer::{MAX_TOKEN_LEN, authenticate};
use portcullis_server::extract::client_auth::authenticate_client;
use portcullis_server::extract::form::OAuthForm;
use portcullis_server::keyring::create_signing_key;
use portcullis_server::server::build_state;
use portcullis_server::service::clients::NewClientSpec;
use portcullis_server::service::tokens::Grant;
use portcullis_server::state::AppState;
use portcullis_store::{Actor, DynStore, SqliteStore};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tower::ServiceExt;

const ISSUER: &str = "https://issuer.test";
const NOW: i64 = 1_800_000_000;

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

/// A server state on a temporary SQLite database with one signing key, one active
/// client and an access token issued to it. The clock stands still at [`NOW`].
struct Fixture {
    rt: tokio::runtime::Runtime,
    state: AppState,
    client_id: String,
    secret: String,
    token: String,
    _dir: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("parsers.db");
        let (state, client_id, secret, token) = rt.block_on(async {
            let store: DynStore = Arc::new(SqliteStore::open(&path).await.unwrap());
            store.migrate().await.unwrap();
            let master = Arc::new(MasterKey::from_bytes(&[7; 32]).unwrap());
            create_signing_key(&store, &master, Algorithm::ES256, NOW, 60)
                .await
                .unwrap();
            let ttl = |s: &str| s.parse::<Ttl>().unwrap();
            let settings = Settings {
                listen: "127.0.0.1:0".parse().unwrap(),
                database_url: format!("sqlite://{}", path.display()),
                database_pool_size: 1,
                issuer: Some(ISSUER.into()),
                audience: None,
                access_token_ttl: ttl("1h"),
                refresh_token_ttl: ttl("1d"),
                signing_alg: Algorithm::ES256,
                master_key_file: None,
                trusted_proxies: vec![],
                audit_retention: ttl("400d"),
                key_rotation_interval: ttl("90d"),
                tls: None,
            };
            let clock: Arc<dyn Clock> = Arc::new(FixedClock::new(NOW));
            let state = build_state(
                &settings,
                "127.0.0.1:0".parse().unwrap(),
                Arc::clone(&store),
                master,
                clock,
            )
            .await
            .unwrap();
            let spec = NewClientSpec {
                name: "parsers".into(),
                ..NewClientSpec::default()
            };
            let (client, secret) = state.clients.create(spec, &Actor::system()).await.unwrap();
            let issued = state
                .tokens
                .issue(Grant {
                    client: &client,
                    scopes: client.scopes.clone(),
                    label: None,
                    subject: client.id.to_string(),
                    grant_type: GrantType::ClientCredentials,
                    actor: Actor::system(),
                })
                .await
                .unwrap();
            (
                state,
                client.id.to_string(),
                secret.expose().to_owned(),
                issued.response.access_token,
            )
        });
        Self {
            rt,
            state,
            client_id,
            secret,
            token,
            _dir: dir,
        }
    }

    /// Client authentication of a request with these headers and this form, from `peer`.
    fn client_auth(
        &self,
        authorization: &[HeaderValue],
        form: &OAuthForm,
        peer: IpAddr,
    ) -> Result<String, OAuthResponseError> {
        let mut headers = axum::http::HeaderMap::new();
        for v in authorization {
            headers.append(header::AUTHORIZATION, v.clone());
        }
        self.rt
            .block_on(authenticate_client(&self.state, &headers, form, peer))
            .map(|c| c.auth.client.id.to_string())
    }

    /// The bearer extractor on a request with these headers and this query.
    fn bearer(
        &self,
        authorization: &[HeaderValue],
        query: &str,
    ) -> Result<AccessClaims, BearerError> {
        let mut req = Request::builder().uri(format!("/api/v1/whoami{query}"));
        for v in authorization {
            req = req.header(header::AUTHORIZATION, v.clone());
        }
        let (parts, ()) = req.body(()).unwrap().into_parts();
        self.rt
            .block_on(authenticate(&parts, &self.state))
            .map(|c| c.claims)
            .map_err(|e| match e {
                ApiError::Bearer(b) => b,
                other => panic!("not a bearer refusal: {other:?}"),
            })
    }

    /// One request to the whole router.
    fn call(&self, req: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
        self.rt.block_on(async {
            let app = portcullis_server::routes::router(self.state.clone());
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .unwrap();
            let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
            (status, headers, json)
        })
    }
}

/// The status and `error` of the response a bearer refusal makes.
fn bearer_answer(e: BearerError) -> (StatusCode, String) {
    use axum::response::IntoResponse;
    let resp = e.into_response();
    let status = resp.status();
    let body = block_on_here(axum::body::to_bytes(resp.into_body(), usize::MAX)).unwrap();
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (
        status,
        json["error"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Runs a future that needs no runtime (a response body already in memory).
fn block_on_here<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn parts_uri(parts: &Parts) -> String {
    parts.uri.to_string()
}

/// The OAuth error code of a refusal, `429` for throttling.
fn oauth_code(e: &OAuthResponseError) -> &'static str {
    match e {
        OAuthResponseError::Protocol { error, .. } => error.code.as_str(),
        OAuthResponseError::TooManyAttempts { .. } => "429",
        OAuthResponseError::TooLarge => "413",
        OAuthResponseError::Internal(_) => "internal",
    }
}

/// RFC 6749 §5.2: `error_description` is %x20-21 / %x23-5B / %x5D-7E.
fn rfc6749_description(s: &str) -> bool {
    s.bytes()
        .all(|b| matches!(b, 0x20..=0x21 | 0x23..=0x5b | 0x5d..=0x7e))
}

/// Percent-encodes every byte of `b`, each one as `%XX` (random case) or, when it is
/// unreserved (or a space, as `+`), as itself, by `mask`.
fn percent_encode(b: &[u8], mask: u64) -> String {
    let mut out = String::new();
    for (i, &c) in b.iter().enumerate() {
        let raw = mask >> (i % 64) & 1 == 1;
        if raw && (c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'*')) {
            out.push(char::from(c));
        } else if raw && c == b' ' {
            out.push('+');
        } else if mask >> ((i + 7) % 64) & 1 == 1 {
            out.push_str(&format!("%{c:02x}"));
        } else {
            out.push_str(&format!("%{c:02X}"));
        }
    }
    out
}

/// Random ASCII case.
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

/// `s` with its character at `at` (modulo its length) replaced by `c`.
fn replace_char(s: &str, at: usize, c: char) -> String {
    let at = at % s.chars().count().max(1);
    s.chars()
        .enumerate()
        .map(|(i, x)| if i == at { c } else { x })
        .collect()
}

/// Random bytes shaped more or less like a form body, or not at all.
fn body_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<Vec<u8>>(),
        "[a-z_=&%+0-9A-F]{0,200}".prop_map(String::into_bytes),
        "(grant_type|client_id|client_secret|scope|label|refresh_token|token)=[ -~]{0,30}(&[a-z_]{1,13}=[ -~]{0,30}){0,6}"
            .prop_map(String::into_bytes),
        // Up to the 64 KiB limit.
        (1usize..=64 * 1024, any::<u8>()).prop_map(|(n, b)| vec![b; n]),
        (1usize..=10_000).prop_map(|n| "a=%".repeat(n).into_bytes()),
    ]
}

#[test]
fn form_bodies_never_panic_and_refuse_with_invalid_request() {
    run(body_bytes(), |body| {
        if let Err(e) = OAuthForm::parse(&body) {
            prop_assert_eq!(e.code, OAuthErrorCode::InvalidRequest, "{:?}", e);
        }
        Ok(())
    });
}

#[test]
fn percent_encoded_form_values_come_back_decoded() {
    let fields = proptest::collection::btree_map("[a-z_]{1,12}", any::<Vec<u8>>(), 0..8);
    run((fields, any::<[u64; 2]>()), |(fields, masks)| {
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    percent_encode(k.as_bytes(), masks[0]),
                    percent_encode(v, masks[1])
                )
            })
            .collect();
        match OAuthForm::parse(body.join("&").as_bytes()) {
            Ok(form) => {
                for (k, v) in &fields {
                    match std::str::from_utf8(v) {
                        Ok(v) if !v.is_empty() => prop_assert_eq!(form.get(k), Some(v)),
                        Ok(_) => prop_assert_eq!(form.get(k), None),
                        // The old parser replaced it with U+FFFD; the new one refuses it (below).
                        Err(_) => prop_assert_eq!(
                            form.get(k).map(str::to_owned),
                            Some(String::from_utf8_lossy(v).into_owned())
                        ),
                    }
                }
            }
            Err(e) => {
                prop_assert_eq!(e.code, OAuthErrorCode::InvalidRequest);
                prop_assert!(
                    fields.values().any(|v| std::str::from_utf8(v).is_err()),
                    "{:?}",
                    e
                );
            }
        }
        Ok(())
    });
}

#[test]
fn form_values_round_trip_through_the_standard_encoder() {
    let fields = proptest::collection::btree_map(any::<String>(), any::<String>(), 0..8);
    run(fields, |fields| {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields.iter())
            .finish();
        let form = OAuthForm::parse(body.as_bytes()).unwrap();
        for (k, v) in &fields {
            prop_assert_eq!(form.get(k), Some(v.as_str()).filter(|v| !v.is_empty()));
        }
        if let Some((k, _)) = fields.iter().find(|(_, v)| !v.is_empty()) {
            prop_assert_eq!(form.require(k).ok(), fields.get(k).map(String::as_str));
        }
        let missing = form.require("\u{0}not-sent").unwrap_err();
        prop_assert_eq!(missing.code, OAuthErrorCode::InvalidRequest);
        Ok(())
    });
}

#[test]
fn a_repeated_parameter_is_invalid_request_however_it_is_spelt() {
    run(
        (
            "[a-z_]{1,12}",
            "[ -~]{0,20}",
            "[ -~]{0,20}",
            any::<[u64; 2]>(),
            body_bytes(),
        ),
        |(k, a, b, masks, other)| {
            let mut body = format!(
                "{}={}&",
                percent_encode(k.as_bytes(), masks[0]),
                percent_encode(a.as_bytes(), masks[1])
            )
            .into_bytes();
            body.extend_from_slice(&other);
            body.extend_from_slice(
                format!(
                    "&{}={}",
                    percent_encode(k.as_bytes(), masks[1]),
                    percent_encode(b.as_bytes(), masks[0])
                )
                .as_bytes(),
            );
            let e = OAuthForm::parse(&body).unwrap_err();
            prop_assert_eq!(e.code, OAuthErrorCode::InvalidRequest);
            Ok(())
        },
    );
}

/// Another engineer is changing the form parser to refuse invalid UTF-8 with
/// `invalid_request` (today it is replaced with U+FFFD).
#[test]
fn invalid_utf8_in_a_form_value_is_refused() {
    let invalid =
        any::<Vec<u8>>().prop_filter("invalid UTF-8", |v| std::str::from_utf8(v).is_err());
    run(
        (
            invalid,
            "(grant_type|client_id|scope|label|[a-z]{1,8})",
            any::<u64>(),
            "([a-z]{1,5}=[a-z]{0,5}&){0,2}",
        ),
        |(v, k, mask, before)| {
            let body = format!("{before}{k}={}", percent_encode(&v, mask));
            let e = OAuthForm::parse(body.as_bytes()).map(|_| ()).unwrap_err();
            prop_assert_eq!(e.code, OAuthErrorCode::InvalidRequest);
            Ok(())
        },
    );
}

/// An `Authorization` header value of any shape (bytes HTTP allows in a value).
fn authorization_value() -> impl Strategy<Value = Vec<u8>> {
    let scheme = prop_oneof![
        Just("Basic"),
        Just("basic"),
        Just("BASIC"),
        Just("Bearer"),
        Just("Digest"),
        Just("")
    ];
    let sep = prop_oneof![Just(" "), Just("  "), Just("\t"), Just(""), Just(" \t ")];
    let credentials = prop_oneof![
        any::<Vec<u8>>().prop_map(|b| STANDARD.encode(b)),
        (any::<String>(), any::<String>()).prop_map(|(a, b)| STANDARD.encode(format!("{a}:{b}"))),
        "[A-Za-z0-9_:%.-]{0,30}".prop_map(|s| STANDARD.encode(s)),
        "[A-Za-z0-9+/=]{0,60}",
        any::<String>(),
    ];
    prop_oneof![
        (scheme, sep, credentials, "[ \\t]{0,2}")
            .prop_map(|(s, sep, c, tail)| format!("{s}{sep}{c}{tail}").into_bytes()),
        any::<Vec<u8>>(),
        (1usize..20_000).prop_map(|n| format!("Basic {}", "QUFB".repeat(n)).into_bytes()),
    ]
}

/// A form with or without `client_id` and `client_secret`.
fn auth_form(client_id: String) -> impl Strategy<Value = OAuthForm> {
    let id = prop_oneof![
        Just(None),
        Just(Some(client_id)),
        any::<String>().prop_map(Some),
        "pc_[A-Za-z0-9_-]{22}".prop_map(Some)
    ];
    let secret = prop_oneof![
        Just(None),
        any::<String>().prop_map(Some),
        "pcs_[A-Za-z0-9_-]{43}".prop_map(Some)
    ];
    (id, secret).prop_map(|(id, secret)| {
        let mut s = form_urlencoded::Serializer::new(String::new());
        s.append_pair("grant_type", "client_credentials");
        if let Some(id) = id {
            s.append_pair("client_id", &id);
        }
        if let Some(secret) = secret {
            s.append_pair("client_secret", &secret);
        }
        OAuthForm::parse(s.finish().as_bytes()).unwrap()
    })
}

/// Whether these `Authorization` headers are one HTTP Basic attempt.
fn tried_basic(values: &[HeaderValue]) -> bool {
    values.len() == 1
        && values[0]
            .to_str()
            .ok()
            .and_then(|v| v.split_once(' '))
            .is_some_and(|(s, _)| s.eq_ignore_ascii_case("basic"))
}

fn peer() -> impl Strategy<Value = IpAddr> {
    any::<u32>().prop_map(|n| IpAddr::V4(Ipv4Addr::from(n)))
}

#[test]
fn basic_credentials_of_any_shape_are_invalid_client_or_invalid_request() {
    let fx = Fixture::new();
    let headers = proptest::collection::vec(authorization_value(), 0..3);
    run(
        (headers, auth_form(fx.client_id.clone()), peer()),
        |(values, form, peer)| {
            let values: Vec<HeaderValue> = values
                .iter()
                .filter_map(|v| HeaderValue::from_bytes(v).ok())
                .collect();
            match fx.client_auth(&values, &form, peer) {
                Ok(id) => prop_assert!(false, "authenticated as {id} with {values:?}"),
                Err(e) => {
                    let code = oauth_code(&e);
                    prop_assert!(
                        matches!(code, "invalid_client" | "invalid_request" | "429"),
                        "{:?}",
                        e
                    );
                    // RFC 6749 §5.2: a client that tried Basic MUST hear `WWW-Authenticate`.
                    if let OAuthResponseError::Protocol { error, basic_tried } = &e
                        && error.code == OAuthErrorCode::InvalidClient
                        && tried_basic(&values)
                    {
                        prop_assert!(*basic_tried, "{:?} for {:?}", e, values);
                    }
                }
            }
            Ok(())
        },
    );
}

#[test]
fn valid_basic_credentials_with_any_scheme_case_spacing_and_escaping_authenticate() {
    let fx = Fixture::new();
    run(
        (
            any::<u64>(),
            1usize..4,
            0usize..3,
            any::<[u64; 2]>(),
            peer(),
            any::<bool>(),
        ),
        |(mask, spaces, tail, esc, peer, with_id)| {
            // RFC 6749 §2.3.1: id and secret are form-urlencoded, then Basic-encoded.
            let creds = format!(
                "{}:{}",
                percent_encode(fx.client_id.as_bytes(), esc[0]),
                percent_encode(fx.secret.as_bytes(), esc[1])
            );
            let value = format!(
                "{}{}{}{}",
                recase("basic", mask),
                " ".repeat(spaces),
                STANDARD.encode(creds),
                " ".repeat(tail)
            );
            let body = if with_id {
                format!("grant_type=client_credentials&client_id={}", fx.client_id)
            } else {
                "grant_type=client_credentials".into()
            };
            let form = OAuthForm::parse(body.as_bytes()).unwrap();
            let got = fx.client_auth(&[HeaderValue::from_str(&value).unwrap()], &form, peer);
            prop_assert_eq!(got.ok(), Some(fx.client_id.clone()), "{}", value);
            // And in the body (client_secret_post).
            let post = format!(
                "client_id={}&client_secret={}",
                percent_encode(fx.client_id.as_bytes(), esc[0]),
                percent_encode(fx.secret.as_bytes(), esc[1])
            );
            let got = fx.client_auth(&[], &OAuthForm::parse(post.as_bytes()).unwrap(), peer);
            prop_assert_eq!(got.ok(), Some(fx.client_id.clone()));
            Ok(())
        },
    );
}

#[test]
fn valid_basic_credentials_with_one_character_changed_are_refused() {
    let fx = Fixture::new();
    let form = OAuthForm::parse(b"grant_type=client_credentials").unwrap();
    run(
        (
            any::<usize>(),
            prop_oneof![
                any::<char>(),
                "[A-Za-z0-9+/=]".prop_map(|s| s.chars().next().unwrap())
            ],
            any::<bool>(),
            peer(),
        ),
        |(at, c, in_plain, peer)| {
            let plain = format!("{}:{}", fx.client_id, fx.secret);
            let encoded = if in_plain {
                let changed = replace_char(&plain, at, c);
                prop_assume!(changed != plain);
                STANDARD.encode(changed)
            } else {
                let b64 = STANDARD.encode(&plain);
                let changed = replace_char(&b64, at, c);
                prop_assume!(changed != b64);
                changed
            };
            let Ok(value) = HeaderValue::from_str(&format!("Basic {encoded}")) else {
                return Ok(());
            };
            match fx.client_auth(&[value], &form, peer) {
                Ok(id) => prop_assert!(false, "authenticated as {id} with {encoded}"),
                Err(e) => prop_assert!(
                    matches!(oauth_code(&e), "invalid_client" | "invalid_request" | "429"),
                    "{:?}",
                    e
                ),
            }
            Ok(())
        },
    );
}

/// A query string that may carry `access_token`.
fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just("?access_token=x".to_owned()),
        Just("?a=1&access_token=".to_owned()),
        Just("?access%5Ftoken=x".to_owned()),
        (any::<Vec<u8>>(), any::<u64>()).prop_map(|(b, m)| format!("?{}", percent_encode(&b, m))),
        "\\?[a-z_=&%0-9]{0,30}",
    ]
}

#[test]
fn bearer_headers_of_any_shape_are_invalid_token_or_invalid_request() {
    let fx = Fixture::new();
    let headers = proptest::collection::vec(
        prop_oneof![
            authorization_value(),
            (any::<u64>(), "[ \\t]{0,3}", any::<usize>(), any::<char>()).prop_map(
                |(m, sp, at, c)| {
                    format!(
                        "{}{sp}{}",
                        recase("bearer", m),
                        replace_char("eyJhbGciOiJFUzI1NiJ9.e30.sig", at, c)
                    )
                    .into_bytes()
                }
            ),
        ],
        0..3,
    );
    run((headers, query()), |(values, q)| {
        let values: Vec<HeaderValue> = values
            .iter()
            .filter_map(|v| HeaderValue::from_bytes(v).ok())
            .collect();
        let in_query = form_urlencoded::parse(q.trim_start_matches('?').as_bytes())
            .any(|(k, _)| k == "access_token");
        let e = match fx.bearer(&values, &q) {
            Ok(c) => {
                return Err(TestCaseError::fail(format!(
                    "authenticated as {} with {values:?}",
                    c.client_id
                )));
            }
            Err(e) => e,
        };
        // Judged by the answer it makes (RFC 6750 §3.1), whichever variant says it.
        let (status, code) = bearer_answer(e.clone());
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
        Ok(())
    });
}

#[test]
fn valid_bearer_tokens_with_any_scheme_case_and_spacing_authenticate() {
    let fx = Fixture::new();
    run(
        (any::<u64>(), 1usize..4, "[ \\t]{0,2}"),
        |(mask, spaces, tail)| {
            let value = format!(
                "{}{}{}{tail}",
                recase("bearer", mask),
                " ".repeat(spaces),
                fx.token
            );
            let claims = fx
                .bearer(&[HeaderValue::from_str(&value).unwrap()], "")
                .unwrap();
            prop_assert_eq!(claims.client_id, fx.client_id.clone());
            // A tab instead of the space is not `Bearer <token>`.
            let tabbed = format!("{}\t{}", recase("bearer", mask), fx.token);
            let e = fx
                .bearer(&[HeaderValue::from_str(&tabbed).unwrap()], "")
                .unwrap_err();
            prop_assert!(matches!(e, BearerError::InvalidToken(_)), "{:?}", e);
            Ok(())
        },
    );
}

#[test]
fn valid_bearer_tokens_with_one_character_changed_are_invalid_token() {
    let fx = Fixture::new();
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
                fx.token[..at % fx.token.len()].to_owned()
            } else {
                replace_char(&fx.token, at, c)
            };
            prop_assume!(changed != fx.token);
            let value = format!("Bearer {changed}");
            let Ok(value) = HeaderValue::from_str(&value) else {
                return Ok(());
            };
            let e = fx.bearer(&[value], "").unwrap_err();
            prop_assert!(
                matches!(e, BearerError::InvalidToken(_)),
                "{:?} for {}",
                e,
                changed
            );
            prop_assert!(fx.state.tokens.verify(&changed).is_err());
            Ok(())
        },
    );
}

#[test]
fn very_long_bearer_tokens_are_invalid_token() {
    let fx = Fixture::new();
    run(
        ((MAX_TOKEN_LEN + 1)..(20 * MAX_TOKEN_LEN), "[A-Za-z0-9._-]"),
        |(n, c)| {
            let value = HeaderValue::from_str(&format!("Bearer {}", c.repeat(n))).unwrap();
            let e = fx.bearer(&[value], "").unwrap_err();
            prop_assert!(matches!(e, BearerError::InvalidToken(_)), "{:?}", e);
            Ok(())
        },
    );
}

/// JSON values that break a claim in every way: wrong type, extremes, absence.
fn claim_value() -> impl Strategy<Value = Option<Value>> {
    proptest::option::weighted(
        0.9,
        prop_oneof![
            Just(json!(null)),
            Just(json!(i64::MIN)),
            Just(json!(i64::MAX)),
            Just(json!(u64::MAX)),
            Just(json!(-1)),
            Just(json!(1.5)),
            Just(json!(1e300)),
            Just(json!(true)),
            Just(json!([])),
            Just(json!({})),
            Just(json!(ISSUER)),
            Just(json!([ISSUER, "other"])),
            (NOW - 100..NOW + 100).prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<String>().prop_map(Value::from),
            proptest::collection::vec(any::<String>(), 0..3).prop_map(Value::from),
        ],
    )
}

#[test]
fn jwt_claims_of_any_shape_are_verified_only_by_the_rules() {
    let fx = Fixture::new();
    let names = [
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
    let changes = proptest::collection::vec((0..names.len(), claim_value()), 0..4);
    let accepted = AtomicUsize::new(0);
    run(changes, |changes| {
        let mut claims = json!({
            "iss": ISSUER, "sub": fx.client_id, "aud": ISSUER, "client_id": fx.client_id,
            "jti": "fam_x.1", "iat": NOW, "nbf": NOW, "exp": NOW + 60,
            "scope": "upload-data", "scopes": ["upload-data"],
        });
        for (i, v) in changes {
            match v {
                Some(v) => claims[names[i]] = v,
                None => {
                    claims.as_object_mut().unwrap().remove(names[i]);
                }
            }
        }
        let token = fx
            .state
            .tokens
            .keys
            .get()
            .current
            .sign_jwt(&claims)
            .unwrap();
        let expected = serde_json::from_value::<AccessClaims>(claims.clone())
            .ok()
            .filter(|c| c.iss == ISSUER && c.aud.contains(ISSUER) && c.exp > NOW && c.nbf <= NOW);
        let got = fx.state.tokens.verify(&token);
        prop_assert_eq!(
            got.as_ref().ok(),
            expected.as_ref(),
            "{} gave {:?}",
            claims,
            got
        );
        // The bearer extractor: the same, and the client must be ours.
        let value = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
        match fx.bearer(&[value], "") {
            Ok(c) => {
                prop_assert_eq!(Some(&c), expected.as_ref());
                prop_assert_eq!(&c.client_id, &fx.client_id);
                accepted.fetch_add(1, Ordering::Relaxed);
            }
            Err(BearerError::InvalidToken(_)) => {
                prop_assert!(expected.is_none_or(|c| c.client_id != fx.client_id));
            }
            Err(e) => prop_assert!(false, "{:?} for {}", e, claims),
        }
        Ok(())
    });
    assert!(
        accepted.load(Ordering::Relaxed) > 0,
        "no generated claims were valid"
    );
}

#[test]
fn arbitrary_tokens_never_verify() {
    let fx = Fixture::new();
    let token = prop_oneof![
        any::<String>(),
        "[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,40}\\.[A-Za-z0-9_-]{0,90}",
        (1usize..20_000).prop_map(|n| format!("{}.e30.AA", "e".repeat(n))),
    ];
    run(token, |t| {
        prop_assert!(fx.state.tokens.verify(&t).is_err());
        Ok(())
    });
}

/// A request to `POST /oauth/token` of any shape.
fn token_request(
    client_id: String,
    secret: String,
) -> impl Strategy<Value = (Option<String>, Vec<u8>, Option<Vec<u8>>)> {
    let content_type = prop_oneof![
        1 => Just(None),
        6 => Just(Some("application/x-www-form-urlencoded".to_owned())),
        2 => Just(Some("Application/X-WWW-Form-Urlencoded; charset=UTF-8".to_owned())),
        1 => Just(Some("application/json".to_owned())),
        1 => Just(Some("text/plain".to_owned())),
        1 => "[ -~]{0,40}".prop_map(Some),
    ];
    let basic = format!("Basic {}", STANDARD.encode(format!("{client_id}:{secret}")));
    let auth = prop_oneof![
        1 => Just(None),
        2 => Just(Some(basic.into_bytes())),
        1 => authorization_value().prop_map(Some),
    ];
    let grant = prop_oneof![
        3 => Just("grant_type=client_credentials".to_owned()),
        1 => Just("grant_type=refresh_token".to_owned()),
        1 => Just("grant_type=authorization_code".to_owned()),
        1 => Just("grant_type=password".to_owned()),
        1 => Just(String::new()),
        1 => "grant_type=[ -~]{0,20}",
    ];
    let extra = prop_oneof![
        3 => Just(String::new()),
        1 => Just(format!("&client_id={client_id}&client_secret={secret}")),
        1 => (any::<String>(), any::<String>(), any::<String>()).prop_map(|(s, l, r)| {
            form_urlencoded::Serializer::new(String::from("&"))
                .append_pair("scope", &s)
                .append_pair("label", &l)
                .append_pair("refresh_token", &r)
                .finish()
        }),
        1 => "&(scope|label)=[a-z -]{0,20}",
        1 => "&(scope|label|client_id)=%[0-9A-F]{2}(&scope=x)?",
    ];
    let body = prop_oneof![
        4 => (grant, extra).prop_map(|(g, e)| format!("{g}{e}").into_bytes()),
        1 => body_bytes(),
    ];
    (content_type, body, auth)
}

#[test]
fn the_token_endpoint_answers_any_request_with_the_protocols_errors() {
    let fx = Fixture::new();
    let issued = AtomicUsize::new(0);
    run(
        (
            token_request(fx.client_id.clone(), fx.secret.clone()),
            peer(),
            any::<u16>(),
        ),
        |((ct, body, auth), peer, port)| {
            let mut req = Request::builder().method("POST").uri("/oauth/token");
            if let Some(ct) = &ct {
                req = req.header(header::CONTENT_TYPE, ct);
            }
            if let Some(v) = auth.as_ref().and_then(|a| HeaderValue::from_bytes(a).ok()) {
                req = req.header(header::AUTHORIZATION, v);
            }
            let mut req = req.body(Body::from(body.clone())).unwrap();
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(peer, port)));
            let (status, headers, json) = fx.call(req);
            prop_assert_eq!(
                headers
                    .get(header::CACHE_CONTROL)
                    .and_then(|v| v.to_str().ok()),
                Some("no-store")
            );
            if status == StatusCode::OK {
                prop_assert!(json["access_token"].is_string(), "{}", json);
                issued.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            let code = json["error"].as_str().unwrap_or_default().to_owned();
            let expected: &[&str] = match status {
                StatusCode::BAD_REQUEST => &[
                    "invalid_request",
                    "invalid_grant",
                    "unauthorized_client",
                    "unsupported_grant_type",
                    "invalid_scope",
                ],
                StatusCode::UNAUTHORIZED | StatusCode::TOO_MANY_REQUESTS => &["invalid_client"],
                StatusCode::PAYLOAD_TOO_LARGE => &["invalid_request"],
                _ => &[],
            };
            prop_assert!(
                expected.contains(&code.as_str()),
                "{} {} for {:?} {:?}",
                status,
                json,
                ct,
                String::from_utf8_lossy(&body)
            );
            let basic: Vec<HeaderValue> = auth
                .iter()
                .filter_map(|a| HeaderValue::from_bytes(a).ok())
                .collect();
            if status == StatusCode::UNAUTHORIZED && tried_basic(&basic) {
                let challenge = headers
                    .get(header::WWW_AUTHENTICATE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                prop_assert!(challenge.starts_with("Basic"), "{:?}", challenge);
            }
            prop_assert!(json["error_description"].is_string());
            Ok(())
        },
    );
    assert!(
        issued.load(Ordering::Relaxed) > 0,
        "no generated request got a token"
    );
}

/// Found by the property below: some errors describe the input in their
/// `error_description`, unescaped (a repeated parameter's name, a malformed scope
/// in Rust's debug form with `"` and `\`, a grant type), so a request can put any
/// character there, outside the set RFC 6749 §5.2 allows.
#[test]
fn token_endpoint_error_descriptions_use_the_rfc_6749_character_set() {
    let fx = Fixture::new();
    run(
        (
            token_request(fx.client_id.clone(), fx.secret.clone()),
            peer(),
        ),
        |((ct, body, auth), peer)| {
            let mut req = Request::builder().method("POST").uri("/oauth/token");
            if let Some(ct) = &ct {
                req = req.header(header::CONTENT_TYPE, ct);
            }
            if let Some(v) = auth.as_ref().and_then(|a| HeaderValue::from_bytes(a).ok()) {
                req = req.header(header::AUTHORIZATION, v);
            }
            let mut req = req.body(Body::from(body.clone())).unwrap();
            req.extensions_mut()
                .insert(ConnectInfo(SocketAddr::new(peer, 1)));
            let (_, _, json) = fx.call(req);
            if let Some(d) = json["error_description"].as_str() {
                prop_assert!(
                    rfc6749_description(d),
                    "{:?} for {:?}",
                    d,
                    String::from_utf8_lossy(&body)
                );
            }
            Ok(())
        },
    );
}

#[test]
fn bearer_requests_to_the_api_answer_with_rfc_6750_errors() {
    let fx = Fixture::new();
    let headers = proptest::collection::vec(authorization_value(), 0..3);
    run((headers, query()), |(values, q)| {
        let mut req = Request::builder().uri(format!("/api/v1/whoami{q}"));
        for v in values
            .iter()
            .filter_map(|v| HeaderValue::from_bytes(v).ok())
        {
            req = req.header(header::AUTHORIZATION, v);
        }
        let (parts, ()) = req.body(()).unwrap().into_parts();
        let uri = parts_uri(&parts);
        let req = Request::from_parts(parts, Body::empty());
        let (status, headers, json) = fx.call(req);
        let code = json["error"].as_str().unwrap_or_default().to_owned();
        match status {
            StatusCode::BAD_REQUEST => prop_assert_eq!(code.as_str(), "invalid_request"),
            StatusCode::UNAUTHORIZED => prop_assert_eq!(code.as_str(), "invalid_token"),
            other => prop_assert!(false, "{} {} for {}", other, json, uri),
        }
        let challenge = headers
            .get(header::WWW_AUTHENTICATE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        prop_assert!(
            challenge.starts_with("Bearer realm=\"portcullis\""),
            "{}",
            challenge
        );
        Ok(())
    });
}
