//! Operations shared by the HTTP routes and the command line.

pub mod admin_auth;
pub mod authorize;
pub mod client_cache;
pub mod clients;
pub mod denylist;
pub mod keys;
pub mod mint;
pub mod revocation;
pub mod scopes;
pub mod throttle;
pub mod tokens;
pub mod usage;
pub mod users;
pub mod verified_cache;
