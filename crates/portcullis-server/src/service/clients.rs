//! Client management: the one implementation behind `portcullis client …`, the
//! admin pages and the admin API. [`ClientService`] owns what a change to a client
//! touches (the store, this node's client cache and the revoker), so a caller
//! cannot change a client and forget the cache. Input arrives as text and leaves as
//! checked domain types or a clear message; nothing is written unless everything
//! is valid.

use crate::error::Fault;
use crate::service::client_cache::ClientCache;
use crate::service::denylist::Denylist;
use crate::service::revocation::Revoker;
use portcullis_core::client::check_client_name;
use portcullis_core::{
    AuditKind, Client, ClientId, ClientStatus, Clock, GrantType, RedirectUri, ScopeName, ScopeSet,
    Ttl,
};
use portcullis_crypto::{HashedToken, PlainToken, TokenHasher, TokenKind, random_id};
use portcullis_store::{Actor, ClientAuth, ClientStore, DynStore, NewAuditEvent, StoreError};
use std::sync::Arc;

/// Why a client operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientOpError {
    /// Bad input; the message says which and why.
    #[error("{0}")]
    Invalid(String),
    /// Bad input in a named field (`name`, `scopes`, `grants`, `redirect_uris`).
    #[error("{1}")]
    Field(&'static str, String),
    /// No such client.
    #[error("no client with id {0}")]
    NotFound(String),
    /// Storage or crypto failed.
    #[error(transparent)]
    Fault(#[from] Fault),
}

impl From<StoreError> for ClientOpError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::Conflict(why) => Self::Invalid(why),
            other => Self::Fault(other.into()),
        }
    }
}

impl From<portcullis_crypto::CryptoError> for ClientOpError {
    fn from(e: portcullis_crypto::CryptoError) -> Self {
        Self::Fault(e.into())
    }
}

/// A request to create a client, as text from a flag or a form.
#[derive(Debug, Clone, Default)]
pub struct NewClientSpec {
    /// Name.
    pub name: String,
    /// Scopes; empty: every registered scope except `admin` and `introspect`.
    pub scopes: Vec<String>,
    /// Grants; empty: `client_credentials` and `refresh_token`.
    pub grant_types: Vec<String>,
    /// Redirect URIs (needed for `authorization_code`).
    pub redirect_uris: Vec<String>,
    /// Overrides the server's access token lifetime.
    pub access_token_ttl: Option<Ttl>,
    /// Overrides the server's refresh token lifetime.
    pub refresh_token_ttl: Option<Ttl>,
    /// Issue no refresh tokens.
    pub no_refresh_token: bool,
    /// Reuse grace for refresh tokens (0 = off).
    pub refresh_reuse_grace: Option<Ttl>,
}

fn parse_id(id: &str) -> Result<ClientId, ClientOpError> {
    ClientId::parse(id).map_err(|_| ClientOpError::NotFound(id.chars().take(64).collect()))
}

/// Settings that passed every check.
struct Checked {
    name: String,
    scopes: ScopeSet,
    grant_types: Vec<GrantType>,
    redirect_uris: Vec<RedirectUri>,
}

fn field(f: &'static str) -> impl Fn(String) -> ClientOpError {
    move |m| ClientOpError::Field(f, m)
}

async fn check(store: &dyn ClientStore, spec: &NewClientSpec) -> Result<Checked, ClientOpError> {
    let name = check_client_name(&spec.name).map_err(|e| ClientOpError::Field("name", e.into()))?;
    let registered = store.list_scopes().await?;
    let scopes: ScopeSet = if spec.scopes.is_empty() {
        registered
            .iter()
            .filter_map(|s| ScopeName::parse(&s.name).ok())
            .filter(|s| !s.is_reserved())
            .collect()
    } else {
        let mut set = Vec::new();
        for s in &spec.scopes {
            let name = ScopeName::parse(s).map_err(|e| field("scopes")(e.to_string()))?;
            if !registered.iter().any(|r| r.name == name.as_str()) {
                return Err(field("scopes")(format!(
                    "unknown scope {name} (create it first with `portcullis scope create`)"
                )));
            }
            set.push(name);
        }
        set.into_iter().collect()
    };
    // A client's scopes are read back as one scope list, which holds at most
    // MAX_SCOPES_PER_REQUEST: more could be stored but never read again.
    if scopes.len() > portcullis_core::scope::MAX_SCOPES_PER_REQUEST {
        return Err(field("scopes")(format!(
            "a client may have at most {} scopes ({} {})",
            portcullis_core::scope::MAX_SCOPES_PER_REQUEST,
            scopes.len(),
            if spec.scopes.is_empty() {
                "are registered: name the client's scopes with --scope"
            } else {
                "were given"
            }
        )));
    }
    let mut grant_types: Vec<GrantType> = if spec.grant_types.is_empty() {
        if spec.no_refresh_token {
            vec![GrantType::ClientCredentials]
        } else {
            vec![GrantType::ClientCredentials, GrantType::RefreshToken]
        }
    } else {
        spec.grant_types
            .iter()
            .map(|g| g.parse::<GrantType>())
            .collect::<Result<_, _>>()
            .map_err(|e| field("grants")(e.to_string()))?
    };
    grant_types.sort();
    grant_types.dedup();
    let mut redirect_uris = Vec::new();
    for u in &spec.redirect_uris {
        let uri = RedirectUri::parse(u).map_err(|e| field("redirect_uris")(e.to_string()))?;
        if !redirect_uris.contains(&uri) {
            redirect_uris.push(uri);
        }
    }
    if grant_types.contains(&GrantType::AuthorizationCode) && redirect_uris.is_empty() {
        return Err(field("redirect_uris")(
            "the authorization_code grant needs at least one redirect URI".into(),
        ));
    }
    Ok(Checked {
        name: name.to_owned(),
        scopes,
        grant_types,
        redirect_uris,
    })
}

/// The audit event of a change to a client (never with a secret in it).
fn client_event(kind: AuditKind, client: &impl ClientRef, actor: &Actor, at: i64) -> NewAuditEvent {
    let id = client.client_id().to_string();
    NewAuditEvent {
        at,
        kind,
        actor: actor.clone(),
        target: Some(id.clone()),
        client_id: Some(id),
        label: None,
        detail: None,
    }
}

/// A client or its id.
trait ClientRef {
    fn client_id(&self) -> &ClientId;
}
impl ClientRef for Client {
    fn client_id(&self) -> &ClientId {
        &self.id
    }
}
impl ClientRef for ClientId {
    fn client_id(&self) -> &ClientId {
        self
    }
}

fn zero_grace() -> Result<Ttl, ClientOpError> {
    Ttl::from_secs_allow_zero(0).ok_or_else(|| Fault::broken("zero grace").into())
}

/// Clients: created, read, changed, authenticated and removed, with this node's
/// cache and the revocations kept in step with every change.
pub struct ClientService {
    store: DynStore,
    hasher: TokenHasher,
    clock: Arc<dyn Clock>,
    denylist: Arc<Denylist>,
    default_access_ttl: Ttl,
    cache: ClientCache,
}

impl ClientService {
    /// A service over `store`; `denylist` is this node's (revocations made here
    /// apply to it at once), `default_access_ttl` the server's access token lifetime
    /// (a revocation is remembered at least that long).
    pub fn new(
        store: DynStore,
        hasher: TokenHasher,
        clock: Arc<dyn Clock>,
        denylist: Arc<Denylist>,
        default_access_ttl: Ttl,
    ) -> Self {
        Self {
            store,
            hasher,
            clock,
            denylist,
            default_access_ttl,
            cache: ClientCache::default(),
        }
    }

    /// This node's cache of clients, for the change feed to forget entries.
    pub fn cache(&self) -> &ClientCache {
        &self.cache
    }

    fn revoker(&self) -> Revoker<'_> {
        Revoker {
            store: &self.store,
            denylist: &self.denylist,
            clock: self.clock.as_ref(),
            default_access_ttl: self.default_access_ttl,
        }
    }

    /// Creates a client; returns it with its secret (to show once).
    pub async fn create(
        &self,
        spec: NewClientSpec,
        actor: &Actor,
    ) -> Result<(Client, PlainToken), ClientOpError> {
        let c = check(self.store.as_ref(), &spec).await?;
        let client = Client {
            id: ClientId::parse(&random_id("pc_")?)
                .map_err(|_| Fault::broken("generated a bad client id"))?,
            name: c.name,
            scopes: c.scopes,
            grant_types: c.grant_types,
            redirect_uris: c.redirect_uris,
            status: ClientStatus::Active,
            created_at: self.clock.now(),
            access_token_ttl: spec.access_token_ttl,
            refresh_token_ttl: spec.refresh_token_ttl,
            issue_refresh_token: !spec.no_refresh_token,
            refresh_reuse_grace: match spec.refresh_reuse_grace {
                Some(g) => g,
                None => zero_grace()?,
            },
        };
        let secret = PlainToken::generate(TokenKind::ClientSecret)?;
        let hash = self.hasher.hash(TokenKind::ClientSecret, secret.expose());
        let audit = client_event(AuditKind::ClientCreate, &client, actor, client.created_at);
        self.store.create_client(&client, &hash.0, &audit).await?;
        Ok((client, secret))
    }

    /// Replaces a client's settings (everything [`Self::create`] takes); nothing
    /// changes unless every setting is valid. Tokens already issued keep their
    /// scopes until refreshed, when scopes the client lost are dropped.
    pub async fn update(
        &self,
        id: &str,
        spec: NewClientSpec,
        actor: &Actor,
    ) -> Result<Client, ClientOpError> {
        let current = self.get(id).await?;
        let c = check(self.store.as_ref(), &spec).await?;
        let client = Client {
            name: c.name,
            scopes: c.scopes,
            grant_types: c.grant_types,
            redirect_uris: c.redirect_uris,
            access_token_ttl: spec.access_token_ttl,
            refresh_token_ttl: spec.refresh_token_ttl,
            issue_refresh_token: !spec.no_refresh_token,
            refresh_reuse_grace: match spec.refresh_reuse_grace {
                Some(g) => g,
                None => zero_grace()?,
            },
            ..current
        };
        let now = self.clock.now();
        let audit = client_event(AuditKind::ClientUpdate, &client, actor, now);
        self.store.update_client(&client, now, &audit).await?;
        self.cache.forget(&client.id);
        Ok(client)
    }

    /// One client.
    pub async fn get(&self, id: &str) -> Result<Client, ClientOpError> {
        let cid = parse_id(id)?;
        self.store
            .get_client(&cid)
            .await?
            .ok_or_else(|| ClientOpError::NotFound(id.into()))
    }

    /// Enables or disables a client. Disabling revokes every token it holds, at
    /// once and for good (enabling it again does not bring them back), in the same
    /// transaction as the status and its audit event.
    pub async fn set_status(
        &self,
        id: &str,
        status: ClientStatus,
        actor: &Actor,
    ) -> Result<Client, ClientOpError> {
        let client = self.get(id).await?;
        let not_found = |e| match e {
            StoreError::NotFound(_) => ClientOpError::NotFound(id.into()),
            other => other.into(),
        };
        match status {
            ClientStatus::Disabled => self
                .revoker()
                .disable_client(&client, actor)
                .await
                .map_err(not_found)?,
            ClientStatus::Active => {
                let now = self.clock.now();
                let audit = client_event(AuditKind::ClientEnable, &client, actor, now);
                self.store
                    .enable_client(&client.id, now, &audit)
                    .await
                    .map_err(not_found)?;
            }
        }
        self.cache.forget(&client.id);
        self.get(id).await
    }

    /// Deletes a client and everything it owns; its tokens stay revoked everywhere
    /// until they expire.
    pub async fn delete(&self, id: &str, actor: &Actor) -> Result<(), ClientOpError> {
        let client = self.get(id).await?;
        let result = self
            .revoker()
            .delete_client(&client, actor)
            .await
            .map_err(|e| match e {
                StoreError::NotFound(_) => ClientOpError::NotFound(id.into()),
                other => other.into(),
            });
        self.cache.forget(&client.id);
        result
    }

    /// Gives a client a new secret; the old one stays valid for `keep_old_for`
    /// (default: not at all).
    pub async fn rotate_secret(
        &self,
        id: &str,
        keep_old_for: Option<Ttl>,
        actor: &Actor,
    ) -> Result<(Client, PlainToken), ClientOpError> {
        let cid = parse_id(id)?;
        let now = self.clock.now();
        let audit = NewAuditEvent {
            detail: keep_old_for.map(|k| format!("{{\"keep_old_for\":{}}}", k.secs())),
            ..client_event(AuditKind::ClientRotateSecret, &cid, actor, now)
        };
        let secret = PlainToken::generate(TokenKind::ClientSecret)?;
        let hash = self.hasher.hash(TokenKind::ClientSecret, secret.expose());
        let until = now.saturating_add(keep_old_for.map_or(0, Ttl::secs_i64));
        self.store
            .rotate_client_secret(&cid, &hash.0, until, now, &audit)
            .await
            .map_err(|e| match e {
                StoreError::NotFound(_) => ClientOpError::NotFound(id.into()),
                other => other.into(),
            })?;
        self.cache.forget(&cid);
        Ok((self.get(id).await?, secret))
    }

    /// The client `id` (with its valid secret hashes) if `secret` is one of its
    /// secrets, compared in constant time against each; `None` for an unknown id
    /// or a wrong secret. Whether the client is active is the caller's to check.
    ///
    /// The cache answers first; when a known client's secret does not match and
    /// `may_look_again`, the database is read once more, since the secret may have
    /// been rotated a moment ago by another process.
    pub async fn authenticate(
        &self,
        id: &str,
        secret: &str,
        may_look_again: bool,
    ) -> Result<Authenticated, StoreError> {
        let presented = self.hasher.hash(TokenKind::ClientSecret, secret);
        let matches = |c: &Arc<ClientAuth>| {
            c.secret_hashes
                .iter()
                .fold(false, |acc, h| acc | presented.ct_eq(&HashedToken(*h)))
        };
        let Ok(id) = ClientId::parse(id) else {
            return Ok(Authenticated::Unknown);
        };
        let now = self.clock.now();
        let Some(found) = self.cache.get(self.store.as_ref(), &id, now).await? else {
            return Ok(Authenticated::Unknown);
        };
        if matches(&found) {
            return Ok(Authenticated::Client(found));
        }
        if may_look_again
            && let Some(fresh) = self.cache.get_fresh(self.store.as_ref(), &id, now).await?
            && matches(&fresh)
        {
            return Ok(Authenticated::Client(fresh));
        }
        Ok(Authenticated::WrongSecret)
    }

    /// The client `id` as this node knows it (cached for at most a second): for
    /// checking that a bearer token's client is still active.
    pub async fn cached(&self, id: &ClientId) -> Result<Option<Arc<ClientAuth>>, StoreError> {
        self.cache
            .get(self.store.as_ref(), id, self.clock.now())
            .await
    }
}

/// What [`ClientService::authenticate`] found.
#[derive(Debug)]
pub enum Authenticated {
    /// The secret is the client's.
    Client(Arc<ClientAuth>),
    /// No such client.
    Unknown,
    /// The client exists; the secret is not one of its.
    WrongSecret,
}
