//! `POST /oauth/token` with client_credentials, and every error row of SPEC §3.

use crate::helpers::*;
use serde_json::Value;

#[tokio::test]
async fn client_credentials_with_basic_returns_a_token_set_and_no_store_headers() {
    let s = server(&[]);
    let (id, secret) = s.create_client("Sunrise Care", &[]).unwrap();
    let r = token_basic(
        &s,
        &id,
        &secret,
        &[
            ("grant_type", "client_credentials"),
            ("label", "care-home-042"),
        ],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    assert_eq!(r.headers()["pragma"], "no-cache");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 86400);
    assert_eq!(body["scope"], "upload-data view-indicator");
    assert!(body["refresh_token"].as_str().unwrap().starts_with("pcr_"));
    assert_eq!(body["access_token"].as_str().unwrap().split('.').count(), 3);
}

#[tokio::test]
async fn client_secret_post_works_too_and_a_narrower_scope_is_granted() {
    let s = server(&[]);
    let (id, secret) = s.create_client("Post", &[]).unwrap();
    let r = http()
        .post(format!("{}/oauth/token", s.url))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("scope", "upload-data"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["scope"], "upload-data");
}

#[tokio::test]
async fn a_client_without_refresh_tokens_gets_access_tokens_only() {
    let s = server(&[]);
    let (id, secret) = s
        .create_client("NoRefresh", &["--no-refresh-token"])
        .unwrap();
    let body = get_token(&s, &id, &secret, &[]).await;
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert!(body["access_token"].is_string());
}

#[tokio::test]
async fn per_client_access_token_ttl_is_honoured() {
    let s = server(&["--access-token-ttl", "2h"]);
    let (a, sa) = s.create_client("Default", &[]).unwrap();
    let (b, sb) = s
        .create_client("Short", &["--access-token-ttl", "15m"])
        .unwrap();
    assert_eq!(get_token(&s, &a, &sa, &[]).await["expires_in"], 7200);
    assert_eq!(get_token(&s, &b, &sb, &[]).await["expires_in"], 900);
}

async fn assert_error(r: reqwest::Response, status: u16, error: &str) -> (String, Option<String>) {
    assert_eq!(
        r.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
    let (st, e, d, www) = oauth_error(r).await;
    assert_eq!((st, e.as_str()), (status, error), "description: {d}");
    assert!(!d.is_empty());
    (d, www)
}

#[tokio::test]
async fn invalid_request_rows() {
    let s = server(&[]);
    let (id, secret) = s.create_client("Errors", &[]).unwrap();
    let url = format!("{}/oauth/token", s.url);

    // Missing grant_type.
    let r = token_basic(&s, &id, &secret, &[("scope", "upload-data")]).await;
    let (d, _) = assert_error(r, 400, "invalid_request").await;
    assert!(d.contains("grant_type"));

    // A repeated parameter (RFC 6749 §3.2).
    let r = http()
        .post(&url)
        .basic_auth(&id, Some(&secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&scope=upload-data&scope=view-indicator")
        .send()
        .await
        .unwrap();
    let (d, _) = assert_error(r, 400, "invalid_request").await;
    assert!(d.contains("scope"), "{d}");

    // Both Basic and client_secret.
    let r = http()
        .post(&url)
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", &secret),
        ])
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "invalid_request").await;

    // No client authentication at all: invalid_client with a Basic challenge
    // (RFC 6749 §5.2), on every endpoint that authenticates clients.
    for path in ["token", "revoke", "introspect"] {
        let r = http()
            .post(format!("{}/oauth/{path}", s.url))
            .form(&[("grant_type", "client_credentials"), ("token", "x")])
            .send()
            .await
            .unwrap();
        let (_, www) = assert_error(r, 401, "invalid_client").await;
        assert_eq!(www.as_deref(), Some("Basic realm=\"portcullis\""), "{path}");
    }

    // Not a form.
    let r = http()
        .post(&url)
        .basic_auth(&id, Some(&secret))
        .json(&serde_json::json!({"grant_type": "client_credentials"}))
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "invalid_request").await;

    // Labels: too long, control characters, bidi overrides and zero-width
    // characters (one site passing for another in the admin pages).
    let long = "x".repeat(129);
    for bad in [
        long.as_str(),
        "home\n42",
        " padded",
        "home-1\u{202E}2-emoh",
        "ho\u{200B}me",
        "\u{FEFF}home",
    ] {
        let r = token_basic(
            &s,
            &id,
            &secret,
            &[("grant_type", "client_credentials"), ("label", bad)],
        )
        .await;
        let (d, _) = assert_error(r, 400, "invalid_request").await;
        assert!(d.contains("label"), "{d}");
    }
    // 128 characters is fine.
    let ok = "é".repeat(128);
    get_token(&s, &id, &secret, &[("label", &ok)]).await;
    // A label is kept in Normalization Form C: `e` + combining acute is `é`.
    let t = get_token(&s, &id, &secret, &[("label", "Cafe\u{0301}")]).await;
    let me: serde_json::Value = whoami(&s, t["access_token"].as_str().unwrap())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(me["label"], "Caf\u{e9}");
    // Client names too: no hidden characters.
    let out = s
        .cli(&["client", "create", "--name", "Sunrise\u{202E}Care"])
        .unwrap();
    assert_eq!(out.code, 1, "{}", out.stderr);
}

#[tokio::test]
async fn invalid_client_rows_carry_basic_challenge_only_when_basic_was_used() {
    let s = server(&[]);
    let (id, secret) = s.create_client("Auth", &[]).unwrap();
    let url = format!("{}/oauth/token", s.url);
    let cc = [("grant_type", "client_credentials")];

    let r = token_basic(&s, &id, "pcs_wrong", &cc).await;
    let (_, www) = assert_error(r, 401, "invalid_client").await;
    assert_eq!(www.as_deref(), Some("Basic realm=\"portcullis\""));

    let r = token_basic(&s, "pc_unknown", &secret, &cc).await;
    assert_error(r, 401, "invalid_client").await;

    let r = http()
        .post(&url)
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &id),
            ("client_secret", "nope"),
        ])
        .send()
        .await
        .unwrap();
    let (_, www) = assert_error(r, 401, "invalid_client").await;
    assert_eq!(www, None);

    // client_id alone (auth method "none") is not allowed for confidential clients.
    let r = http()
        .post(&url)
        .form(&[("grant_type", "client_credentials"), ("client_id", &id)])
        .send()
        .await
        .unwrap();
    let (_, www) = assert_error(r, 401, "invalid_client").await;
    assert_eq!(www.as_deref(), Some("Basic realm=\"portcullis\""));

    // Malformed Basic credentials.
    let r = http()
        .post(&url)
        .header("authorization", "Basic !!!notbase64")
        .form(&cc)
        .send()
        .await
        .unwrap();
    assert_error(r, 401, "invalid_client").await;
}

#[tokio::test]
async fn a_disabled_client_is_refused_at_once_and_an_enabled_one_accepted_again() {
    let s = server(&[]);
    let (id, secret) = s.create_client("Toggle", &[]).unwrap();
    // The running server has this client cached as active.
    let t = get_token(&s, &id, &secret, &[]).await;
    assert_eq!(s.cli(&["client", "disable", &id]).unwrap().code, 0);
    // SPEC §8: once the disable has committed (in another process), the very next
    // grant and refresh are refused: the check is part of the grant's own write.
    let cc = [("grant_type", "client_credentials")];
    let r = token_basic(&s, &id, &secret, &cc).await;
    let (status, error, description, _) = oauth_error(r).await;
    assert_eq!(
        (status, error.as_str()),
        (401, "invalid_client"),
        "{description}"
    );
    let refresh_token = t["refresh_token"].as_str().unwrap();
    let r = token_basic(
        &s,
        &id,
        &secret,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
    )
    .await;
    assert!(matches!(r.status().as_u16(), 400 | 401), "{}", r.status());
    assert_eq!(s.cli(&["client", "enable", &id]).unwrap().code, 0);
    let accepted = eventually(std::time::Duration::from_secs(3), || async {
        token_basic(&s, &id, &secret, &cc).await.status() == 200
    })
    .await;
    assert!(accepted);
}

#[tokio::test]
async fn unsupported_grant_type_and_unauthorized_client_rows() {
    let s = server(&[]);
    let (id, secret) = s.create_client("Grants", &[]).unwrap();
    for g in [
        "password",
        "urn:ietf:params:oauth:grant-type:device_code",
        "implicit",
    ] {
        let r = token_basic(&s, &id, &secret, &[("grant_type", g)]).await;
        assert_error(r, 400, "unsupported_grant_type").await;
    }
    let (code_only, code_secret) = s
        .create_client(
            "Web app",
            &[
                "--grant",
                "authorization_code",
                "--redirect-uri",
                "https://app.example/cb",
            ],
        )
        .unwrap();
    let r = token_basic(
        &s,
        &code_only,
        &code_secret,
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_error(r, 400, "unauthorized_client").await;
}

#[tokio::test]
async fn invalid_scope_rows() {
    let s = server(&[]);
    let (id, secret) = s
        .create_client("Scopes", &["--scope", "upload-data"])
        .unwrap();
    let many: Vec<String> = (0..51).map(|i| format!("s{i}")).collect();
    let many = many.join(" ");
    for scope in [
        "view-indicator",
        "upload-data admin",
        "no-such-scope",
        "Bad Scope",
        "a\"b",
        many.as_str(),
    ] {
        let r = token_basic(
            &s,
            &id,
            &secret,
            &[("grant_type", "client_credentials"), ("scope", scope)],
        )
        .await;
        assert_error(r, 400, "invalid_scope").await;
    }
}

#[tokio::test]
async fn bodies_over_64_kib_are_refused_with_413() {
    let s = server(&[]);
    let (id, secret) = s.create_client("Big", &[]).unwrap();
    let pad = "a".repeat(70 * 1024);
    let r = token_basic(
        &s,
        &id,
        &secret,
        &[("grant_type", "client_credentials"), ("pad", &pad)],
    )
    .await;
    assert_error(r, 413, "invalid_request").await;
    // Just under the limit is fine (unknown parameters are ignored, RFC 6749 §3.2).
    let pad = "a".repeat(60 * 1024);
    let r = token_basic(
        &s,
        &id,
        &secret,
        &[("grant_type", "client_credentials"), ("pad", &pad)],
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn concurrent_token_requests_all_succeed_and_are_all_recorded() {
    let s = server(&[]);
    let (id, secret) = s.create_client("Busy", &[]).unwrap();
    let mut tasks = Vec::new();
    for i in 0..64 {
        let (url, id, secret) = (s.url.clone(), id.clone(), secret.clone());
        tasks.push(tokio::spawn(async move {
            http()
                .post(format!("{url}/oauth/token"))
                .basic_auth(&id, Some(&secret))
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("label", &format!("home-{}", i % 8)),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    let families = s
        .cli_json(&["token", "list", "--client", &id, "--json"])
        .unwrap();
    assert_eq!(families.as_array().unwrap().len(), 64);
    let home3 = s
        .cli_json(&[
            "token", "list", "--client", &id, "--label", "home-3", "--json",
        ])
        .unwrap();
    assert_eq!(home3.as_array().unwrap().len(), 8);
}

#[tokio::test]
async fn error_bodies_match_the_contract() {
    let s = server(&[]);
    let (id, _) = s.create_client("Snap", &[]).unwrap();
    let r = token_basic(
        &s,
        &id,
        "pcs_wrong",
        &[("grant_type", "client_credentials")],
    )
    .await;
    let body: Value = r.json().await.unwrap();
    insta::assert_json_snapshot!("invalid_client_body", body);
    let r = token_basic(&s, &id, "x", &[("grant_type", "password")]).await;
    let body: Value = r.json().await.unwrap();
    insta::assert_json_snapshot!("unsupported_grant_type_body", body);
}
