//! Request extractors: typed, checked inputs for handlers.

pub mod admin_auth;
pub mod admin_session;
pub mod bearer;
pub mod client_addr;
pub mod client_auth;
pub mod form;
