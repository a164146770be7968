//! The end user's web session (`pc_user` cookie) and the forms of their pages
//! (`/oauth/authorize`, `/account`), which are checked against CSRF by the
//! extractor itself, as the admin pages' are.
//!
//! The session cookie is `SameSite=Lax`, not `Strict`: an application sends the
//! user to `/oauth/authorize` from its own site, and a signed-in user must be
//! recognised there. Lax still withholds the cookie from other sites' POSTs, and
//! every form also carries the session's CSRF token.

use crate::error::Fault;
use crate::extract::admin_form::PageForm;
use crate::extract::admin_session::cookie;
use crate::service::users::UserSession;
use crate::state::AppState;
use axum::extract::{FromRequest, Request};
use axum::http::HeaderMap;
use axum::response::Response;

/// Name of the session cookie.
pub const COOKIE: &str = "pc_user";

/// The sign-in forms' double-submit cookie.
pub const SIGN_IN_CSRF_COOKIE: &str = "pc_user_login_csrf";

/// The session of a request, if any.
pub async fn current(headers: &HeaderMap, state: &AppState) -> Result<Option<UserSession>, Fault> {
    match cookie(headers, COOKIE) {
        Some(value) => state.users.session(value).await,
        None => Ok(None),
    }
}

/// A form of the end user's pages, checked against CSRF: its `csrf` field is the
/// session's token or, on a sign-in form, the sign-in cookie's; and it comes from
/// this origin. A refusal is 403 and nothing is read.
#[derive(Debug, Default)]
pub struct UserForm(PageForm);

impl std::ops::Deref for UserForm {
    type Target = PageForm;
    fn deref(&self) -> &PageForm {
        &self.0
    }
}

impl FromRequest<AppState> for UserForm {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let session =
            |headers: HeaderMap| async move { Ok(current(&headers, state).await?.map(|s| s.csrf)) };
        PageForm::read_checked(req, session, SIGN_IN_CSRF_COOKIE)
            .await
            .map(Self)
    }
}
