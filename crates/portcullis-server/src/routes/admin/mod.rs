//! The admin web interface (SPEC §7): server-rendered pages that work without
//! JavaScript, behind a server-side session, every form CSRF-protected. The pages
//! call the same services as the CLI (`service::clients`, `service::tokens`,
//! `service::revocation`, `service::users`), so no rule lives in two places.

// Handlers answer `Result<_, Response>`: the error is the page to show.
#![allow(clippy::result_large_err)]

mod assets;
mod audit;
mod charts;
mod clients;
mod dashboard;
mod keys;
mod login;
pub mod page;
mod scopes;
mod sites;
mod users;

use crate::state::AppState;
use axum::Router;
use axum::routing::{get, post};

/// Routes under `/admin`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/admin", get(dashboard::dashboard))
        .route("/admin/", get(dashboard::dashboard))
        .route("/admin/login", get(login::form).post(login::submit))
        .route("/admin/logout", post(login::logout))
        .route("/admin/assets/{file}", get(assets::asset))
        .route("/admin/clients", get(clients::list).post(clients::create))
        .route("/admin/clients/{id}", get(clients::show))
        .route("/admin/clients/{id}/edit", post(clients::edit))
        .route("/admin/clients/{id}/status", post(clients::set_status))
        .route(
            "/admin/clients/{id}/rotate-secret",
            post(clients::rotate_secret),
        )
        .route(
            "/admin/clients/{id}/delete",
            get(clients::confirm_delete).post(clients::delete),
        )
        .route("/admin/clients/{id}/mint", post(sites::mint))
        .route("/admin/clients/{id}/revoke", post(sites::revoke))
        .route("/admin/users", get(users::list).post(users::create))
        .route("/admin/users/{id}", get(users::show))
        .route("/admin/users/{id}/status", post(users::set_status))
        .route(
            "/admin/users/{id}/reset-password",
            post(users::reset_password),
        )
        .route(
            "/admin/users/{id}/grants/{client_id}/revoke",
            post(users::revoke_grant),
        )
        .route(
            "/admin/users/{id}/grants/{client_id}/remove-scope",
            post(users::remove_scope),
        )
        .route("/admin/scopes", get(scopes::list).post(scopes::create))
        .route("/admin/keys", get(keys::list))
        .route("/admin/keys/rotate", post(keys::rotate))
        .route("/admin/audit", get(audit::list))
}
