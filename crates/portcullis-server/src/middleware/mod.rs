//! Cross-cutting request handling.

pub mod rate_limit;
pub mod security_headers;
