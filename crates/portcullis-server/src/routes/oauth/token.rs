//! `POST /oauth/token` (RFC 6749 §3.2): checks the grant type, authenticates the
//! client, and hands over to the grant's own module.

use crate::error::{OAuthResponseError, no_store};
use crate::extract::client_addr::ClientAddr;
use crate::extract::client_auth::authenticate_client;
use crate::extract::form::OAuthForm;
use crate::routes::oauth::grants;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use portcullis_core::{GrantType, OAuthError, OAuthErrorCode};
use portcullis_store::Actor;

/// The token endpoint.
pub async fn token(
    State(state): State<AppState>,
    ClientAddr(peer): ClientAddr,
    headers: HeaderMap,
    form: OAuthForm,
) -> Result<Response, OAuthResponseError> {
    let grant_type = form.require("grant_type")?;
    let grant: GrantType = match grant_type.parse() {
        Ok(g) => g,
        _ => {
            return Err(OAuthError::new(
                OAuthErrorCode::UnsupportedGrantType,
                format!(
                    "grant_type {} is not supported",
                    grant_type.chars().take(40).collect::<String>()
                ),
            )
            .into());
        }
    };
    let client = authenticate_client(&state, &headers, &form, peer).await?;
    if !client.auth.client.allows_grant(grant) {
        return Err(OAuthError::new(
            OAuthErrorCode::UnauthorizedClient,
            format!("this client may not use the {grant} grant"),
        )
        .into());
    }
    let actor = Actor {
        kind: "client",
        id: Some(client.auth.client.id.to_string()),
        source: Some(peer.to_string()),
    };
    let response = match grant {
        GrantType::ClientCredentials => {
            grants::client_credentials::grant(&state, &client.auth.client, &form, actor)
                .await?
                .response
        }
        GrantType::RefreshToken => {
            grants::refresh_token::grant(&state, &client.auth.client, &form, actor).await?
        }
        GrantType::AuthorizationCode => {
            grants::authorization_code::grant(&state, &client.auth.client, &form, actor).await?
        }
    };
    state.usage.count_token(state.now());
    let mut resp = Json(response).into_response();
    no_store(&mut resp);
    Ok(resp)
}
