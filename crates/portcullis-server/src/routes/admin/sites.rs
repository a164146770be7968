//! A client's sites: mint a token set for a label (shown once), revoke one token
//! set, one site, or everything the client holds.

use super::clients::{ClientPageExtras, client_page};
use super::page::{Chrome, PageResult, ok};
use crate::extract::admin_form::AdminForm;
use crate::extract::admin_session::AdminSession;
use crate::service::mint::{self, MintError};
use crate::state::AppState;
use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;

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

async fn mint_failed(
    state: &AppState,
    session: &AdminSession,
    id: &str,
    label: String,
    why: String,
) -> PageResult {
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
) -> PageResult {
    let client = state.clients.get(&id).await?;
    let label_text = form.text("label");
    let wanted = form.all("scope");
    let requested = wanted.join(" ");
    let issued = match mint::mint(
        &state.tokens,
        &client,
        Some(&label_text),
        Some(&requested),
        session.actor(),
    )
    .await
    {
        Ok(i) => {
            state.usage.count_token(state.now());
            i
        }
        Err(MintError::Fault(e)) => return Err(e.into()),
        Err(MintError::Label(e)) => {
            return mint_failed(&state, &session, &id, label_text, format!("Label: {e}.")).await;
        }
        Err(MintError::Disabled) => {
            return mint_failed(
                &state,
                &session,
                &id,
                label_text,
                "The client is disabled.".into(),
            )
            .await;
        }
        Err(MintError::Scopes(_)) if wanted.is_empty() => {
            let why = "Choose at least one scope.".to_owned();
            return mint_failed(&state, &session, &id, label_text, why).await;
        }
        Err(MintError::Scopes(e)) => {
            return mint_failed(&state, &session, &id, label_text, e).await;
        }
    };
    let label = label_text;
    let c = Chrome::new(&session, "clients");
    Ok(ok(&Minted {
        user: c.user,
        csrf: c.csrf,
        nav: c.nav,
        flash: c.flash,
        client_id: client.id.to_string(),
        label,
        family: issued.family_id,
        scope: issued.response.scope,
        expires_in: issued.response.expires_in,
        access_token: issued.response.access_token,
        refresh_token: issued.response.refresh_token.unwrap_or_default(),
    }))
}

/// POST `/admin/clients/{id}/revoke`: `family=…`, `label=…`, or neither (everything).
pub async fn revoke(
    State(state): State<AppState>,
    session: AdminSession,
    Path(id): Path<String>,
    form: AdminForm,
) -> PageResult {
    let client = state.clients.get(&id).await?;
    let revoker = state.tokens.revoker();
    let actor = session.actor();
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
    let n = result?;
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
