//! Operations shared by the HTTP routes and the command line.

pub mod admin_auth;
pub mod client_cache;
pub mod clients;
pub mod denylist;
pub mod revocation;
pub mod tokens;
pub mod usage;
