//! A client's sites: mint a token set for a label (shown once), revoke one token
//! set, one site, or everything the client holds.

use super::clients::{ClientPageExtras, client_page};
use super::form::AdminForm;
use super::page::{Chrome, internal, not_found, ok};
use crate::extract::admin_session::AdminSession;
use crate::service::clients::{self, ClientOpError};
use crate::service::tokens::Grant;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use portcullis_core::grant::granted_scopes;
use portcullis_core::{ClientStatus, GrantType, Label, ScopeSet};
use portcullis_store::Actor;

#[derive(Template)]
#[template(path = "admin/minted.html")]
struct Minted {
    user: String,
    csrf: String,
    nav: &'static str,
    flash: String,
    client_id: String,
    label: String,
    family: String,
    scope: String,
    expires_in: u64,
    access_token: String,
    refresh_token: String,
}

fn admin(session: &AdminSession) -> Actor {
    Actor {
        kind: "admin",
        id: Some(session.user.clone()),
        source: None,
    }
}

async fn mint_failed(
    state: &AppState,
    session: &AdminSession,
    id: &str,
    label: String,
    why: String,
) -> Response {
    let extras = ClientPageExtras {
        mint_label: label,
        mint_error: why,
        ..ClientPageExtras::default()
    };
    client_page(state, session, id, extras, StatusCode::UNPROCESSABLE_ENTITY).await
}

/// POST `/admin/clients/{id}/mint`.
pub async fn mint(
    State(state): State<AppState>,
    session: AdminSession,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    if let Err(r) = form.check_csrf(&session) {
        return r;
    }
    let client = match clients::get(&state.store, &id).await {
        Ok(c) => c,
        Err(ClientOpError::NotFound(_)) => return not_found("client"),
        Err(e) => return internal(e),
    };
    let label_text = form.text("label");
    let label = match Label::parse(&label_text) {
        Ok(l) => l,
        Err(e) => {
            return mint_failed(&state, &session, &id, label_text, format!("Label: {e}.")).await;
        }
    };
    if client.status != ClientStatus::Active {
        return mint_failed(
            &state,
            &session,
            &id,
            label_text,
            "The client is disabled.".into(),
        )
        .await;
    }
    let wanted = form.all("scope");
    let requested = match ScopeSet::parse(&wanted.join(" ")) {
        Ok(s) => s,
        Err(_) => {
            return mint_failed(
                &state,
                &session,
                &id,
                label_text,
                "Choose at least one scope.".into(),
            )
            .await;
        }
    };
    let scopes = match granted_scopes(Some(&requested), &client.scopes) {
        Ok(s) => s,
        Err(e) => return mint_failed(&state, &session, &id, label_text, e.description).await,
    };
    let issued = match state
        .tokens
        .issue(Grant {
            client: &client,
            scopes,
            label: Some(label.clone()),
            subject: client.id.to_string(),
            grant_type: GrantType::ClientCredentials,
            actor: admin(&session),
        })
        .await
    {
        Ok(i) => i,
        Err(e) => return internal(e),
    };
    let c = Chrome::new(&session, "clients");
    ok(&Minted {
        user: c.user,
        csrf: c.csrf,
        nav: c.nav,
        flash: c.flash,
        client_id: client.id.to_string(),
        label: label.to_string(),
        family: issued.family_id,
        scope: issued.response.scope,
        expires_in: issued.response.expires_in,
        access_token: issued.response.access_token,
        refresh_token: issued.response.refresh_token.unwrap_or_default(),
    })
}

/// POST `/admin/clients/{id}/revoke`: `family=…`, `label=…`, or neither (everything).
pub async fn revoke(
    State(state): State<AppState>,
    session: AdminSession,
    Path(id): Path<String>,
    form: AdminForm,
) -> Response {
    if let Err(r) = form.check_csrf(&session) {
        return r;
    }
    let client = match clients::get(&state.store, &id).await {
        Ok(c) => c,
        Err(ClientOpError::NotFound(_)) => return not_found("client"),
        Err(e) => return internal(e),
    };
    let revoker = state.tokens.revoker();
    let actor = admin(&session);
    let result = match (form.get("family"), form.get("label")) {
        (Some(fam), _) => revoker
            .family(fam, Some(&client.id), &actor, "admin")
            .await
            .map(usize::from),
        (None, label) => revoker
            .label(&client, label, &actor)
            .await
            .map(|ids| ids.len()),
    };
    let n = match result {
        Ok(n) => n,
        Err(e) => return internal(e),
    };
    let what = match (form.get("family"), form.get("label")) {
        (Some(_), _) => "token set".to_owned(),
        (None, Some(l)) => format!("token sets of site {l}"),
        (None, None) => "token sets".to_owned(),
    };
    let extras = ClientPageExtras {
        flash: format!("Revoked {n} {what}; their tokens are refused from now on."),
        ..ClientPageExtras::default()
    };
    client_page(&state, &session, &id, extras, StatusCode::OK).await
}
