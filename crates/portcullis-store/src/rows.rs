//! What every engine reads back the same way: a client's columns as a
//! [`Client`], and the text encodings of lists.

use crate::{StoreError, StoreResult};
use portcullis_core::{
    Client, ClientId, ClientStatus, GrantType, RedirectUri, ScopeName, ScopeSet, Ttl,
};

/// A stored value that does not parse as what it should be.
pub(crate) fn unreadable(what: &str) -> StoreError {
    StoreError::Backend(format!("unreadable stored {what}"))
}

/// A count or duration as a SQL integer.
pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A list stored as a JSON array of strings (grant types, redirect URIs).
pub(crate) fn json_list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    serde_json::json!(items.collect::<Vec<_>>()).to_string()
}

/// The columns of a client row, as every engine stores them.
pub(crate) struct ClientColumns {
    pub id: String,
    pub name: String,
    pub status: String,
    pub grant_types: String,
    pub redirect_uris: String,
    pub access_token_ttl: Option<i64>,
    pub refresh_token_ttl: Option<i64>,
    pub issue_refresh_token: bool,
    pub refresh_reuse_grace: i64,
    pub created_at: i64,
    /// Space-separated scope names (`None`: none).
    pub scopes: Option<String>,
}

/// A client's settings as stored: the values bound when it is written.
pub(crate) struct ClientValues {
    pub grant_types: String,
    pub redirect_uris: String,
    pub access_token_ttl: Option<i64>,
    pub refresh_token_ttl: Option<i64>,
    pub refresh_reuse_grace: i64,
}

impl ClientValues {
    pub(crate) fn of(c: &Client) -> Self {
        Self {
            grant_types: json_list(c.grant_types.iter().map(|g| g.as_str())),
            redirect_uris: json_list(c.redirect_uris.iter().map(|u| u.as_str())),
            access_token_ttl: c.access_token_ttl.map(|t| to_i64(t.secs())),
            refresh_token_ttl: c.refresh_token_ttl.map(|t| to_i64(t.secs())),
            refresh_reuse_grace: to_i64(c.refresh_reuse_grace.secs()),
        }
    }
}

impl ClientColumns {
    /// The client these columns describe; a value that does not parse fails it.
    pub(crate) fn into_client(self) -> StoreResult<Client> {
        let ttl = |v: Option<i64>| {
            v.and_then(|s| u64::try_from(s).ok())
                .and_then(Ttl::from_secs)
        };
        let scopes: ScopeSet = self
            .scopes
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(ScopeName::parse)
            .collect::<Result<_, _>>()
            .map_err(|_| unreadable("scope"))?;
        let grant_types: Vec<String> =
            serde_json::from_str(&self.grant_types).map_err(|_| unreadable("grant types"))?;
        let grant_types = grant_types
            .iter()
            .map(|g| g.parse::<GrantType>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| unreadable("grant type"))?;
        let redirect_uris: Vec<String> =
            serde_json::from_str(&self.redirect_uris).map_err(|_| unreadable("redirect URIs"))?;
        let redirect_uris = redirect_uris
            .iter()
            .map(|u| RedirectUri::parse(u))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| unreadable("redirect URI"))?;
        Ok(Client {
            id: ClientId::parse(&self.id).map_err(|_| unreadable("client id"))?,
            name: self.name,
            scopes,
            grant_types,
            redirect_uris,
            status: ClientStatus::parse(&self.status).ok_or_else(|| unreadable("status"))?,
            created_at: self.created_at,
            access_token_ttl: ttl(self.access_token_ttl),
            refresh_token_ttl: ttl(self.refresh_token_ttl),
            issue_refresh_token: self.issue_refresh_token,
            refresh_reuse_grace: u64::try_from(self.refresh_reuse_grace)
                .ok()
                .and_then(Ttl::from_secs_allow_zero)
                .ok_or_else(|| unreadable("grace"))?,
        })
    }
}
