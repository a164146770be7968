//! The Portcullis HTTP server: OAuth 2.0 endpoints, discovery, and the co-located
//! resource API, on axum.
//!
//! Layout: `routes/` holds one file per endpoint and one router per module, merged
//! in [`routes::router`]; `extract/` turns requests into typed, authenticated inputs;
//! `service/` holds the operations the HTTP routes and the CLI share (issuing tokens,
//! managing clients), so no rule lives in two places.

pub mod bootstrap;
pub mod config;
pub mod error;
pub mod extract;
pub mod keyring;
pub mod metrics;
pub mod middleware;
pub mod routes;
pub mod server;
pub mod service;
pub mod state;
pub mod tls;
pub mod views;

pub use config::Settings;
pub use server::{bind, serve};
pub use state::AppState;
