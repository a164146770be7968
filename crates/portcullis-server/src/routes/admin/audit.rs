//! The audit log: filter by client, label, kind and time; paginated by id.

use super::page::{Chrome, PageResult, ok, when};
use crate::extract::admin_session::AdminSession;
use crate::state::AppState;
use askama::Template;
use axum::extract::{Query, State};
use portcullis_core::AuditKind;
use portcullis_store::AuditFilter;
use serde::Deserialize;

const PAGE: i64 = 50;

/// Query parameters.
#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    #[serde(default)]
    client: String,
    #[serde(default)]
    label: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    before: Option<i64>,
}

struct Row {
    at: String,
    kind: String,
    actor: String,
    target: String,
    client: String,
    label: String,
    source: String,
}

#[derive(Template)]
#[template(path = "admin/audit.html")]
struct AuditPage {
    user: String,
    csrf: String,
    nav: &'static str,
    flash: String,
    events: Vec<Row>,
    kinds: Vec<String>,
    periods: Vec<(String, String)>,
    f_client: String,
    f_label: String,
    f_kind: String,
    f_since: String,
    next_page: String,
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// GET `/admin/audit`.
pub async fn list(
    State(state): State<AppState>,
    session: AdminSession,
    Query(f): Query<Filters>,
) -> PageResult {
    let now = state.now();
    let since_secs = match f.since.as_str() {
        "1h" => Some(3600),
        "1d" => Some(86_400),
        "7d" => Some(7 * 86_400),
        "30d" => Some(30 * 86_400),
        _ => None,
    };
    let some = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
    // A kind that is not one (a hand-edited URL) matches no event.
    let kind = some(&f.kind).map(|k| k.parse::<AuditKind>());
    let events = match kind {
        Some(Err(_)) => Vec::new(),
        Some(Ok(_)) | None => {
            state
                .store
                .list_audit(&AuditFilter {
                    client_id: some(&f.client),
                    label: some(&f.label),
                    kind: kind.and_then(Result::ok),
                    since: since_secs.map(|s| now - s),
                    before_id: f.before,
                    limit: PAGE,
                })
                .await?
        }
    };
    let next_page = if events.len() as i64 == PAGE {
        events.last().map_or(String::new(), |last| {
            format!(
                "/admin/audit?client={}&label={}&kind={}&since={}&before={}",
                enc(&f.client),
                enc(&f.label),
                enc(&f.kind),
                enc(&f.since),
                last.id
            )
        })
    } else {
        String::new()
    };
    let c = Chrome::new(&session, "audit");
    Ok(ok(&AuditPage {
        user: c.user,
        csrf: c.csrf,
        nav: c.nav,
        flash: c.flash,
        events: events
            .iter()
            .map(|e| Row {
                at: when(Some(e.at)),
                kind: e.kind.clone(),
                actor: match &e.actor_id {
                    Some(id) => format!("{} {id}", e.actor_kind),
                    None => e.actor_kind.clone(),
                },
                target: e.target.clone().unwrap_or_default(),
                client: e.client_id.clone().unwrap_or_default(),
                label: e.label.clone().unwrap_or_default(),
                source: e.source.clone().unwrap_or_default(),
            })
            .collect(),
        kinds: AuditKind::ALL
            .iter()
            .map(|k| k.as_str().to_owned())
            .collect(),
        periods: [
            ("", "any time"),
            ("1h", "last hour"),
            ("1d", "last day"),
            ("7d", "last 7 days"),
            ("30d", "last 30 days"),
        ]
        .iter()
        .map(|(v, t)| ((*v).to_owned(), (*t).to_owned()))
        .collect(),
        f_client: f.client,
        f_label: f.label,
        f_kind: f.kind,
        f_since: f.since,
        next_page,
    }))
}
