//! The authorization code grant (RFC 6749 §4.1.3 with PKCE, RFC 7636 §4.5). The
//! rules live in `service::tokens::code`.

use crate::error::OAuthResponseError;
use crate::extract::form::OAuthForm;
use crate::service::tokens::{CodeExchange, TokenResponse};
use crate::state::AppState;
use portcullis_core::Client;
use portcullis_store::Actor;

/// Exchanges a code for tokens.
pub async fn grant(
    state: &AppState,
    client: &Client,
    form: &OAuthForm,
    actor: Actor,
) -> Result<TokenResponse, OAuthResponseError> {
    let exchange = CodeExchange {
        code: form.require("code")?,
        redirect_uri: form.get("redirect_uri"),
        verifier: form.require("code_verifier")?,
    };
    Ok(state.tokens.exchange_code(client, exchange, actor).await?)
}
