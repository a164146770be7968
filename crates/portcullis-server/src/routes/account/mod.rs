//! `/account`: an end user signs in, sees the applications they allowed (with
//! what each may do and when it last used its access), revokes one, removes one
//! scope from one, and changes their password. Works without JavaScript; every
//! form is CSRF-checked by [`UserForm`].

pub mod pages;

use crate::error::PageError;
use crate::extract::client_addr::ClientAddr;
use crate::extract::user_session::{UserForm, current};
use crate::routes::admin::page::render;
use crate::service::admin_auth::SignInRefused;
use crate::service::users::{UserOpError, UserSession};
use crate::state::AppState;
use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use pages::{GrantRow, SignIn, end_session, grant_rows, redirect, sign_in_page, start_session};
use portcullis_core::ScopeSet;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(home))
        .route("/account/login", post(login))
        .route("/account/logout", post(logout))
        .route("/account/password", post(password))
        .route("/account/grants/{client_id}/revoke", post(revoke))
        .route(
            "/account/grants/{client_id}/remove-scope",
            post(remove_scope),
        )
}

#[derive(Template)]
#[template(path = "account/account.html")]
struct AccountPage<'a> {
    user: &'a str,
    csrf: &'a str,
    flash: &'a str,
    grants: Vec<GrantRow>,
    grants_base: &'a str,
    client_link: &'a str,
    password_error: &'a str,
}

async fn account_page(
    state: &AppState,
    session: &UserSession,
    status: StatusCode,
    flash: &str,
    password_error: &str,
) -> Result<Response, PageError> {
    let grants = grant_rows(state, state.users.consents(&session.user.id).await?).await;
    Ok(render(
        status,
        &AccountPage {
            user: &session.user.name,
            csrf: &session.csrf,
            flash,
            grants,
            grants_base: "/account/grants",
            client_link: "",
            password_error,
        },
    ))
}

fn sign_in(
    state: &AppState,
    status: StatusCode,
    error: &str,
    username: &str,
    flash: &str,
) -> Response {
    sign_in_page(
        state,
        status,
        SignIn {
            action: "/account/login",
            error,
            username,
            flash,
            ..SignIn::default()
        },
    )
}

/// The signed-in user, or the sign-in page to show instead.
async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<UserSession, Response> {
    match current(headers, state).await {
        Ok(Some(s)) => Ok(s),
        Ok(None) => Err(sign_in(state, StatusCode::OK, "", "", "")),
        Err(f) => Err(PageError::Fault(f).into_response()),
    }
}

/// GET `/account`.
pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match signed_in(&state, &headers).await {
        Ok(s) => account_page(&state, &s, StatusCode::OK, "", "")
            .await
            .into_response(),
        Err(r) => r,
    }
}

/// POST `/account/login`.
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    headers: HeaderMap,
    form: UserForm,
) -> Response {
    let previous = match current(&headers, &state).await {
        Ok(p) => p,
        Err(f) => return PageError::Fault(f).into_response(),
    };
    let name = form.text("username");
    let password = form.raw("password").unwrap_or_default();
    match state
        .users
        .sign_in(&name, password, peer, previous.as_ref())
        .await
    {
        Ok(new) => {
            let mut r = redirect(true, "/account");
            start_session(&state, &mut r, new.cookie.expose());
            r
        }
        Err(SignInRefused::Wrong) => sign_in(
            &state,
            StatusCode::UNAUTHORIZED,
            "Wrong user name or password.",
            &name,
            "",
        ),
        Err(SignInRefused::Throttled { retry_after }) => {
            let msg = format!("Too many failed sign-ins. Try again in {retry_after} seconds.");
            let mut r = sign_in(&state, StatusCode::TOO_MANY_REQUESTS, &msg, &name, "");
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            r
        }
        Err(SignInRefused::Fault(f)) => PageError::Fault(f).into_response(),
    }
}

/// POST `/account/logout`.
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    _form: UserForm,
) -> Response {
    if let Ok(Some(s)) = current(&headers, &state).await {
        state.users.sign_out(&s).await;
    }
    let mut r = redirect(true, "/account");
    end_session(&mut r);
    r
}

/// POST `/account/password`: the current password, then the new one; every
/// session ends, this one too.
pub async fn password(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: UserForm,
) -> Response {
    let session = match signed_in(&state, &headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let current_pw = form.raw("current").unwrap_or_default();
    let new_pw = form.raw("new").unwrap_or_default();
    match state
        .users
        .change_password(&session, current_pw, new_pw)
        .await
    {
        Ok(()) => {
            let mut r = sign_in(
                &state,
                StatusCode::OK,
                "",
                &session.user.name,
                "Password changed. Sign in with the new one.",
            );
            end_session(&mut r);
            r
        }
        Err(UserOpError::Invalid(m)) => {
            account_page(&state, &session, StatusCode::UNPROCESSABLE_ENTITY, "", &m)
                .await
                .into_response()
        }
        Err(UserOpError::Fault(f)) => PageError::Fault(f).into_response(),
        Err(e) => PageError::Fault(crate::error::Fault::broken(e)).into_response(),
    }
}

async fn end_grant(
    state: &AppState,
    headers: &HeaderMap,
    client_id: &str,
    remove: Option<ScopeSet>,
) -> Response {
    let session = match signed_in(state, headers).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let flash = match state
        .users
        .revoke_consent(
            &session.user.id,
            client_id,
            remove.as_ref(),
            &session.actor(),
        )
        .await
    {
        Ok(_) if remove.is_some() => "Removed. The application's current tokens stopped working.",
        Ok(_) => "Access revoked. The application's tokens stopped working.",
        Err(UserOpError::NotFound(_)) => {
            return PageError::NotFound("grant".into()).into_response();
        }
        Err(UserOpError::Fault(f)) => return PageError::Fault(f).into_response(),
        Err(e) => return PageError::Fault(crate::error::Fault::broken(e)).into_response(),
    };
    account_page(state, &session, StatusCode::OK, flash, "")
        .await
        .into_response()
}

/// POST `/account/grants/{client_id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    _form: UserForm,
) -> Response {
    end_grant(&state, &headers, &client_id, None).await
}

/// POST `/account/grants/{client_id}/remove-scope` (`scope=NAME`).
pub async fn remove_scope(
    State(state): State<AppState>,
    Path(client_id): Path<String>,
    headers: HeaderMap,
    form: UserForm,
) -> Response {
    let Some(scope) = form.get("scope").and_then(|s| ScopeSet::parse(s).ok()) else {
        return (StatusCode::BAD_REQUEST, "name the scope to remove").into_response();
    };
    end_grant(&state, &headers, &client_id, Some(scope)).await
}
