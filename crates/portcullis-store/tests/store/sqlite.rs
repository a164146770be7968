//! The conformance suite against [`SqliteStore`] (a database file in a temporary
//! directory per check), and what only the SQLite store has: a database file
//! that outlives the process, and its schema version.

use crate::conformance::Backend;
use portcullis_store::prelude::*;
use portcullis_store::{Actor, NewAuditEvent, SqliteStore, StoreError};
use std::any::Any;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The SQLite harness.
pub struct Sqlite;

/// Runs `sql` on a connection of its own to the store's file, as another process
/// would.
async fn execute_beside(path: &Path, sql: String) {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.busy_timeout(Duration::from_secs(10)).unwrap();
        conn.execute_batch(&sql).unwrap();
    })
    .await
    .unwrap();
}

#[async_trait::async_trait]
impl Backend for Sqlite {
    type S = SqliteStore;

    async fn fresh(&self) -> (Box<dyn Any + Send>, Arc<SqliteStore>) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("portcullis.db"))
            .await
            .unwrap();
        assert!(
            store.migrate().await.unwrap() > 0,
            "a fresh file is migrated"
        );
        (Box::new(dir), Arc::new(store))
    }

    async fn fail_audit_inserts_of(&self, store: &SqliteStore, kind: &str) {
        let name: String = kind
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let sql = format!(
            "CREATE TRIGGER fail_audit_{name} BEFORE INSERT ON audit_events \
             WHEN NEW.kind = '{}' BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
            kind.replace('\'', "''")
        );
        execute_beside(store.path(), sql).await;
    }
}

conformance_tests!(crate::sqlite::Sqlite);

#[tokio::test]
async fn what_was_committed_is_there_when_the_file_is_opened_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portcullis.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.migrate().await.unwrap();
    store
        .put_setting("issuer", "https://a.example")
        .await
        .unwrap();
    store
        .append_audit(&NewAuditEvent::new(
            100,
            portcullis_core::AuditKind::KeyRotate,
            Actor::system(),
        ))
        .await
        .unwrap();
    drop(store);

    let again = SqliteStore::open(&path).await.unwrap();
    assert_eq!(again.migrate().await.unwrap(), 0);
    assert_eq!(
        again.get_setting("issuer").await.unwrap().as_deref(),
        Some("https://a.example")
    );
    let events = again
        .list_audit(&portcullis_store::AuditFilter {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
}

#[tokio::test]
async fn a_database_newer_than_this_binary_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("portcullis.db");
    let store = SqliteStore::open(&path).await.unwrap();
    store.migrate().await.unwrap();
    execute_beside(
        &path,
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (9999, 'future', 0);"
            .into(),
    )
    .await;
    let err = store.migrate().await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Backend(m) if m.contains("newer")),
        "{err:?}"
    );
    store.ping().await.unwrap();
}
