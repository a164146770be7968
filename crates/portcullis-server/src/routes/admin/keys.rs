//! Signing keys: list with state, rotate now.

use super::page::{Chrome, PageResult, ok, when};
use crate::extract::admin_form::AdminForm;
use crate::extract::admin_session::AdminSession;
use crate::service::keys;
use crate::state::AppState;
use askama::Template;
use axum::extract::State;
use portcullis_crypto::Algorithm;
use portcullis_store::KeyState;

struct KeyRow {
    kid: String,
    alg: String,
    state: String,
    created_at: String,
    retire_after: String,
}

#[derive(Template)]
#[template(path = "admin/keys.html")]
struct KeysPage {
    user: String,
    csrf: String,
    nav: &'static str,
    flash: String,
    keys: Vec<KeyRow>,
    algs: Vec<String>,
    current_alg: String,
}

async fn page(state: &AppState, session: &AdminSession, flash: String) -> PageResult {
    let keys = state.store.signing_keys().await?;
    let c = Chrome::new(session, "keys");
    Ok(ok(&KeysPage {
        user: c.user,
        csrf: c.csrf,
        nav: c.nav,
        flash,
        current_alg: state.tokens.keys.get().current.alg().to_string(),
        keys: keys
            .iter()
            .map(|k| KeyRow {
                kid: k.kid.clone(),
                alg: k.alg.clone(),
                state: k.state.as_str().into(),
                created_at: when(Some(k.created_at)),
                retire_after: if k.state == KeyState::Current {
                    "—".into()
                } else {
                    when(k.retire_after)
                },
            })
            .collect(),
        algs: ["RS256", "ES256", "EdDSA"]
            .iter()
            .map(|a| (*a).to_owned())
            .collect(),
    }))
}

/// GET `/admin/keys`.
pub async fn list(State(state): State<AppState>, session: AdminSession) -> PageResult {
    page(&state, &session, String::new()).await
}

/// POST `/admin/keys/rotate`.
pub async fn rotate(
    State(state): State<AppState>,
    session: AdminSession,
    form: AdminForm,
) -> PageResult {
    let alg: Algorithm = match form.get("alg").unwrap_or("RS256").parse() {
        Ok(a) => a,
        Err(e) => return page(&state, &session, e).await,
    };
    let now = state.now();
    let kid = keys::rotate(
        &state.store,
        &state.master,
        alg,
        now,
        state.tokens.access_ttl,
        &session.actor(),
    )
    .await?;
    state
        .tokens
        .keys
        .refresh(&state.store, &state.master, now)
        .await?;
    page(
        &state,
        &session,
        format!(
            "New {alg} key {kid} is current; the previous key verifies until its tokens expire."
        ),
    )
    .await
}
