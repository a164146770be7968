//! What the scenarios that drive the server's HTML pages share, doing what a
//! browser without JavaScript does: one request at a time on a keep-alive
//! connection, the forms' hidden fields and actions read from the page, the
//! cookies a response sets, form-encoded posts, and the sign-in forms.

use anyhow::{Context, bail};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper::header::{CONTENT_TYPE, COOKIE, HeaderValue, SET_COOKIE};
use hyper::{HeaderMap, Method, Request, StatusCode};

use crate::load::Target;

/// How much of an unexpected response body to keep for the report.
const ERROR_BODY_CHARS: usize = 300;

/// A sign-in form: the page that shows it, where it posts, its double-submit
/// CSRF cookie, and where a successful sign-in goes.
#[derive(Debug)]
pub struct SignInForm {
    /// The page with the form (`GET`).
    pub page: &'static str,
    /// Where the form posts.
    pub post: &'static str,
    /// The double-submit cookie the page sets; the form's `csrf` field repeats it.
    pub cookie: &'static str,
    /// The `Location` of the `303` a right password gets.
    pub success: &'static str,
}

/// The admin sign-in.
pub const ADMIN_SIGN_IN: SignInForm = SignInForm {
    page: "/admin/login",
    post: "/admin/login",
    cookie: "pc_login_csrf",
    success: "/admin",
};

/// An end user's sign-in on their account page.
pub const USER_SIGN_IN: SignInForm = SignInForm {
    page: "/account",
    post: "/account/login",
    cookie: "pc_user_login_csrf",
    success: "/account",
};

/// What a sign-in form's page gives a browser: the CSRF cookie and its field.
#[derive(Debug, Clone, Default)]
pub struct FormToken {
    /// The value of the form's double-submit cookie.
    pub cookie: String,
    /// The value of the form's `csrf` field.
    pub field: String,
}

/// `GET` a sign-in form's page for its CSRF cookie and field.
pub async fn sign_in_form(
    conn: &mut SendRequest<Full<Bytes>>,
    target: &Target,
    form: &SignInForm,
) -> anyhow::Result<FormToken> {
    let page = target
        .request(Method::GET, form.page)
        .body(Full::new(Bytes::new()))
        .context("building the sign-in form request")?;
    let (status, headers, body) = send(conn, page).await?;
    if status != StatusCode::OK {
        bail!("GET {}: {}", form.page, describe(status, &body));
    }
    let cookie = cookie_value(&headers, form.cookie)
        .with_context(|| format!("GET {} set no {} cookie", form.page, form.cookie))?;
    let field =
        hidden_field(&body, "csrf").with_context(|| format!("GET {}: no csrf field", form.page))?;
    Ok(FormToken { cookie, field })
}

/// The sign-in post itself, with the page's CSRF cookie and field.
pub fn sign_in_post(
    target: &Target,
    form: &SignInForm,
    token: &FormToken,
    user: &str,
    password: &str,
) -> anyhow::Result<Request<Full<Bytes>>> {
    let body = format!(
        "csrf={}&username={}&password={}",
        form_encode(&token.field),
        form_encode(user),
        form_encode(password),
    );
    target
        .request(Method::POST, form.post)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(COOKIE, cookie_header(&[(form.cookie, &token.cookie)])?)
        .body(Full::new(Bytes::from(body)))
        .context("building the sign-in post")
}

/// One sign-in as a browser does it: the form's page for its token and cookie,
/// then the post with both, the user name and the password. Returns the post's
/// answer; a form that cannot be had is an error.
pub async fn sign_in(
    conn: &mut SendRequest<Full<Bytes>>,
    target: &Target,
    form: &SignInForm,
    user: &str,
    password: &str,
) -> anyhow::Result<(StatusCode, HeaderMap, Bytes)> {
    let token = sign_in_form(conn, target, form).await?;
    let post = sign_in_post(target, form, &token, user, password)?;
    send(conn, post).await
}

/// A `Cookie` header carrying these name/value pairs.
pub fn cookie_header(pairs: &[(&str, &str)]) -> anyhow::Result<HeaderValue> {
    let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    HeaderValue::from_str(&joined.join("; ")).context("the cookies make no valid header")
}

/// The value of the cookie `name` a response sets (not one it clears).
pub fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(SET_COOKIE).iter().find_map(|v| {
        let v = v.to_str().ok()?;
        let pair = v.split(';').next()?.trim();
        let value = pair.strip_prefix(name)?.strip_prefix('=')?;
        (!value.is_empty()).then(|| value.to_owned())
    })
}

/// The value of the page's hidden input `name`, as a browser reads it.
pub fn hidden_field(body: &[u8], name: &str) -> Option<String> {
    let html = std::str::from_utf8(body).ok()?;
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let rest = html.get(start..)?;
    let value = rest.get(..rest.find('"')?)?;
    (!value.is_empty()).then(|| unescape(value))
}

/// The action of the page's main form: the last `method="post"` one (a signed-in
/// page's header has its sign-out form first).
pub fn form_action(body: &[u8]) -> Option<String> {
    let html = std::str::from_utf8(body).ok()?;
    let marker = "method=\"post\" action=\"";
    let start = html.rfind(marker)? + marker.len();
    let rest = html.get(start..)?;
    Some(unescape(rest.get(..rest.find('"')?)?))
}

/// HTML character references in an attribute value back to text.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(rest.get(..i).unwrap_or_default());
        let tail = rest.get(i..).unwrap_or_default();
        let reference = tail
            .find(';')
            .and_then(|end| Some((decode_reference(tail.get(1..end)?)?, end)));
        match reference {
            Some((c, end)) => {
                out.push(c);
                rest = tail.get(end + 1..).unwrap_or_default();
            }
            None => {
                out.push('&');
                rest = tail.get(1..).unwrap_or_default();
            }
        }
    }
    out.push_str(rest);
    out
}

/// `amp` → `&`, `#x2f` → `/`, `#47` → `/`.
fn decode_reference(entity: &str) -> Option<char> {
    match entity {
        "amp" => Some('&'),
        "quot" => Some('"'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "apos" => Some('\''),
        e => {
            let code = match e.strip_prefix("#x").or_else(|| e.strip_prefix("#X")) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => e.strip_prefix('#')?.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'*') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Sends one request and reads the whole response.
pub use crate::load::exchange_once as send;

/// `HTTP 401: <the page's error message, or the start of the body>`.
pub fn describe(status: StatusCode, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    // The pages say what went wrong in their `role="alert"` paragraph.
    let alert = text
        .find("role=\"alert\">")
        .and_then(|i| text.get(i + "role=\"alert\">".len()..))
        .and_then(|rest| rest.get(..rest.find('<')?));
    let shown: String = alert
        .unwrap_or(&text)
        .chars()
        .take(ERROR_BODY_CHARS)
        .collect();
    format!("HTTP {status}: {}", shown.trim())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_form_token_and_cookie_are_found() {
        let body = br#"<form><input type="hidden" name="csrf" value="abc_DEF-1"><input name="username"></form>"#;
        assert_eq!(hidden_field(body, "csrf").unwrap(), "abc_DEF-1");
        let mut h = HeaderMap::new();
        h.append(SET_COOKIE, HeaderValue::from_static("other=1; Path=/"));
        h.append(
            SET_COOKIE,
            HeaderValue::from_static(
                "pc_login_csrf=tok123; Path=/admin/login; HttpOnly; SameSite=Strict",
            ),
        );
        assert_eq!(cookie_value(&h, "pc_login_csrf").unwrap(), "tok123");
        assert_eq!(form_encode("a b&c=d"), "a%20b%26c%3Dd");
    }

    #[test]
    fn fields_and_actions_are_read_as_a_browser_reads_them() {
        let body = br#"<form method="post" action="/account/logout"></form>
            <form method="post" action="/oauth/authorize?a=1&amp;b=x&#x2f;y">
            <input type="hidden" name="flow" value="a&#43;b&#x2F;c">"#;
        assert_eq!(form_action(body).unwrap(), "/oauth/authorize?a=1&b=x/y");
        assert_eq!(hidden_field(body, "flow").unwrap(), "a+b/c");
        assert_eq!(unescape("a & b &zz; c"), "a & b &zz; c");
    }

    #[test]
    fn a_cleared_cookie_is_not_a_value() {
        let mut h = HeaderMap::new();
        h.append(
            SET_COOKIE,
            HeaderValue::from_static("pc_user_login_csrf=; Path=/; Max-Age=0"),
        );
        assert!(cookie_value(&h, "pc_user_login_csrf").is_none());
    }
}
