//! Client pages: list and search, create (the secret shown once), show with sites
//! and token sets, edit, disable/enable, rotate the secret, delete with confirmation.

use super::page::{Chrome, PageResult, ok, render, see_other, when};
use crate::error::PageError;
use crate::extract::admin_form::AdminForm;
use crate::extract::admin_session::AdminSession;
use crate::service::clients::{ClientOpError, NewClientSpec};
use crate::state::AppState;
use crate::views::ClientView;
use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use portcullis_core::{Client, ClientStatus, GrantType, Ttl};
use portcullis_store::ScopeRecord;
use serde::Deserialize;

/// A checkbox.
pub struct Check {
    /// Value.
    pub name: String,
    /// Help text.
    pub description: String,
    /// Ticked.
    pub checked: bool,
}

/// Messages next to fields.
#[derive(Default)]
pub struct FormErrors {
    /// Above the form.
    pub general: String,
    /// Name.
    pub name: String,
    /// Scopes.
    pub scopes: String,
    /// Grants.
    pub grants: String,
    /// Redirect URIs.
    pub redirect_uris: String,
    /// Lifetimes.
    pub ttl: String,
}

/// The create/edit form.
pub struct ClientForm {
    action: String,
    submit: &'static str,
    name: String,
    scopes: Vec<Check>,
    grants: Vec<Check>,
    redirect_uris: String,
    access_token_ttl: String,
    refresh_token_ttl: String,
    refresh_reuse_grace: String,
    no_refresh_token: bool,
    errors: FormErrors,
}

fn secs(t: Option<Ttl>) -> String {
    t.map(|t| t.to_string()).unwrap_or_default()
}

impl ClientForm {
    fn blank(all_scopes: &[ScopeRecord]) -> Self {
        Self {
            action: "/admin/clients".into(),
            submit: "Create client",
            name: String::new(),
            scopes: all_scopes
                .iter()
                .map(|s| Check {
                    name: s.name.clone(),
                    description: s.description.clone(),
                    checked: !portcullis_core::scope::RESERVED.contains(&s.name.as_str()),
                })
                .collect(),
            grants: [
                GrantType::ClientCredentials,
                GrantType::RefreshToken,
                GrantType::AuthorizationCode,
            ]
            .iter()
            .map(|g| Check {
                name: g.as_str().into(),
                description: String::new(),
                checked: *g != GrantType::AuthorizationCode,
            })
            .collect(),
            redirect_uris: String::new(),
            access_token_ttl: String::new(),
            refresh_token_ttl: String::new(),
            refresh_reuse_grace: String::new(),
            no_refresh_token: false,
            errors: FormErrors::default(),
        }
    }

    fn of_client(c: &Client, all_scopes: &[ScopeRecord]) -> Self {
        let mut f = Self::blank(all_scopes);
        f.action = format!("/admin/clients/{}/edit", c.id);
        f.submit = "Save settings";
        f.name = c.name.clone();
        for s in &mut f.scopes {
            s.checked = c.scopes.contains_str(&s.name);
        }
        for g in &mut f.grants {
            g.checked = c.grant_types.iter().any(|x| x.as_str() == g.name);
        }
        f.redirect_uris = c
            .redirect_uris
            .iter()
            .map(|u| u.to_string())
            .collect::<Vec<_>>()
            .join("\n");
        f.access_token_ttl = secs(c.access_token_ttl);
        f.refresh_token_ttl = secs(c.refresh_token_ttl);
        f.refresh_reuse_grace = if c.refresh_reuse_grace.secs() == 0 {
            String::new()
        } else {
            c.refresh_reuse_grace.to_string()
        };
        f.no_refresh_token = !c.issue_refresh_token;
        f
    }

    /// The posted values, re-shown with errors.
    fn from_post(
        form: &AdminForm,
        all_scopes: &[ScopeRecord],
        action: String,
        submit: &'static str,
    ) -> Self {
        let mut f = Self::blank(all_scopes);
        f.action = action;
        f.submit = submit;
        f.name = form.text("name");
        let scopes = form.all("scope");
        for s in &mut f.scopes {
            s.checked = scopes.contains(&s.name);
        }
        let grants = form.all("grant");
        for g in &mut f.grants {
            g.checked = grants.contains(&g.name);
        }
        f.redirect_uris = form.text("redirect_uris");
        f.access_token_ttl = form.text("access_token_ttl");
        f.refresh_token_ttl = form.text("refresh_token_ttl");
        f.refresh_reuse_grace = form.text("refresh_reuse_grace");
        f.no_refresh_token = form.get("no_refresh_token").is_some();
        f
    }
}

/// Reads the posted settings; field errors go into `f.errors`.
fn spec_from(form: &AdminForm, f: &mut ClientForm) -> Option<NewClientSpec> {
    let ttl = |name: &str, label: &str, errs: &mut String| -> Option<Option<Ttl>> {
        match form.get(name) {
            None => Some(None),
            Some(v) => match v.parse::<Ttl>() {
                Ok(t) => Some(Some(t)),
                Err(e) => {
                    *errs = format!("{label}: {e}");
                    None
                }
            },
        }
    };
    let access = ttl(
        "access_token_ttl",
        "Access token lifetime",
        &mut f.errors.ttl,
    );
    let refresh = ttl(
        "refresh_token_ttl",
        "Refresh token lifetime",
        &mut f.errors.ttl,
    );
    let grace = match form.get("refresh_reuse_grace") {
        None => Some(None),
        Some(v) => match Ttl::parse_allow_zero(v) {
            Ok(t) => Some(Some(t)),
            Err(e) => {
                f.errors.ttl = format!("Refresh reuse grace: {e}");
                None
            }
        },
    };
    let scopes = form.all("scope");
    if scopes.is_empty() {
        f.errors.scopes = "Choose at least one scope.".into();
    }
    let grants = form.all("grant");
    if grants.is_empty() {
        f.errors.grants = "Choose at least one grant.".into();
    }
    let (Some(access), Some(refresh), Some(grace)) = (access, refresh, grace) else {
        return None;
    };
    if scopes.is_empty() || grants.is_empty() {
        return None;
    }
    Some(NewClientSpec {
        name: form.text("name"),
        scopes,
        grant_types: grants,
        redirect_uris: form
            .text("redirect_uris")
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        access_token_ttl: access,
        refresh_token_ttl: refresh,
        no_refresh_token: form.get("no_refresh_token").is_some(),
        refresh_reuse_grace: grace,
    })
}

/// Shows a refusal next to its field; what has no field is the page's error.
fn place_error(f: &mut ClientForm, e: ClientOpError) -> Result<(), PageError> {
    match e {
        ClientOpError::Field(field, m) => match field {
            "name" => f.errors.name = m,
            "scopes" => f.errors.scopes = m,
            "grants" => f.errors.grants = m,
            "redirect_uris" => f.errors.redirect_uris = m,
            _ => f.errors.general = m,
        },
        ClientOpError::Invalid(m) => f.errors.general = m,
        ClientOpError::NotFound(_) => return Err(PageError::NotFound("client".into())),
        ClientOpError::Fault(e) => return Err(PageError::Fault(e)),
    }
    Ok(())
}

#[derive(Template)]
#[template(path = "admin/clients.html")]
struct ClientsPage {
    user: String,
    csrf: String,
    nav: &'static str,
    flash: String,
    q: String,
    clients: Vec<ClientView>,
    form: ClientForm,
}

/// `?q=`.
#[derive(Deserialize)]
pub struct Search {
    #[serde(default)]
    q: String,
}

async fn clients_page(
    state: &AppState,
    session: &AdminSession,
    q: &str,
    form: Option<ClientForm>,
    status: StatusCode,
) -> PageResult {
    let list = state.store.list_clients().await?;
    let scopes = state.store.list_scopes().await?;
    let needle = q.trim().to_lowercase();
    let clients = list
        .iter()
        .filter(|c| {
            needle.is_empty()
                || c.name.to_lowercase().contains(&needle)
                || c.id.as_str().to_lowercase().contains(&needle)
        })
        .map(ClientView::new)
        .collect();
    let c = Chrome::new(session, "clients");
    Ok(render(
        status,
        &ClientsPage {
            user: c.user,
            csrf: c.csrf,
            nav: c.nav,
            flash: c.flash,
            q: q.trim().to_owned(),
            clients,
            form: form.unwrap_or_else(|| ClientForm::blank(&scopes)),
        },
    ))
}

/// GET `/admin/clients`.
pub async fn list(
    State(state): State<AppState>,
    session: AdminSession,
    Query(s): Query<Search>,
) -> PageResult {
    clients_page(&state, &session, &s.q, None, StatusCode::OK).await
}

#[derive(Template)]
#[template(path = "admin/secret.html")]
struct SecretPage {
    user: String,
    csrf: String,
    nav: &'static str,
    flash: String,
    heading: String,
    client_id: String,
    secret: String,
    note: String,
}

/// POST `/admin/clients`.
pub async fn create(
    State(state): State<AppState>,
    session: AdminSession,
    form: AdminForm,
) -> PageResult {
    let scopes = state.store.list_scopes().await?;
    let mut f = ClientForm::from_post(&form, &scopes, "/admin/clients".into(), "Create client");
    let Some(spec) = spec_from(&form, &mut f) else {
        return clients_page(
            &state,
            &session,
            "",
            Some(f),
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    match state.clients.create(spec, &session.actor()).await {
        Ok((client, secret)) => {
            let c = Chrome::new(&session, "clients");
            Ok(ok(&SecretPage {
                user: c.user,
                csrf: c.csrf,
                nav: c.nav,
                flash: c.flash,
                heading: format!("Client {} created", client.name),
                client_id: client.id.to_string(),
                secret: secret.expose().to_owned(),
                note: String::new(),
            }))
        }
        Err(e) => {
            place_error(&mut f, e)?;
            clients_page(
                &state,
                &session,
                "",
                Some(f),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

/// A site row.
pub struct SiteRow {
    name: String,
    live_families: i64,
    last_issued_at: String,
    last_used_at: String,
    uploads: i64,
}

/// A token family row.
pub struct FamilyRow {
    id: String,
    label: String,
    scopes: String,
    created_at: String,
    last_used_at: String,
    expires_at: String,
    revoked_at: String,
}

#[derive(Template)]
#[template(path = "admin/client.html")]
struct ClientPage {
    user: String,
    csrf: String,
    nav: &'static str,
    flash: String,
    client: ClientView,
    sites: Vec<SiteRow>,
    families: Vec<FamilyRow>,
    form: ClientForm,
    mint_label: String,
    mint_error: String,
}

/// What to show on a client page besides the stored data.
#[derive(Default)]
pub struct ClientPageExtras {
    /// A notice.
    pub flash: String,
    /// The settings form with errors, after a failed edit.
    pub form: Option<ClientForm>,
    /// The label typed into a failed mint.
    pub mint_label: String,
    /// Why the mint failed.
    pub mint_error: String,
}

/// The newest families a client's page shows.
const FAMILIES_SHOWN: u32 = 200;

/// Renders a client's page.
pub async fn client_page(
    state: &AppState,
    session: &AdminSession,
    id: &str,
    extras: ClientPageExtras,
    status: StatusCode,
) -> PageResult {
    let client = state.clients.get(id).await?;
    let labels = state.store.list_labels(&client.id, state.now()).await?;
    let families = state
        .store
        .list_families(&client.id, None, Some(FAMILIES_SHOWN))
        .await?;
    let scopes = state.store.list_scopes().await?;
    let c = Chrome::new(session, "clients");
    Ok(render(
        status,
        &ClientPage {
            user: c.user,
            csrf: c.csrf,
            nav: c.nav,
            flash: extras.flash,
            sites: labels
                .iter()
                .map(|l| SiteRow {
                    name: l.name.clone(),
                    live_families: l.live_families,
                    last_issued_at: when(l.last_issued_at),
                    last_used_at: when(l.last_used_at),
                    uploads: l.uploads,
                })
                .collect(),
            families: families
                .iter()
                .map(|f| FamilyRow {
                    id: f.id.clone(),
                    label: f.label.clone().unwrap_or_default(),
                    scopes: f.scopes.to_string(),
                    created_at: when(Some(f.created_at)),
                    last_used_at: when(f.last_used_at),
                    expires_at: when(Some(f.expires_at)),
                    revoked_at: f.revoked_at.map(|t| when(Some(t))).unwrap_or_default(),
                })
                .collect(),
            form: extras
                .form
                .unwrap_or_else(|| ClientForm::of_client(&client, &scopes)),
            client: ClientView::new(&client),
            mint_label: extras.mint_label,
            mint_error: extras.mint_error,
        },
    ))
}

/// GET `/admin/clients/{id}`.
pub async fn show(
    State(state): State<AppState>,
    session: AdminSession,
    Path(id): Path<String>,
) -> PageResult {
    client_page(
        &state,
        &session,
        &id,
        ClientPageExtras::default(),
        StatusCode::OK,
    )
    .await
}

/// POST `/admin/clients/{id}/edit`.
pub async fn edit(
    State(state): State<AppState>,
    session: AdminSession,
    Path(id): Path<String>,
    form: AdminForm,
) -> PageResult {
    let scopes = state.store.list_scopes().await?;
    let mut f = ClientForm::from_post(
        &form,
        &scopes,
        format!("/admin/clients/{id}/edit"),
        "Save settings",
    );
    let result = match spec_from(&form, &mut f) {
        Some(spec) => state.clients.update(&id, spec, &session.actor()).await,
        None => Err(ClientOpError::Field("form", String::new())),
    };
    match result {
        Ok(_) => {
            let extras = ClientPageExtras {
                flash: "Settings saved.".into(),
                ..ClientPageExtras::default()
            };
            client_page(&state, &session, &id, extras, StatusCode::OK).await
        }
        Err(e) => {
            place_error(&mut f, e)?;
            if f.errors.general.is_empty()
                && f.errors.name.is_empty()
                && f.errors.scopes.is_empty()
                && f.errors.grants.is_empty()
                && f.errors.redirect_uris.is_empty()
                && f.errors.ttl.is_empty()
            {
                f.errors.general = "Please correct the settings.".into();
            }
            let extras = ClientPageExtras {
                form: Some(f),
                ..ClientPageExtras::default()
            };
            client_page(
                &state,
                &session,
                &id,
                extras,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

/// POST `/admin/clients/{id}/status`.
pub async fn set_status(
    State(state): State<AppState>,
    session: AdminSession,
    Path(id): Path<String>,
    form: AdminForm,
) -> PageResult {
    let status = match form.get("status") {
        Some("active") => ClientStatus::Active,
        Some("disabled") => ClientStatus::Disabled,
        _ => return Ok((StatusCode::BAD_REQUEST, "unknown status").into_response()),
    };
    state
        .clients
        .set_status(&id, status, &session.actor())
        .await?;
    let extras = ClientPageExtras {
        flash: match status {
            ClientStatus::Disabled => "Client disabled; every token it held is revoked.".into(),
            ClientStatus::Active => "Client enabled.".into(),
        },
        ..ClientPageExtras::default()
    };
    client_page(&state, &session, &id, extras, StatusCode::OK).await
}

/// POST `/admin/clients/{id}/rotate-secret`.
pub async fn rotate_secret(
    State(state): State<AppState>,
    session: AdminSession,
    Path(id): Path<String>,
    form: AdminForm,
) -> PageResult {
    let keep = match form
        .get("keep_old_for")
        .map(Ttl::parse_allow_zero)
        .transpose()
    {
        Ok(k) => k,
        Err(e) => {
            let extras = ClientPageExtras {
                flash: format!("Secret not rotated: keep the old secret for: {e}"),
                ..ClientPageExtras::default()
            };
            return client_page(
                &state,
                &session,
                &id,
                extras,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let (client, secret) = state
        .clients
        .rotate_secret(&id, keep, &session.actor())
        .await?;
    let c = Chrome::new(&session, "clients");
    Ok(ok(&SecretPage {
        user: c.user,
        csrf: c.csrf,
        nav: c.nav,
        flash: c.flash,
        heading: format!("New secret for {}", client.name),
        client_id: client.id.to_string(),
        secret: secret.expose().to_owned(),
        note: match keep {
            Some(k) if k.secs() > 0 => format!("The previous secret keeps working for {k}."),
            _ => "The previous secret no longer works.".into(),
        },
    }))
}

#[derive(Template)]
#[template(path = "admin/confirm_delete.html")]
struct ConfirmDelete {
    user: String,
    csrf: String,
    nav: &'static str,
    flash: String,
    name: String,
    client_id: String,
}

/// GET `/admin/clients/{id}/delete`: the confirmation.
pub async fn confirm_delete(
    State(state): State<AppState>,
    session: AdminSession,
    Path(id): Path<String>,
) -> PageResult {
    let client = state.clients.get(&id).await?;
    let c = Chrome::new(&session, "clients");
    Ok(ok(&ConfirmDelete {
        user: c.user,
        csrf: c.csrf,
        nav: c.nav,
        flash: c.flash,
        name: client.name,
        client_id: client.id.to_string(),
    }))
}

/// POST `/admin/clients/{id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    session: AdminSession,
    Path(id): Path<String>,
    _checked: AdminForm,
) -> PageResult {
    state.clients.delete(&id, &session.actor()).await?;
    Ok(see_other("/admin/clients"))
}
