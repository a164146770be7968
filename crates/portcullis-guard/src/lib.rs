//! Make any axum/tower service a resource server for a Portcullis issuer.
//!
//! [`Guard::discover`] reads the issuer's RFC 8414 metadata and JWKS once; then
//! every request's bearer token is checked locally: size, RFC 9068 `typ`, the
//! algorithm allow-list and the key's own algorithm (never the header's alone),
//! signature, `iss`, `aud`, `exp` and `nbf` with a small leeway. An unknown `kid`
//! refetches the JWKS, at most once per interval. Optionally the issuer's RFC 7662
//! introspection endpoint is asked too (cached briefly) so revoked tokens are
//! refused before they expire.
//!
//! Errors are the Portcullis server's own RFC 6750 answers (see [`Rejection`]).
//! When the issuer must be asked and cannot be (introspection down, or an unknown
//! `kid` while the JWKS cannot be fetched) the guard fails closed with 503
//! `temporarily_unavailable`, not 401: the token may be valid, so clients should
//! retry rather than discard it.
//!
//! In axum, install the guard once with `.layer(guard.layer())`; handlers take a
//! [`Caller`], and routes that need a scope add `.route_layer(RequireScope::new(…))`.
//! This crate depends on no other Portcullis crate, only on public ones.
//!
//! ```no_run
//! use axum::{Router, routing::{get, post}};
//! use portcullis_guard::{Caller, Guard, GuardConfig, RequireScope};
//! use std::sync::Arc;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = GuardConfig::new("https://auth.example.org", "https://auth.example.org");
//! let guard = Arc::new(Guard::discover(config).await?);
//! let app: Router = Router::new()
//!     .route("/hello", get(|caller: Caller| async move { caller.client_id }))
//!     .route(
//!         "/upload",
//!         post(|| async { "stored" }).route_layer(RequireScope::new("upload-data")),
//!     )
//!     .layer(guard.layer());
//! # let _ = app; Ok(()) }
//! ```

mod claims;
mod config;
mod error;
mod extract;
mod fetch;
mod guard;
mod introspection;
mod jwks;
mod verified;

pub use claims::{Audience, Claims};
pub use config::{DEFAULT_REALM, GuardConfig, IntrospectionConfig};
pub use error::{BearerError, GuardError, Rejection};
pub use extract::{Caller, RequireScope, RequireScopeService, bearer_token};
pub use guard::{Guard, MAX_TOKEN_LEN};
pub use jsonwebtoken::Algorithm;

#[cfg(test)]
mod tests;
