//! JSON shapes shared by the CLI's `--json` output and the HTTP APIs (SPEC §2).

use portcullis_core::time::rfc3339;
use portcullis_core::{Client, Ttl};
use portcullis_store::{ConsentRecord, FamilyRecord, LabelRecord, ScopeRecord, StoredKey};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{ArrayBuilder, Schema};

/// A string schema with these values only.
fn one_of(description: &str, values: &[&str]) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .enum_values(Some(values.iter().copied()))
}

fn client_status() -> Schema {
    one_of("`active` or `disabled`.", &["active", "disabled"]).into()
}

fn grant_types() -> Schema {
    ArrayBuilder::new()
        .description(Some("Allowed grants."))
        .items(one_of(
            "A grant type.",
            &["client_credentials", "refresh_token", "authorization_code"],
        ))
        .into()
}

fn key_state() -> Schema {
    one_of(
        "`current` (signs), `previous` (verifies until its tokens expire) or `retired`.",
        &["current", "previous", "retired"],
    )
    .into()
}

fn key_alg() -> Schema {
    one_of("Algorithm.", &["RS256", "ES256", "EdDSA"]).into()
}

fn current() -> Schema {
    one_of("Always `current`.", &["current"]).into()
}

fn bearer() -> Schema {
    one_of("Always `Bearer`.", &["Bearer"]).into()
}

fn any_json() -> Schema {
    ObjectBuilder::new()
        .schema_type(SchemaType::AnyValue)
        .description(Some("Extra detail (a JSON value), or null."))
        .into()
}

/// An end user, as the API answers and `portcullis user list --json` prints it
/// (never the password hash).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct UserView {
    /// Stable id (`usr_…`): the `sub` of the tokens issued on their behalf.
    pub id: String,
    /// Sign-in name.
    pub name: String,
    /// `active` or `disabled`.
    #[schema(schema_with = user_status)]
    pub status: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
}

fn user_status() -> Schema {
    one_of(
        "`active`, or `disabled`: cannot sign in, and every token issued on their behalf \
         is revoked.",
        &["active", "disabled"],
    )
    .into()
}

impl UserView {
    /// The view of a stored user.
    pub fn new(u: &portcullis_store::UserRecord) -> Self {
        Self {
            id: u.id.clone(),
            name: u.name.clone(),
            status: if u.active { "active" } else { "disabled" }.into(),
            created_at: portcullis_core::time::rfc3339(u.created_at),
        }
    }
}

/// What an end user allowed one application (a grant), as the admin API answers it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct GrantView {
    /// The application's client id.
    pub client_id: String,
    /// The application's name.
    pub client_name: String,
    /// The scopes the user allowed it.
    pub scopes: Vec<String>,
    /// RFC 3339: when the user first allowed it.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// RFC 3339 or null: when the application last used a token of this grant.
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
}

impl From<&ConsentRecord> for GrantView {
    fn from(c: &ConsentRecord) -> Self {
        Self {
            client_id: c.client_id.clone(),
            client_name: c.client_name.clone(),
            scopes: c.scopes.to_vec(),
            created_at: rfc3339(c.created_at),
            last_used_at: c.last_used_at.map(rfc3339),
        }
    }
}

/// A client, as the API answers and `portcullis client show --json` prints it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ClientView {
    /// Id.
    pub client_id: String,
    /// Name.
    pub name: String,
    /// Allowed scopes.
    pub scopes: Vec<String>,
    /// Allowed grants.
    #[schema(schema_with = grant_types)]
    pub grant_types: Vec<String>,
    /// Registered redirect URIs.
    pub redirect_uris: Vec<String>,
    /// `active` or `disabled`.
    #[schema(schema_with = client_status)]
    pub status: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Access token lifetime in seconds; `null`: the server's default.
    pub access_token_ttl: Option<u64>,
    /// Refresh token lifetime in seconds; `null`: the server's default.
    pub refresh_token_ttl: Option<u64>,
    /// Whether grants issue refresh tokens.
    pub issue_refresh_token: bool,
    /// Seconds a just-spent refresh token may be retried (0: never).
    pub refresh_reuse_grace: u64,
    /// Shown once, by `create` and `rotate-secret` (absent elsewhere).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub client_secret: Option<String>,
}

impl ClientView {
    /// The view of `c`.
    pub fn new(c: &Client) -> Self {
        Self {
            client_id: c.id.to_string(),
            name: c.name.clone(),
            scopes: c.scopes.to_vec(),
            grant_types: c
                .grant_types
                .iter()
                .map(|g| g.as_str().to_owned())
                .collect(),
            redirect_uris: c.redirect_uris.iter().map(|u| u.to_string()).collect(),
            status: c.status.as_str().into(),
            created_at: rfc3339(c.created_at),
            access_token_ttl: c.access_token_ttl.map(Ttl::secs),
            refresh_token_ttl: c.refresh_token_ttl.map(Ttl::secs),
            issue_refresh_token: c.issue_refresh_token,
            refresh_reuse_grace: c.refresh_reuse_grace.secs(),
            client_secret: None,
        }
    }
}

/// A scope.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScopeView {
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
}

impl From<&ScopeRecord> for ScopeView {
    fn from(s: &ScopeRecord) -> Self {
        Self {
            name: s.name.clone(),
            description: s.description.clone(),
        }
    }
}

/// A token family (`token list --json`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FamilyView {
    /// Family id.
    pub id: String,
    /// Label.
    pub label: Option<String>,
    /// Scopes.
    pub scopes: Vec<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// RFC 3339 or null.
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// RFC 3339 or null.
    #[schema(format = DateTime)]
    pub revoked_at: Option<String>,
}

impl From<&FamilyRecord> for FamilyView {
    fn from(f: &FamilyRecord) -> Self {
        Self {
            id: f.id.clone(),
            label: f.label.clone(),
            scopes: f.scopes.to_vec(),
            created_at: rfc3339(f.created_at),
            last_used_at: f.last_used_at.map(rfc3339),
            expires_at: rfc3339(f.expires_at),
            revoked_at: f.revoked_at.map(rfc3339),
        }
    }
}

/// Who did it (audit).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActorView {
    /// `client`, `admin`, `user`, `system`.
    pub kind: String,
    /// Client id or user name.
    pub id: Option<String>,
}

/// An audit event (`audit list --json`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AuditView {
    /// Sequence number (use with `--before` to page).
    pub id: i64,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub at: String,
    /// What happened.
    pub kind: String,
    /// Who.
    pub actor: ActorView,
    /// What it was done to.
    pub target: Option<String>,
    /// Client concerned.
    pub client_id: Option<String>,
    /// Label concerned.
    pub label: Option<String>,
    /// Source address.
    pub source: Option<String>,
    /// Extra detail.
    #[schema(schema_with = any_json)]
    pub detail: Option<serde_json::Value>,
}

impl From<&portcullis_store::AuditRecord> for AuditView {
    fn from(r: &portcullis_store::AuditRecord) -> Self {
        Self {
            id: r.id,
            at: rfc3339(r.at),
            kind: r.kind.clone(),
            actor: ActorView {
                kind: r.actor_kind.clone(),
                id: r.actor_id.clone(),
            },
            target: r.target.clone(),
            client_id: r.client_id.clone(),
            label: r.label.clone(),
            source: r.source.clone(),
            detail: r
                .detail
                .as_deref()
                .and_then(|d| serde_json::from_str(d).ok()),
        }
    }
}

/// A label (data access point) of a client.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LabelView {
    /// Name.
    pub name: String,
    /// Token families neither revoked nor expired.
    pub live_families: i64,
    /// RFC 3339 or null.
    #[schema(format = DateTime)]
    pub last_issued_at: Option<String>,
    /// RFC 3339 or null.
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
    /// Uploads made.
    pub uploads: i64,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<&LabelRecord> for LabelView {
    fn from(l: &LabelRecord) -> Self {
        Self {
            name: l.name.clone(),
            live_families: l.live_families,
            last_issued_at: l.last_issued_at.map(rfc3339),
            last_used_at: l.last_used_at.map(rfc3339),
            uploads: l.uploads,
            created_at: rfc3339(l.created_at),
        }
    }
}

/// A signing key (`keys list --json`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyView {
    /// Key id.
    pub kid: String,
    /// Algorithm.
    #[schema(schema_with = key_alg)]
    pub alg: String,
    /// `current`, `previous` or `retired`.
    #[schema(schema_with = key_state)]
    pub state: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// RFC 3339 or null: until when a previous key verifies.
    #[schema(format = DateTime)]
    pub retire_after: Option<String>,
}

impl From<&StoredKey> for KeyView {
    fn from(k: &StoredKey) -> Self {
        Self {
            kid: k.kid.clone(),
            alg: k.alg.clone(),
            state: k.state.as_str().into(),
            created_at: rfc3339(k.created_at),
            retire_after: k.retire_after.map(rfc3339),
        }
    }
}

/// A freshly rotated key (`keys rotate --json`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RotatedKeyView {
    /// Key id.
    pub kid: String,
    /// Algorithm.
    #[schema(schema_with = key_alg)]
    pub alg: String,
    /// Always `current`.
    #[schema(schema_with = current)]
    pub state: String,
}

/// A minted token set (`token issue --json`): the token endpoint's answer plus the
/// family id.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MintedView {
    /// Family id.
    pub id: String,
    /// The JWT.
    pub access_token: String,
    /// Always `Bearer`.
    #[schema(schema_with = bearer)]
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Present unless the client issues no refresh tokens.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = String, required = false)]
    pub refresh_token: Option<String>,
    /// Granted scopes, space separated.
    pub scope: String,
}

impl From<crate::service::tokens::Issued> for MintedView {
    fn from(i: crate::service::tokens::Issued) -> Self {
        Self {
            id: i.family_id,
            access_token: i.response.access_token,
            token_type: i.response.token_type,
            expires_in: i.response.expires_in,
            refresh_token: i.response.refresh_token,
            scope: i.response.scope,
        }
    }
}
