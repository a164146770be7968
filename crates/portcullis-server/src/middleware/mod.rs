//! Cross-cutting request handling.

pub mod csrf;
pub mod metrics;
pub mod request_id;
pub mod security_headers;
