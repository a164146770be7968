//! What a guard is told: which issuer to trust, which audience it is, and how
//! strictly and how often to check. Plain data with defaults and `with_*` setters;
//! nothing here does I/O.

use jsonwebtoken::{Algorithm, AlgorithmFamily};
use std::fmt;
use std::time::Duration;

/// The realm of the `WWW-Authenticate` challenges unless configured otherwise
/// (the same as the Portcullis server's own resource API).
pub const DEFAULT_REALM: &str = "portcullis";

/// How a [`crate::Guard`] validates bearer tokens.
///
/// ```
/// use portcullis_guard::{GuardConfig, IntrospectionConfig};
/// use std::time::Duration;
///
/// let config = GuardConfig::new("https://auth.example.org", "https://api.example.org")
///     .with_leeway(Duration::from_secs(10))
///     .with_introspection(IntrospectionConfig::new("pc_guard", "pcs_secret"));
/// assert_eq!(config.realm, "portcullis");
/// ```
#[derive(Debug, Clone)]
pub struct GuardConfig {
    /// The issuer identifier, compared byte for byte with the metadata's `issuer`
    /// and every token's `iss` (RFC 8414 §3.3, RFC 9068 §4).
    pub issuer: String,
    /// This resource server's identifier: every token's `aud` must contain it.
    pub audience: String,
    /// Clock skew tolerated on `exp` and `nbf` (whole seconds; default 30 s).
    pub leeway: Duration,
    /// Algorithms accepted (default RS256, ES256, EdDSA). HMAC algorithms are
    /// always dropped: a JWKS publishes public keys, and an HS256 "signature"
    /// made with a public key is the classic key-confusion forgery (RFC 8725 §2.1).
    pub algorithms: Vec<Algorithm>,
    /// Ask the introspection endpoint too, so that revoked tokens are refused
    /// before they expire (RFC 7662). `None`: signature and claims only.
    pub introspection: Option<IntrospectionConfig>,
    /// Unknown `kid`s refetch the JWKS at most once per this interval (default 10 s),
    /// so a flood of forged key ids cannot hammer the issuer.
    pub min_jwks_refetch_interval: Duration,
    /// A key set older than this is refreshed in the background (default 5 min), so a
    /// key the issuer withdrew stops being trusted even if no unknown `kid` shows up.
    pub jwks_max_age: Duration,
    /// The `realm` of `WWW-Authenticate` challenges (default `portcullis`).
    pub realm: String,
    /// Time limit of each request to the issuer (default 10 s).
    pub http_timeout: Duration,
    /// How many verified tokens are remembered (by SHA-256) so that the same token
    /// is not signature-checked again until it expires or the key set changes
    /// (default 10 000; 0 turns the cache off).
    pub verified_cache_capacity: usize,
}

impl GuardConfig {
    /// A configuration with the defaults for everything but issuer and audience.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: audience.into(),
            leeway: Duration::from_secs(30),
            algorithms: vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
            introspection: None,
            min_jwks_refetch_interval: Duration::from_secs(10),
            jwks_max_age: Duration::from_secs(300),
            realm: DEFAULT_REALM.to_owned(),
            http_timeout: Duration::from_secs(10),
            verified_cache_capacity: 10_000,
        }
    }

    /// Sets the clock skew tolerated on `exp` and `nbf`.
    #[must_use]
    pub fn with_leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Sets the algorithm allow-list (HMAC algorithms are ignored).
    #[must_use]
    pub fn with_algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// Turns introspection on.
    #[must_use]
    pub fn with_introspection(mut self, introspection: IntrospectionConfig) -> Self {
        self.introspection = Some(introspection);
        self
    }

    /// Sets the shortest interval between two JWKS refetches caused by unknown `kid`s.
    #[must_use]
    pub fn with_min_jwks_refetch_interval(mut self, interval: Duration) -> Self {
        self.min_jwks_refetch_interval = interval;
        self
    }

    /// Sets the age after which the key set is refreshed in the background.
    #[must_use]
    pub fn with_jwks_max_age(mut self, max_age: Duration) -> Self {
        self.jwks_max_age = max_age;
        self
    }

    /// Sets the `realm` of `WWW-Authenticate` challenges.
    #[must_use]
    pub fn with_realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = realm.into();
        self
    }

    /// Sets the time limit of each request to the issuer.
    #[must_use]
    pub fn with_http_timeout(mut self, timeout: Duration) -> Self {
        self.http_timeout = timeout;
        self
    }

    /// Sets how many verified tokens are remembered (0: none).
    #[must_use]
    pub fn with_verified_cache_capacity(mut self, capacity: usize) -> Self {
        self.verified_cache_capacity = capacity;
        self
    }

    /// The allow-list as used: without HMAC algorithms and without duplicates.
    pub(crate) fn asymmetric_algorithms(&self) -> Vec<Algorithm> {
        let mut out: Vec<Algorithm> = Vec::new();
        for alg in &self.algorithms {
            if alg.family() != AlgorithmFamily::Hmac && !out.contains(alg) {
                out.push(*alg);
            }
        }
        out
    }
}

/// Client credentials and cache lifetime for RFC 7662 introspection.
///
/// The guard authenticates as a Portcullis client; to introspect other clients'
/// tokens that client needs the `introspect` scope.
#[derive(Clone)]
pub struct IntrospectionConfig {
    /// The guard's own client id.
    pub client_id: String,
    /// Its secret (redacted in `Debug`).
    pub client_secret: String,
    /// How long an answer is reused for the same token (default 10 s; never past the
    /// token's `exp`). A revocation reaches this guard within this time.
    pub cache_ttl: Duration,
    /// At most this many answers are cached (default 10 000).
    pub cache_capacity: usize,
}

impl IntrospectionConfig {
    /// Credentials with the default cache settings.
    pub fn new(client_id: impl Into<String>, client_secret: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            cache_ttl: Duration::from_secs(10),
            cache_capacity: 10_000,
        }
    }

    /// Sets how long an answer is reused.
    #[must_use]
    pub fn with_cache_ttl(mut self, ttl: Duration) -> Self {
        self.cache_ttl = ttl;
        self
    }

    /// Sets how many answers are kept at most.
    #[must_use]
    pub fn with_cache_capacity(mut self, capacity: usize) -> Self {
        self.cache_capacity = capacity;
        self
    }
}

impl fmt::Debug for IntrospectionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntrospectionConfig")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("cache_ttl", &self.cache_ttl)
            .field("cache_capacity", &self.cache_capacity)
            .finish()
    }
}
