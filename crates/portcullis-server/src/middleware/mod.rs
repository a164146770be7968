//! Cross-cutting request handling.

pub mod csrf;
pub mod metrics;
pub mod rate_limit;
pub mod security_headers;
