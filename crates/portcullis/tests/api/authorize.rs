//! The authorization code flow over HTTP, as a browser without JavaScript would
//! drive it (follow redirects by hand, post the forms), with a real OAuth client
//! library (`oauth2`) building the request and exchanging the code.

use crate::helpers::{bin, eventually, http};
use oauth2::basic::{BasicClient, BasicTokenResponse};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RefreshToken, Scope, TokenResponse, TokenUrl,
};
use portcullis_testkit::TestServer;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use serde_json::Value;
use std::collections::HashMap;

pub(crate) const REDIRECT: &str = "http://127.0.0.1:9/callback";
pub(crate) const PASSWORD: &str = "correct horse battery";

/// The `oauth2` crate's HTTP client interface over reqwest 0.13 (never following
/// redirects, as its documentation asks).
pub(crate) async fn oauth_http(
    req: oauth2::HttpRequest,
) -> Result<oauth2::HttpResponse, std::io::Error> {
    let io = |e: reqwest::Error| std::io::Error::other(e.to_string());
    let (parts, body) = req.into_parts();
    let mut r = http()
        .request(parts.method, parts.uri.to_string())
        .body(body);
    for (k, v) in &parts.headers {
        r = r.header(k, v);
    }
    let resp = r.send().await.map_err(io)?;
    let mut out = oauth2::http::Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        out = out.header(k, v);
    }
    let body = resp.bytes().await.map_err(io)?.to_vec();
    out.body(body).map_err(std::io::Error::other)
}

pub(crate) type Oauth =
    BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

/// A server with an application allowed the flow and one end user.
pub(crate) struct Fixture {
    pub(crate) s: TestServer,
    pub(crate) client_id: String,
    pub(crate) secret: String,
    pub(crate) user_id: String,
}

pub(crate) fn fixture() -> Fixture {
    let s = TestServer::start(bin(), &[]).expect("server starts");
    let (client_id, secret) = s
        .create_client(
            "Care Diary",
            &[
                "--grant",
                "authorization_code",
                "--grant",
                "refresh_token",
                "--redirect-uri",
                REDIRECT,
                "--scope",
                "view-indicator",
                "--scope",
                "upload-data",
            ],
        )
        .unwrap();
    let out = s
        .cli_with_stdin(
            &["user", "create", "alice", "--password-stdin", "--json"],
            PASSWORD,
        )
        .unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let user: Value = serde_json::from_str(&out.stdout).unwrap();
    Fixture {
        client_id,
        secret,
        user_id: user["id"].as_str().unwrap().to_owned(),
        s,
    }
}

impl Fixture {
    pub(crate) fn oauth(&self) -> Oauth {
        BasicClient::new(ClientId::new(self.client_id.clone()))
            .set_client_secret(ClientSecret::new(self.secret.clone()))
            .set_auth_uri(AuthUrl::new(format!("{}/oauth/authorize", self.s.url)).unwrap())
            .set_token_uri(TokenUrl::new(format!("{}/oauth/token", self.s.url)).unwrap())
            .set_redirect_uri(RedirectUrl::new(REDIRECT.into()).unwrap())
    }

    /// An authorization URL for `scopes`, with its state and PKCE verifier.
    pub(crate) fn authorize_url(&self, scopes: &[&str]) -> (String, CsrfToken, PkceCodeVerifier) {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let oauth = self.oauth();
        let mut req = oauth
            .authorize_url(CsrfToken::new_random)
            .set_pkce_challenge(challenge);
        for s in scopes {
            req = req.add_scope(Scope::new((*s).into()));
        }
        let (url, state) = req.url();
        (url.to_string(), state, verifier)
    }
}

impl Fixture {
    /// Exchanges `code` with `verifier` through the `oauth2` client (must succeed).
    async fn exchange(&self, code: String, verifier: PkceCodeVerifier) -> BasicTokenResponse {
        self.oauth()
            .exchange_code(AuthorizationCode::new(code))
            .set_pkce_verifier(verifier)
            .request_async(&oauth_http)
            .await
            .unwrap()
    }

    /// The whole flow in `b` for `scopes`, allowed: the application's tokens.
    async fn allowed(&self, b: &mut Browser, scopes: &[&str]) -> BasicTokenResponse {
        let (url, _, verifier) = self.authorize_url(scopes);
        let back = b.authorize(&self.s, &url, true).await;
        self.exchange(query(&back)["code"].clone(), verifier).await
    }
}

/// A browser that keeps cookies, follows nothing by itself, and reads forms.
pub(crate) struct Browser {
    cookies: HashMap<String, String>,
}

pub(crate) struct Page {
    pub(crate) status: u16,
    pub(crate) location: Option<String>,
    pub(crate) html: String,
}

impl Page {
    /// The value of the hidden input `name`.
    pub(crate) fn field(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let i = self
            .html
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} in {}", self.html))
            + marker.len();
        let j = self.html[i..].find('"').unwrap() + i;
        unescape(&self.html[i..j])
    }
    /// The action of the page's main form (the last `method="post"` one: the
    /// header's sign-out form comes first).
    fn action(&self) -> String {
        let i = self.html.rfind("method=\"post\" action=\"").unwrap() + 22;
        let j = self.html[i..].find('"').unwrap() + i;
        unescape(&self.html[i..j])
    }
}

/// HTML character references back to text, as a browser reads an attribute.
fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(end) = tail.find(';') else {
            out.push_str(tail);
            return out;
        };
        let entity = &tail[1..end];
        let c = match entity {
            "amp" => Some('&'),
            "quot" => Some('"'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "apos" => Some('\''),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

impl Browser {
    pub(crate) fn new() -> Self {
        Self {
            cookies: HashMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn keep(&mut self, r: reqwest::Response) -> Page {
        for v in r.headers().get_all(SET_COOKIE) {
            let v = v.to_str().unwrap();
            let (kv, _) = v.split_once(';').unwrap_or((v, ""));
            let (k, val) = kv.split_once('=').unwrap();
            if val.is_empty() || v.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), val.to_owned());
            }
        }
        Page {
            status: r.status().as_u16(),
            location: r
                .headers()
                .get(LOCATION)
                .map(|v| v.to_str().unwrap().to_owned()),
            html: r.text().await.unwrap(),
        }
    }

    pub(crate) async fn get(&mut self, url: &str) -> Page {
        let r = http()
            .get(url)
            .header(COOKIE, self.cookie_header())
            .send()
            .await
            .unwrap();
        self.keep(r).await
    }

    pub(crate) async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let r = http()
            .post(url)
            .header(COOKIE, self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep(r).await
    }

    /// From the authorization URL to the redirect back to the application,
    /// signing in and answering the consent page as asked. Returns the final
    /// redirect's URL.
    pub(crate) async fn authorize(&mut self, s: &TestServer, url: &str, allow: bool) -> String {
        let mut page = self.get(url).await;
        if page.html.contains("name=\"username\"") {
            assert_eq!(page.status, 200);
            let action = format!("{}{}", s.url, page.action());
            let csrf = page.field("csrf");
            page = self
                .post(
                    &action,
                    &[
                        ("csrf", &csrf),
                        ("step", "sign_in"),
                        ("username", "alice"),
                        ("password", PASSWORD),
                    ],
                )
                .await;
            assert_eq!(page.status, 303, "{}", page.html);
            let next = format!("{}{}", s.url, page.location.clone().unwrap());
            page = self.get(&next).await;
        }
        if page.status == 200 {
            assert!(page.html.contains("Allow"), "{}", page.html);
            let action = format!("{}{}", s.url, page.action());
            let (csrf, flow) = (page.field("csrf"), page.field("flow"));
            let decision = if allow { "allow" } else { "deny" };
            page = self
                .post(
                    &action,
                    &[
                        ("csrf", &csrf),
                        ("flow", &flow),
                        ("step", "consent"),
                        ("decision", decision),
                    ],
                )
                .await;
        }
        assert!(
            matches!(page.status, 302 | 303),
            "{} {}",
            page.status,
            page.html
        );
        page.location.unwrap()
    }
}

/// The query parameters of a URL.
pub(crate) fn query(url: &str) -> HashMap<String, String> {
    let u = oauth2::url::Url::parse(url).unwrap();
    u.query_pairs().into_owned().collect()
}

pub(crate) async fn whoami(s: &TestServer, token: &str) -> (u16, Value) {
    let r = http()
        .get(format!("{}/api/v1/whoami", s.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_user_signs_in_consents_and_the_application_gets_tokens_for_them() {
    let f = fixture();
    let (url, state, verifier) = f.authorize_url(&["view-indicator"]);
    let mut b = Browser::new();
    let back = b.authorize(&f.s, &url, true).await;
    assert!(back.starts_with(REDIRECT), "{back}");
    let q = query(&back);
    assert_eq!(q["state"], *state.secret(), "state comes back unchanged");
    assert_eq!(q["iss"], f.s.url, "RFC 9207 iss");
    let code = q["code"].clone();
    assert!(code.starts_with("pcc_"));

    let tokens = f.exchange(code, verifier).await;
    let scopes: Vec<String> = tokens
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(scopes, ["view-indicator"]);
    let (status, me) = whoami(&f.s, tokens.access_token().secret()).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["sub"], f.user_id, "sub is the user's stable id");
    assert_eq!(me["client_id"], f.client_id);

    // Refresh rotates as for every other grant, keeping the user as subject.
    let refreshed = f
        .oauth()
        .exchange_refresh_token(tokens.refresh_token().unwrap())
        .request_async(&oauth_http)
        .await
        .unwrap();
    let (status, me) = whoami(&f.s, refreshed.access_token().secret()).await;
    assert_eq!(
        (status, me["sub"].clone()),
        (200, Value::from(f.user_id.clone()))
    );

    // A second authorization of what was already allowed skips the consent page.
    let (url, _, _) = f.authorize_url(&["view-indicator"]);
    let page = b.get(&url).await;
    assert_eq!(page.status, 302, "no consent page the second time");
    assert!(page.location.unwrap().starts_with(REDIRECT));
    // Asking for more shows the consent page again.
    let (url, _, _) = f.authorize_url(&["view-indicator", "upload-data"]);
    let page = b.get(&url).await;
    assert_eq!(page.status, 200);
    assert!(page.html.contains("upload-data"));
}

#[tokio::test]
async fn a_code_works_once_and_its_reuse_revokes_what_it_gave() {
    let f = fixture();
    let (url, _, verifier) = f.authorize_url(&["view-indicator"]);
    let back = Browser::new().authorize(&f.s, &url, true).await;
    let code = query(&back)["code"].clone();
    let verifier_text = verifier.secret().clone();
    let tokens = f.exchange(code.clone(), verifier).await;
    let access = tokens.access_token().secret().clone();
    assert_eq!(whoami(&f.s, &access).await.0, 200);

    let again = f
        .oauth()
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier_text))
        .request_async(&oauth_http)
        .await;
    let err = format!("{again:?}");
    assert!(err.contains("invalid_grant"), "{err}");
    assert_eq!(whoami(&f.s, &access).await.0, 401, "its tokens are revoked");
    let refresh = f
        .oauth()
        .exchange_refresh_token(&RefreshToken::new(
            tokens.refresh_token().unwrap().secret().clone(),
        ))
        .request_async(&oauth_http)
        .await;
    assert!(format!("{refresh:?}").contains("invalid_grant"));
}

#[tokio::test]
async fn of_concurrent_exchanges_of_one_code_one_wins_and_the_others_revoke_it() {
    let f = fixture();
    let mut b = Browser::new();
    let (c, v) = code(&f, &mut b).await;
    let form = [
        ("code", c.as_str()),
        ("code_verifier", v.as_str()),
        ("redirect_uri", REDIRECT),
    ];
    let at_once = || exchange(&f, &f.client_id, &f.secret, &form);
    let (a1, a2, a3, a4) = tokio::join!(at_once(), at_once(), at_once(), at_once());
    let answers = [a1, a2, a3, a4];
    let won: Vec<&Value> = answers
        .iter()
        .filter(|(status, _)| *status == 200)
        .map(|(_, body)| body)
        .collect();
    assert_eq!(won.len(), 1, "{answers:?}");
    for (status, body) in answers.iter().filter(|(status, _)| *status != 200) {
        assert_eq!(
            (*status, body["error"].as_str()),
            (400, Some("invalid_grant"))
        );
    }
    // Each loser presented a spent code: what the winner got is revoked.
    let access = won[0]["access_token"].as_str().unwrap();
    assert_eq!(whoami(&f.s, access).await.0, 401);
}

/// A code exchanged by hand, with what the test chooses to send.
async fn exchange(f: &Fixture, id: &str, secret: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let mut body = vec![("grant_type", "authorization_code")];
    body.extend_from_slice(form);
    let r = http()
        .post(format!("{}/oauth/token", f.s.url))
        .basic_auth(id, Some(secret))
        .form(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// A fresh code (and its verifier) for `view-indicator`.
async fn code(f: &Fixture, b: &mut Browser) -> (String, String) {
    let (url, _, verifier) = f.authorize_url(&["view-indicator"]);
    let back = b.authorize(&f.s, &url, true).await;
    (query(&back)["code"].clone(), verifier.secret().clone())
}

/// Exchanges code `c` with verifier `v` as the fixture's client: it must work.
async fn spends(f: &Fixture, c: &str, v: &str) {
    let (status, body) = exchange(
        f,
        &f.client_id,
        &f.secret,
        &[
            ("code", c),
            ("code_verifier", v),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["access_token"].is_string(), "{body}");
}

#[tokio::test]
async fn a_code_is_bound_to_its_client_redirect_uri_and_verifier() {
    let f = fixture();
    let (other_id, other_secret) =
        f.s.create_client(
            "Other app",
            &["--grant", "authorization_code", "--redirect-uri", REDIRECT],
        )
        .unwrap();
    let mut b = Browser::new();
    // Another client presenting the code.
    let (c, v) = code(&f, &mut b).await;
    let (status, body) = exchange(
        &f,
        &other_id,
        &other_secret,
        &[
            ("code", &c),
            ("code_verifier", &v),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    // A refused exchange wrote nothing: the code is still its client's to spend.
    spends(&f, &c, &v).await;
    // The wrong verifier.
    let (c, v) = code(&f, &mut b).await;
    let wrong = "x".repeat(43);
    let (status, body) = exchange(
        &f,
        &f.client_id,
        &f.secret,
        &[
            ("code", &c),
            ("code_verifier", &wrong),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    spends(&f, &c, &v).await;
    // Another redirect URI than the request's.
    let (c, v) = code(&f, &mut b).await;
    let (status, body) = exchange(
        &f,
        &f.client_id,
        &f.secret,
        &[
            ("code", &c),
            ("code_verifier", &v),
            ("redirect_uri", "http://127.0.0.1:9/other"),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    spends(&f, &c, &v).await;
    // No verifier at all.
    let (c, _) = code(&f, &mut b).await;
    let (status, body) = exchange(&f, &f.client_id, &f.secret, &[("code", &c)]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    // A code that never was.
    let (status, body) = exchange(
        &f,
        &f.client_id,
        &f.secret,
        &[("code", "pcc_nope"), ("code_verifier", &"a".repeat(43))],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
}

#[tokio::test]
async fn an_untrusted_client_or_redirect_uri_gets_an_error_page_and_no_redirect() {
    let f = fixture();
    let base = format!("{}/oauth/authorize", f.s.url);
    let good = format!(
        "response_type=code&code_challenge={}&code_challenge_method=S256&state=xyz",
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    );
    let cases = [
        ("no client", good.clone()),
        ("unknown client", format!("{good}&client_id=pc_unknown")),
        ("malformed client", format!("{good}&client_id=%00%ff")),
        (
            "repeated client",
            format!("{good}&client_id={0}&client_id={0}", f.client_id),
        ),
        (
            "unregistered redirect",
            format!(
                "{good}&client_id={}&redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
                f.client_id
            ),
        ),
        (
            "redirect differing by a slash",
            format!(
                "{good}&client_id={}&redirect_uri={}%2F",
                f.client_id,
                urlencode(REDIRECT)
            ),
        ),
    ];
    for (why, q) in cases {
        let page = Browser::new().get(&format!("{base}?{q}")).await;
        assert_eq!(page.status, 400, "{why}");
        assert!(page.location.is_none(), "{why}: never redirects");
        assert!(page.html.contains("cannot continue"), "{why}");
    }
}

fn urlencode(s: &str) -> String {
    oauth2::url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn refusals_after_the_client_is_trusted_go_back_with_state_and_iss() {
    let f = fixture();
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let base = format!(
        "{}/oauth/authorize?client_id={}&state=st-1",
        f.s.url, f.client_id
    );
    let cases = [
        (
            "missing PKCE",
            "response_type=code".to_owned(),
            "invalid_request",
        ),
        (
            "plain PKCE",
            format!("response_type=code&code_challenge={challenge}&code_challenge_method=plain"),
            "invalid_request",
        ),
        (
            "missing response_type",
            format!("code_challenge={challenge}&code_challenge_method=S256"),
            "invalid_request",
        ),
        (
            "token response_type",
            format!("response_type=token&code_challenge={challenge}&code_challenge_method=S256"),
            "unsupported_response_type",
        ),
        (
            "foreign scope",
            format!(
                "response_type=code&code_challenge={challenge}&code_challenge_method=S256&scope=admin"
            ),
            "invalid_scope",
        ),
        (
            "unknown scope",
            format!(
                "response_type=code&code_challenge={challenge}&code_challenge_method=S256&scope=nope"
            ),
            "invalid_scope",
        ),
        (
            "repeated scope",
            format!(
                "response_type=code&code_challenge={challenge}&code_challenge_method=S256&scope=a&scope=b"
            ),
            "invalid_request",
        ),
    ];
    for (why, q, error) in cases {
        let page = Browser::new().get(&format!("{base}&{q}")).await;
        assert_eq!(page.status, 302, "{why}: {}", page.html);
        let to = page.location.unwrap();
        assert!(to.starts_with(REDIRECT), "{why}: {to}");
        let q = query(&to);
        assert_eq!(q["error"], error, "{why}");
        assert_eq!(q["state"], "st-1", "{why}");
        assert_eq!(q["iss"], f.s.url, "{why}");
    }
}

#[tokio::test]
async fn deny_goes_back_with_access_denied() {
    let f = fixture();
    let (url, state, _) = f.authorize_url(&["view-indicator"]);
    let back = Browser::new().authorize(&f.s, &url, false).await;
    let q = query(&back);
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], *state.secret());
    assert!(!q.contains_key("code"));
}

#[tokio::test]
async fn forms_without_their_token_or_for_another_request_are_refused() {
    let f = fixture();
    let (url, _, _) = f.authorize_url(&["view-indicator"]);
    let mut b = Browser::new();
    // A sign-in posted without the page's CSRF token.
    let page = b.get(&url).await;
    let action = format!("{}{}", f.s.url, page.action());
    let forged = b
        .post(
            &action,
            &[
                ("step", "sign_in"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(forged.status, 403);
    assert!(
        !b.cookies.contains_key("pc_user"),
        "no session from a forged sign-in"
    );

    // Signed in properly, the consent page for one request...
    let csrf = page.field("csrf");
    let signed = b
        .post(
            &action,
            &[
                ("csrf", &csrf),
                ("step", "sign_in"),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(signed.status, 303);
    let consent = b
        .get(&format!("{}{}", f.s.url, signed.location.unwrap()))
        .await;
    let (csrf, flow) = (consent.field("csrf"), consent.field("flow"));
    // ...does not allow another request (more scopes, another state).
    let (other_url, _, _) = f.authorize_url(&["view-indicator", "upload-data"]);
    let other_action = other_url.replacen(&f.s.url, "", 1);
    let answer = b
        .post(
            &format!("{}{}", f.s.url, other_action),
            &[
                ("csrf", &csrf),
                ("flow", &flow),
                ("step", "consent"),
                ("decision", "allow"),
            ],
        )
        .await;
    assert_eq!(answer.status, 403, "{}", answer.html);
    assert!(answer.location.is_none());
    // Without the session's CSRF token, not even this one.
    let answer = b
        .post(
            &format!("{}{}", f.s.url, consent.action()),
            &[("flow", &flow), ("step", "consent"), ("decision", "allow")],
        )
        .await;
    assert_eq!(answer.status, 403);
    // Nothing was granted.
    let out =
        f.s.cli(&["audit", "list", "--kind", "consent.give", "--json"])
            .unwrap();
    assert_eq!(out.stdout.trim(), "[]", "no consent recorded");
}

#[tokio::test]
async fn the_account_page_revokes_a_grant_and_its_tokens() {
    let f = fixture();
    let mut b = Browser::new();
    let tokens = f.allowed(&mut b, &["view-indicator", "upload-data"]).await;
    let access = tokens.access_token().secret().clone();
    assert_eq!(whoami(&f.s, &access).await.0, 200);

    let account = b.get(&format!("{}/account", f.s.url)).await;
    assert_eq!(account.status, 200);
    assert!(account.html.contains("Care Diary"));
    assert!(
        account
            .html
            .contains("Read indicators computed from uploaded data")
    );
    let csrf = account.field("csrf");

    // Remove one scope: the grant keeps the other, its tokens stop working.
    let removed = b
        .post(
            &format!("{}/account/grants/{}/remove-scope", f.s.url, f.client_id),
            &[("csrf", &csrf), ("scope", "upload-data")],
        )
        .await;
    assert_eq!(removed.status, 200, "{}", removed.html);
    assert_eq!(whoami(&f.s, &access).await.0, 401);
    assert!(removed.html.contains("view-indicator"));
    assert!(!removed.html.contains("<code>upload-data</code>"));
    // The next refresh yields the narrower grant, and works at once.
    let narrower = f
        .oauth()
        .exchange_refresh_token(tokens.refresh_token().unwrap())
        .request_async(&oauth_http)
        .await
        .unwrap();
    let scopes: Vec<String> = narrower
        .scopes()
        .unwrap()
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(scopes, ["view-indicator"]);
    let (status, me) = whoami(&f.s, narrower.access_token().secret()).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["scopes"], serde_json::json!(["view-indicator"]));
    // Asking for the removed scope back through the refresh is refused.
    let wider = f
        .oauth()
        .exchange_refresh_token(narrower.refresh_token().unwrap())
        .add_scope(Scope::new("upload-data".into()))
        .request_async(&oauth_http)
        .await;
    assert!(format!("{wider:?}").contains("invalid_scope"), "{wider:?}");
    // Authorizing the narrower scope again needs no consent.
    let (url, _, _) = f.authorize_url(&["view-indicator"]);
    assert_eq!(b.get(&url).await.status, 302);

    // Revoke access altogether: the refresh token dies with the grant.
    let revoked = b
        .post(
            &format!("{}/account/grants/{}/revoke", f.s.url, f.client_id),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(revoked.status, 200);
    assert!(revoked.html.contains("not allowed any application"));
    let (url, _, _) = f.authorize_url(&["view-indicator"]);
    assert_eq!(b.get(&url).await.status, 200, "consent is asked again");

    // The account forms refuse a missing CSRF token.
    let forged = b
        .post(
            &format!("{}/account/grants/{}/revoke", f.s.url, f.client_id),
            &[],
        )
        .await;
    assert_eq!(forged.status, 403);
}

#[tokio::test]
async fn disabling_a_user_revokes_their_tokens_and_their_sign_in() {
    let f = fixture();
    let tokens = f.allowed(&mut Browser::new(), &["view-indicator"]).await;
    let access = tokens.access_token().secret().clone();
    assert_eq!(whoami(&f.s, &access).await.0, 200);

    let out = f.s.cli(&["user", "disable", "alice"]).unwrap();
    assert_eq!(out.code, 0, "{}", out.stderr);
    // The CLI's revocation reaches the server through the database (≤ 1 s).
    let refused = eventually(std::time::Duration::from_secs(3), || async {
        whoami(&f.s, &access).await.0 == 401
    })
    .await;
    assert!(refused, "the disabled user's token is refused");
    let mut b = Browser::new();
    let page = b.get(&format!("{}/account", f.s.url)).await;
    let csrf = page.field("csrf");
    let r = b
        .post(
            &format!("{}/account/login", f.s.url),
            &[
                ("csrf", &csrf),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status, 401, "a disabled user cannot sign in");
    let failed =
        f.s.cli_json(&["audit", "list", "--kind", "user.login_failed", "--json"])
            .unwrap();
    assert_eq!(failed.as_array().unwrap().len(), 1, "{failed}");
    assert_eq!(failed[0]["actor"]["id"], "alice", "{failed}");
}

#[tokio::test]
async fn metadata_advertises_the_authorization_endpoint() {
    let f = fixture();
    let m: Value = http()
        .get(format!(
            "{}/.well-known/oauth-authorization-server",
            f.s.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        m["authorization_endpoint"],
        format!("{}/oauth/authorize", f.s.url)
    );
    assert_eq!(m["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        m["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    assert!(
        m["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&"authorization_code".into())
    );
}
