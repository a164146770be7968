//! Rows as the rest of Portcullis sees them (no SQL types here).

use portcullis_core::Client;
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
    /// `current`, `previous` or `retired`.
    pub state: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Until when a `previous` key still verifies.
    pub retire_after: Option<i64>,
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
    /// Space-separated scopes.
    pub scopes: String,
    /// Grant type name.
    pub grant_type: String,
    /// Unix seconds.
    pub created_at: i64,
    /// When the family's last token expires.
    pub expires_at: i64,
    /// First refresh token: its hash and expiry.
    pub refresh_token: Option<([u8; 32], i64)>,
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
    /// Scopes.
    pub scopes: Vec<String>,
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
