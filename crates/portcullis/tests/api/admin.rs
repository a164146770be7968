//! The admin web interface over HTTP: sessions, CSRF, escaping, headers, forms.
//! (The same flows in a real browser are in `tests/browser`.)

use crate::helpers::*;
use portcullis_testkit::TestServer;
use reqwest::Response;
use reqwest::header::{COOKIE, HeaderMap, SET_COOKIE};

/// A browser-like client that keeps cookies by hand (reqwest's jar is not enabled).
pub(crate) struct Browser<'a> {
    s: &'a TestServer,
    client: reqwest::Client,
    forwarded_for: Option<String>,
    pub(crate) cookies: Vec<(String, String)>,
}

fn field(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let i = html.find(&marker)? + marker.len();
    let j = html[i..].find('"')? + i;
    Some(html[i..j].to_owned())
}

impl<'a> Browser<'a> {
    pub(crate) fn new(s: &'a TestServer) -> Self {
        Self {
            s,
            client: http(),
            forwarded_for: None,
            cookies: Vec::new(),
        }
    }
    /// A browser making its requests with `client` (an HTTPS one, say).
    pub(crate) fn with_client(s: &'a TestServer, client: reqwest::Client) -> Self {
        Self {
            s,
            client,
            forwarded_for: None,
            cookies: Vec::new(),
        }
    }
    /// A browser whose connections come from another loopback address.
    pub(crate) fn from_addr(s: &'a TestServer, local: &str) -> Self {
        Self {
            s,
            client: http_from(local),
            forwarded_for: None,
            cookies: Vec::new(),
        }
    }
    pub(crate) fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
    fn keep(&mut self, h: &HeaderMap) {
        for v in h.get_all(SET_COOKIE) {
            let v = v.to_str().unwrap();
            let (kv, _) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = kv.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != k);
            if !val.is_empty() && !v.contains("Max-Age=0") {
                self.cookies.push((k.to_owned(), val.to_owned()));
            }
        }
    }
    pub(crate) async fn get(&mut self, path: &str) -> Response {
        let mut req = self
            .client
            .get(format!("{}{path}", self.s.url))
            .header(COOKIE, self.cookie_header());
        if let Some(f) = &self.forwarded_for {
            req = req.header("x-forwarded-for", f);
        }
        let r = req.send().await.unwrap();
        self.keep(r.headers());
        r
    }
    pub(crate) async fn post(
        &mut self,
        path: &str,
        form: &[(&str, &str)],
        origin: Option<&str>,
    ) -> Response {
        let mut req = self
            .client
            .post(format!("{}{path}", self.s.url))
            .header(COOKIE, self.cookie_header())
            .form(form);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if let Some(f) = &self.forwarded_for {
            req = req.header("x-forwarded-for", f);
        }
        let r = req.send().await.unwrap();
        self.keep(r.headers());
        r
    }
    pub(crate) async fn login(&mut self, user: &str, password: &str) -> Response {
        let page = self.get("/admin/login").await.text().await.unwrap();
        let csrf = field(&page, "csrf").unwrap();
        self.post(
            "/admin/login",
            &[("csrf", &csrf), ("username", user), ("password", password)],
            None,
        )
        .await
    }
    /// Signs in through a proxy that forwards `client` as the client address.
    pub(crate) async fn login_forwarded(
        &mut self,
        user: &str,
        password: &str,
        client: &str,
    ) -> Response {
        self.forwarded_for = Some(client.to_owned());
        self.login(user, password).await
    }
    /// GET a page and return (html, csrf token).
    pub(crate) async fn page(&mut self, path: &str) -> (String, String) {
        let r = self.get(path).await;
        assert_eq!(r.status(), 200, "{path}");
        let html = r.text().await.unwrap();
        let csrf = field(&html, "csrf").unwrap_or_default();
        (html, csrf)
    }
}

pub(crate) fn first_admin_password(s: &TestServer) -> String {
    s.banner
        .iter()
        .find_map(|l| l.split("with password: ").nth(1))
        .unwrap()
        .trim()
        .to_owned()
}

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_session_and_sign_out_ends_it() {
    let s = server(&[]);
    let pw = first_admin_password(&s);
    let mut b = Browser::new(&s);
    let r = b.get("/admin").await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/admin/login");

    let r = b.login("admin", "wrong password!").await;
    assert_eq!(r.status(), 401);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("Wrong user name or password")
    );

    let r = b.login("admin", &pw).await;
    assert_eq!(r.status(), 303);
    let set = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    let session = set.iter().find(|c| c.starts_with("pc_admin=")).unwrap();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    assert!(!session.contains("Secure"), "not over plain http");
    let first_cookie = b.cookie_header();
    let (html, csrf) = b.page("/admin").await;
    assert!(html.contains("Dashboard") && html.contains("<svg"));

    // Every sign-in gets a new session id (a planted cookie is never adopted).
    let mut other = Browser::new(&s);
    other
        .cookies
        .push(("pc_admin".into(), "pca_planted".into()));
    assert_eq!(other.get("/admin").await.status(), 303);
    other.login("admin", &pw).await;
    assert!(!other.cookie_header().contains("pca_planted"));
    assert_ne!(other.cookie_header(), first_cookie);

    // Sign out; the old cookie no longer opens anything.
    let (_, csrf2) = b.page("/admin").await;
    assert_ne!(csrf2, "");
    let r = b.post("/admin/logout", &[("csrf", &csrf2)], None).await;
    assert_eq!(r.status(), 303);
    assert_eq!(b.get("/admin").await.status(), 303);
    let _ = csrf;
}

#[tokio::test]
async fn pages_carry_strict_security_headers() {
    let s = server(&[]);
    let mut b = Browser::new(&s);
    b.login("admin", &first_admin_password(&s)).await;
    for path in [
        "/admin/login",
        "/admin",
        "/admin/clients",
        "/admin/scopes",
        "/admin/keys",
        "/admin/audit",
    ] {
        let r = b.get(path).await;
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{path}"
        );
        assert!(!csp.contains("unsafe-inline"));
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "no-referrer");
        let html = r.text().await.unwrap();
        assert!(
            !html.contains("<script>") && !html.contains("style=\""),
            "{path}: inline script or style"
        );
    }
}

#[tokio::test]
async fn forms_without_their_token_or_from_another_origin_are_refused_and_change_nothing() {
    let s = server(&[]);
    let mut b = Browser::new(&s);
    b.login("admin", &first_admin_password(&s)).await;
    let (_, csrf) = b.page("/admin/clients").await;
    let form = [
        ("name", "Forged"),
        ("scope", "upload-data"),
        ("grant", "client_credentials"),
    ];
    let r = b.post("/admin/clients", &form, None).await;
    assert_eq!(r.status(), 403);
    let mut with_token = form.to_vec();
    with_token.push(("csrf", "not-the-token"));
    assert_eq!(
        b.post("/admin/clients", &with_token, None).await.status(),
        403
    );
    let mut right = form.to_vec();
    right.push(("csrf", &csrf));
    assert_eq!(
        b.post("/admin/clients", &right, Some("https://evil.example"))
            .await
            .status(),
        403
    );
    assert_eq!(
        s.cli_json(&["client", "list", "--json"])
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // The sign-in form too.
    let r = http()
        .post(format!("{}/admin/login", s.url))
        .form(&[("username", "admin"), ("password", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test]
async fn a_client_created_in_the_browser_shows_its_secret_once_and_the_secret_works() {
    let s = server(&[]);
    let mut b = Browser::new(&s);
    b.login("admin", &first_admin_password(&s)).await;
    let (_, csrf) = b.page("/admin/clients").await;
    let r = b
        .post(
            "/admin/clients",
            &[
                ("csrf", &csrf),
                ("name", "<script>alert(1)</script>"),
                ("scope", "upload-data"),
                ("scope", "view-indicator"),
                ("grant", "client_credentials"),
                ("grant", "refresh_token"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(!html.contains("<script>alert(1)</script>"));
    assert!(
        html.contains("&#60;script&#62;alert(1)&#60;/script&#62;")
            || html.contains("&lt;script&gt;")
    );
    let secret = html
        .split("pcs_")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    let secret = format!("pcs_{secret}");
    let id = html.split("pc_").nth(1).unwrap().split('<').next().unwrap();
    let id = format!("pc_{id}");
    let t = get_token(&s, &id, &secret, &[]).await;
    assert!(t["access_token"].is_string());
    let (list, _) = b.page("/admin/clients").await;
    assert!(!list.contains("<script>alert(1)</script>"));
    let (page, _) = b.page(&format!("/admin/clients/{id}")).await;
    assert!(!page.contains(&secret), "the secret is shown once only");
}

#[tokio::test]
async fn bad_form_input_is_explained_next_to_the_field_and_nothing_is_saved() {
    let s = server(&[]);
    let mut b = Browser::new(&s);
    b.login("admin", &first_admin_password(&s)).await;
    let (_, csrf) = b.page("/admin/clients").await;
    let r = b
        .post(
            "/admin/clients",
            &[
                ("csrf", &csrf),
                ("name", "Web"),
                ("scope", "upload-data"),
                ("grant", "authorization_code"),
                ("redirect_uris", "http://evil.example/cb"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("field-error") && html.contains("loopback"),
        "{html}"
    );
    assert!(
        html.contains("value=\"Web\""),
        "the form keeps what was typed"
    );
    assert_eq!(
        s.cli_json(&["client", "list", "--json"])
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        0
    );

    let (_, csrf) = b.page("/admin/scopes").await;
    let r = b
        .post(
            "/admin/scopes",
            &[("csrf", &csrf), ("name", "Bad Name")],
            None,
        )
        .await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("invalid scope name"));
    let r = b
        .post(
            "/admin/scopes",
            &[("csrf", &csrf), ("name", "upload-data")],
            None,
        )
        .await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("already exists"));
    let r = b
        .post(
            "/admin/scopes",
            &[
                ("csrf", &csrf),
                ("name", "export:csv"),
                ("description", "CSV export"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status(), 200);

    let (id, _) = s.create_client("Group", &[]).unwrap();
    let (_, csrf) = b.page(&format!("/admin/clients/{id}")).await;
    let long = "x".repeat(129);
    let r = b
        .post(
            &format!("/admin/clients/{id}/mint"),
            &[("csrf", &csrf), ("label", &long), ("scope", "upload-data")],
            None,
        )
        .await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("longer than 128"));
    assert_eq!(
        s.cli_json(&["token", "list", "--client", &id, "--json"])
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

#[tokio::test]
async fn an_admin_mints_a_token_for_a_site_and_revokes_it() {
    let s = server(&[]);
    let mut b = Browser::new(&s);
    b.login("admin", &first_admin_password(&s)).await;
    let (id, _) = s.create_client("Care group", &[]).unwrap();
    let (_, csrf) = b.page(&format!("/admin/clients/{id}")).await;
    let r = b
        .post(
            &format!("/admin/clients/{id}/mint"),
            &[
                ("csrf", &csrf),
                ("label", "care-home-042"),
                ("scope", "upload-data"),
            ],
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    let at = html
        .split("id=\"access\" class=\"secret\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    assert_eq!(whoami(&s, &at).await.status(), 200);
    let (page, csrf) = b.page(&format!("/admin/clients/{id}")).await;
    assert!(page.contains("care-home-042"));
    let r = b
        .post(
            &format!("/admin/clients/{id}/revoke"),
            &[("csrf", &csrf), ("label", "care-home-042")],
            None,
        )
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Revoked 1"));
    assert_eq!(whoami(&s, &at).await.status(), 401);
    let (audit, _) = b.page(&format!("/admin/audit?client={id}")).await;
    assert!(audit.contains("token.revoke") && audit.contains("token.issue"));
}

#[tokio::test]
async fn a_password_reset_signs_out_the_admin_everywhere() {
    let s = server(&[]);
    let pw = first_admin_password(&s);
    let mut b = Browser::new(&s);
    assert_eq!(b.login("admin", &pw).await.status(), 303);
    assert_eq!(b.get("/admin").await.status(), 200);
    let out = s
        .cli_with_stdin(
            &["admin", "reset-password", "admin", "--password-stdin"],
            "a-brand-new-password-42\n",
        )
        .unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let r = b.get("/admin").await;
    assert_eq!(r.status(), 303, "the old session is gone");
    assert_eq!(r.headers()["location"], "/admin/login");
    assert_eq!(b.login("admin", &pw).await.status(), 401);
    assert_eq!(
        b.login("admin", "a-brand-new-password-42").await.status(),
        303
    );
}
