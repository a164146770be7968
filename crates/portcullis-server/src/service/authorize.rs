//! The authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3, RFC 9700): which
//! refusals are shown on a page and which go back to the application.
//!
//! The client and its redirect URI are checked first. While either cannot be
//! trusted (unknown, malformed, repeated, not registered exactly) nothing is sent
//! anywhere: the user sees an error page (§4.1.2.1), so the server is never an
//! open redirector. Every later refusal is an error redirect to that URI with
//! `state` and `iss` (RFC 9207). PKCE with `S256` is required of every client.
//!
//! An end user never grants the reserved scopes (`admin`, `introspect`): a
//! request for one is `invalid_scope`. Without `scope`, the request asks for the
//! client's scopes minus the reserved ones.

use crate::error::Fault;
use portcullis_core::pkce::CodeChallenge;
use portcullis_core::{Client, ClientId, ClientStatus, GrantType, ScopeSet};
use portcullis_crypto::{PlainToken, TokenHasher, TokenKind, ordered_id_now};
use portcullis_store::{ClientStore, NewCode, UserStore};

/// How long a code may wait to be exchanged (RFC 6749 §4.1.2: short; 60 s).
pub const CODE_TTL_SECS: i64 = 60;

/// The longest `state` accepted (it comes back in a URL).
pub const MAX_STATE_LEN: usize = 1024;

/// A checked authorization request.
#[derive(Debug, Clone)]
pub struct AuthorizeRequest {
    /// The client asking.
    pub client: Client,
    /// Where the answer goes (registered, compared exactly).
    pub redirect_uri: String,
    /// Whether the request named it (then the token request must repeat it).
    pub redirect_uri_given: bool,
    /// Scopes asked for (within the client's, none reserved).
    pub scopes: ScopeSet,
    /// Returned unchanged.
    pub state: Option<String>,
    /// PKCE.
    pub challenge: CodeChallenge,
}

/// Why an authorization request was refused.
#[derive(Debug, Clone)]
pub enum AuthorizeRefusal {
    /// The client or the redirect URI cannot be trusted: say so on a page.
    Page(String),
    /// Tell the application, at its redirect URI.
    Redirect(ErrorRedirect),
    /// The database could not say (503, or an opaque 500).
    Fault(Fault),
}

/// An error answer for the application (RFC 6749 §4.1.2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRedirect {
    /// The registered redirect URI.
    pub redirect_uri: String,
    /// The error code.
    pub error: &'static str,
    /// What was wrong.
    pub description: String,
    /// The request's `state`.
    pub state: Option<String>,
}

impl ErrorRedirect {
    /// The URL to send the browser to, with `iss` (RFC 9207).
    pub fn url(&self, issuer: &str) -> String {
        let mut params = vec![
            ("error", self.error),
            ("error_description", self.description.as_str()),
        ];
        if let Some(s) = &self.state {
            params.push(("state", s));
        }
        params.push(("iss", issuer));
        with_query(&self.redirect_uri, &params)
    }
}

/// `uri` with `params` appended to its query (RFC 6749 §3.1.2: a registered URI
/// may carry a query of its own, which is kept).
pub fn with_query(uri: &str, params: &[(&str, &str)]) -> String {
    let mut out = uri.to_owned();
    out.push(if uri.contains('?') { '&' } else { '?' });
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    out.push_str(&ser.finish());
    out
}

/// The URL that hands `code` to the application.
pub fn code_url(req: &AuthorizeRequest, code: &str, issuer: &str) -> String {
    let mut params = vec![("code", code)];
    if let Some(s) = &req.state {
        params.push(("state", s));
    }
    params.push(("iss", issuer));
    with_query(&req.redirect_uri, &params)
}

/// The query's parameters, decoded; a parameter given twice is remembered so the
/// caller can refuse it (RFC 6749 §3.1) in the right place.
struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    fn parse(query: &str) -> Result<Self, AuthorizeRefusal> {
        let pairs = crate::extract::form::pairs(query.as_bytes())
            .ok_or_else(|| AuthorizeRefusal::Page("The request is not valid UTF-8.".into()))?;
        Ok(Self { pairs })
    }
    /// The single value of `name` (empty counts as absent); `Err` if repeated.
    fn one(&self, name: &str) -> Result<Option<&str>, ()> {
        let mut found = self.pairs.iter().filter(|(k, _)| k == name);
        let first = found.next();
        if found.next().is_some() {
            return Err(());
        }
        Ok(first.map(|(_, v)| v.as_str()).filter(|v| !v.is_empty()))
    }
    fn repeated(&self) -> Option<&str> {
        self.pairs.iter().enumerate().find_map(|(i, (k, _))| {
            self.pairs[..i]
                .iter()
                .any(|(prev, _)| prev == k)
                .then_some(k.as_str())
        })
    }
}

/// Checks an authorization request's query against the registered clients.
pub async fn check(
    store: &dyn ClientStore,
    query: &str,
) -> Result<AuthorizeRequest, AuthorizeRefusal> {
    let page = |m: &str| AuthorizeRefusal::Page(m.to_owned());
    let p = Params::parse(query)?;
    let client_id = p
        .one("client_id")
        .map_err(|()| page("The request names client_id more than once."))?
        .ok_or_else(|| page("The request does not name the application (client_id)."))?;
    let unknown = || page("The application (client_id) is not known to this server.");
    let id = ClientId::parse(client_id).map_err(|_| unknown())?;
    let client = store
        .get_client(&id)
        .await
        .map_err(|e| AuthorizeRefusal::Fault(e.into()))?
        .filter(|c| c.status == ClientStatus::Active)
        .ok_or_else(unknown)?;
    let given = p
        .one("redirect_uri")
        .map_err(|()| page("The request names redirect_uri more than once."))?;
    let redirect_uri = match given {
        Some(uri) => client
            .redirect_uris
            .iter()
            .find(|r| r.as_str() == uri)
            .ok_or_else(|| page("The redirect_uri is not one registered for this application."))?,
        None => match client.redirect_uris.as_slice() {
            [only] => only,
            [] => return Err(page("This application has no registered redirect_uri.")),
            _ => {
                return Err(page(
                    "This application has several redirect URIs: the request must name one \
                     (redirect_uri).",
                ));
            }
        },
    }
    .as_str()
    .to_owned();

    // From here on the application is told, at its own address.
    let state = p.one("state").ok().flatten().map(str::to_owned);
    let refuse = |error: &'static str, description: String| {
        AuthorizeRefusal::Redirect(ErrorRedirect {
            redirect_uri: redirect_uri.clone(),
            error,
            description,
            state: state.clone(),
        })
    };
    if let Some(name) = p.repeated() {
        let name: String = name.chars().take(40).collect();
        return Err(refuse(
            "invalid_request",
            format!("parameter {name} is repeated"),
        ));
    }
    if state.as_ref().is_some_and(|s| s.len() > MAX_STATE_LEN) {
        return Err(refuse(
            "invalid_request",
            format!("state is longer than {MAX_STATE_LEN} bytes"),
        ));
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(refuse(
            "unauthorized_client",
            "this client may not use the authorization code grant".into(),
        ));
    }
    match p.one("response_type").ok().flatten() {
        None => {
            return Err(refuse(
                "invalid_request",
                "missing parameter response_type".into(),
            ));
        }
        Some("code") => {}
        Some(_) => {
            return Err(refuse(
                "unsupported_response_type",
                "only response_type=code is supported".into(),
            ));
        }
    }
    let challenge = CodeChallenge::parse(
        p.one("code_challenge").ok().flatten(),
        p.one("code_challenge_method").ok().flatten(),
    )
    .map_err(|e| refuse("invalid_request", e.to_string()))?;
    let scopes = match p.one("scope").ok().flatten() {
        Some(text) => {
            let asked =
                ScopeSet::parse(text).map_err(|e| refuse("invalid_scope", e.to_string()))?;
            if let Some(s) = asked.iter().find(|s| s.is_reserved()) {
                return Err(refuse(
                    "invalid_scope",
                    format!("scope {s} cannot be granted by a user"),
                ));
            }
            if let Some(s) = asked.iter().find(|s| !client.scopes.contains(s)) {
                return Err(refuse(
                    "invalid_scope",
                    format!("scope {s} is not allowed for this client"),
                ));
            }
            asked
        }
        None => client
            .scopes
            .iter()
            .filter(|s| !s.is_reserved())
            .cloned()
            .collect(),
    };
    if scopes.is_empty() {
        return Err(refuse(
            "invalid_scope",
            "this client has no scope a user can grant".into(),
        ));
    }
    Ok(AuthorizeRequest {
        client,
        redirect_uri,
        redirect_uri_given: given.is_some(),
        scopes,
        state,
        challenge,
    })
}

/// Issues a code for `req` on behalf of `user_id`: 256 random bits, stored only as
/// their HMAC, valid [`CODE_TTL_SECS`].
pub async fn create_code(
    store: &dyn UserStore,
    hasher: &TokenHasher,
    now: i64,
    req: &AuthorizeRequest,
    user_id: &str,
) -> Result<PlainToken, Fault> {
    let code = PlainToken::generate(TokenKind::AuthorizationCode)?;
    store
        .create_code(&NewCode {
            hash: hasher.hash(TokenKind::AuthorizationCode, code.expose()).0,
            client_id: req.client.id.to_string(),
            user_id: user_id.to_owned(),
            redirect_uri: req.redirect_uri.clone(),
            redirect_uri_given: req.redirect_uri_given,
            scopes: req.scopes.clone(),
            code_challenge: req.challenge.as_str().to_owned(),
            family_id: Some(ordered_id_now("fam_")?),
            created_at: now,
            expires_at: now + CODE_TTL_SECS,
        })
        .await?;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_appended_to_a_registered_query() {
        assert_eq!(
            with_query(
                "https://app.example/cb",
                &[("code", "a b"), ("iss", "https://x")]
            ),
            "https://app.example/cb?code=a+b&iss=https%3A%2F%2Fx"
        );
        assert_eq!(
            with_query("https://app.example/cb?tenant=1", &[("code", "c")]),
            "https://app.example/cb?tenant=1&code=c"
        );
    }
}
