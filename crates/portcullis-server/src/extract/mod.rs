//! Request extractors: typed, checked inputs for handlers.

pub mod admin_auth;
pub mod admin_form;
pub mod admin_session;
pub mod bearer;
pub mod client_addr;
pub mod client_auth;
pub mod csrf;
pub mod form;
pub mod user_session;
