//! End users: the one implementation behind `portcullis user …`, the admin pages,
//! the admin API and the end user's own pages (`/oauth/authorize`, `/account`).
//!
//! Passwords are Argon2id hashes; sign-in is throttled per (user, source) and per
//! source like the admin sign-in ([`crate::service::throttle`]); sessions are 256
//! random bits in a cookie, stored only as their HMAC, and end after 30 idle
//! minutes or 12 hours. Disabling a user, ending one of their grants or removing a
//! scope from it revokes the grant's tokens in the same transaction, then on this
//! node's denylist at once.

use crate::error::Fault;
use crate::service::admin_auth::{
    ABSOLUTE_SECS, IDLE_SECS, SignInRefused, TOUCH_EVERY_SECS, random_csrf,
};
use crate::service::denylist::Denylist;
use crate::service::throttle::{Admission, LoginThrottle};
use portcullis_core::user::check_new_password;
use portcullis_core::{AuditKind, Clock, ScopeSet, Ttl, UserName};
use portcullis_crypto::{PlainToken, TokenHasher, TokenKind, password, random_id};
use portcullis_store::{
    Actor, ConsentChange, ConsentRecord, DynStore, NewAuditEvent, StoreError, UserRecord,
    UserSessionRow,
};
use std::net::IpAddr;
use std::sync::Arc;

/// Why a user operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum UserOpError {
    /// Bad input; the message says which and why.
    #[error("{0}")]
    Invalid(String),
    /// The name is taken.
    #[error("{0}")]
    Conflict(String),
    /// No such user (or grant).
    #[error("{0} not found")]
    NotFound(String),
    /// Storage or crypto failed.
    #[error(transparent)]
    Fault(#[from] Fault),
}

impl From<StoreError> for UserOpError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::NotFound(what),
            StoreError::Conflict(why) => Self::Conflict(why),
            other => Self::Fault(other.into()),
        }
    }
}

impl From<portcullis_crypto::CryptoError> for UserOpError {
    fn from(e: portcullis_crypto::CryptoError) -> Self {
        Self::Fault(e.into())
    }
}

/// A signed-in end user's session, as a request's cookie found it.
#[derive(Debug, Clone)]
pub struct UserSession {
    /// The user.
    pub user: UserRecord,
    /// CSRF token every form of this session must carry.
    pub csrf: String,
    /// Hash of the cookie (to sign out).
    pub id_hash: [u8; 32],
}

impl UserSession {
    /// This user as the actor of audit events.
    pub fn actor(&self) -> Actor {
        Actor {
            kind: "user",
            id: Some(self.user.id.clone()),
            source: None,
        }
    }
}

/// A session just created: the cookie value (only for `Set-Cookie`).
#[derive(Debug)]
pub struct NewUserSession {
    /// Cookie value.
    pub cookie: PlainToken,
    /// The user.
    pub user: UserRecord,
}

/// End users, their sessions and their grants.
pub struct UserService {
    store: DynStore,
    hasher: TokenHasher,
    clock: Arc<dyn Clock>,
    denylist: Arc<Denylist>,
    default_access_ttl: Ttl,
    throttle: LoginThrottle,
}

fn name(name: &str) -> Result<UserName, UserOpError> {
    UserName::parse(name).map_err(|e| UserOpError::Invalid(e.to_string()))
}

fn new_password(pw: &str) -> Result<String, UserOpError> {
    check_new_password(pw).map_err(|e| UserOpError::Invalid(e.to_string()))?;
    Ok(password::hash_password(pw)?)
}

impl UserService {
    /// A service over `store`; revocations apply to `denylist` at once and last
    /// at least `default_access_ttl`.
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
            throttle: LoginThrottle::default(),
        }
    }

    fn event(&self, kind: AuditKind, actor: &Actor, target: &str) -> NewAuditEvent {
        NewAuditEvent {
            at: self.clock.now(),
            kind,
            actor: actor.clone(),
            target: Some(target.to_owned()),
            client_id: None,
            label: None,
            detail: None,
        }
    }

    /// Until when a revocation of a user's tokens must be remembered: every
    /// access token it covers was issued before now and lives at most the longest
    /// access token lifetime of any client (or the server's).
    async fn deny_until(&self, client_id: Option<&str>) -> Result<i64, UserOpError> {
        let clients = self.store.list_clients().await?;
        let longest = clients
            .iter()
            .filter(|c| client_id.is_none_or(|id| c.id.as_str() == id))
            .filter_map(|c| c.access_token_ttl)
            .fold(self.default_access_ttl, Ttl::max);
        Ok(self
            .clock
            .now()
            .saturating_add(longest.secs_i64())
            .saturating_add(1))
    }

    fn deny(&self, families: &[String], until: i64) {
        for id in families {
            self.denylist.add_family(id, until);
            crate::metrics::revoked("family");
        }
    }

    /// Creates a user with a password (at least 8 characters).
    pub async fn create(
        &self,
        user_name: &str,
        pw: &str,
        actor: &Actor,
    ) -> Result<UserRecord, UserOpError> {
        let user_name = name(user_name)?;
        let hash = new_password(pw)?;
        let now = self.clock.now();
        let user = UserRecord {
            id: random_id("usr_")?,
            name: user_name.to_string(),
            password_hash: hash,
            active: true,
            created_at: now,
            updated_at: now,
        };
        let audit = self.event(AuditKind::UserCreate, actor, &user.id);
        self.store.create_user(&user, &audit).await?;
        Ok(user)
    }

    /// Every user, by name.
    pub async fn list(&self) -> Result<Vec<UserRecord>, UserOpError> {
        Ok(self.store.list_users().await?)
    }

    /// A user by name (or by id: `usr_…`).
    pub async fn get(&self, name_or_id: &str) -> Result<UserRecord, UserOpError> {
        // An id first (`usr_…`), then a name: a user may be named like an id.
        let by_id = if name_or_id.starts_with("usr_") {
            self.store.get_user(name_or_id).await?
        } else {
            None
        };
        let found = match by_id {
            Some(u) => Some(u),
            None => self.store.find_user(name_or_id).await?,
        };
        found.ok_or_else(|| UserOpError::NotFound(format!("user {name_or_id}")))
    }

    /// Enables or disables a user. Disabling ends their sessions and revokes every
    /// token issued on their behalf, at once and for good.
    pub async fn set_status(
        &self,
        name_or_id: &str,
        active: bool,
        actor: &Actor,
    ) -> Result<UserRecord, UserOpError> {
        let user = self.get(name_or_id).await?;
        let kind = if active {
            AuditKind::UserEnable
        } else {
            AuditKind::UserDisable
        };
        let until = self.deny_until(None).await?;
        let audit = self.event(kind, actor, &user.id);
        let revoked = self
            .store
            .set_user_status(&user.id, active, self.clock.now(), until, &audit)
            .await?;
        self.deny(&revoked, until);
        self.get(&user.id).await
    }

    /// Sets a user's password (an admin's reset); their sessions end.
    pub async fn reset_password(
        &self,
        name_or_id: &str,
        pw: &str,
        actor: &Actor,
    ) -> Result<UserRecord, UserOpError> {
        let user = self.get(name_or_id).await?;
        let hash = new_password(pw)?;
        let audit = self.event(AuditKind::UserPassword, actor, &user.id);
        self.store
            .set_user_password(&user.id, &hash, self.clock.now(), &audit)
            .await?;
        Ok(user)
    }

    /// A signed-in user changes their own password, proving the current one; every
    /// session of theirs ends (they sign in again with the new one).
    pub async fn change_password(
        &self,
        session: &UserSession,
        current: &str,
        new: &str,
    ) -> Result<(), UserOpError> {
        let user = self.get(&session.user.id).await?;
        if !crate::service::admin_auth::verify_or_dummy(Some(user.password_hash), current).await {
            return Err(UserOpError::Invalid("the current password is wrong".into()));
        }
        let hash = new_password(new)?;
        let audit = self.event(AuditKind::UserPassword, &session.actor(), &user.id);
        self.store
            .set_user_password(&user.id, &hash, self.clock.now(), &audit)
            .await?;
        Ok(())
    }

    /// Signs `user_name` in from `peer`, ending `previous` (the session this
    /// browser had): a new session id at every sign-in.
    pub async fn sign_in(
        &self,
        user_name: &str,
        pw: &str,
        peer: IpAddr,
        previous: Option<&UserSession>,
    ) -> Result<NewUserSession, SignInRefused> {
        match self.throttle.admit(user_name, peer) {
            Admission::Refuse { retry_after } => {
                return Err(SignInRefused::Throttled { retry_after });
            }
            Admission::Proceed { delay } if !delay.is_zero() => tokio::time::sleep(delay).await,
            Admission::Proceed { .. } => {}
        }
        let now = self.clock.now();
        let found = if user_name.len() <= 256 && pw.len() <= 4096 {
            self.store
                .find_user(user_name)
                .await
                .map_err(|e| SignInRefused::Fault(e.into()))?
        } else {
            None
        };
        let known = found.is_some();
        let ok = crate::service::admin_auth::verify_or_dummy(
            found.as_ref().map(|u| u.password_hash.clone()),
            pw,
        )
        .await;
        let audit = |kind: AuditKind, id: Option<String>| NewAuditEvent {
            at: now,
            kind,
            actor: Actor {
                kind: "user",
                id: Some(id.unwrap_or_else(|| user_name.chars().take(64).collect())),
                source: Some(peer.to_string()),
            },
            target: None,
            client_id: None,
            label: None,
            detail: None,
        };
        let user = match found {
            Some(u) if ok && u.active => u,
            _ => {
                // Each failure costs an Argon2id hash before it gets here, and a
                // source over its limit is refused before that: these writes are
                // bounded by the hashing, never by the attacker.
                let _ = self
                    .store
                    .append_audit(&audit(AuditKind::UserLoginFailed, None))
                    .await;
                let failure = self.throttle.failed(user_name, peer, known);
                if failure.source_burst {
                    let _ = self
                        .store
                        .append_audit(&audit(AuditKind::UserLoginFailedBurst, None))
                        .await;
                }
                if failure.flood_started {
                    let _ = self
                        .store
                        .append_audit(&audit(AuditKind::UserLoginFlood, None))
                        .await;
                    tracing::warn!(user = %user_name.chars().take(64).collect::<String>(),
                        "failed sign-ins for one end user from many sources; delaying theirs");
                }
                return Err(SignInRefused::Wrong);
            }
        };
        if let Some(old) = previous {
            self.sign_out(old).await;
        }
        let fault = |e: Fault| SignInRefused::Fault(e);
        let cookie = PlainToken::generate(TokenKind::UserSession).map_err(|e| fault(e.into()))?;
        let csrf = random_csrf().map_err(|e| fault(e.into()))?;
        self.store
            .create_user_session(&UserSessionRow {
                id_hash: self.session_hash(cookie.expose()),
                user_id: user.id.clone(),
                csrf_token: csrf,
                created_at: now,
                last_seen_at: now,
                expires_at: now + ABSOLUTE_SECS,
                source: Some(peer.to_string()),
            })
            .await
            .map_err(|e| fault(e.into()))?;
        let _ = self
            .store
            .append_audit(&audit(AuditKind::UserLogin, Some(user.id.clone())))
            .await;
        Ok(NewUserSession { cookie, user })
    }

    fn session_hash(&self, cookie: &str) -> [u8; 32] {
        self.hasher.hash(TokenKind::UserSession, cookie).0
    }

    /// The live session a cookie value names, if any (its user active). An idle
    /// session ends here; activity is recorded at most once a minute.
    pub async fn session(&self, cookie: &str) -> Result<Option<UserSession>, Fault> {
        if cookie.len() > 100 {
            return Ok(None);
        }
        let hash = self.session_hash(cookie);
        let now = self.clock.now();
        let Some(row) = self.store.get_user_session(&hash, now).await? else {
            return Ok(None);
        };
        if now - row.last_seen_at > IDLE_SECS {
            let _ = self.store.delete_user_session(&hash).await;
            return Ok(None);
        }
        if now - row.last_seen_at >= TOUCH_EVERY_SECS {
            let _ = self.store.touch_user_session(&hash, now).await;
        }
        let Some(user) = self.store.get_user(&row.user_id).await? else {
            return Ok(None);
        };
        Ok(Some(UserSession {
            user,
            csrf: row.csrf_token,
            id_hash: hash,
        }))
    }

    /// Ends a session.
    pub async fn sign_out(&self, session: &UserSession) {
        let _ = self.store.delete_user_session(&session.id_hash).await;
    }

    /// What `user_id` allowed `client_id`, if anything.
    pub async fn consent(
        &self,
        user_id: &str,
        client_id: &str,
    ) -> Result<Option<ConsentRecord>, Fault> {
        Ok(self.store.get_consent(user_id, client_id).await?)
    }

    /// Records that the user allowed `client_id` these scopes (added to what they
    /// allowed before).
    pub async fn give_consent(
        &self,
        session: &UserSession,
        client_id: &str,
        scopes: &ScopeSet,
    ) -> Result<(), Fault> {
        let now = self.clock.now();
        let consent = ConsentRecord {
            user_id: session.user.id.clone(),
            client_id: client_id.to_owned(),
            client_name: String::new(),
            scopes: scopes.clone(),
            created_at: now,
            updated_at: now,
            last_used_at: None,
        };
        let audit = NewAuditEvent {
            client_id: Some(client_id.to_owned()),
            detail: Some(serde_json::json!({ "scope": scopes.to_string() }).to_string()),
            ..self.event(AuditKind::ConsentGive, &session.actor(), &session.user.id)
        };
        Ok(self.store.put_consent(&consent, &audit).await?)
    }

    /// Everything a user allowed, with each application's name and last use.
    pub async fn consents(&self, user_id: &str) -> Result<Vec<ConsentRecord>, Fault> {
        Ok(self.store.list_consents(user_id).await?)
    }

    /// Ends a grant (`remove`: `None`): its tokens are revoked at once. Or removes
    /// these scopes from it: its access tokens are revoked at once and its refresh
    /// tokens yield only the scopes kept. Removing every scope ends the grant.
    pub async fn revoke_consent(
        &self,
        user_id: &str,
        client_id: &str,
        remove: Option<&ScopeSet>,
        actor: &Actor,
    ) -> Result<ConsentChange, UserOpError> {
        let current = self
            .store
            .get_consent(user_id, client_id)
            .await?
            .ok_or_else(|| UserOpError::NotFound("grant".into()))?;
        let keep: Option<ScopeSet> = remove.and_then(|r| {
            let kept: ScopeSet = current
                .scopes
                .iter()
                .filter(|s| !r.iter().any(|x| x == *s))
                .cloned()
                .collect();
            (!kept.is_empty()).then_some(kept)
        });
        let kind = if keep.is_some() {
            AuditKind::ConsentNarrow
        } else {
            AuditKind::ConsentRevoke
        };
        let until = self.deny_until(Some(client_id)).await?;
        let audit = NewAuditEvent {
            client_id: Some(client_id.to_owned()),
            detail: keep
                .as_ref()
                .map(|k| serde_json::json!({ "scope": k.to_string() }).to_string()),
            ..self.event(kind, actor, user_id)
        };
        let now = self.clock.now();
        let change = self
            .store
            .revoke_consent(user_id, client_id, keep.as_ref(), now, until, &audit)
            .await?;
        self.deny(&change.revoked, until);
        for id in &change.narrowed {
            self.denylist.add_family_before(id, now, until);
        }
        Ok(change)
    }
}
