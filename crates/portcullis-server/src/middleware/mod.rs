//! Cross-cutting request handling.

pub mod csrf;
pub mod metrics;
pub mod security_headers;
