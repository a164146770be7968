//! End-to-end tests of the admin interface and of an end user's authorization
//! code flow in real headless Chromium, driven over WebDriver (chromedriver) by
//! fantoccini. Debian's `chromium` and `chromium-driver` are installed by the test
//! itself when missing (as root, with apt-get), so `cargo test --workspace` is the
//! whole set-up.
//!
//! Screenshots of the main pages are written to `target/tmp/screenshots/`, and to
//! `$PORTCULLIS_SCREENSHOTS_DIR` when set (relative to the workspace root: the
//! README's come from `docs/screenshots`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::Router;
use axum::extract::RawQuery;
use axum::response::Html;
use axum::routing::get;
use fantoccini::{Client, ClientBuilder, Locator};
use oauth2::url::Url;
use oauth2::{CsrfToken, PkceCodeChallenge, PkceCodeVerifier};
use portcullis_testkit::TestServer;
use portcullis_testkit::http::{http, token_basic, whoami};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Installs Chromium and ChromeDriver when missing. The tests of this binary run
/// side by side (threads under `cargo test`, processes under nextest), and two
/// `apt-get` runs at once fail on dpkg's lock: one test installs while the others
/// wait on an exclusive lock of a file in the temporary directory, then find the
/// browser there.
fn ensure_chromium() {
    let lock = std::fs::File::create(std::env::temp_dir().join("portcullis-chromium-install.lock"))
        .unwrap();
    lock.lock().unwrap();
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
    // Another apt-get (outside these tests) holding dpkg's lock is waited for.
    let ok = Command::new("apt-get")
        .args(["-o", "DPkg::Lock::Timeout=300", "update", "-qq"])
        .status()
        .unwrap()
        .success()
        && Command::new("apt-get")
            .args([
                "-o",
                "DPkg::Lock::Timeout=300",
                "install",
                "-y",
                "-qq",
                "chromium",
                "chromium-driver",
            ])
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
        let ok = http()
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
    let r = token_basic(
        &s,
        &client_id,
        &secret,
        &[
            ("grant_type", "client_credentials"),
            ("label", "care-home-001"),
        ],
    )
    .await;
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
    assert_eq!(whoami(&s, &access).await.status(), 200);

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
    assert_eq!(whoami(&s, &access).await.status(), 401);
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

/// The application's side of the flow: a callback page on a free loopback port
/// that answers "signed in" and hands over the query of each visit.
struct App {
    redirect_uri: String,
    visits: mpsc::UnboundedReceiver<HashMap<String, String>>,
}

impl App {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, visits) = mpsc::unbounded_channel();
        let app = Router::new().route(
            "/callback",
            get(move |RawQuery(q): RawQuery| async move {
                let url = format!("http://127.0.0.1/callback?{}", q.unwrap_or_default());
                let query = Url::parse(&url)
                    .unwrap()
                    .query_pairs()
                    .into_owned()
                    .collect();
                let _ = tx.send(query);
                Html("<!doctype html><title>Care Diary</title><h1 id=\"signed-in\">signed in</h1>")
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self {
            redirect_uri: format!("http://127.0.0.1:{port}/callback"),
            visits,
        }
    }

    /// An authorization URL for both scopes, with PKCE (RFC 7636: S256); its
    /// state and verifier.
    fn authorize_url(&self, s: &TestServer, client_id: &str) -> (String, String, PkceCodeVerifier) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = CsrfToken::new_random().secret().clone();
        let url = Url::parse_with_params(
            &format!("{}/oauth/authorize", s.url),
            &[
                ("response_type", "code"),
                ("client_id", client_id),
                ("redirect_uri", &self.redirect_uri),
                ("scope", "view-indicator upload-data"),
                ("state", &state),
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", challenge.method().as_str()),
            ],
        )
        .unwrap();
        (url.into(), state, verifier)
    }

    /// The query the browser brings back to the callback, once the browser shows
    /// the callback page. A redirect the browser refused (a page's `form-action`)
    /// never arrives: then the failure says where the browser stopped.
    async fn arrival(&mut self, c: &Client) -> HashMap<String, String> {
        let Ok(Some(back)) =
            tokio::time::timeout(Duration::from_secs(20), self.visits.recv()).await
        else {
            panic!(
                "the browser never reached the callback; it is at {}: {}",
                c.current_url().await.unwrap(),
                c.source().await.unwrap()
            );
        };
        assert_eq!(text(c, "#signed-in").await, "signed in");
        let at = c.current_url().await.unwrap();
        assert!(at.as_str().starts_with(&self.redirect_uri), "{at}");
        let shown: HashMap<String, String> = at.query_pairs().into_owned().collect();
        assert_eq!(shown, back, "the browser shows what the application got");
        back
    }
}

/// POST `/oauth/token` as the application; the status and the JSON answer.
async fn token(s: &TestServer, client: (&str, &str), form: &[(&str, &str)]) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/oauth/token", s.url))
        .basic_auth(client.0, Some(client.1))
        .form(form)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn an_end_user_signs_in_allows_an_application_and_revokes_it() {
    const PASSWORD: &str = "correct horse battery";
    let driver = start_driver().await;
    let s = TestServer::start(Path::new(env!("CARGO_BIN_EXE_portcullis")), &[]).unwrap();
    let mut app = App::start().await;
    let (client_id, secret) = s
        .create_client(
            "Care Diary",
            &[
                "--grant",
                "authorization_code",
                "--grant",
                "refresh_token",
                "--redirect-uri",
                &app.redirect_uri,
                "--scope",
                "view-indicator",
                "--scope",
                "upload-data",
            ],
        )
        .unwrap();
    let client = (client_id.as_str(), secret.as_str());
    let out = s
        .cli_with_stdin(
            &["user", "create", "alice", "--password-stdin", "--json"],
            PASSWORD,
        )
        .unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let user_id = out.json().unwrap()["id"].as_str().unwrap().to_owned();
    let c = browser(&driver).await;

    // The application sends alice here; she signs in, told which application asks.
    let (url, state, verifier) = app.authorize_url(&s, &client_id);
    c.goto(&url).await.unwrap();
    assert_eq!(text(&c, "h1").await, "Sign in");
    let intro = text(&c, "main").await;
    assert!(
        intro.contains("Care Diary asks to use your data"),
        "{intro}"
    );
    screenshot(&c, "end-user-sign-in").await;
    fill(&c, "input[name=username]", "alice").await;
    fill(&c, "input[name=password]", PASSWORD).await;
    click(&c, "main form button[type=submit]").await;

    // Consent: the application and what it may do, in words.
    let allow = "main form button[name=decision][value=allow]";
    text(&c, allow).await;
    assert_eq!(text(&c, "h1").await, "Allow Care Diary to use your data?");
    let asked = text(&c, "main ul.scopes").await;
    assert!(
        asked.contains("Read indicators computed from uploaded data")
            && asked.contains("Send data records to the resource API"),
        "{asked}"
    );
    assert_eq!(text(&c, "header .who").await, "alice");
    screenshot(&c, "end-user-consent").await;
    click(&c, allow).await;

    // Back at the application (another origin: the consent page's form-action
    // must allow it) with a code, the same state and the issuer (RFC 9207).
    let back = app.arrival(&c).await;
    assert_eq!(back["state"], state);
    assert_eq!(back["iss"], s.url);
    assert!(back["code"].starts_with("pcc_"), "{back:?}");

    // The application exchanges the code, proving it holds the verifier, and
    // acts for alice.
    let (status, tokens) = token(
        &s,
        client,
        &[
            ("grant_type", "authorization_code"),
            ("code", &back["code"]),
            ("redirect_uri", &app.redirect_uri),
            ("code_verifier", verifier.secret()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let mut scopes: Vec<&str> = tokens["scope"].as_str().unwrap().split(' ').collect();
    scopes.sort_unstable();
    assert_eq!(
        scopes,
        ["upload-data", "view-indicator"],
        "all that was allowed"
    );
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    let r = reqwest::Client::new()
        .get(format!("{}/api/v1/whoami", s.url))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let me: Value = r.json().await.unwrap();
    assert_eq!(me["sub"], user_id.as_str(), "the token acts for alice");

    // Alice's account page, in the same browser session, lists the application
    // and what it may do.
    c.goto(&format!("{}/account", s.url)).await.unwrap();
    assert_eq!(text(&c, "h1").await, "Applications you allowed");
    let row = "//tr[td[1][normalize-space()='Care Diary']]";
    let may = c
        .find(Locator::XPath(&format!("{row}/td[2]")))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        may.contains("Read indicators computed from uploaded data")
            && may.contains("Send data records to the resource API"),
        "{may}"
    );
    screenshot(&c, "end-user-account").await;

    // A returning user who allowed all this already goes from the sign-in form
    // straight back to the application: two redirects after the form, the last
    // to the application's origin, which the sign-in page's form-action allows.
    click(&c, "form.logout button").await;
    text(&c, "input[name=password]").await;
    let (url, state, _) = app.authorize_url(&s, &client_id);
    c.goto(&url).await.unwrap();
    fill(&c, "input[name=username]", "alice").await;
    fill(&c, "input[name=password]", PASSWORD).await;
    click(&c, "main form button[type=submit]").await;
    let back = app.arrival(&c).await;
    assert_eq!(back["state"], state, "no consent page this time");
    assert!(back["code"].starts_with("pcc_"), "{back:?}");

    // Revoking ends the application's access at once.
    c.goto(&format!("{}/account", s.url)).await.unwrap();
    c.find(Locator::XPath(&format!(
        "{row}//button[normalize-space()='Revoke access']"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    assert_eq!(
        text(&c, ".flash").await,
        "Access revoked. The application's tokens stopped working."
    );
    let after = text(&c, "main").await;
    assert!(
        after.contains("You have not allowed any application to use your data."),
        "{after}"
    );
    assert_eq!(whoami(&s, access).await.status(), 401);
    let (status, refused) = token(
        &s,
        client,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (400, Some("invalid_grant")),
        "the refresh token is revoked too"
    );
    c.close().await.unwrap();
}
