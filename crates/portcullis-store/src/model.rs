//! Rows as the rest of Portcullis sees them (no SQL types here).

use portcullis_core::{AuditKind, Client, ScopeSet};
use serde::Serialize;

/// A registered scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScopeRecord {
    /// Name.
    pub name: String,
    /// What it allows.
    pub description: String,
    /// Unix seconds (0 for built-in scopes).
    #[serde(skip)]
    pub created_at: i64,
}

/// A client and the hashes of its valid secrets.
#[derive(Debug, Clone)]
pub struct ClientAuth {
    /// The client.
    pub client: Client,
    /// HMACs of secrets valid now (usually one; two during a rotation overlap).
    pub secret_hashes: Vec<[u8; 32]>,
}

/// A signing key as stored.
#[derive(Debug, Clone)]
pub struct StoredKey {
    /// Key id.
    pub kid: String,
    /// `RS256`, `ES256` or `EdDSA`.
    pub alg: String,
    /// Encrypted PKCS#8.
    pub private_key_enc: Vec<u8>,
    /// Public JWK as JSON.
    pub public_jwk: String,
    /// Where it is in its life.
    pub state: KeyState,
    /// Unix seconds.
    pub created_at: i64,
    /// Until when a `previous` key still verifies.
    pub retire_after: Option<i64>,
}

/// A signing key's place in its life: `current` signs; `previous` only verifies,
/// until `retire_after`; `retired` is no longer published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Signs new tokens (exactly one key).
    Current,
    /// Verifies tokens it signed until they expire.
    Previous,
    /// Neither signs nor verifies.
    Retired,
}

impl KeyState {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Current => "current",
            Self::Previous => "previous",
            Self::Retired => "retired",
        }
    }

    /// The state a stored name names.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "current" => Some(Self::Current),
            "previous" => Some(Self::Previous),
            "retired" => Some(Self::Retired),
            _ => None,
        }
    }
}

/// How a new signing key is recorded.
#[derive(Debug, Clone, Default)]
pub struct KeyChange {
    /// The audit event to commit with it (none for the first key of a database).
    pub audit: Option<NewAuditEvent>,
    /// Only if the current key was created before this (automatic rotation).
    pub unless_current_since: Option<i64>,
}

/// A new grant to record.
#[derive(Debug, Clone)]
pub struct NewGrant {
    /// Family id.
    pub family_id: String,
    /// Owner.
    pub client_id: String,
    /// Data access point.
    pub label: Option<String>,
    /// `sub`.
    pub subject: String,
    /// Scopes granted.
    pub scopes: ScopeSet,
    /// Grant type name.
    pub grant_type: String,
    /// Unix seconds.
    pub created_at: i64,
    /// When the family's last token expires.
    pub expires_at: i64,
    /// First refresh token, if the client takes them.
    pub refresh_token: Option<NewRefresh>,
    /// Who asked, for the audit log.
    pub actor: Actor,
    /// The authorization code this grant spends (its hash), if any: spent in the
    /// same commit, and only if it is unspent and unexpired at `created_at`; the
    /// code then names this family as what it yielded (pass the code's own
    /// family, if it has one). A code that cannot be spent records nothing, as
    /// an inactive client does.
    pub spends_code: Option<[u8; 32]>,
}

/// A refresh token to store: only its selector and hash, never the token.
#[derive(Debug, Clone)]
pub struct NewRefresh {
    /// The selector the token carries (its row key; time-ordered).
    pub id: String,
    /// HMAC of the whole token.
    pub hash: [u8; 32],
    /// Unix seconds.
    pub expires_at: i64,
}

/// A token family, as `token list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyRecord {
    /// Family id.
    pub id: String,
    /// Owner.
    pub client_id: String,
    /// Label.
    pub label: Option<String>,
    /// `sub`.
    pub subject: String,
    /// Scopes of the grant.
    pub scopes: ScopeSet,
    /// How it started.
    pub grant_type: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Last use at the resource API.
    pub last_used_at: Option<i64>,
    /// When its last token expires.
    pub expires_at: i64,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
}

/// Who did something (audit events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// `client`, `admin`, `user` or `system`.
    pub kind: &'static str,
    /// The client id or user name.
    pub id: Option<String>,
    /// Source address, for requests that came over HTTP.
    pub source: Option<String>,
}

impl Actor {
    /// The server itself.
    pub fn system() -> Self {
        Self {
            kind: "system",
            id: None,
            source: None,
        }
    }
    /// An admin at the command line.
    pub fn cli_admin() -> Self {
        Self {
            kind: "admin",
            id: Some("cli".into()),
            source: None,
        }
    }
}

/// An audit event to append.
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    /// Unix seconds.
    pub at: i64,
    /// What happened.
    pub kind: AuditKind,
    /// Who.
    pub actor: Actor,
    /// What it was done to (a family id, a client id…).
    pub target: Option<String>,
    /// The client concerned.
    pub client_id: Option<String>,
    /// The label concerned.
    pub label: Option<String>,
    /// Extra detail (JSON text), never a secret.
    pub detail: Option<String>,
}

impl NewAuditEvent {
    /// An event of `kind` by `actor` at `at`, about nothing in particular yet.
    pub fn new(at: i64, kind: AuditKind, actor: Actor) -> Self {
        Self {
            at,
            kind,
            actor,
            target: None,
            client_id: None,
            label: None,
            detail: None,
        }
    }
}

/// A stored audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Sequence number.
    pub id: i64,
    /// Unix seconds.
    pub at: i64,
    /// Kind, as stored: an [`AuditKind`] name (kept as text, so that an event of a
    /// kind a newer version added still shows).
    pub kind: String,
    /// `client`, `admin`, `user`, `system`.
    pub actor_kind: String,
    /// Actor id.
    pub actor_id: Option<String>,
    /// Target.
    pub target: Option<String>,
    /// Client.
    pub client_id: Option<String>,
    /// Label.
    pub label: Option<String>,
    /// Source address.
    pub source: Option<String>,
    /// Detail (JSON text).
    pub detail: Option<String>,
}

/// Which audit events to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only this client.
    pub client_id: Option<String>,
    /// Only this label.
    pub label: Option<String>,
    /// Only this kind.
    pub kind: Option<AuditKind>,
    /// Only at or after (Unix seconds).
    pub since: Option<i64>,
    /// Only before this id (pagination).
    pub before_id: Option<i64>,
    /// At most this many.
    pub limit: i64,
}

/// A refresh token as found by its hash, with its family.
#[derive(Debug, Clone)]
pub struct RefreshLookup {
    /// Its selector (row key).
    pub id: String,
    /// The stored hash, for the caller's constant-time comparison.
    pub token_hash: [u8; 32],
    /// The family.
    pub family: FamilyRecord,
    /// The token's own scopes.
    pub scopes: ScopeSet,
    /// Unix seconds.
    pub expires_at: i64,
    /// When it was spent.
    pub spent_at: Option<i64>,
    /// Encrypted answer of the rotation that spent it (only within grace).
    pub grace_response: Option<Vec<u8>>,
    /// It was spent, and the token that replaced it has not been used yet: only then
    /// may a retry within grace get the saved answer (once the successor has been
    /// used, presenting this one again is reuse, whatever the grace).
    pub successor_unused: bool,
}

/// A rotation: spend the presented token and store its successor, atomically.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// The presented token's selector.
    pub old_id: String,
    /// The presented token's hash.
    pub old_hash: [u8; 32],
    /// Its family (must match).
    pub family_id: String,
    /// The authenticated client (must own the family).
    pub client_id: String,
    /// Unix seconds.
    pub now: i64,
    /// The successor.
    pub new: NewRefresh,
    /// The successor's scopes.
    pub scopes: ScopeSet,
    /// When the family's last token now expires.
    pub family_expires_at: i64,
    /// The encrypted response, kept for a retry within grace.
    pub grace_response: Option<Vec<u8>>,
    /// The audit event to record with it.
    pub audit: NewAuditEvent,
}

/// Which refresh token a presented one names: its selector, or, for a token issued
/// before tokens carried one, the HMAC of the whole token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshKey {
    /// The selector (the row key).
    Selector(String),
    /// The HMAC of a token without a selector.
    Hash([u8; 32]),
}

/// Decides, from the stored refresh token a presented one names (read inside the
/// write that would spend it), whether to spend it and with which rotation;
/// `None` leaves everything as it is. It may be called more than once (a group
/// commit that failed is retried one job at a time), so it only reads its input.
pub type RefreshJudge = Box<dyn Fn(&RefreshLookup) -> Option<Rotation> + Send + Sync>;

/// A refresh grant in one write: find the presented token, let the caller judge
/// it, and spend it if judged so (see [`crate::TokenStore::spend_refresh_token`]).
pub struct SpendRefresh {
    /// The presented token.
    pub key: RefreshKey,
    /// The client presenting it (authenticated): PostgreSQL's batch locks its
    /// status before reading it, as for every grant.
    pub client_id: String,
    /// The caller's checks, run on the token as the write finds it.
    pub judge: RefreshJudge,
}

impl std::fmt::Debug for SpendRefresh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpendRefresh")
            .field("key", &self.key)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

/// What [`SpendRefresh`] found and did.
#[derive(Debug, Clone)]
pub struct SpentRefresh {
    /// The stored token, as the write found it (before spending it); `None`: no
    /// token has this key.
    pub found: Option<RefreshLookup>,
    /// The scopes of the successor stored, when the token was spent; `None`: the
    /// judge refused it, or the spend's own conditions (unspent, unexpired, not
    /// revoked, the client active) did not hold, and nothing changed.
    pub rotated: Option<ScopeSet>,
}

/// A revocation that reaches access tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revocation {
    /// Sequence number (servers poll for higher ones).
    pub id: i64,
    /// `family`, `token` or `client`.
    pub kind: String,
    /// Family id, jti or client id.
    pub target: String,
    /// For `client`, and for a `family` whose grant was narrowed: only the access
    /// tokens issued at or before this (a `family` without it: all of them).
    pub issued_before: Option<i64>,
    /// When it can be forgotten (every token it covers has expired).
    pub expires_at: i64,
}

/// A family's last use at the resource API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// Family id.
    pub family_id: String,
    /// Owner.
    pub client_id: String,
    /// Label, if any.
    pub label: Option<String>,
    /// Unix seconds.
    pub at: i64,
}

/// A batch of records to store.
#[derive(Debug, Clone)]
pub struct NewUpload {
    /// Batch id.
    pub batch_id: String,
    /// The caller's client.
    pub client_id: String,
    /// The caller's label.
    pub label: Option<String>,
    /// The access token's jti.
    pub token_id: String,
    /// Unix seconds.
    pub received_at: i64,
    /// `Idempotency-Key`, if sent.
    pub idempotency_key: Option<String>,
    /// SHA-256 of the request body.
    pub body_hash: [u8; 32],
    /// The records, each a serialised JSON object.
    pub records: Vec<String>,
}

/// What storing a batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadOutcome {
    /// Stored now.
    Stored {
        /// Its id.
        batch_id: String,
        /// Records stored.
        accepted: i64,
    },
    /// The idempotency key was seen before with the same body: the first answer.
    Replayed {
        /// The first batch's id.
        batch_id: String,
        /// Its record count.
        accepted: i64,
    },
    /// The idempotency key was used before for a different body.
    KeyReused,
}

/// Per-label upload counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteCounters {
    /// Label (`None`: uploads without one).
    pub label: Option<String>,
    /// Records.
    pub records: i64,
    /// Batches.
    pub batches: i64,
    /// Unix seconds.
    pub last_upload_at: Option<i64>,
}

/// An admin web session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSessionRow {
    /// HMAC of the cookie value.
    pub id_hash: [u8; 32],
    /// The admin.
    pub user_name: String,
    /// The session's CSRF token.
    pub csrf_token: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Last request (for idle expiry).
    pub last_seen_at: i64,
    /// Absolute expiry.
    pub expires_at: i64,
    /// Address it logged in from.
    pub source: Option<String>,
}

/// A label (data access point) with its activity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelRecord {
    /// Name.
    pub name: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Last token issued for it.
    pub last_issued_at: Option<i64>,
    /// Last use at the resource API.
    pub last_used_at: Option<i64>,
    /// Uploads made.
    pub uploads: i64,
    /// Families neither revoked nor expired.
    pub live_families: i64,
}

/// Figures for the admin dashboard.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DashboardStats {
    /// Clients.
    pub clients: i64,
    /// Tokens issued (grants and refreshes) since the start of today (UTC).
    pub tokens_today: i64,
    /// Upload batches since the start of today (UTC).
    pub uploads_today: i64,
    /// (day, grants+refreshes) for the requested days.
    pub tokens_per_day: Vec<(i64, i64)>,
    /// (label, day, batches).
    pub uploads_per_site_day: Vec<(String, i64, i64)>,
    /// (day, failed client authentications).
    pub failed_auth_per_day: Vec<(i64, i64)>,
}

impl DashboardStats {
    /// The figures from what an engine counted, with today's totals (`today`: Unix
    /// seconds of 00:00 UTC) taken from the per-day series.
    pub(crate) fn from_series(
        today: i64,
        clients: i64,
        tokens_per_day: Vec<(i64, i64)>,
        uploads_per_site_day: Vec<(String, i64, i64)>,
        failed_auth_per_day: Vec<(i64, i64)>,
    ) -> Self {
        let tokens_today = tokens_per_day
            .iter()
            .filter(|(d, _)| *d == today)
            .map(|(_, n)| n)
            .sum();
        let uploads_today = uploads_per_site_day
            .iter()
            .filter(|(_, d, _)| *d == today)
            .map(|(_, _, n)| n)
            .sum();
        Self {
            clients,
            tokens_today,
            uploads_today,
            tokens_per_day,
            uploads_per_site_day,
            failed_auth_per_day,
        }
    }
}

/// What housekeeping removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Families (with their refresh tokens) expired or revoked long enough.
    pub families: u64,
    /// Revocations whose tokens have all expired.
    pub revocations: u64,
    /// Grace answers past their use.
    pub grace_responses: u64,
    /// Authorization codes long expired, used or not.
    pub codes: u64,
}

/// An end user: a person who signs in to grant applications access to their data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Stable id (`usr_…`): the `sub` of the tokens issued on their behalf.
    pub id: String,
    /// Sign-in name (unique).
    pub name: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    /// Whether they may sign in (a disabled user's tokens are revoked).
    pub active: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last change.
    pub updated_at: i64,
}

/// An end user's web session (stored by the HMAC of the cookie, never the cookie).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserSessionRow {
    /// HMAC of the cookie value.
    pub id_hash: [u8; 32],
    /// The user's id.
    pub user_id: String,
    /// The session's CSRF token.
    pub csrf_token: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Last request (for idle expiry).
    pub last_seen_at: i64,
    /// Absolute expiry.
    pub expires_at: i64,
    /// Address it signed in from.
    pub source: Option<String>,
}

/// What a user allowed an application (a client): the grant behind the tokens
/// issued to it on their behalf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentRecord {
    /// The user's id.
    pub user_id: String,
    /// The application.
    pub client_id: String,
    /// The application's name (when listed).
    pub client_name: String,
    /// Scopes allowed.
    pub scopes: portcullis_core::ScopeSet,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds of the last change.
    pub updated_at: i64,
    /// Last use of one of its tokens at the resource API (when listed).
    pub last_used_at: Option<i64>,
}

/// An authorization code to store: only its hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCode {
    /// HMAC of the code.
    pub hash: [u8; 32],
    /// The client it was issued to.
    pub client_id: String,
    /// The user who allowed it.
    pub user_id: String,
    /// The redirect URI it was sent to.
    pub redirect_uri: String,
    /// Whether the authorization request named the redirect URI (then the token
    /// request must name the same one, RFC 6749 §4.1.3).
    pub redirect_uri_given: bool,
    /// Scopes allowed.
    pub scopes: portcullis_core::ScopeSet,
    /// PKCE S256 challenge (RFC 7636).
    pub code_challenge: String,
    /// The family the grant that spends it records, chosen when it is issued
    /// (so that spending it only flips a flag; stored codes issued before had
    /// none, and their grant chose one).
    pub family_id: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub expires_at: i64,
}

/// An authorization code as stored, with what became of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCode {
    /// The code and what it was issued for.
    pub code: NewCode,
    /// Whether a grant spent it (a second presentation is reuse): that grant
    /// recorded the code's family.
    pub spent: bool,
    /// Whether the user who allowed it is active.
    pub user_active: bool,
}

/// What ending or narrowing a consent did to its token families.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsentChange {
    /// Families revoked whole (the grant ended, or a family kept no scope).
    pub revoked: Vec<String>,
    /// Families narrowed to the scopes kept: their access tokens issued until now
    /// are revoked (a `family` revocation with `issued_before`); their refresh
    /// tokens live on and yield only the scopes kept.
    pub narrowed: Vec<String>,
}
