//! `GET|POST /oauth/authorize` (RFC 6749 §4.1.1–4.1.2, RFC 7636, RFC 9207): the
//! end user signs in, sees what the application asks for, and allows or denies.
//!
//! The request's query is checked on every step (`service::authorize`); the
//! forms post back to the same URL, so nothing about the request is kept between
//! steps but the user's session. A consent form carries, besides the session's
//! CSRF token, a `flow` value binding it to that session and that exact request:
//! a form posted for a request the user was not shown is refused.

use crate::error::PageError;
use crate::extract::client_addr::ClientAddr;
use crate::extract::user_session::{UserForm, current};
use crate::routes::account::pages::{
    SignIn, allow_form_action, describe, error_page, origin_of, redirect, sign_in_page,
    start_session,
};
use crate::routes::admin::page::render;
use crate::service::admin_auth::SignInRefused;
use crate::service::authorize::{
    self, AuthorizeRefusal, AuthorizeRequest, ErrorRedirect, code_url, create_code,
};
use crate::service::users::UserSession;
use crate::state::AppState;
use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use portcullis_crypto::TokenKind;
use subtle::ConstantTimeEq;

#[derive(Template)]
#[template(path = "account/consent.html")]
struct ConsentPage<'a> {
    user: &'a str,
    csrf: &'a str,
    flash: &'a str,
    form_csrf: &'a str,
    flow: String,
    action: &'a str,
    app: &'a str,
    scopes: Vec<crate::routes::account::pages::ScopeLine>,
    redirect_host: &'a str,
}

/// The request checked, or the answer that refuses it.
async fn checked(
    state: &AppState,
    query: &str,
    after_post: bool,
) -> Result<AuthorizeRequest, Response> {
    authorize::check(state.store.as_ref(), query)
        .await
        .map_err(|refusal| match refusal {
            AuthorizeRefusal::Page(message) => error_page(StatusCode::BAD_REQUEST, &message),
            AuthorizeRefusal::Redirect(e) => redirect(after_post, &e.url(&state.tokens.issuer)),
            AuthorizeRefusal::Fault(f) => PageError::Fault(f).into_response(),
        })
}

/// Binds a consent form to the session it was shown in and the request it was
/// shown for.
fn flow(state: &AppState, session: &UserSession, query: &str) -> String {
    let bound = format!("{}\n{query}", session.csrf);
    portcullis_crypto::b64::encode(state.tokens.hasher.hash(TokenKind::ConsentFlow, &bound).0)
}

fn action(query: &str) -> String {
    format!("/oauth/authorize?{query}")
}

/// GET `/oauth/authorize`.
pub async fn authorize(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let query = query.unwrap_or_default();
    let req = match checked(&state, &query, false).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    match current(&headers, &state).await {
        Err(f) => PageError::Fault(f).into_response(),
        Ok(None) => sign_in(&state, &req, &query, StatusCode::OK, "", ""),
        Ok(Some(session)) => proceed(&state, &req, &query, &session, false).await,
    }
}

fn sign_in(
    state: &AppState,
    req: &AuthorizeRequest,
    query: &str,
    status: StatusCode,
    error: &str,
    username: &str,
) -> Response {
    sign_in_page(
        state,
        status,
        SignIn {
            action: &action(query),
            app: &req.client.name,
            error,
            username,
            form_action: origin_of(&req.redirect_uri),
            ..SignIn::default()
        },
    )
}

/// A signed-in user: straight back to the application if they already allowed
/// all of this, otherwise the consent page.
async fn proceed(
    state: &AppState,
    req: &AuthorizeRequest,
    query: &str,
    session: &UserSession,
    after_post: bool,
) -> Response {
    let consent = match state
        .users
        .consent(&session.user.id, req.client.id.as_str())
        .await
    {
        Ok(c) => c,
        Err(f) => return PageError::Fault(f).into_response(),
    };
    let covered = consent.is_some_and(|c| req.scopes.iter().all(|s| c.scopes.contains(s)));
    if covered {
        return issue(state, req, session, after_post).await;
    }
    let scopes = describe(state, req.scopes.iter().map(ToString::to_string)).await;
    let mut r = render(
        StatusCode::OK,
        &ConsentPage {
            user: &session.user.name,
            csrf: &session.csrf,
            flash: "",
            form_csrf: &session.csrf,
            flow: flow(state, session, query),
            action: &action(query),
            app: &req.client.name,
            scopes,
            redirect_host: origin_of(&req.redirect_uri).unwrap_or(&req.redirect_uri),
        },
    );
    if let Some(origin) = origin_of(&req.redirect_uri) {
        allow_form_action(&mut r, origin);
    }
    r
}

/// Issues a code and sends the browser back to the application with it.
async fn issue(
    state: &AppState,
    req: &AuthorizeRequest,
    session: &UserSession,
    after_post: bool,
) -> Response {
    match create_code(
        state.store.as_ref(),
        &state.tokens.hasher,
        state.now(),
        req,
        &session.user.id,
    )
    .await
    {
        Ok(code) => redirect(
            after_post,
            &code_url(req, code.expose(), &state.tokens.issuer),
        ),
        Err(f) => PageError::Fault(f).into_response(),
    }
}

/// POST `/oauth/authorize`: the sign-in form (`step=sign_in`) or the consent form
/// (`step=consent`, `decision=allow|deny`).
pub async fn submit(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    form: UserForm,
) -> Response {
    let query = query.unwrap_or_default();
    let req = match checked(&state, &query, true).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    let session = match current(&headers, &state).await {
        Ok(s) => s,
        Err(f) => return PageError::Fault(f).into_response(),
    };
    match form.get("step") {
        Some("sign_in") => {
            let name = form.text("username");
            let password = form.raw("password").unwrap_or_default();
            match state
                .users
                .sign_in(&name, password, peer, session.as_ref())
                .await
            {
                Ok(new) => {
                    // Back to the request with the session: the next step is
                    // decided there (consent, or straight back to the app).
                    let mut r = redirect(true, &action(&query));
                    start_session(&state, &mut r, new.cookie.expose());
                    r
                }
                Err(SignInRefused::Wrong) => sign_in(
                    &state,
                    &req,
                    &query,
                    StatusCode::UNAUTHORIZED,
                    "Wrong user name or password.",
                    &name,
                ),
                Err(SignInRefused::Throttled { retry_after }) => {
                    let msg =
                        format!("Too many failed sign-ins. Try again in {retry_after} seconds.");
                    let mut r = sign_in(
                        &state,
                        &req,
                        &query,
                        StatusCode::TOO_MANY_REQUESTS,
                        &msg,
                        &name,
                    );
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
                    r
                }
                Err(SignInRefused::Fault(f)) => PageError::Fault(f).into_response(),
            }
        }
        Some("consent") => {
            let Some(session) = session else {
                return sign_in(&state, &req, &query, StatusCode::OK, "", "");
            };
            let expected = flow(&state, &session, &query);
            let presented = form.get("flow").unwrap_or_default();
            if !bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
                return error_page(
                    StatusCode::FORBIDDEN,
                    "This answer was not given on the page shown for this request. Start again \
                     from the application.",
                );
            }
            match form.get("decision") {
                Some("allow") => {
                    if let Err(f) = state
                        .users
                        .give_consent(&session, req.client.id.as_str(), &req.scopes)
                        .await
                    {
                        return PageError::Fault(f).into_response();
                    }
                    issue(&state, &req, &session, true).await
                }
                Some("deny") => {
                    let e = ErrorRedirect {
                        redirect_uri: req.redirect_uri.clone(),
                        error: "access_denied",
                        description: "the user denied the request".into(),
                        state: req.state.clone(),
                    };
                    redirect(true, &e.url(&state.tokens.issuer))
                }
                _ => error_page(StatusCode::BAD_REQUEST, "Choose Allow or Deny."),
            }
        }
        _ => error_page(
            StatusCode::BAD_REQUEST,
            "This form is not one of this page's.",
        ),
    }
}
