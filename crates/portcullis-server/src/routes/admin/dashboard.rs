//! The dashboard: counts and 30-day charts.

use super::charts::{bars, series, spark};
use super::page::{Chrome, PageResult, ok};
use crate::extract::admin_session::AdminSession;
use crate::state::AppState;
use askama::Template;
use axum::extract::State;

const DAYS: i64 = 30;

struct UploadRow {
    label: String,
    chart: String,
    total: i64,
}

#[derive(Template)]
#[template(path = "admin/dashboard.html")]
struct Dashboard {
    user: String,
    csrf: String,
    nav: &'static str,
    flash: String,
    clients: i64,
    /// The last count, or "…" while the first is made.
    live_sites: String,
    tokens_today: i64,
    uploads_today: i64,
    tokens_chart: String,
    failed_chart: String,
    upload_rows: Vec<UploadRow>,
}

/// GET `/admin`.
pub async fn dashboard(State(state): State<AppState>, session: AdminSession) -> PageResult {
    let now = state.now();
    let today = portcullis_core::time::day_start(now);
    let stats = state.store.dashboard(now, DAYS).await?;
    let live_sites = state
        .usage
        .live_sites(&state.store, now)
        .map_or_else(|| "…".to_owned(), |n| n.to_string());
    let mut labels: Vec<String> = stats
        .uploads_per_site_day
        .iter()
        .map(|(l, _, _)| l.clone())
        .collect();
    labels.dedup();
    let mut upload_rows: Vec<UploadRow> = labels
        .into_iter()
        .map(|label| {
            let pts: Vec<(i64, i64)> = stats
                .uploads_per_site_day
                .iter()
                .filter(|(l, _, _)| *l == label)
                .map(|(_, d, n)| (*d, *n))
                .collect();
            UploadRow {
                total: pts.iter().map(|(_, n)| n).sum(),
                chart: spark(&series(&pts, today, DAYS)),
                label: if label.is_empty() {
                    "(no label)".into()
                } else {
                    label
                },
            }
        })
        .collect();
    upload_rows.sort_by(|a, b| b.total.cmp(&a.total).then(a.label.cmp(&b.label)));
    upload_rows.truncate(20);
    let c = Chrome::new(&session, "dashboard");
    Ok(ok(&Dashboard {
        user: c.user,
        csrf: c.csrf,
        nav: c.nav,
        flash: c.flash,
        clients: stats.clients,
        live_sites,
        tokens_today: stats.tokens_today,
        uploads_today: stats.uploads_today,
        tokens_chart: bars(
            &series(&stats.tokens_per_day, today, DAYS),
            "",
            "Tokens issued per day",
        ),
        failed_chart: bars(
            &series(&stats.failed_auth_per_day, today, DAYS),
            "red",
            "Failed client authentications per day",
        ),
        upload_rows,
    }))
}
