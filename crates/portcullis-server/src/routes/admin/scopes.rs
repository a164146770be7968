//! Scopes: list and create.

use super::page::{Chrome, PageResult, render};
use crate::extract::admin_form::AdminForm;
use crate::extract::admin_session::AdminSession;
use crate::service::scopes::{self, ScopeOpError};
use crate::state::AppState;
use crate::views::ScopeView;
use askama::Template;
use axum::extract::State;
use axum::http::StatusCode;

#[derive(Template)]
#[template(path = "admin/scopes.html")]
struct ScopesPage {
    user: String,
    csrf: String,
    nav: &'static str,
    flash: String,
    scopes: Vec<ScopeView>,
    name: String,
    description: String,
    name_error: String,
}

async fn page(
    state: &AppState,
    session: &AdminSession,
    flash: String,
    name: String,
    description: String,
    name_error: String,
    status: StatusCode,
) -> PageResult {
    let scopes = state
        .store
        .list_scopes()
        .await?
        .iter()
        .map(ScopeView::from)
        .collect();
    let c = Chrome::new(session, "scopes");
    Ok(render(
        status,
        &ScopesPage {
            user: c.user,
            csrf: c.csrf,
            nav: c.nav,
            flash,
            scopes,
            name,
            description,
            name_error,
        },
    ))
}

/// GET `/admin/scopes`.
pub async fn list(State(state): State<AppState>, session: AdminSession) -> PageResult {
    page(
        &state,
        &session,
        String::new(),
        String::new(),
        String::new(),
        String::new(),
        StatusCode::OK,
    )
    .await
}

/// POST `/admin/scopes`.
pub async fn create(
    State(state): State<AppState>,
    session: AdminSession,
    form: AdminForm,
) -> PageResult {
    let name = form.text("name");
    let description = form.text("description");
    let result = match scopes::create(
        state.store.as_ref(),
        state.clock(),
        &name,
        &description,
        &session.actor(),
    )
    .await
    {
        Ok(rec) => Ok(rec.name),
        Err(ScopeOpError::Field(_, m) | ScopeOpError::Conflict(m)) => {
            Err((m, StatusCode::UNPROCESSABLE_ENTITY))
        }
        Err(ScopeOpError::Fault(e)) => return Err(e.into()),
    };
    match result {
        Ok(n) => {
            page(
                &state,
                &session,
                format!("Scope {n} created."),
                String::new(),
                String::new(),
                String::new(),
                StatusCode::OK,
            )
            .await
        }
        Err((why, status)) => {
            page(
                &state,
                &session,
                String::new(),
                name,
                description,
                why,
                status,
            )
            .await
        }
    }
}
