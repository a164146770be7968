//! Client authentication at `/oauth/*` (RFC 6749 §2.3.1): `client_secret_basic`
//! (HTTP Basic with the form-urlencoded id and secret) or `client_secret_post`
//! (`client_id` and `client_secret` in the body). Both at once is
//! `invalid_request`; neither is `invalid_client` with a Basic challenge (RFC 6749
//! §5.2). Failures are throttled per source, never per client.

use crate::error::OAuthResponseError;
use crate::extract::form::OAuthForm;
use crate::service::clients::Authenticated;
use crate::service::throttle::ClientFailure;
use crate::state::AppState;
use axum::http::{HeaderMap, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use portcullis_core::{ClientStatus, OAuthError, OAuthErrorCode};
use portcullis_store::ClientAuth;
use std::net::IpAddr;
use std::sync::Arc;

/// An authenticated, active client.
#[derive(Debug, Clone)]
pub struct AuthenticatedClient {
    /// The client and its secrets.
    pub auth: Arc<ClientAuth>,
    /// Whether it authenticated with HTTP Basic.
    pub basic: bool,
}

struct Credentials {
    id: String,
    secret: String,
    basic: bool,
}

fn invalid_client(basic: bool) -> OAuthResponseError {
    OAuthResponseError::Protocol {
        error: OAuthError::new(
            OAuthErrorCode::InvalidClient,
            "client authentication failed",
        ),
        basic_tried: basic,
    }
}

fn credentials(headers: &HeaderMap, form: &OAuthForm) -> Result<Credentials, OAuthResponseError> {
    let mut auth_headers = headers.get_all(header::AUTHORIZATION).iter();
    let first = auth_headers.next();
    if auth_headers.next().is_some() {
        return Err(OAuthError::invalid_request("more than one Authorization header").into());
    }
    let basic = first
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, rest)| rest.trim());
    let in_body = form.get("client_secret").is_some();
    match (basic, in_body) {
        (Some(_), true) => Err(OAuthError::invalid_request(
            "use one client authentication method, not both Basic and client_secret",
        )
        .into()),
        // RFC 6749 §5.2: no client authentication is invalid_client, 401, with a
        // Basic challenge (the method this server asks for).
        (None, false) if form.get("client_id").is_none() => Err(OAuthResponseError::Protocol {
            error: OAuthError::new(
                OAuthErrorCode::InvalidClient,
                "client authentication is required (HTTP Basic, or client_id and client_secret)",
            ),
            basic_tried: true,
        }),
        // A client_id alone is the `none` method, which confidential clients may not
        // use: no authentication either.
        (None, false) => Err(invalid_client(true)),
        (Some(b64), false) => {
            let decoded = STANDARD
                .decode(b64)
                .ok()
                .and_then(|raw| String::from_utf8(raw).ok())
                .ok_or_else(|| invalid_client(true))?;
            let (id, secret) = decoded
                .split_once(':')
                .ok_or_else(|| invalid_client(true))?;
            // RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
            let unescape = |s: &str| -> String {
                form_urlencoded::parse(format!("x={s}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default()
            };
            if let Some(body_id) = form.get("client_id")
                && body_id != unescape(id)
            {
                return Err(OAuthError::invalid_request(
                    "client_id in the body differs from the Basic credentials",
                )
                .into());
            }
            Ok(Credentials {
                id: unescape(id),
                secret: unescape(secret),
                basic: true,
            })
        }
        (None, true) => Ok(Credentials {
            id: form
                .get("client_id")
                .ok_or_else(|| OAuthError::invalid_request("client_secret without client_id"))?
                .to_owned(),
            secret: form.get("client_secret").unwrap_or_default().to_owned(),
            basic: false,
        }),
    }
}

/// Authenticates the calling client, or answers the protocol's error.
///
/// The secret is checked first, always: a correct one passes whatever else is
/// failing from this source or for this client id. Only failures are throttled,
/// per source (see [`crate::service::throttle`]).
pub async fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    form: &OAuthForm,
    peer: IpAddr,
) -> Result<AuthenticatedClient, OAuthResponseError> {
    let creds = credentials(headers, form)?;
    let now = state.now();
    // Not for a source already over its limit, which the cache answers alone.
    let may_look_again = !state.client_throttle.is_throttled(peer);
    let found = state
        .clients
        .authenticate(&creds.id, &creds.secret, may_look_again)
        .await?;
    match found {
        Authenticated::Client(auth) => {
            if auth.client.status != ClientStatus::Active {
                return Err(OAuthResponseError::Protocol {
                    error: OAuthError::new(OAuthErrorCode::InvalidClient, "the client is disabled"),
                    basic_tried: creds.basic,
                });
            }
            Ok(AuthenticatedClient {
                auth,
                basic: creds.basic,
            })
        }
        _ => {
            state.usage.count_failed_auth(now);
            crate::metrics::client_auth_failed();
            match state.client_throttle.failed(peer) {
                ClientFailure::Throttled { retry_after } => {
                    Err(OAuthResponseError::TooManyAttempts { retry_after })
                }
                ClientFailure::Refused { burst } => {
                    if burst {
                        audit_burst(state, &creds.id, peer, now).await;
                    }
                    Err(invalid_client(creds.basic))
                }
            }
        }
    }
}

/// A source reached its failure limit: one audit event and one log line per burst.
async fn audit_burst(state: &AppState, client_id: &str, peer: IpAddr, now: i64) {
    let client_id: String = client_id.chars().take(64).collect();
    let _ = state
        .store
        .append_audit(&portcullis_store::NewAuditEvent {
            at: now,
            kind: portcullis_core::AuditKind::ClientAuthFailedBurst,
            actor: portcullis_store::Actor {
                kind: "client",
                id: Some(client_id.clone()),
                source: Some(peer.to_string()),
            },
            target: None,
            client_id: None,
            label: None,
            detail: None,
        })
        .await;
    tracing::warn!(%peer, %client_id, "failed client authentication burst; throttling this source");
}
