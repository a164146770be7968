//! Faults answered honestly and quickly: storage that stalls or fills up gets 503
//! with `Retry-After` (never a hang, never a 500) and `/readyz` says so; start-up
//! and CLI mistakes are one clear line and exit 1, and change nothing on disk.
//! These use SQLite files on purpose (the same behaviour on PostgreSQL is in the
//! cluster tests).

use crate::helpers::*;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// `portcullis ARGS` with only the given database and key file.
fn run(args: &[&str], db: &Path, key: &Path) -> (i32, String) {
    let out = Command::new(bin())
        .args(args)
        .arg("--database-url")
        .arg(format!("sqlite://{}", db.display()))
        .arg("--master-key-file")
        .arg(key)
        .env_remove("PORTCULLIS_MASTER_KEY")
        .env_remove("PORTCULLIS_DATABASE_URL")
        .env("PORTCULLIS_LOG", "error")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    (out.status.code().unwrap_or(-1), stderr)
}

fn one_line(stderr: &str) -> &str {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one line: {stderr}");
    lines[0]
}

#[test]
fn an_empty_database_file_is_refused_not_taken_for_a_new_install() {
    let dir = tempfile::tempdir().unwrap();
    let (db, key) = (dir.path().join("p.db"), dir.path().join("master.key"));
    std::fs::write(&db, b"").unwrap();
    let (code, err) = run(&["serve", "--listen", "127.0.0.1:0"], &db, &key);
    assert_eq!(code, 1);
    assert!(one_line(&err).contains("is empty (0 bytes)"), "{err}");
    assert_eq!(std::fs::metadata(&db).unwrap().len(), 0, "left as it was");
    assert!(!key.exists(), "no master key was written");
}

#[test]
fn a_missing_master_key_for_an_existing_database_writes_no_new_key() {
    let dir = tempfile::tempdir().unwrap();
    let (db, key) = (dir.path().join("p.db"), dir.path().join("master.key"));
    assert_eq!(run(&["migrate"], &db, &key).0, 0);
    std::fs::remove_file(&key).unwrap();
    for args in [
        &["serve", "--listen", "127.0.0.1:0"][..],
        &["client", "list"][..],
    ] {
        let (code, err) = run(args, &db, &key);
        assert_eq!(code, 1, "{args:?}");
        assert!(one_line(&err).contains("does not exist"), "{err}");
        assert!(!key.exists(), "{args:?} wrote a new key file");
    }
}

#[test]
fn a_master_key_file_others_can_read_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (db, key) = (dir.path().join("p.db"), dir.path().join("master.key"));
    assert_eq!(run(&["migrate"], &db, &key).0, 0);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, err) = run(&["client", "list"], &db, &key);
    assert_eq!(code, 1);
    assert!(one_line(&err).contains("chmod 600"), "{err}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(run(&["client", "list"], &db, &key).0, 0);
}

#[test]
fn a_cli_command_on_a_mistyped_database_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (db, key) = (dir.path().join("typo.db"), dir.path().join("master.key"));
    let (code, err) = run(&["client", "list"], &db, &key);
    assert_eq!(code, 1);
    assert!(one_line(&err).contains("no database at"), "{err}");
    assert!(!db.exists(), "no database was created");
    assert!(!key.exists(), "no master key was created");
}

/// Holds an exclusive lock on a SQLite database from another process until dropped.
struct LockHolder(std::process::Child);

impl LockHolder {
    fn lock(db: &Path) -> Self {
        let script = "import sqlite3, sys\n\
             c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)\n\
             c.execute('BEGIN EXCLUSIVE')\n\
             print('locked', flush=True)\n\
             sys.stdin.read()\n";
        let mut child = Command::new("python3")
            .args(["-c", script])
            .arg(db)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        assert_eq!(line.trim(), "locked");
        Self(child)
    }
}

impl Drop for LockHolder {
    fn drop(&mut self) {
        // End of its stdin ends the script and with it the lock.
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

async fn token_status(s: &TestServer, id: &str, secret: &str) -> (u16, Option<String>, String) {
    let r = token_basic(s, id, secret, &[("grant_type", "client_credentials")]).await;
    let status = r.status().as_u16();
    let retry = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: serde_json::Value = r.json().await.unwrap();
    (
        status,
        retry,
        body["error"].as_str().unwrap_or_default().into(),
    )
}

async fn ready(s: &TestServer) -> u16 {
    http()
        .get(format!("{}/readyz", s.url))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_write_the_disk_cannot_take_answers_503_quickly_and_recovers() {
    let s = TestServer::start_with(bin(), Engine::Sqlite, &[]).unwrap();
    let (id, secret) = s.create_client("Stalled", &[]).unwrap();
    assert_eq!(token_status(&s, &id, &secret).await.0, 200);
    let db = s.dir().join("portcullis.db");

    let holder = LockHolder::lock(&db);
    let started = Instant::now();
    let (status, retry, error) = token_status(&s, &id, &secret).await;
    assert_eq!((status, error.as_str()), (503, "temporarily_unavailable"));
    assert!(retry.is_some(), "Retry-After");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "answered in {:?}, not hung",
        started.elapsed()
    );
    assert_eq!(ready(&s).await, 503, "not ready while writes fail");

    drop(holder);
    assert_eq!(ready(&s).await, 200, "ready once a write gets through");
    assert_eq!(token_status(&s, &id, &secret).await.0, 200);
}

/// A small tmpfs mounted for the test (root only), unmounted when dropped.
struct SmallDisk(tempfile::TempDir);

impl SmallDisk {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Self(dir))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.0.path()).status();
    }
}

#[tokio::test]
async fn a_full_disk_answers_503_and_not_ready_until_a_write_succeeds() {
    // Mounting needs root, which CI and the test command have.
    let euid = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&euid.stdout).trim() != "0" {
        eprintln!("skipped: mounting a small filesystem needs root");
        return;
    }
    let disk = SmallDisk::mount("4m").expect("mount a tmpfs");
    let db = disk.0.path().join("p.db");
    let key = tempfile::tempdir().unwrap();
    let key = key.path().join("master.key");
    assert_eq!(run(&["migrate"], &db, &key).0, 0);
    // The server under test runs on the small disk.
    let mut node = std::process::Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .arg("--database-url")
        .arg(format!("sqlite://{}", db.display()))
        .arg("--master-key-file")
        .arg(&key)
        .env("PORTCULLIS_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(node.stdout.take().unwrap());
    let url = loop {
        let mut line = String::new();
        assert!(std::io::BufRead::read_line(&mut out, &mut line).unwrap() > 0);
        if let Some(u) = line.strip_prefix("portcullis listening on ") {
            break u.trim().to_owned();
        }
    };
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let created = Command::new(bin())
        .args(["client", "create", "--name", "Full", "--json"])
        .arg("--database-url")
        .arg(format!("sqlite://{}", db.display()))
        .arg("--master-key-file")
        .arg(&key)
        .output()
        .unwrap();
    let c: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    let (id, secret) = (
        c["client_id"].as_str().unwrap().to_owned(),
        c["client_secret"].as_str().unwrap().to_owned(),
    );
    let token = |id: String, secret: String, url: String| async move {
        let r = http()
            .post(format!("{url}/oauth/token"))
            .basic_auth(id, Some(secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let retry = r.headers().contains_key("retry-after");
        let body: serde_json::Value = r.json().await.unwrap();
        (
            status,
            retry,
            body["error"].as_str().unwrap_or_default().to_owned(),
        )
    };
    assert_eq!(token(id.clone(), secret.clone(), url.clone()).await.0, 200);

    // Fill the disk.
    let filler = disk.0.path().join("filler");
    let _ = Command::new("dd")
        .arg("if=/dev/zero")
        .arg(format!("of={}", filler.display()))
        .args(["bs=64k", "status=none"])
        .stderr(Stdio::null())
        .status();
    let mut refused = None;
    for _ in 0..200 {
        let r = token(id.clone(), secret.clone(), url.clone()).await;
        if r.0 != 200 {
            refused = Some(r);
            break;
        }
    }
    let (status, retry, error) = refused.expect("a grant is refused once the disk is full");
    assert_eq!((status, error.as_str()), (503, "temporarily_unavailable"));
    assert!(retry, "Retry-After");
    let readyz = |url: String| async move {
        http()
            .get(format!("{url}/readyz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(
        readyz(url.clone()).await,
        503,
        "not ready while writes fail"
    );

    std::fs::remove_file(&filler).unwrap();
    assert_eq!(
        readyz(url.clone()).await,
        200,
        "ready once a write succeeds"
    );
    assert_eq!(token(id, secret, url).await.0, 200);
    let _ = node.kill();
    let _ = node.wait();
}
