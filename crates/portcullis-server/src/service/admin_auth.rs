//! Admin web sign-in: Argon2id passwords, server-side sessions in our own table.
//!
//! The session cookie carries 256 random bits; only their HMAC is stored, so a
//! database leak yields no usable session. Sessions end after 30 idle minutes or
//! 12 hours, whichever comes first; signing in always creates a new session id
//! (no fixation), and signing out deletes it.

use portcullis_crypto::{PlainToken, TokenHasher, TokenKind, password};
use portcullis_store::{AdminSessionRow, DynStore, StoreResult};

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

/// Checks a password; returns whether it matches. Runs Argon2 off the async threads,
/// and checks a dummy hash for unknown users so timing does not reveal names.
pub async fn check_password(store: &DynStore, name: &str, pw: &str) -> StoreResult<bool> {
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
    let ok = tokio::task::spawn_blocking(move || password::verify_password(&pw, &hash))
        .await
        .unwrap_or(false);
    Ok(ok && known)
}

/// Creates a session for `user`.
pub async fn create_session(
    store: &DynStore,
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
