//! Registering scopes (admin pages, admin API, `portcullis scope create`).

use portcullis_core::{AuditKind, Clock, ScopeName};
use portcullis_store::{Actor, ClientStore, NewAuditEvent, ScopeRecord, StoreError};

/// Why a scope was not created.
#[derive(Debug, thiserror::Error)]
pub enum ScopeOpError {
    /// Bad input in a named field (`name`, `description`).
    #[error("{0}: {1}")]
    Field(&'static str, String),
    /// A scope of that name exists.
    #[error("{0}")]
    Conflict(String),
    /// Storage failed.
    #[error(transparent)]
    Fault(#[from] crate::error::Fault),
}

/// Checks and stores a new scope.
pub async fn create(
    store: &dyn ClientStore,
    clock: &dyn Clock,
    name: &str,
    description: &str,
    actor: &Actor,
) -> Result<ScopeRecord, ScopeOpError> {
    let name = ScopeName::parse(name).map_err(|e| ScopeOpError::Field("name", e.to_string()))?;
    let description = portcullis_core::text::nfc(description);
    if description.chars().count() > 500 || portcullis_core::text::has_hidden(&description) {
        return Err(ScopeOpError::Field(
            "description",
            "the description must be at most 500 printable characters (no control, bidi \
             or zero-width characters)"
                .into(),
        ));
    }
    let rec = ScopeRecord {
        name: name.to_string(),
        description,
        created_at: clock.now(),
    };
    let audit = NewAuditEvent {
        at: rec.created_at,
        kind: AuditKind::ScopeCreate,
        actor: actor.clone(),
        target: Some(rec.name.clone()),
        client_id: None,
        label: None,
        detail: None,
    };
    match store.create_scope(&rec, &audit).await {
        Ok(()) => Ok(rec),
        Err(StoreError::Conflict(m)) => Err(ScopeOpError::Conflict(m)),
        Err(e) => Err(ScopeOpError::Fault(e.into())),
    }
}
