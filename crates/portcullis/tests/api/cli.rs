//! The command line (SPEC §2): JSON shapes, exit codes, one-line errors.

use crate::helpers::*;

#[tokio::test]
async fn client_create_prints_the_contract_shape_with_the_secret_once() {
    let s = server(&[]);
    let v = s
        .cli_json(&["client", "create", "--name", "Sunrise Care Group", "--json"])
        .unwrap();
    insta::assert_json_snapshot!("client_create", v, {
        ".client_id" => "[client_id]",
        ".client_secret" => "[secret]",
        ".created_at" => "[time]",
    });
    let secret = v["client_secret"].as_str().unwrap();
    assert!(secret.starts_with("pcs_") && secret.len() >= 4 + 43);
    // Never shown again.
    let id = v["client_id"].as_str().unwrap();
    let shown = s.cli(&["client", "show", id, "--json"]).unwrap();
    assert!(!shown.stdout.contains(secret));
    assert!(shown.json().unwrap().get("client_secret").is_none());
    let listed = s.cli(&["client", "list", "--json"]).unwrap();
    assert!(!listed.stdout.contains(secret));
    assert_eq!(listed.json().unwrap().as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn default_scopes_exclude_the_reserved_ones_which_are_given_by_name() {
    let s = server(&[]);
    let scopes = s.cli_json(&["scope", "list", "--json"]).unwrap();
    let names: Vec<&str> = scopes
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["admin", "introspect", "upload-data", "view-indicator"]
    );
    let v = s
        .cli_json(&[
            "client",
            "create",
            "--name",
            "Ops",
            "--scope",
            "admin",
            "--scope",
            "introspect",
            "--json",
        ])
        .unwrap();
    assert_eq!(v["scopes"], serde_json::json!(["admin", "introspect"]));
    s.cli_json(&[
        "scope",
        "create",
        "export:csv",
        "--description",
        "Export as CSV",
        "--json",
    ])
    .unwrap();
    let v = s
        .cli_json(&["client", "create", "--name", "All", "--json"])
        .unwrap();
    assert_eq!(
        v["scopes"],
        serde_json::json!(["export:csv", "upload-data", "view-indicator"])
    );
}

#[tokio::test]
async fn user_errors_are_one_line_on_stderr_with_exit_code_1() {
    let s = server(&[]);
    let cases: [&[&str]; 9] = [
        &["client", "show", "pc_nope"],
        &["client", "create", "--name", "x", "--scope", "nope"],
        &["client", "create", "--name", "  "],
        &[
            "client",
            "create",
            "--name",
            "x",
            "--redirect-uri",
            "http://evil.example/cb",
        ],
        &[
            "client",
            "create",
            "--name",
            "x",
            "--access-token-ttl",
            "soon",
        ],
        &["client", "create", "--name", "x", "--grant", "password"],
        &["scope", "create", "Bad Name"],
        &["scope", "create", "upload-data"],
        &["client", "frobnicate"],
    ];
    for args in cases {
        let out = s.cli(args).unwrap();
        assert_eq!(out.code, 1, "{args:?}: {out:?}");
        assert_eq!(
            out.stderr.trim_end().lines().count(),
            1,
            "{args:?}: {:?}",
            out.stderr
        );
        assert!(
            out.stderr.starts_with("error"),
            "{args:?}: {:?}",
            out.stderr
        );
        assert!(!out.stderr.contains("panicked"));
    }
}

#[tokio::test]
async fn rotate_secret_replaces_it_at_once_or_after_an_overlap() {
    let s = server(&[]);
    let (id, old) = s.create_client("Rotating", &[]).unwrap();
    let cc = [("grant_type", "client_credentials")];

    // With an overlap both secrets work, until the overlap ends.
    let v = s
        .cli_json(&[
            "client",
            "rotate-secret",
            &id,
            "--keep-old-for",
            "1h",
            "--json",
        ])
        .unwrap();
    let new = v["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert_eq!(token_basic(&s, &id, &new, &cc).await.status(), 200);
    assert_eq!(token_basic(&s, &id, &old, &cc).await.status(), 200);
    s.advance_clock(3600 - 10).unwrap();
    assert_eq!(token_basic(&s, &id, &old, &cc).await.status(), 200);
    s.advance_clock(11).unwrap();
    // Within the server's one-second client cache.
    let old_refused = eventually(std::time::Duration::from_secs(3), || async {
        token_basic(&s, &id, &old, &cc).await.status() == 401
    })
    .await;
    assert!(old_refused, "the old secret still works after the overlap");
    assert_eq!(token_basic(&s, &id, &new, &cc).await.status(), 200);

    // Without one, the previous secret stops at once (within the client cache).
    let v = s
        .cli_json(&["client", "rotate-secret", &id, "--json"])
        .unwrap();
    let newest = v["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(token_basic(&s, &id, &newest, &cc).await.status(), 200);
    let new_refused = eventually(std::time::Duration::from_secs(3), || async {
        token_basic(&s, &id, &new, &cc).await.status() == 401
    })
    .await;
    assert!(new_refused);
}

#[tokio::test]
async fn admin_users_are_created_from_stdin_and_the_first_one_is_announced_once() {
    let mut s = server(&[]);
    let banner = s.banner.join("\n");
    assert!(
        banner.contains("created the first admin user \"admin\" with password: "),
        "{banner}"
    );
    s.restart(&[]).unwrap();
    assert!(
        s.banner.iter().all(|l| !l.contains("password")),
        "{:?}",
        s.banner
    );

    let out = s
        .cli_with_stdin(
            &["admin", "create-user", "ops", "--password-stdin"],
            "correct horse battery\n",
        )
        .unwrap();
    assert_eq!(out.code, 0, "{out:?}");
    let out = s
        .cli_with_stdin(
            &["admin", "create-user", "ops", "--password-stdin"],
            "correct horse battery\n",
        )
        .unwrap();
    assert_eq!(out.code, 1);
    let out = s
        .cli_with_stdin(
            &["admin", "reset-password", "ops", "--password-stdin"],
            "short\n",
        )
        .unwrap();
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("at least 12"));
    let out = s
        .cli_with_stdin(
            &["admin", "reset-password", "ghost", "--password-stdin"],
            "long enough password\n",
        )
        .unwrap();
    assert_eq!(out.code, 1);
}

#[tokio::test]
async fn keys_rotate_makes_a_new_key_current_and_old_tokens_keep_verifying() {
    let s = server(&["--signing-alg", "ES256"]);
    let (id, secret) = s.create_client("Keys", &[]).unwrap();
    let before = get_token(&s, &id, &secret, &[]).await;
    let rotated = s
        .cli_json(&["keys", "rotate", "--signing-alg", "EdDSA", "--json"])
        .unwrap();
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    let keys = s.cli_json(&["keys", "list", "--json"]).unwrap();
    let states: Vec<(String, String)> = keys
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["alg"].as_str().unwrap().into(),
                k["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            ("EdDSA".into(), "current".into()),
            ("ES256".into(), "previous".into())
        ]
    );
    // The running server picks the new key up (it re-reads keys every second).
    let switched = eventually(std::time::Duration::from_secs(5), || async {
        let t = get_token(&s, &id, &secret, &[]).await;
        let h = jwt_header(&at(&t));
        h["kid"] == new_kid.as_str() && h["alg"] == "EdDSA"
    })
    .await;
    assert!(switched);
    let jwks = jwks(&s).await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    assert_eq!(
        whoami(&s, before["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    let audit = s.audit_events("key.rotate").unwrap();
    assert_eq!(audit[0]["target"], new_kid.as_str());
    assert_eq!(audit[0]["actor"]["kind"], "admin");
}

#[tokio::test]
async fn migrate_only_migrates() {
    let s = server(&[]);
    let out = s.cli(&["migrate"]).unwrap();
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("nothing to apply"), "{}", out.stdout);
}

#[test]
fn a_reader_that_goes_away_ends_a_command_quietly() {
    // `portcullis client list | head -0`: the pipe's reading end is closed before
    // the command writes, so its first line meets a broken pipe.
    let s = server(&[]);
    s.create_client("Piped", &[]).unwrap();
    for args in [
        &["client", "list"][..],
        &["client", "list", "--json"][..],
        &["scope", "list"][..],
    ] {
        let mut child = s
            .cli_command(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(stderr.trim().is_empty(), "{args:?}: {stderr}");
    }
}

#[tokio::test]
async fn a_cli_revocation_lasts_as_long_as_the_servers_tokens() {
    // The server's tokens live 3 days; the CLI is run without that flag (its own
    // default is 1 day).
    let flags = [
        "--access-token-ttl",
        "3d",
        "--issuer",
        "https://auth.care.example",
    ];
    let mut s = server(&flags);
    let (id, secret) = s.create_client("Long-lived", &[]).unwrap();
    let token = access_token(&s, &id, &secret, &[("label", "home-1")]).await;
    let out = s
        .cli(&["token", "revoke", "--client", &id, "--label", "home-1"])
        .unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Two days on, the token has not expired; a revocation that lasted the CLI's
    // own day would be gone, and a restarted server would load nothing for it.
    s.advance_clock(2 * 86_400).unwrap();
    s.restart(&flags).unwrap();
    let r = whoami(&s, &token).await;
    assert_eq!(r.status(), 401, "the revoked token is still refused");
    let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.contains("revoked"), "{challenge}");
}

#[test]
fn a_user_named_like_an_id_is_found_by_name() {
    let s = server(&[]);
    let out = s
        .cli_with_stdin(
            &["user", "create", "usr_lookalike", "--password-stdin"],
            "correct horse battery\n",
        )
        .unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let out = s
        .cli(&["user", "disable", "usr_lookalike", "--json"])
        .unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let user: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(user["name"], "usr_lookalike");
    assert_eq!(user["status"], "disabled");
}
