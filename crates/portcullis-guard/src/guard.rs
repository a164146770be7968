//! [`Guard`]: discovery (RFC 8414) and the validation of one bearer token
//! (RFC 9068 §4, RFC 8725).
//!
//! Order of checks, cheapest and most hostile first: size (8 KiB, before any
//! parsing), header (`typ` `at+jwt`, no `crit`, `alg` in the allow-list, a `kid`),
//! the key named by `kid` (refetching on a miss, rate-limited), `alg` equal to the
//! key's own, then signature, `iss`, `aud`, `exp` and `nbf` with the leeway, the
//! RFC 9068 claims, and last, when configured, introspection.
//!
//! A token that passed is remembered by its SHA-256 (see `verified.rs`): the same
//! token again costs a hash and a lookup instead of an RSA verification, until it
//! expires or the key set changes. Introspection still runs on every request
//! (behind its own short cache).

use crate::claims::Claims;
use crate::config::GuardConfig;
use crate::error::{BearerError, GuardError};
use crate::fetch;
use crate::introspection::Introspector;
use crate::jwks::{JwksCache, KeyPolicy};
use crate::verified::{VerifiedCache, token_hash};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::decode_header;
use serde::Deserialize;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Longest token accepted, checked before parsing (the server's limit, SPEC §9).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// RFC 8414 §2, the fields the guard uses.
#[derive(Deserialize)]
struct Metadata {
    issuer: String,
    jwks_uri: String,
    #[serde(default)]
    introspection_endpoint: Option<String>,
}

/// A resource server's view of one Portcullis issuer: its keys, cached, and the
/// rules a bearer token must pass. Share it as `Arc<Guard>`.
pub struct Guard {
    realm: Arc<str>,
    issuer: String,
    audience: String,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds.
    leeway: u64,
    jwks: Arc<JwksCache>,
    verified: VerifiedCache,
    introspection: Option<Introspector>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("introspection", &self.introspection.is_some())
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// Reads the issuer's metadata at `{issuer}/.well-known/oauth-authorization-server`,
    /// checks that it names the configured issuer exactly, and fetches its JWKS.
    pub async fn discover(config: GuardConfig) -> Result<Self, GuardError> {
        let algorithms = config.asymmetric_algorithms();
        if algorithms.is_empty() {
            return Err(GuardError::Config(
                "the algorithm allow-list holds no asymmetric algorithm".into(),
            ));
        }
        if config.issuer.is_empty() || config.audience.is_empty() {
            return Err(GuardError::Config(
                "issuer and audience must not be empty".into(),
            ));
        }
        let http = reqwest::Client::builder()
            .timeout(config.http_timeout)
            .connect_timeout(config.http_timeout)
            // The issuer's documents are where it says they are; a redirect is an error.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(GuardError::Client)?;
        let url = format!(
            "{}/.well-known/oauth-authorization-server",
            config.issuer.trim_end_matches('/')
        );
        let metadata: Metadata = fetch::get_json(&http, &url).await?;
        // RFC 8414 §3.3: the issuer in the metadata MUST be identical to the one used.
        if metadata.issuer != config.issuer {
            return Err(GuardError::IssuerMismatch {
                expected: config.issuer,
                found: metadata.issuer,
            });
        }
        let introspection = match &config.introspection {
            None => None,
            Some(ic) => {
                let endpoint = metadata
                    .introspection_endpoint
                    .ok_or(GuardError::NoIntrospectionEndpoint)?;
                Some(Introspector::new(http.clone(), endpoint, ic))
            }
        };
        let policy = KeyPolicy { algorithms };
        let jwks = JwksCache::load(
            http,
            metadata.jwks_uri,
            policy,
            config.min_jwks_refetch_interval,
            config.jwks_max_age,
        )
        .await?;
        Ok(Self {
            realm: config.realm.into(),
            verified: VerifiedCache::new(config.verified_cache_capacity, config.leeway.as_secs()),
            issuer: config.issuer,
            audience: config.audience,
            leeway: config.leeway.as_secs(),
            jwks: Arc::new(jwks),
            introspection,
        })
    }

    /// The realm of this guard's challenges.
    pub fn realm(&self) -> &Arc<str> {
        &self.realm
    }

    /// The issuer this guard trusts.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The audience this guard is.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// An axum layer that installs this guard in every request's extensions, where
    /// [`crate::Caller`] and [`crate::RequireScope`] find it.
    pub fn layer(self: &Arc<Self>) -> axum::Extension<Arc<Self>> {
        axum::Extension(Arc::clone(self))
    }

    /// Validates a bearer token (the part after `Bearer `) and returns its claims.
    pub async fn verify(&self, token: &str) -> Result<Claims, BearerError> {
        let claims = self.verify_jwt(token).await?;
        if let Some(i) = &self.introspection {
            i.check(token, claims.exp).await?;
        }
        Ok(claims)
    }

    /// How many introspection answers are cached.
    #[cfg(test)]
    pub(crate) fn introspection_cached(&self) -> usize {
        self.introspection.as_ref().map_or(0, Introspector::cached)
    }

    async fn verify_jwt(&self, token: &str) -> Result<Claims, BearerError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(BearerError::InvalidToken(
                "the token is larger than 8 KiB".into(),
            ));
        }
        let hash = token_hash(token);
        let now = unix_now();
        if let Some(claims) = self.verified.get(&hash, self.jwks.generation(), now) {
            return Ok(claims);
        }
        let (claims, generation) = self.verify_signed(token).await?;
        self.verified.put(hash, &claims, generation, now);
        Ok(claims)
    }

    /// The full check; returns the claims and the generation of the key set that vouched.
    async fn verify_signed(&self, token: &str) -> Result<(Claims, u64), BearerError> {
        let invalid = |d: &str| BearerError::InvalidToken(d.to_owned());
        let header = decode_header(token).map_err(|_| {
            invalid("the token is not a JWS with a supported algorithm (alg none is refused)")
        })?;
        // RFC 9068 §4: the typ must be at+jwt (media types compare case-insensitively).
        let typ = header.typ.as_deref().unwrap_or_default();
        if !typ.eq_ignore_ascii_case("at+jwt") && !typ.eq_ignore_ascii_case("application/at+jwt") {
            return Err(invalid(
                "the token is not an access token (typ must be at+jwt)",
            ));
        }
        // RFC 7515 §4.1.11: we understand no extension, so any crit is fatal.
        if header.crit.is_some() {
            return Err(invalid("the token has critical header extensions"));
        }
        if !self.jwks.allows(header.alg) {
            return Err(invalid("the token's algorithm is not allowed"));
        }
        let kid = header
            .kid
            .as_deref()
            .ok_or_else(|| invalid("the token has no kid"))?;
        let key = self.jwks.key(kid).await?;
        // RFC 8725 §3.1: the key decides the algorithm, never the header alone.
        if key.alg != header.alg {
            return Err(invalid("the token's alg is not its key's algorithm"));
        }
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid("the token is malformed"));
        };
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| invalid("the token is malformed"))?;
        // The signing input is the first two parts as sent (RFC 7515 §5.2).
        let signing_input = &token.as_bytes()[..h.len() + 1 + p.len()];
        if !key.verifies(signing_input, &sig) {
            return Err(invalid("the token's signature is invalid"));
        }
        let payload = URL_SAFE_NO_PAD
            .decode(p)
            .map_err(|_| invalid("the token is malformed"))?;
        // RFC 9068 §2.2's required claims are not optional in `Claims`, so a
        // token without one of them fails here.
        let claims: Claims = serde_json::from_slice(&payload)
            .map_err(|_| invalid("the token's claims are malformed or incomplete"))?;
        let now = unix_now();
        if claims.exp < now.saturating_sub(self.leeway) {
            return Err(invalid("the token has expired"));
        }
        if claims
            .nbf
            .is_some_and(|nbf| nbf > now.saturating_add(self.leeway))
        {
            return Err(invalid("the token is not valid yet (nbf)"));
        }
        if claims.iss != self.issuer {
            return Err(invalid("the token is from another issuer"));
        }
        if !claims.aud.contains(&self.audience) {
            return Err(invalid("the token is not meant for this audience"));
        }
        Ok((claims, key.generation))
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
