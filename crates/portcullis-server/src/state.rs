//! Shared state, passed to handlers as `State<AppState>` (never a global).

use crate::middleware::rate_limit::AuthLimiter;
use crate::service::client_cache::ClientCache;
use crate::service::tokens::TokenService;
use crate::service::usage::LabelUsage;
use portcullis_crypto::MasterKey;
use portcullis_store::DynStore;
use std::ops::Deref;
use std::sync::Arc;

/// Everything a request may need. Cloning is an `Arc` clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// The parts of [`AppState`].
pub struct Inner {
    /// Persistence.
    pub store: DynStore,
    /// Master key (decrypts signing keys when they change).
    pub master: Arc<MasterKey>,
    /// Issues and verifies tokens.
    pub tokens: TokenService,
    /// Recently read clients.
    pub clients: ClientCache,
    /// Failed client authentication throttle.
    pub limiter: AuthLimiter,
    /// Failed admin sign-in throttle (per address and per user name).
    pub login_limiter: AuthLimiter,
    /// Label last-use times waiting to be written.
    pub usage: LabelUsage,
}

impl AppState {
    /// Wraps the parts.
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
