//! What is at rest, and the server's life cycle.

use crate::helpers::*;
use std::os::unix::fs::PermissionsExt;

/// Everything the database holds: the SQLite files, or a dump of the
/// PostgreSQL database (where binary values appear as hex).
fn database_bytes(s: &portcullis_testkit::TestServer) -> Vec<u8> {
    if s.engine() == Engine::Postgres {
        let out = std::process::Command::new("pg_dump")
            .args(["--data-only", &s.database_url()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        return out.stdout;
    }
    let mut all = Vec::new();
    for f in ["portcullis.db", "portcullis.db-wal"] {
        if let Ok(b) = std::fs::read(s.dir().join(f)) {
            all.extend(b);
        }
    }
    all
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn secrets_and_refresh_tokens_never_reach_the_database_in_clear() {
    let s = server(&[]);
    let (id, secret) = s.create_client("Hashed", &[]).unwrap();
    let t = get_token(&s, &id, &secret, &[("label", "home-1")]).await;
    let refresh = t["refresh_token"].as_str().unwrap();
    let minted = s
        .cli_json(&["token", "issue", "--client", &id, "--json"])
        .unwrap();
    let minted_refresh = minted["refresh_token"].as_str().unwrap();
    let bytes = database_bytes(&s);
    assert!(contains(&bytes, &id), "the test reads the right file");
    for (what, value) in [
        ("secret", secret.as_str()),
        ("refresh", refresh),
        ("minted", minted_refresh),
    ] {
        assert!(!contains(&bytes, value), "{what} stored in clear");
        assert!(
            !contains(&bytes, &value[4..]),
            "{what} body stored in clear"
        );
    }
    // The private signing key is encrypted: no PKCS#8 header for an RSA key in the file.
    // (DER of an RSA PKCS#8 key starts 30 82 .. .. 02 01 00 30 0d 06 09 2a 86 48 86 f7 0d 01 01 01.)
    let rsa_oid = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    assert!(
        !bytes.windows(rsa_oid.len()).any(|w| w == rsa_oid),
        "an RSA key is stored unencrypted"
    );
    assert!(
        !contains(&bytes, "2a864886f70d010101"),
        "an RSA key is stored unencrypted (as hex)"
    );
}

#[tokio::test]
async fn the_master_key_file_is_private() {
    let s = server(&[]);
    let meta = std::fs::metadata(s.dir().join("master.key")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
}

#[tokio::test]
async fn sigterm_stops_the_server_cleanly_and_tokens_survive_a_restart() {
    // A fixed issuer: the default one names the (new, random) port.
    let issuer = ["--issuer", "http://portcullis.test"];
    let mut s = server(&issuer);
    let (id, secret) = s.create_client("Durable", &[]).unwrap();
    let t = get_token(&s, &id, &secret, &[("label", "home-9")]).await;
    assert_eq!(s.terminate().unwrap(), 0);
    s.restart(&issuer).unwrap();
    assert_eq!(
        whoami(&s, t["access_token"].as_str().unwrap())
            .await
            .status(),
        200
    );
    let list = s
        .cli_json(&["token", "list", "--client", &id, "--json"])
        .unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    // Another secret still works after the restart; the first admin is not recreated.
    get_token(&s, &id, &secret, &[]).await;
}

#[tokio::test]
async fn a_wrong_master_key_is_a_clear_start_up_error() {
    let s = server(&[]);
    let other = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &s.database_url(),
        ])
        .arg("--master-key-file")
        .arg(other.path().join("other.key"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.trim_end().lines().last().unwrap_or_default();
    assert!(last.contains("master key"), "{err}");
    // The CLI refuses it too, before it could hash a secret with the wrong key.
    let out = std::process::Command::new(bin())
        .args([
            "client",
            "create",
            "--name",
            "x",
            "--database-url",
            &s.database_url(),
        ])
        .arg("--master-key-file")
        .arg(other.path().join("other.key"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("master key"));
}

/// The CLI is another process writing the same file as the busy server: it must
/// wait its turn, never fail with "database is locked".
#[tokio::test]
async fn cli_changes_while_the_server_issues_tokens_wait_for_the_lock_and_succeed() {
    let s = server(&[]);
    let (id, secret) = s.create_client("Busy", &[]).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (url, id, secret, stop) = (s.url.clone(), id.clone(), secret.clone(), stop.clone());
        load.push(tokio::spawn(async move {
            let client = http();
            let mut issued = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let r = client
                    .post(format!("{url}/oauth/token"))
                    .basic_auth(&id, Some(&secret))
                    .form(&[("grant_type", "client_credentials"), ("label", "busy")])
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                issued += 1;
            }
            issued
        }));
    }
    let cli = {
        let (bin, url, key) = (bin().to_owned(), s.database_url(), s.master_key_file());
        let id = id.clone();
        tokio::task::spawn_blocking(move || {
            let mut failures = Vec::new();
            for i in 0..12 {
                let args: &[&str] = if i % 2 == 0 {
                    &[
                        "client",
                        "rotate-secret",
                        &id,
                        "--keep-old-for",
                        "1h",
                        "--json",
                    ]
                } else {
                    &["token", "revoke", "--client", &id, "--label", "nobody"]
                };
                let out = std::process::Command::new(&bin)
                    .args(args)
                    .env("PORTCULLIS_DATABASE_URL", &url)
                    .env("PORTCULLIS_MASTER_KEY_FILE", &key)
                    .env_remove("PORTCULLIS_MASTER_KEY")
                    .output()
                    .unwrap();
                if !out.status.success() {
                    failures.push(String::from_utf8_lossy(&out.stderr).into_owned());
                }
            }
            failures
        })
    };
    let failures = cli.await.unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut issued = 0;
    for l in load {
        issued += l.await.unwrap();
    }
    assert!(failures.is_empty(), "{failures:?}");
    assert!(issued > 0, "the server issued tokens all along");
}

/// `portcullis backup FILE` copies a running server's database; a server started
/// on the copy (with the same master key) knows its clients, keys and tokens.
#[tokio::test]
async fn a_backup_taken_while_serving_restores_clients_keys_and_tokens() {
    let a = server(&[]);
    let (id, secret) = a.create_client("Backed up", &[]).unwrap();
    let t = get_token(&a, &id, &secret, &[("label", "home-1")]).await;
    let copy = a.dir().join("copy.db");
    if a.engine() == Engine::Postgres {
        // PostgreSQL is backed up with its own tools; the command says so.
        let out = a.cli(&["backup", copy.to_str().unwrap()]).unwrap();
        assert_eq!(out.code, 1, "{}", out.stderr);
        assert!(out.stderr.contains("pg_dump"), "{}", out.stderr);
        assert!(!copy.exists());
        return;
    }
    let out = a.cli(&["backup", copy.to_str().unwrap()]).unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr);
    // A second backup never overwrites the first.
    let again = a.cli(&["backup", copy.to_str().unwrap()]).unwrap();
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    // Issued after the backup: not in the copy.
    let (later, _) = a.create_client("After the backup", &[]).unwrap();

    // Restore: the copy in place of a new server's database, with A's master key.
    let mut b = server(&[]);
    b.terminate().unwrap();
    for f in ["portcullis.db", "portcullis.db-wal", "portcullis.db-shm"] {
        let _ = std::fs::remove_file(b.dir().join(f));
    }
    std::fs::copy(&copy, b.dir().join("portcullis.db")).unwrap();
    std::fs::copy(a.dir().join("master.key"), b.dir().join("master.key")).unwrap();
    b.restart(&[]).unwrap();
    // Same issuer on both (each defaults to its own address): check by signature.
    let r = http()
        .post(format!("{}/oauth/token", b.url))
        .basic_auth(&id, Some(&secret))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        200,
        "the refresh token from before the backup works"
    );
    let clients = b.cli_json(&["client", "list", "--json"]).unwrap();
    let ids: Vec<&str> = clients
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["client_id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&id.as_str()) && !ids.contains(&later.as_str()),
        "{ids:?}"
    );
    let keys_a = a.cli_json(&["keys", "list", "--json"]).unwrap();
    let keys_b = b.cli_json(&["keys", "list", "--json"]).unwrap();
    assert_eq!(keys_a, keys_b, "the signing keys came along");
}

#[tokio::test]
async fn backup_of_a_missing_database_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none").join("p.db");
    let out = std::process::Command::new(bin())
        .args(["backup", dir.path().join("x.db").to_str().unwrap()])
        .env(
            "PORTCULLIS_DATABASE_URL",
            format!("sqlite://{}", missing.display()),
        )
        .env_remove("PORTCULLIS_MASTER_KEY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no database"), "{stderr}");
    assert!(!missing.exists());
}
