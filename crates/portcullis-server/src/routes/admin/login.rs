//! Sign-in and sign-out. The sign-in form is protected by a double-submit token
//! (cookie + field) and the origin check; failures are throttled per (user,
//! source) and per source, and a flood against one user from many sources delays
//! that user's sign-ins (see [`crate::service::throttle`]); success always creates
//! a new session id and is audited.

use super::form::AdminForm;
use super::page::{render, see_other};
use crate::extract::admin_session::{AdminSession, COOKIE, current};
use crate::extract::client_addr::ClientAddr;
use crate::service::admin_auth::{PasswordCheck, check_password, create_session, random_csrf};
use crate::service::throttle::Admission;
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_core::AuditKind;
use portcullis_store::{Actor, NewAuditEvent};

const LOGIN_CSRF: &str = super::form::SIGN_IN_CSRF_COOKIE;

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
    if state.secure {
        "; Secure"
    } else {
        ""
    }
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
    if current(&headers, &state).await.is_some() {
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
    let password = form.get("password").unwrap_or_default().to_owned();
    match state.login_throttle.admit(&name, peer) {
        Admission::Refuse { retry_after } => {
            let msg = format!("Too many failed sign-ins. Try again in {retry_after} seconds.");
            let mut r = login_page(&state, StatusCode::TOO_MANY_REQUESTS, &msg, &name);
            if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return r;
        }
        Admission::Proceed { delay } if !delay.is_zero() => tokio::time::sleep(delay).await,
        Admission::Proceed { .. } => {}
    }
    let now = state.tokens.clock.now();
    let check = if name.len() <= 64 && password.len() <= 1024 {
        check_password(state.store.as_ref(), &name, &password)
            .await
            .unwrap_or_default()
    } else {
        PasswordCheck::default()
    };
    let audit = |kind: AuditKind| NewAuditEvent {
        at: now,
        kind,
        actor: Actor {
            kind: "admin",
            id: Some(name.chars().take(64).collect()),
            source: Some(peer.to_string()),
        },
        target: None,
        client_id: None,
        label: None,
        detail: None,
    };
    if !check.ok {
        let failure = state.login_throttle.failed(&name, peer, check.known_user);
        if failure.source_burst {
            let _ = state
                .store
                .append_audit(&audit(AuditKind::AdminLoginFailedBurst))
                .await;
        }
        if failure.flood_started {
            let _ = state
                .store
                .append_audit(&audit(AuditKind::AdminLoginFlood))
                .await;
            tracing::warn!(user = %name.chars().take(64).collect::<String>(),
                "failed sign-ins for one user from many sources; delaying its sign-ins");
        }
        return login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            "Wrong user name or password.",
            &name,
        );
    }
    // A new session id at every sign-in; any session this browser had ends.
    if let Some(old) = current(&headers, &state).await {
        let _ = state.store.delete_admin_session(&old.id_hash).await;
    }
    let session = match create_session(
        state.store.as_ref(),
        &state.tokens.hasher,
        &name,
        Some(peer.to_string()),
        now,
    )
    .await
    {
        Ok(s) => s,
        Err(e) => return super::page::internal(e),
    };
    let _ = state
        .store
        .append_audit(&audit(AuditKind::AdminLogin))
        .await;
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
    let _ = state.store.delete_admin_session(&session.id_hash).await;
    let mut r = see_other("/admin/login");
    let c = format!("{COOKIE}=; Path=/admin; Max-Age=0; HttpOnly; SameSite=Strict");
    if let Ok(v) = HeaderValue::from_str(&c) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}
