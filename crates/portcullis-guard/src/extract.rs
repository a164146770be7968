//! axum integration: the [`Caller`] extractor and the [`RequireScope`] layer.
//!
//! The guard is found in the request's extensions, installed once for the whole
//! router with [`crate::Guard::layer`] (an `axum::Extension<Arc<Guard>>`). We chose
//! extensions over `FromRef<S>` so that `RequireScope` is a plain tower layer that
//! works in any router, whatever its state type. A route reached without the
//! guard installed answers 500 and logs why: a wiring mistake the first test of
//! the route shows.
//!
//! A token is verified once per request: whichever of `RequireScope` and `Caller`
//! runs first stores the `Caller` in the extensions and the other reuses it.

use crate::claims::Claims;
use crate::config::DEFAULT_REALM;
use crate::error::{BearerError, Rejection};
use crate::guard::Guard;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{Request, header};
use axum::response::{IntoResponse, Response};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tower::{Layer, Service};

/// Who is calling, from a verified access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The client the token was issued to.
    pub client_id: String,
    /// The token's subject (the client id, or the end user's id).
    pub subject: String,
    /// The data access point (care home…), when the grant named one.
    pub label: Option<String>,
    /// The granted scopes.
    pub scopes: Vec<String>,
    /// When the token expires.
    pub expires_at: SystemTime,
    /// The token id.
    pub jti: String,
}

impl Caller {
    /// Whether the token carries `scope`.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    /// 403 `insufficient_scope` unless the token carries `scope`.
    pub fn require_scope(&self, scope: &str) -> Result<(), BearerError> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(BearerError::InsufficientScope(scope.to_owned()))
        }
    }
}

impl From<Claims> for Caller {
    fn from(c: Claims) -> Self {
        Self {
            scopes: c.scope_list(),
            client_id: c.client_id,
            subject: c.sub,
            label: c.label,
            // An `exp` beyond what the clock can hold is as good as never.
            expires_at: UNIX_EPOCH
                .checked_add(Duration::from_secs(c.exp))
                .unwrap_or(UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX) * 64)),
            jti: c.jti,
        }
    }
}

/// The bearer token of a request (RFC 6750 §2.1), refusing ambiguity: a second
/// Authorization header or a token also in the `access_token` query parameter is
/// `invalid_request` (§2: a client MUST NOT use more than one method).
pub fn bearer_token(parts: &Parts) -> Result<&str, BearerError> {
    let in_query = parts
        .uri
        .query()
        .is_some_and(|q| form_urlencoded::parse(q.as_bytes()).any(|(k, _)| k == "access_token"));
    let mut values = parts.headers.get_all(header::AUTHORIZATION).iter();
    let first = values.next();
    if values.next().is_some() {
        return Err(BearerError::InvalidRequest(
            "more than one Authorization header".into(),
        ));
    }
    let Some(value) = first else {
        if in_query {
            return Err(BearerError::InvalidRequest(
                "send the token in the Authorization header, not the query".into(),
            ));
        }
        return Err(BearerError::Missing);
    };
    if in_query {
        return Err(BearerError::InvalidRequest(
            "the token was sent both in the header and in the query".into(),
        ));
    }
    let value = value
        .to_str()
        .map_err(|_| BearerError::InvalidToken("malformed Authorization header".into()))?;
    let (scheme, token) = value.split_once(' ').ok_or_else(|| {
        BearerError::InvalidToken("expected Authorization: Bearer <token>".into())
    })?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(BearerError::InvalidToken(
            "expected the Bearer scheme".into(),
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(BearerError::InvalidToken("empty bearer token".into()));
    }
    Ok(token)
}

/// The request's caller: reused when already verified, else verified now.
async fn caller_of(parts: &mut Parts) -> Result<Caller, Rejection> {
    if let Some(c) = parts.extensions.get::<Caller>() {
        return Ok(c.clone());
    }
    let Some(guard) = parts.extensions.get::<Arc<Guard>>().cloned() else {
        return Err(BearerError::Internal(
            "no portcullis_guard::Guard in the request extensions: add .layer(guard.layer())"
                .into(),
        )
        .with_realm(DEFAULT_REALM));
    };
    let reject = |e: BearerError| e.with_realm(Arc::clone(guard.realm()));
    let token = bearer_token(parts).map_err(reject)?;
    let caller = Caller::from(guard.verify(token).await.map_err(reject)?);
    parts.extensions.insert(caller.clone());
    Ok(caller)
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = Rejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Rejection> {
        caller_of(parts).await
    }
}

/// A tower layer that lets a request through only when its bearer token is valid
/// and carries `scope`; otherwise 401, or 403 `insufficient_scope` with
/// `scope="<needed>"` (RFC 6750 §3.1).
///
/// ```no_run
/// # use axum::{Router, routing::post};
/// # use portcullis_guard::{Guard, RequireScope};
/// # fn app(guard: std::sync::Arc<Guard>) -> Router {
/// Router::new()
///     .route("/upload", post(|| async { "ok" }).route_layer(RequireScope::new("upload-data")))
///     .layer(guard.layer())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct RequireScope {
    scope: Arc<str>,
}

impl RequireScope {
    /// Requires `scope`.
    pub fn new(scope: impl Into<Arc<str>>) -> Self {
        Self {
            scope: scope.into(),
        }
    }
}

impl<S> Layer<S> for RequireScope {
    type Service = RequireScopeService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequireScopeService {
            inner,
            scope: Arc::clone(&self.scope),
        }
    }
}

/// The service [`RequireScope`] wraps around a route.
#[derive(Debug, Clone)]
pub struct RequireScopeService<S> {
    inner: S,
    scope: Arc<str>,
}

impl<S, B> Service<Request<B>> for RequireScopeService<S>
where
    S: Service<Request<B>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        // The clone that was polled ready serves this request (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let scope = Arc::clone(&self.scope);
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let caller = match caller_of(&mut parts).await {
                Ok(c) => c,
                Err(rejection) => return Ok(rejection.into_response()),
            };
            if !caller.has_scope(&scope) {
                let realm = parts
                    .extensions
                    .get::<Arc<Guard>>()
                    .map_or_else(|| Arc::from(DEFAULT_REALM), |g| Arc::clone(g.realm()));
                return Ok(BearerError::InsufficientScope(scope.to_string())
                    .with_realm(realm)
                    .into_response());
            }
            inner.call(Request::from_parts(parts, body)).await
        })
    }
}
