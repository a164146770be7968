//! The sign-in and sign-out pages. The sign-in form is protected by a
//! double-submit token (cookie + field) and the origin check ([`AdminForm`]); the
//! rules of signing in (throttling, a new session id every time, auditing) are
//! [`crate::service::admin_auth::AdminAuth`]'s.

use super::page::{render, see_other};
use crate::error::PageError;
use crate::extract::admin_form::AdminForm;
use crate::extract::admin_session::{AdminSession, COOKIE, current};
use crate::extract::client_addr::ClientAddr;
use crate::service::admin_auth::{SignInRefused, random_csrf};
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const LOGIN_CSRF: &str = crate::extract::admin_form::SIGN_IN_CSRF_COOKIE;

#[derive(Template)]
#[template(path = "admin/login.html")]
struct LoginPage {
    user: String,
    csrf: String,
    nav: &'static str,
    flash: String,
    error: String,
    username: String,
}

fn secure(state: &AppState) -> &'static str {
    if state.secure { "; Secure" } else { "" }
}

fn login_page(state: &AppState, status: StatusCode, error: &str, username: &str) -> Response {
    let Ok(token) = random_csrf() else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let page = LoginPage {
        user: String::new(),
        csrf: token.clone(),
        nav: "",
        flash: String::new(),
        error: error.into(),
        username: username.into(),
    };
    let mut r = render(status, &page);
    let c = format!(
        "{LOGIN_CSRF}={token}; Path=/admin/login; HttpOnly; SameSite=Strict{}",
        secure(state)
    );
    if let Ok(v) = HeaderValue::from_str(&c) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// GET `/admin/login`.
pub async fn form(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if matches!(current(&headers, &state).await, Ok(Some(_))) {
        return see_other("/admin");
    }
    login_page(&state, StatusCode::OK, "", "")
}

/// POST `/admin/login`.
pub async fn submit(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    headers: HeaderMap,
    form: AdminForm,
) -> Response {
    let name = form.text("username");
    let password = form.get("password").unwrap_or_default();
    let previous = match current(&headers, &state).await {
        Ok(p) => p,
        Err(f) => return PageError::Fault(f).into_response(),
    };
    let session = match state
        .admin_auth
        .sign_in(&name, password, peer, previous.as_ref())
        .await
    {
        Ok(s) => s,
        Err(SignInRefused::Throttled { retry_after }) => {
            let msg = format!("Too many failed sign-ins. Try again in {retry_after} seconds.");
            let mut r = login_page(&state, StatusCode::TOO_MANY_REQUESTS, &msg, &name);
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            return r;
        }
        Err(SignInRefused::Wrong) => {
            return login_page(
                &state,
                StatusCode::UNAUTHORIZED,
                "Wrong user name or password.",
                &name,
            );
        }
        Err(SignInRefused::Fault(f)) => return PageError::Fault(f).into_response(),
    };
    let mut r = see_other("/admin");
    let c = format!(
        "{COOKIE}={}; Path=/admin; HttpOnly; SameSite=Strict{}",
        session.cookie.expose(),
        secure(&state)
    );
    if let Ok(v) = HeaderValue::from_str(&c) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    let clear = format!("{LOGIN_CSRF}=; Path=/admin/login; Max-Age=0; HttpOnly; SameSite=Strict");
    if let Ok(v) = HeaderValue::from_str(&clear) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// POST `/admin/logout`.
pub async fn logout(
    State(state): State<AppState>,
    session: AdminSession,
    _checked: AdminForm,
) -> Response {
    state.admin_auth.sign_out(&session).await;
    let mut r = see_other("/admin/login");
    let c = format!("{COOKIE}=; Path=/admin; Max-Age=0; HttpOnly; SameSite=Strict");
    if let Ok(v) = HeaderValue::from_str(&c) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}
