//! A registered client and the policy that governs its tokens.

use crate::duration::Ttl;
use crate::grant::GrantType;
use crate::ids::ClientId;
use crate::redirect_uri::RedirectUri;
use crate::scope::ScopeSet;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Whether a client may obtain tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientStatus {
    /// May authenticate and use its tokens.
    Active,
    /// Refused everywhere; its tokens are revoked.
    Disabled,
}

impl ClientStatus {
    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
        }
    }
    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "disabled" => Some(Self::Disabled),
            _ => None,
        }
    }
}

impl fmt::Display for ClientStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A client as stored (without its secrets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Client {
    /// Identifier.
    pub id: ClientId,
    /// Human name, shown in the admin interface.
    pub name: String,
    /// Scopes tokens of this client may carry.
    pub scopes: ScopeSet,
    /// Grants it may use.
    pub grant_types: Vec<GrantType>,
    /// Registered redirect URIs (authorization code flow).
    pub redirect_uris: Vec<RedirectUri>,
    /// Active or disabled.
    pub status: ClientStatus,
    /// Unix seconds.
    pub created_at: i64,
    /// Overrides the server's access token lifetime.
    pub access_token_ttl: Option<Ttl>,
    /// Overrides the server's refresh token lifetime.
    pub refresh_token_ttl: Option<Ttl>,
    /// Whether grants issue refresh tokens at all.
    pub issue_refresh_token: bool,
    /// How long a just-spent refresh token may be retried (0 = never).
    pub refresh_reuse_grace: Ttl,
}

impl Client {
    /// Whether this client may use `grant`.
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }
}

/// The most characters in a client name.
pub const MAX_CLIENT_NAME_CHARS: usize = 200;

/// Checks a client name: 1–200 characters, no control or format characters
/// (bidi overrides, zero-width characters); returns it trimmed, in Normalization
/// Form C (see [`crate::text`]).
pub fn check_client_name(name: &str) -> Result<String, &'static str> {
    let t = crate::text::nfc(name.trim());
    if t.is_empty() {
        Err("client name is empty")
    } else if t.chars().count() > MAX_CLIENT_NAME_CHARS {
        Err("client name is longer than 200 characters")
    } else if crate::text::has_hidden(&t) {
        Err("client name contains control, bidi or zero-width characters")
    } else {
        Ok(t)
    }
}
