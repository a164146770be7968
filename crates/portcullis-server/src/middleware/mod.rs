//! Layers: cross-cutting request handling wrapped around every route.

pub mod metrics;
pub mod request_id;
pub mod security_headers;
