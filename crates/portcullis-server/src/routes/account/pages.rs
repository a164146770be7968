//! What the end user's pages share: templates, cookies and redirects.

use crate::extract::user_session::{COOKIE, SIGN_IN_CSRF_COOKIE};
use crate::routes::admin::page::render;
use crate::service::admin_auth::random_csrf;
use crate::state::AppState;
use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A scope as the user reads it.
pub struct ScopeLine {
    /// Its name.
    pub name: String,
    /// Its description (the name when it has none).
    pub description: String,
}

/// The scopes of `names`, described from the registered scopes.
pub async fn describe(state: &AppState, names: impl Iterator<Item = String>) -> Vec<ScopeLine> {
    let registered = state.store.list_scopes().await.unwrap_or_default();
    described(&registered, names)
}

/// The scopes of `names`, described from `registered`.
fn described(
    registered: &[portcullis_store::ScopeRecord],
    names: impl Iterator<Item = String>,
) -> Vec<ScopeLine> {
    names
        .map(|name| {
            let description = registered
                .iter()
                .find(|s| s.name == name)
                .map(|s| s.description.clone())
                .filter(|d| !d.is_empty())
                .unwrap_or_else(|| name.clone());
            ScopeLine { name, description }
        })
        .collect()
}

/// A grant as a page shows it (the user's `/account`, an admin's user page).
pub struct GrantRow {
    /// The application.
    pub client_id: String,
    /// Its name.
    pub client_name: String,
    /// What it may do, in plain words.
    pub scopes: Vec<ScopeLine>,
    /// When it was allowed.
    pub created_at: String,
    /// When one of its tokens was last used.
    pub last_used_at: String,
}

/// The rows of `consents`, scopes described.
pub async fn grant_rows(
    state: &AppState,
    consents: Vec<portcullis_store::ConsentRecord>,
) -> Vec<GrantRow> {
    // One read of the registered scopes for every grant, not one per grant.
    let registered = state.store.list_scopes().await.unwrap_or_default();
    consents
        .into_iter()
        .map(|c| GrantRow {
            scopes: described(&registered, c.scopes.iter().map(ToString::to_string)),
            client_id: c.client_id,
            client_name: c.client_name,
            created_at: crate::routes::admin::page::when(Some(c.created_at)),
            last_used_at: crate::routes::admin::page::when(c.last_used_at),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "account/sign_in.html")]
struct SignInPage<'a> {
    user: &'a str,
    csrf: &'a str,
    flash: &'a str,
    form_csrf: String,
    action: &'a str,
    app: &'a str,
    error: &'a str,
    username: &'a str,
}

/// What a sign-in page shows.
#[derive(Default)]
pub struct SignIn<'a> {
    /// Where the form posts.
    pub action: &'a str,
    /// The application asking, on the authorization page.
    pub app: &'a str,
    /// Why the last attempt failed.
    pub error: &'a str,
    /// The name typed.
    pub username: &'a str,
    /// A notice.
    pub flash: &'a str,
    /// `form-action` sources besides `'self'` (where a successful sign-in may
    /// end up redirecting).
    pub form_action: Option<&'a str>,
}

/// The sign-in page, with a fresh double-submit CSRF cookie.
pub fn sign_in_page(state: &AppState, status: StatusCode, p: SignIn<'_>) -> Response {
    let Ok(token) = random_csrf() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let mut r = render(
        status,
        &SignInPage {
            user: "",
            csrf: "",
            flash: p.flash,
            form_csrf: token.clone(),
            action: p.action,
            app: p.app,
            error: p.error,
            username: p.username,
        },
    );
    set_cookie(
        &mut r,
        &format!(
            "{SIGN_IN_CSRF_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{}",
            secure(state)
        ),
    );
    if let Some(origin) = p.form_action {
        allow_form_action(&mut r, origin);
    }
    r
}

#[derive(Template)]
#[template(path = "account/error.html")]
struct ErrorPage<'a> {
    user: &'a str,
    csrf: &'a str,
    flash: &'a str,
    message: &'a str,
}

/// A page saying why the request cannot go on (nothing is sent to the
/// application).
pub fn error_page(status: StatusCode, message: &str) -> Response {
    render(
        status,
        &ErrorPage {
            user: "",
            csrf: "",
            flash: "",
            message,
        },
    )
}

/// `; Secure` when clients reach the server over TLS.
pub fn secure(state: &AppState) -> &'static str {
    if state.secure { "; Secure" } else { "" }
}

/// Appends a `Set-Cookie`.
pub fn set_cookie(r: &mut Response, cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

/// The session cookie for a new session, and the sign-in cookie cleared.
pub fn start_session(state: &AppState, r: &mut Response, cookie: &str) {
    set_cookie(
        r,
        &format!(
            "{COOKIE}={cookie}; Path=/; HttpOnly; SameSite=Lax{}",
            secure(state)
        ),
    );
    set_cookie(
        r,
        &format!("{SIGN_IN_CSRF_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"),
    );
}

/// The session cookie cleared.
pub fn end_session(r: &mut Response) {
    set_cookie(
        r,
        &format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"),
    );
}

/// A redirect: `303 See Other` after a POST (the browser follows with GET), `302
/// Found` after a GET (RFC 6749 §4.1.2's examples).
pub fn redirect(after_post: bool, to: &str) -> Response {
    let status = if after_post {
        StatusCode::SEE_OTHER
    } else {
        StatusCode::FOUND
    };
    let mut r = status.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

/// The origin (`scheme://host[:port]`) of an absolute URI.
pub fn origin_of(uri: &str) -> Option<&str> {
    let (scheme, rest) = uri.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    uri.get(..scheme.len() + 3 + end)
}

/// Lets this page's forms end at `origin` too: browsers apply `form-action` to
/// the redirects that follow a form's submission, and the authorization flow's
/// last redirect goes to the application.
pub fn allow_form_action(r: &mut Response, origin: &str) {
    // The origin of a registered redirect URI: no spaces, quotes or semicolons.
    if origin
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b == b';' || b == b'\'')
    {
        return;
    }
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self' {origin}; frame-ancestors 'none'; \
         base-uri 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_end_before_the_path() {
        assert_eq!(
            origin_of("https://app.example:8443/cb?x=1"),
            Some("https://app.example:8443")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:9000"),
            Some("http://127.0.0.1:9000")
        );
        assert_eq!(origin_of("nope"), None);
    }
}
