//! Shared state, passed to handlers as `State<AppState>` (never a global).

use crate::service::admin_auth::AdminAuth;
use crate::service::clients::ClientService;
use crate::service::throttle::ClientThrottle;
use crate::service::tokens::TokenService;
use crate::service::usage::LabelUsage;
use crate::service::users::UserService;
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
    /// Clients, with this node's cache of them.
    pub clients: ClientService,
    /// Failed client authentication, per source.
    pub client_throttle: ClientThrottle,
    /// Admin sign-in and sessions.
    pub admin_auth: AdminAuth,
    /// End users, their sessions and their grants.
    pub users: UserService,
    /// `--trusted-proxy`: peers whose forwarded client address is believed.
    pub trusted_proxies: Vec<portcullis_core::Cidr>,
    /// Label last-use times waiting to be written.
    pub usage: std::sync::Arc<LabelUsage>,
    /// `--audit-retention`: audit events older than this are pruned.
    pub audit_retention: portcullis_core::Ttl,
    /// `--key-rotation-interval`: the current signing key is replaced this old.
    pub key_rotation_interval: portcullis_core::Ttl,
    /// Whether clients reach this server over TLS (an `https` issuer, or native
    /// TLS): cookies get `Secure` and responses carry `Strict-Transport-Security`.
    pub secure: bool,
}

impl AppState {
    /// Wraps the parts.
    pub fn new(inner: Inner) -> Self {
        Self(Arc::new(inner))
    }

    /// The server's clock.
    pub fn clock(&self) -> &dyn portcullis_core::Clock {
        self.tokens.clock.as_ref()
    }

    /// The current time, from the server's clock (seconds since the epoch).
    pub fn now(&self) -> i64 {
        self.tokens.clock.now()
    }
}

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}
