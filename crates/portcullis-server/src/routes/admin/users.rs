//! End user pages: list and create; show one with disable/enable and a password
//! reset; the applications they allowed, each revoked or narrowed one scope at a
//! time (its tokens stop working at once: `service::users` does it).

use super::page::{Chrome, PageResult, render};
use crate::error::PageError;
use crate::extract::admin_form::AdminForm;
use crate::extract::admin_session::AdminSession;
use crate::routes::account::pages::{GrantRow, grant_rows};
use crate::service::users::UserOpError;
use crate::state::AppState;
use crate::views::UserView;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use portcullis_core::user::check_new_password;
use portcullis_core::{ScopeSet, UserName};

#[derive(Template)]
#[template(path = "admin/users.html")]
struct UsersPage {
    user: String,
    csrf: String,
    nav: &'static str,
    flash: String,
    users: Vec<UserView>,
    name: String,
    name_error: String,
    password_error: String,
}

/// What the create form shows again after a refusal.
#[derive(Default)]
struct CreateForm {
    name: String,
    name_error: String,
    password_error: String,
}

async fn users_page(
    state: &AppState,
    session: &AdminSession,
    flash: String,
    form: CreateForm,
    status: StatusCode,
) -> PageResult {
    let users = state
        .users
        .list()
        .await?
        .iter()
        .map(UserView::new)
        .collect();
    let c = Chrome::new(session, "users");
    Ok(render(
        status,
        &UsersPage {
            user: c.user,
            csrf: c.csrf,
            nav: c.nav,
            flash,
            users,
            name: form.name,
            name_error: form.name_error,
            password_error: form.password_error,
        },
    ))
}

/// GET `/admin/users`.
pub async fn list(State(state): State<AppState>, session: AdminSession) -> PageResult {
    users_page(
        &state,
        &session,
        String::new(),
        CreateForm::default(),
        StatusCode::OK,
    )
    .await
}

/// POST `/admin/users` (`name`, `password`).
pub async fn create(
    State(state): State<AppState>,
    session: AdminSession,
    form: AdminForm,
) -> PageResult {
    let name = form.text("name");
    let password = form.raw("password").unwrap_or_default();
    let mut f = CreateForm {
        name: name.clone(),
        ..CreateForm::default()
    };
    // The rules are core's; checked here only to say which field is wrong.
    if let Err(e) = UserName::parse(&name) {
        f.name_error = e.to_string();
    }
    if let Err(e) = check_new_password(password) {
        f.password_error = e.to_string();
    }
    if f.name_error.is_empty() && f.password_error.is_empty() {
        match state.users.create(&name, password, &session.actor()).await {
            Ok(u) => {
                let flash = format!("User {} created.", u.name);
                return users_page(
                    &state,
                    &session,
                    flash,
                    CreateForm::default(),
                    StatusCode::OK,
                )
                .await;
            }
            Err(UserOpError::Invalid(m) | UserOpError::Conflict(m)) => f.name_error = m,
            Err(e) => return Err(e.into()),
        }
    }
    users_page(
        &state,
        &session,
        String::new(),
        f,
        StatusCode::UNPROCESSABLE_ENTITY,
    )
    .await
}

#[derive(Template)]
#[template(path = "admin/user.html")]
struct UserPage {
    user: String,
    csrf: String,
    nav: &'static str,
    flash: String,
    shown: UserView,
    grants: Vec<GrantRow>,
    grants_base: String,
    client_link: &'static str,
    password_error: String,
}

/// Renders a user's page with a notice, or a password error.
async fn user_page(
    state: &AppState,
    session: &AdminSession,
    id: &str,
    flash: &str,
    password_error: &str,
    status: StatusCode,
) -> PageResult {
    let u = state.users.get(id).await?;
    let consents = state.users.consents(&u.id).await?;
    let grants = grant_rows(state, consents).await;
    let c = Chrome::new(session, "users");
    Ok(render(
        status,
        &UserPage {
            user: c.user,
            csrf: c.csrf,
            nav: c.nav,
            flash: flash.to_owned(),
            grants_base: format!("/admin/users/{}/grants", u.id),
            client_link: "/admin/clients/",
            shown: UserView::new(&u),
            grants,
            password_error: password_error.to_owned(),
        },
    ))
}

/// GET `/admin/users/{id}`.
pub async fn show(
    State(state): State<AppState>,
    session: AdminSession,
    Path(id): Path<String>,
) -> PageResult {
    user_page(&state, &session, &id, "", "", StatusCode::OK).await
}

/// POST `/admin/users/{id}/status` (`status` = `active` or `disabled`).
pub async fn set_status(
    State(state): State<AppState>,
    session: AdminSession,
    Path(id): Path<String>,
    form: AdminForm,
) -> PageResult {
    let active = match form.get("status") {
        Some("active") => true,
        Some("disabled") => false,
        _ => return Ok((StatusCode::BAD_REQUEST, "unknown status").into_response()),
    };
    state
        .users
        .set_status(&id, active, &session.actor())
        .await?;
    let flash = if active {
        "User enabled."
    } else {
        "User disabled: signed out everywhere, and every token issued on their behalf is revoked."
    };
    user_page(&state, &session, &id, flash, "", StatusCode::OK).await
}

/// POST `/admin/users/{id}/reset-password` (`password`).
pub async fn reset_password(
    State(state): State<AppState>,
    session: AdminSession,
    Path(id): Path<String>,
    form: AdminForm,
) -> PageResult {
    let password = form.raw("password").unwrap_or_default();
    match state
        .users
        .reset_password(&id, password, &session.actor())
        .await
    {
        Ok(_) => {
            let flash = "Password set; the user's sessions ended.";
            user_page(&state, &session, &id, flash, "", StatusCode::OK).await
        }
        Err(UserOpError::Invalid(m)) => {
            user_page(
                &state,
                &session,
                &id,
                "",
                &m,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// POST `/admin/users/{id}/grants/{client_id}/revoke`.
pub async fn revoke_grant(
    State(state): State<AppState>,
    session: AdminSession,
    Path((id, client_id)): Path<(String, String)>,
    _checked: AdminForm,
) -> PageResult {
    let u = state.users.get(&id).await?;
    state
        .users
        .revoke_consent(&u.id, &client_id, None, &session.actor())
        .await?;
    let flash = "Access revoked: the application's tokens for this user stopped working.";
    user_page(&state, &session, &u.id, flash, "", StatusCode::OK).await
}

/// POST `/admin/users/{id}/grants/{client_id}/remove-scope` (`scope`).
pub async fn remove_scope(
    State(state): State<AppState>,
    session: AdminSession,
    Path((id, client_id)): Path<(String, String)>,
    form: AdminForm,
) -> PageResult {
    let Some(scope) = form.get("scope").and_then(|s| ScopeSet::parse(s).ok()) else {
        return Ok((StatusCode::BAD_REQUEST, "name the scope to remove").into_response());
    };
    let u = state.users.get(&id).await?;
    let granted = state.users.consent(&u.id, &client_id).await?;
    if !granted.is_some_and(|g| scope.iter().all(|s| g.scopes.contains(s))) {
        return Err(PageError::NotFound(format!("grant of scope {scope}")));
    }
    state
        .users
        .revoke_consent(&u.id, &client_id, Some(&scope), &session.actor())
        .await?;
    let flash = format!(
        "Removed {scope}: the application's tokens for this user stopped working; it may ask \
         again for what is left."
    );
    user_page(&state, &session, &u.id, &flash, "", StatusCode::OK).await
}
