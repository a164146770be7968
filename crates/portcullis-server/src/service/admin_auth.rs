//! Admin web sign-in: Argon2id passwords, server-side sessions in our own table.
//!
//! The session cookie carries 256 random bits; only their HMAC is stored, so a
//! database leak yields no usable session. Sessions end after 30 idle minutes or
//! 12 hours, whichever comes first; signing in always creates a new session id
//! (no fixation), and signing out deletes it.

use portcullis_crypto::{PlainToken, TokenHasher, TokenKind, password};
use portcullis_store::{AdminSessionRow, AdminStore, StoreResult};

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
    // A real Argon2id hash, computed once, so an unknown name costs what a known one does.
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let stored = store.admin_password_hash(name).await?;
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
    Ok(PasswordCheck {
        ok: ok && known,
        known_user: known,
    })
}

/// Creates a session for `user`.
pub async fn create_session(
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
