//! What every admin page shares: rendering, the signed-in user, and timestamps.

use crate::extract::admin_session::AdminSession;
use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// The layout's fields.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    /// Signed-in user ("" on the sign-in page).
    pub user: String,
    /// The session's CSRF token.
    pub csrf: String,
    /// Which nav item is current.
    pub nav: &'static str,
    /// A one-line notice.
    pub flash: String,
}

impl Chrome {
    /// For a signed-in page.
    pub fn new(s: &AdminSession, nav: &'static str) -> Self {
        Self {
            user: s.user.clone(),
            csrf: s.csrf.clone(),
            nav,
            flash: String::new(),
        }
    }
}

/// Renders a template with `status`; a template error becomes a logged 500.
pub fn render<T: Template>(status: StatusCode, t: &T) -> Response {
    match t.render() {
        Ok(html) => {
            let mut r = (status, Html(html)).into_response();
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "template failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
        }
    }
}

/// Renders with 200.
pub fn ok<T: Template>(t: &T) -> Response {
    render(StatusCode::OK, t)
}

/// A 303 to `to` (after a successful POST).
pub fn see_other(to: &str) -> Response {
    axum::response::Redirect::to(to).into_response()
}

/// RFC 3339 or "—".
pub fn when(t: Option<i64>) -> String {
    t.map_or_else(
        || "—".into(),
        |t| portcullis_core::time::rfc3339(t).replace('T', " "),
    )
}

/// What an admin page handler answers: the page, or the admin pages' error sink.
pub type PageResult = Result<Response, crate::error::PageError>;
