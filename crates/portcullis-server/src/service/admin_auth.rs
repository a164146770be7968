//! Admin web sign-in: Argon2id passwords, server-side sessions in our own table.
//!
//! The session cookie carries 256 random bits; only their HMAC is stored, so a
//! database leak yields no usable session. Sessions end after 30 idle minutes or
//! 12 hours, whichever comes first; signing in always creates a new session id
//! (no fixation), and signing out deletes it. Failed sign-ins are throttled per
//! (user, source) and per source, and a flood against one user from many sources
//! delays that user's sign-ins (see [`crate::service::throttle`]); every sign-in
//! and every burst of failures is audited.
//!
//! [`AdminAuth`] holds these rules; the pages only render and set cookies.

use crate::error::Fault;
use crate::service::throttle::{Admission, LoginThrottle};
use portcullis_core::{AuditKind, Clock};
use portcullis_crypto::{PlainToken, TokenHasher, TokenKind, password};
use portcullis_store::{Actor, AdminSessionRow, AdminStore, DynStore, NewAuditEvent, StoreResult};
use std::net::IpAddr;
use std::sync::Arc;

/// Idle expiry.
pub const IDLE_SECS: i64 = 30 * 60;
/// Absolute expiry.
pub const ABSOLUTE_SECS: i64 = 12 * 3600;
/// Activity is written at most this often per session.
pub const TOUCH_EVERY_SECS: i64 = 60;

/// A session just created: the cookie value (show only in `Set-Cookie`) and its CSRF token.
#[derive(Debug)]
pub struct NewSession {
    /// Cookie value.
    pub cookie: PlainToken,
    /// CSRF token for its forms.
    pub csrf: String,
}

/// The stored hash of a session cookie.
pub fn session_hash(hasher: &TokenHasher, cookie: &str) -> [u8; 32] {
    hasher.hash(TokenKind::AdminSession, cookie).0
}

/// A fresh random token for CSRF fields.
pub fn random_csrf() -> Result<String, portcullis_crypto::CryptoError> {
    Ok(portcullis_crypto::b64::encode(
        portcullis_crypto::random_bytes::<32>()?,
    ))
}

/// What a password check found (the default: no such user, no match).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PasswordCheck {
    /// The user exists and the password is theirs.
    pub ok: bool,
    /// The user exists (the throttle counts per user only for real users).
    pub known_user: bool,
}

/// Password checks running at once. Argon2id takes a core for tens of
/// milliseconds; a flood of sign-ins may use at most this many cores, so token
/// and API requests keep the rest.
fn password_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        tokio::sync::Semaphore::new((cores / 2).max(1))
    })
}

/// Checks a password. Runs Argon2 off the async threads, at most on half the
/// cores at once, and checks a dummy hash for unknown users so timing does not
/// reveal names.
pub async fn check_password(
    store: &dyn AdminStore,
    name: &str,
    pw: &str,
) -> StoreResult<PasswordCheck> {
    let stored = store.admin_password_hash(name).await?;
    let known = stored.is_some();
    let ok = verify_or_dummy(stored, pw).await;
    Ok(PasswordCheck {
        ok: ok && known,
        known_user: known,
    })
}

/// Whether `pw` is the password `stored` hashes; with no stored hash (an unknown
/// user), a real Argon2id hash is checked anyway, so an unknown name costs what a
/// known one does, and `false` is answered. Runs off the async threads, at most
/// on half the cores at once.
pub(crate) async fn verify_or_dummy(stored: Option<String>, pw: &str) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let known = stored.is_some();
    let hash = match stored {
        Some(h) => h,
        None => DUMMY
            .get_or_init(|| password::hash_password("portcullis-dummy").unwrap_or_default())
            .clone(),
    };
    let pw = pw.to_owned();
    let _slot = password_slots().acquire().await;
    let ok = tokio::task::spawn_blocking(move || password::verify_password(&pw, &hash))
        .await
        .unwrap_or(false);
    ok && known
}

/// Creates a session for `user`.
async fn create_session(
    store: &dyn AdminStore,
    hasher: &TokenHasher,
    user: &str,
    source: Option<String>,
    now: i64,
) -> Result<NewSession, Box<dyn std::error::Error + Send + Sync>> {
    let cookie = PlainToken::generate(TokenKind::AdminSession)?;
    let csrf = random_csrf()?;
    store
        .create_admin_session(&AdminSessionRow {
            id_hash: session_hash(hasher, cookie.expose()),
            user_name: user.to_owned(),
            csrf_token: csrf.clone(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + ABSOLUTE_SECS,
            source,
        })
        .await?;
    Ok(NewSession { cookie, csrf })
}

/// A signed-in admin's session, as a request's cookie found it.
#[derive(Debug, Clone)]
pub struct Session {
    /// User name.
    pub user: String,
    /// CSRF token every form of this session must carry.
    pub csrf: String,
    /// Hash of the cookie (to sign out).
    pub id_hash: [u8; 32],
}

impl Session {
    /// This admin as the actor of audit events.
    pub fn actor(&self) -> Actor {
        Actor {
            kind: "admin",
            id: Some(self.user.clone()),
            source: None,
        }
    }
}

/// Why a sign-in was refused.
#[derive(Debug)]
pub enum SignInRefused {
    /// Too many failures: try again after this many seconds.
    Throttled {
        /// Seconds.
        retry_after: u64,
    },
    /// The name or the password is wrong (which, is not said).
    Wrong,
    /// The session could not be stored.
    Fault(Fault),
}

/// Admin sign-in, sessions and sign-out.
pub struct AdminAuth {
    store: DynStore,
    hasher: TokenHasher,
    clock: Arc<dyn Clock>,
    throttle: LoginThrottle,
}

impl AdminAuth {
    /// Sign-in over `store`, with sessions hashed by `hasher`.
    pub fn new(store: DynStore, hasher: TokenHasher, clock: Arc<dyn Clock>) -> Self {
        Self {
            store,
            hasher,
            clock,
            throttle: LoginThrottle::default(),
        }
    }

    /// The live session a cookie value names, if any. An idle session ends here;
    /// activity is recorded at most once a minute, so browsing does not write on
    /// every request. A database that cannot say is a [`Fault`], not "signed out":
    /// the admin is answered 503, not sent to the sign-in page.
    pub async fn session(&self, cookie: &str) -> Result<Option<Session>, Fault> {
        if cookie.len() > 100 {
            return Ok(None);
        }
        let hash = session_hash(&self.hasher, cookie);
        let now = self.clock.now();
        let Some(row) = self.store.get_admin_session(&hash, now).await? else {
            return Ok(None);
        };
        if now - row.last_seen_at > IDLE_SECS {
            let _ = self.store.delete_admin_session(&hash).await;
            return Ok(None);
        }
        if now - row.last_seen_at >= TOUCH_EVERY_SECS {
            let _ = self.store.touch_admin_session(&hash, now).await;
        }
        Ok(Some(Session {
            user: row.user_name,
            csrf: row.csrf_token,
            id_hash: hash,
        }))
    }

    /// Signs `name` in from `peer` with `password`, ending `previous` (the
    /// session this browser had, if any): a new session id at every sign-in.
    pub async fn sign_in(
        &self,
        name: &str,
        password: &str,
        peer: IpAddr,
        previous: Option<&Session>,
    ) -> Result<NewSession, SignInRefused> {
        match self.throttle.admit(name, peer) {
            Admission::Refuse { retry_after } => {
                return Err(SignInRefused::Throttled { retry_after });
            }
            Admission::Proceed { delay } if !delay.is_zero() => tokio::time::sleep(delay).await,
            Admission::Proceed { .. } => {}
        }
        let now = self.clock.now();
        let check = if name.len() <= 64 && password.len() <= 1024 {
            check_password(self.store.as_ref(), name, password)
                .await
                .unwrap_or_default()
        } else {
            PasswordCheck::default()
        };
        let audit = |kind: AuditKind| NewAuditEvent {
            at: now,
            kind,
            actor: Actor {
                kind: "admin",
                id: Some(name.chars().take(64).collect()),
                source: Some(peer.to_string()),
            },
            target: None,
            client_id: None,
            label: None,
            detail: None,
        };
        if !check.ok {
            let failure = self.throttle.failed(name, peer, check.known_user);
            if failure.source_burst {
                let _ = self
                    .store
                    .append_audit(&audit(AuditKind::AdminLoginFailedBurst))
                    .await;
            }
            if failure.flood_started {
                let _ = self
                    .store
                    .append_audit(&audit(AuditKind::AdminLoginFlood))
                    .await;
                tracing::warn!(user = %name.chars().take(64).collect::<String>(),
                    "failed sign-ins for one user from many sources; delaying its sign-ins");
            }
            return Err(SignInRefused::Wrong);
        }
        if let Some(old) = previous {
            self.sign_out(old).await;
        }
        let session = create_session(
            self.store.as_ref(),
            &self.hasher,
            name,
            Some(peer.to_string()),
            now,
        )
        .await
        .map_err(|e| SignInRefused::Fault(Fault::broken(e)))?;
        let _ = self.store.append_audit(&audit(AuditKind::AdminLogin)).await;
        Ok(session)
    }

    /// Ends a session.
    pub async fn sign_out(&self, session: &Session) {
        let _ = self.store.delete_admin_session(&session.id_hash).await;
    }
}
