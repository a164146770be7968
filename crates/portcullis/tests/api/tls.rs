//! Native TLS (`--tls-cert`, `--tls-key`): the one binary serves HTTPS, with an https
//! issuer, HSTS and `Secure` cookies; SIGHUP swaps in a renewed certificate (and keeps
//! the old one when the new files are broken); a half-given pair or a bad file stops
//! the start with one line. Certificates come from test CAs the clients alone trust.

use crate::admin::{Browser, first_admin_password};
use crate::helpers::*;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use reqwest::header::SET_COOKIE;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a reload may take to be seen.
const RELOAD_WITHIN: Duration = Duration::from_secs(10);

/// A certificate authority of the test's own.
struct Ca(CertifiedIssuer<'static, KeyPair>);

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Self(CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap())
    }

    /// PEM of a server certificate for 127.0.0.1 and localhost, and of its key.
    fn server_cert(&self) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params =
            CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "localhost");
        let cert = params.signed_by(&key, &self.0).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// An HTTPS client that trusts this CA and nothing else (a new one: its own
    /// connections).
    fn client(&self) -> reqwest::Client {
        let root = reqwest::Certificate::from_pem(self.0.pem().as_bytes()).unwrap();
        reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .tls_certs_only([root])
            .build()
            .unwrap()
    }
}

/// The server's certificate and key files.
struct Files {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
}

impl Files {
    fn issued_by(ca: &Ca) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let files = Self {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
            _dir: dir,
        };
        let (cert, key) = ca.server_cert();
        files.write(&cert, &key);
        files
    }

    fn write(&self, cert: &str, key: &str) {
        std::fs::write(&self.cert, cert).unwrap();
        std::fs::write(&self.key, key).unwrap();
    }

    fn args(&self) -> [&str; 4] {
        [
            "--tls-cert",
            self.cert.to_str().unwrap(),
            "--tls-key",
            self.key.to_str().unwrap(),
        ]
    }
}

fn hang_up(pid: u32) {
    let status = Command::new("kill")
        .args(["-HUP", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -HUP");
}

/// Whether `client` completes a request to `/healthz` (a handshake, on a new connection).
async fn reaches(client: reqwest::Client, url: &str) -> bool {
    client
        .get(format!("{url}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
}

#[tokio::test]
async fn the_server_speaks_https_with_an_https_issuer_and_hsts() {
    let ca = Ca::new("Test CA");
    let files = Files::issued_by(&ca);
    let mut s = server(&files.args());
    assert!(s.url.starts_with("https://127.0.0.1:"), "{}", s.url);
    let https = ca.client();

    let r = https
        .get(format!("{}/.well-known/oauth-authorization-server", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
    let meta: serde_json::Value = r.json().await.unwrap();
    assert_eq!(meta["issuer"], s.url.as_str());
    assert_eq!(meta["token_endpoint"], format!("{}/oauth/token", s.url));

    let (id, secret) = s.create_client("Over TLS", &[]).unwrap();
    let r = https
        .post(format!("{}/oauth/token", s.url))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let token: serde_json::Value = r.json().await.unwrap();
    let access = token["access_token"].as_str().unwrap();
    let r = https
        .get(format!("{}/api/v1/whoami", s.url))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let who: serde_json::Value = r.json().await.unwrap();
    assert_eq!(who["client_id"], id.as_str());

    // The name in the certificate serves as well as the address.
    let local = s.url.replace("127.0.0.1", "localhost");
    assert!(reaches(ca.client(), &local).await);
    assert_eq!(s.terminate().unwrap(), 0, "a clean shutdown over TLS too");
}

#[tokio::test]
async fn the_admin_session_cookie_is_secure_over_tls() {
    let ca = Ca::new("Test CA");
    let files = Files::issued_by(&ca);
    let s = server(&files.args());
    let mut b = Browser::with_client(&s, ca.client());
    let r = b.login("admin", &first_admin_password(&s)).await;
    assert_eq!(r.status(), 303);
    let session = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("pc_admin="))
        .unwrap();
    assert!(
        session.contains("; Secure") && session.contains("HttpOnly"),
        "{session}"
    );
    let (html, _) = b.page("/admin").await;
    assert!(html.contains("Dashboard"));
}

#[tokio::test]
async fn plain_http_and_untrusting_clients_are_refused_on_the_tls_port() {
    let ca = Ca::new("Test CA");
    let files = Files::issued_by(&ca);
    let s = server(&files.args());
    let plain = s.url.replace("https://", "http://");
    assert!(http().get(format!("{plain}/healthz")).send().await.is_err());
    // A client that does not trust the test CA (only the built-in roots).
    let r = http().get(format!("{}/healthz", s.url)).send().await;
    assert!(r.is_err());
    assert!(reaches(ca.client(), &s.url).await, "still serving");
}

#[tokio::test]
async fn a_client_that_never_handshakes_holds_up_nobody() {
    let ca = Ca::new("Test CA");
    let files = Files::issued_by(&ca);
    let mut s = server(&files.args());
    let addr = s.url.trim_start_matches("https://").to_owned();
    let silent = tokio::net::TcpStream::connect(&addr).await.unwrap();
    // Well within the 10 s its handshake may take.
    let served = tokio::time::timeout(Duration::from_secs(5), reaches(ca.client(), &s.url));
    assert!(served.await.unwrap(), "served beside the silent client");
    assert_eq!(s.terminate().unwrap(), 0, "nor does it delay shutdown");
    drop(silent);
}

#[tokio::test]
async fn sighup_serves_a_renewed_certificate_to_new_connections() {
    let old_ca = Ca::new("Old CA");
    let files = Files::issued_by(&old_ca);
    let s = server(&files.args());
    let new_ca = Ca::new("New CA");
    assert!(reaches(old_ca.client(), &s.url).await);
    assert!(!reaches(new_ca.client(), &s.url).await);

    let (cert, key) = new_ca.server_cert();
    files.write(&cert, &key);
    hang_up(s.pid().unwrap());
    assert!(
        eventually(RELOAD_WITHIN, || reaches(new_ca.client(), &s.url)).await,
        "the new certificate is served after SIGHUP"
    );
    assert!(
        !reaches(old_ca.client(), &s.url).await,
        "the old one is not"
    );
}

/// `serve` with TLS and info logs, its stderr lines readable as they come.
struct Logged {
    child: Child,
    url: String,
    lines: mpsc::Receiver<String>,
    _dir: tempfile::TempDir,
}

impl Logged {
    fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = format!("sqlite://{}", dir.path().join("p.db").display());
        let mut child = Command::new(bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &db])
            .arg("--master-key-file")
            .arg(dir.path().join("master.key"))
            .args(extra)
            .env("PORTCULLIS_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        let url = loop {
            let mut line = String::new();
            assert!(out.read_line(&mut line).unwrap() > 0, "the server exited");
            if let Some(u) = line.strip_prefix("portcullis listening on ") {
                break u.trim().to_owned();
            }
        };
        let (tx, lines) = mpsc::channel();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Self {
            child,
            url,
            lines,
            _dir: dir,
        }
    }

    /// Waits for a log line containing `text`; false when the server's stderr ends
    /// (it exited) or a while passes without one.
    fn logs(&self, text: &str) -> bool {
        let deadline = Instant::now() + RELOAD_WITHIN;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return true,
                Ok(_) => {}
                Err(_) => return false,
            }
        }
        false
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn sighup_with_broken_files_keeps_the_old_certificate() {
    let ca = Ca::new("Test CA");
    let files = Files::issued_by(&ca);
    let s = Logged::start(&files.args());
    files.write("not a certificate\n", "not a key\n");
    hang_up(s.child.id());
    assert!(s.logs("TLS certificate not reloaded"));
    assert!(
        reaches(ca.client(), &s.url).await,
        "the old certificate serves"
    );

    // A mismatched pair (another certificate's key) is refused too.
    let (cert, _) = ca.server_cert();
    let (_, other_key) = ca.server_cert();
    files.write(&cert, &other_key);
    hang_up(s.child.id());
    assert!(s.logs("is not the key of the certificate"));
    assert!(reaches(ca.client(), &s.url).await);
}

#[tokio::test]
async fn sighup_without_tls_is_ignored() {
    let s = Logged::start(&[]);
    assert!(s.url.starts_with("http://"), "{}", s.url);
    hang_up(s.child.id());
    assert!(s.logs("SIGHUP: nothing to reload"));
    let r = http()
        .get(format!("{}/healthz", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Runs `serve` expecting it to fail at start; returns its stderr.
fn fails_to_start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> String {
    let db = format!("sqlite://{}", dir.join("p.db").display());
    let out = Command::new(bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &db])
        .arg("--master-key-file")
        .arg(dir.join("master.key"))
        .args(args)
        .envs(env.iter().copied())
        .env("PORTCULLIS_LOG", "warn")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(
        !dir.join("p.db").exists(),
        "nothing is set up before the certificate loads"
    );
    stderr
}

#[tokio::test]
async fn a_half_given_pair_or_a_bad_file_stops_the_start_with_one_line() {
    let ca = Ca::new("Test CA");
    let files = Files::issued_by(&ca);
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (files.cert.to_str().unwrap(), files.key.to_str().unwrap());

    let err = fails_to_start(dir.path(), &["--tls-cert", cert], &[]);
    assert!(err.contains("--tls-cert needs --tls-key"), "{err}");
    let err = fails_to_start(dir.path(), &[], &[("PORTCULLIS_TLS_KEY", key)]);
    assert!(err.contains("--tls-key needs --tls-cert"), "{err}");

    let missing = dir.path().join("missing.pem");
    let missing = missing.to_str().unwrap();
    let err = fails_to_start(dir.path(), &["--tls-cert", missing, "--tls-key", key], &[]);
    assert!(
        err.contains("cannot read the TLS certificate") && err.contains(missing),
        "{err}"
    );
    // The key where the certificate should be, and the other way round.
    let err = fails_to_start(dir.path(), &["--tls-cert", key, "--tls-key", key], &[]);
    assert!(
        err.contains("holds no CERTIFICATE") && err.contains(key),
        "{err}"
    );
    let err = fails_to_start(dir.path(), &["--tls-cert", cert, "--tls-key", cert], &[]);
    assert!(
        err.contains("holds no PRIVATE KEY") && err.contains(cert),
        "{err}"
    );
}
