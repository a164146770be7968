//! Rotating the signing key (admin pages, admin API, `portcullis keys rotate`).

use crate::keyring::{KeyringError, create_signing_key};
use portcullis_core::{AuditKind, Ttl};
use portcullis_crypto::{Algorithm, MasterKey};
use portcullis_store::{Actor, DynStore, NewAuditEvent};

/// Makes a new `alg` key current. The previous key verifies until the
/// longest-lived access token it may have signed expires (the longest of
/// `default_access_ttl` and every client's own lifetime). Audited as `key.rotate`.
/// Returns the new `kid`.
pub async fn rotate(
    store: &DynStore,
    master: &MasterKey,
    alg: Algorithm,
    now: i64,
    default_access_ttl: Ttl,
    actor: &Actor,
) -> Result<String, KeyringError> {
    let longest = store
        .list_clients()
        .await?
        .iter()
        .filter_map(|c| c.access_token_ttl)
        .map(|t| t.secs_i64())
        .fold(default_access_ttl.secs_i64(), i64::max);
    let kid = create_signing_key(store, master, alg, now, longest).await?;
    store
        .append_audit(&NewAuditEvent {
            at: now,
            kind: AuditKind::KeyRotate,
            actor: actor.clone(),
            target: Some(kid.clone()),
            client_id: None,
            label: None,
            detail: Some(serde_json::json!({ "alg": alg.as_str() }).to_string()),
        })
        .await?;
    Ok(kid)
}
