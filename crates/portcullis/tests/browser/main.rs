//! End-to-end tests of the admin interface in real headless Chromium, driven over
//! WebDriver (chromedriver) by fantoccini. Debian's `chromium` and
//! `chromium-driver` are installed by the test itself when missing (as root, with
//! apt-get), so `cargo test --workspace` is the whole set-up.
//!
//! Screenshots of the main pages are written to `target/tmp/screenshots/`, and to
//! `$PORTCULLIS_SCREENSHOTS_DIR` when set (relative to the workspace root: the
//! README's come from `docs/screenshots`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use fantoccini::{Client, ClientBuilder, Locator};
use portcullis_testkit::TestServer;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

fn ensure_chromium() {
    if Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists() {
        return;
    }
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout == b"0\n")
        .unwrap_or(false);
    assert!(
        root,
        "browser tests need {CHROMIUM} and {CHROMEDRIVER}: apt-get install chromium chromium-driver"
    );
    let ok = Command::new("apt-get")
        .args(["update", "-qq"])
        .status()
        .unwrap()
        .success()
        && Command::new("apt-get")
            .args(["install", "-y", "-qq", "chromium", "chromium-driver"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .unwrap()
            .success();
    assert!(
        ok && Path::new(CHROMEDRIVER).exists(),
        "installing chromium failed"
    );
}

struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Chromium outlives its driver when a test fails before closing the session:
        // end the processes that use this test's own profile directory.
        let _ = Command::new("pkill")
            .arg("-f")
            .arg(self._profile.path())
            .status();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_driver() -> Driver {
    ensure_chromium();
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let driver = Driver {
        child,
        port,
        _profile: tempfile::tempdir().unwrap(),
    };
    // Readiness: chromedriver answers /status once it listens.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ok = reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/status"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            return driver;
        }
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn browser(driver: &Driver) -> Client {
    let caps = json!({
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                format!("--user-data-dir={}", driver._profile.path().display()),
            ]
        }
    });
    let caps = match caps {
        Value::Object(m) => m,
        _ => unreachable!(),
    };
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .unwrap()
}

/// `$PORTCULLIS_SCREENSHOTS_DIR`. Cargo runs a test binary in its package's
/// directory, not where `cargo test` was typed, so a relative path is taken from
/// the workspace root (the README's `docs/screenshots`).
fn screenshots_dir() -> Option<PathBuf> {
    let d = PathBuf::from(std::env::var_os("PORTCULLIS_SCREENSHOTS_DIR")?);
    if d.is_absolute() {
        return Some(d);
    }
    Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(d))
}

async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.unwrap();
    let mut dirs = vec![PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots")];
    dirs.extend(screenshots_dir());
    for d in dirs {
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(format!("{name}.png")), &png).unwrap();
    }
}

async fn fill(c: &Client, css: &str, text: &str) {
    let el = c
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(css))
        .await
        .unwrap();
    el.clear().await.unwrap();
    el.send_keys(text).await.unwrap();
}

async fn click(c: &Client, css: &str) {
    c.wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

async fn text(c: &Client, css: &str) -> String {
    c.wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn whoami(s: &TestServer, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{}/api/v1/whoami", s.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn an_admin_onboards_a_care_group_mints_a_site_token_and_cuts_it_off() {
    let driver = start_driver().await;
    let s = TestServer::start(Path::new(env!("CARGO_BIN_EXE_portcullis")), &[]).unwrap();
    let password = s
        .banner
        .iter()
        .find_map(|l| l.split("with password: ").nth(1))
        .unwrap()
        .trim()
        .to_owned();
    let c = browser(&driver).await;

    // Sign in.
    c.goto(&format!("{}/admin", s.url)).await.unwrap();
    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/admin/login")
    );
    screenshot(&c, "login").await;
    fill(&c, "input[name=username]", "admin").await;
    fill(&c, "input[name=password]", &password).await;
    click(&c, "form[action='/admin/login'] button[type=submit]").await;
    // Wait for the next page (a click does not wait for the navigation it starts).
    text(&c, "ul.stats").await;
    assert_eq!(text(&c, "h1").await, "Dashboard");

    // Create a client and read its secret, once.
    c.goto(&format!("{}/admin/clients", s.url)).await.unwrap();
    fill(
        &c,
        "form[method=post][action='/admin/clients'] input[name=name]",
        "Sunrise Care Group",
    )
    .await;
    click(
        &c,
        "form[method=post][action='/admin/clients'] button[type=submit]",
    )
    .await;
    let secret = text(&c, "#secret").await;
    assert!(secret.starts_with("pcs_"), "{secret}");
    let client_id = text(&c, "dd code").await;
    screenshot(&c, "client-secret-shown-once").await;

    // The secret works at the token endpoint.
    let r = reqwest::Client::new()
        .post(format!("{}/oauth/token", s.url))
        .basic_auth(&client_id, Some(&secret))
        .form(&[
            ("grant_type", "client_credentials"),
            ("label", "care-home-001"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Mint a token set for a care home whose device cannot run an OAuth client.
    click(&c, "main p a").await;
    fill(
        &c,
        "form[action$='/mint'] input[name=label]",
        "care-home-042",
    )
    .await;
    click(&c, "form[action$='/mint'] button[type=submit]").await;
    let access = text(&c, "#access").await;
    assert_eq!(whoami(&s, &access).await, 200);

    // Cut that site off; the resource server refuses the token at once.
    c.goto(&format!("{}/admin/clients/{client_id}", s.url))
        .await
        .unwrap();
    let rows = c.find_all(Locator::Css("table tbody tr")).await.unwrap();
    assert!(!rows.is_empty());
    let revoke = c
        .find(Locator::XPath(
            "//tr[td[1][normalize-space()='care-home-042']]//button[contains(., 'Revoke site')]",
        ))
        .await
        .unwrap();
    revoke.click().await.unwrap();
    assert!(text(&c, ".flash").await.starts_with("Revoked 1"));
    assert_eq!(whoami(&s, &access).await, 401);
    screenshot(&c, "client-sites").await;

    // The other pages, for the record.
    for (path, name) in [
        ("/admin", "dashboard"),
        ("/admin/clients", "clients"),
        ("/admin/scopes", "scopes"),
        ("/admin/keys", "keys"),
        ("/admin/audit", "audit"),
    ] {
        c.goto(&format!("{}{path}", s.url)).await.unwrap();
        screenshot(&c, name).await;
    }
    let audit = c.source().await.unwrap();
    assert!(audit.contains("token.revoke") && audit.contains("admin.login"));

    // Sign out.
    click(&c, "form.logout button").await;
    text(&c, "input[name=password]").await;
    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/admin/login")
    );
    c.goto(&format!("{}/admin/clients", s.url)).await.unwrap();
    assert!(
        c.current_url()
            .await
            .unwrap()
            .path()
            .ends_with("/admin/login")
    );
    c.close().await.unwrap();
}
