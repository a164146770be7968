//! The conformance suite against [`PgStore`] (a database of its own per check, on
//! the test PostgreSQL: `PORTCULLIS_TEST_DATABASE_URL`, or a throwaway server the
//! testkit starts), and what only the PostgreSQL store has: several stores (nodes)
//! on one database, migrations under a lock, and a revocation feed that does not
//! miss a late commit.

use crate::conformance::Backend;
use crate::conformance::fixtures;
use portcullis_store::prelude::*;
use portcullis_store::{PgStore, StoreError, StoreEvent};
use portcullis_testkit::pg::TestDatabase;
use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

/// The PostgreSQL harness: remembers the database of the check it serves.
#[derive(Default)]
pub struct Postgres {
    url: std::sync::Mutex<Option<String>>,
}

/// A new database (dropped with the returned guard).
async fn database() -> TestDatabase {
    tokio::task::spawn_blocking(TestDatabase::create)
        .await
        .unwrap()
        .unwrap()
}

/// A connection of its own to `url`, as another process would have.
async fn beside(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

async fn store_on(url: &str) -> PgStore {
    PgStore::connect(url, 8).await.unwrap()
}

#[async_trait::async_trait]
impl Backend for Postgres {
    type S = PgStore;

    async fn fresh(&self) -> (Box<dyn Any + Send>, Arc<PgStore>) {
        let db = database().await;
        let store = store_on(db.url()).await;
        assert!(
            store.migrate().await.unwrap() > 0,
            "a fresh database is migrated"
        );
        *self.url.lock().unwrap() = Some(db.url().to_owned());
        (Box::new(db), Arc::new(store))
    }

    async fn fail_audit_inserts_of(&self, _store: &PgStore, kind: &str) {
        let url = self.url.lock().unwrap().clone().unwrap();
        let name: String = kind
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let sql = format!(
            "CREATE FUNCTION fail_audit_{name}() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$; \
             CREATE TRIGGER fail_audit_{name} BEFORE INSERT ON audit_events FOR EACH ROW \
             WHEN (NEW.kind = '{}') EXECUTE FUNCTION fail_audit_{name}();",
            kind.replace('\'', "''")
        );
        beside(&url).await.batch_execute(&sql).await.unwrap();
    }
}

conformance_tests!(crate::postgres::Postgres::default());

/// Two stores (two nodes) on one new, migrated database.
async fn two_nodes() -> (TestDatabase, PgStore, PgStore) {
    let db = database().await;
    let a = store_on(db.url()).await;
    a.migrate().await.unwrap();
    let b = store_on(db.url()).await;
    (db, a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_migrating_at_once_apply_each_migration_once() {
    let db = database().await;
    let (a, b, c) = (
        store_on(db.url()).await,
        store_on(db.url()).await,
        store_on(db.url()).await,
    );
    let (ra, rb, rc) = tokio::join!(a.migrate(), b.migrate(), c.migrate());
    let ran = [ra.unwrap(), rb.unwrap(), rc.unwrap()];
    let versions: i64 = beside(db.url())
        .await
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(ran.iter().sum::<usize>(), versions as usize, "{ran:?}");
    assert_eq!(ran.iter().filter(|n| **n > 0).count(), 1, "{ran:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_eight_rotations_spread_over_two_nodes_exactly_one_wins() {
    let (_db, a, b) = two_nodes().await;
    let (a, b) = (Arc::new(a), Arc::new(b));
    fixtures::create(&*a, fixtures::PC).await;
    fixtures::granted(&*a, fixtures::grant(fixtures::PC, "fam_1", None)).await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let node = if i % 2 == 0 {
                Arc::clone(&a)
            } else {
                Arc::clone(&b)
            };
            tokio::spawn(async move {
                let r = fixtures::rotation(
                    fixtures::PC,
                    "fam_1",
                    &fixtures::rt("fam_1"),
                    &format!("rt_next_{i}"),
                    200,
                );
                node.rotate_refresh_token(r).await.unwrap()
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
    assert_eq!(fixtures::audit_of(&*b, "token.refresh").await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_that_commits_late_is_still_read_by_the_feed() {
    let (db, a, _b) = two_nodes().await;
    let first = a.revocation_feed(None, 0).await.unwrap();
    assert!(first.revocations.is_empty());
    // A transaction writes a revocation (taking the lower id) and stays open…
    let late = beside(db.url()).await;
    late.batch_execute(
        "BEGIN; INSERT INTO revocations (kind, target, created_at, expires_at) \
         VALUES ('token', 'jti_late', 100, 9999999999)",
    )
    .await
    .unwrap();
    // …while another commits and is read.
    let audit = portcullis_store::NewAuditEvent::new(
        100,
        portcullis_core::AuditKind::TokenRevoke,
        portcullis_store::Actor::system(),
    );
    a.revoke_access_token("jti_early", 100, 9_999_999_999, &audit)
        .await
        .unwrap();
    let second = a.revocation_feed(Some(first.cursor), 0).await.unwrap();
    let targets: Vec<&str> = second
        .revocations
        .iter()
        .map(|r| r.target.as_str())
        .collect();
    assert_eq!(targets, ["jti_early"]);
    late.batch_execute("COMMIT").await.unwrap();
    // Reading by id after the one seen would miss it for ever…
    let early_id = second.revocations[0].id;
    let by_id = a.revocations_since(early_id, 0).await.unwrap();
    assert!(by_id.is_empty(), "the late one has the lower id: {by_id:?}");
    // …the feed does not.
    let third = a.revocation_feed(Some(second.cursor), 0).await.unwrap();
    assert!(
        third.revocations.iter().any(|r| r.target == "jti_late"),
        "{:?}",
        third.revocations
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_on_one_node_are_announced_to_the_others() {
    let (_db, a, b) = two_nodes().await;
    let mut events = b.events().expect("PostgreSQL announces changes");
    fixtures::create(&a, fixtures::PC).await;
    a.disable_client(
        &fixtures::cid(fixtures::PC),
        100,
        1000,
        &fixtures::admin_event(100, "client.disable", fixtures::PC),
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let e = tokio::time::timeout(Duration::from_secs(5), events.recv())
            .await
            .expect("an event within 5 s")
            .unwrap();
        seen.push(e);
    }
    let client = StoreEvent::Client(fixtures::PC.into());
    assert_eq!(seen, [client.clone(), StoreEvent::Revocations, client]);
}

#[tokio::test]
async fn a_database_that_cannot_be_reached_fails_fast_as_unavailable() {
    // Port 1 on loopback: nothing listens there.
    let started = std::time::Instant::now();
    let err = PgStore::connect("postgres://portcullis@127.0.0.1:1/portcullis", 4)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
}

/// Families of `pc_a` and `pc_b`, 125,000 each with a refresh token, their keys
/// interleaved: more than two slices of the sweep (100,000 keys each).
const TWO_CLIENTS_MANY_TOKENS: &str = "INSERT INTO token_families (id, client_id, subject, \
     scopes, grant_type, created_at, expires_at) SELECT 'fam_' || lpad(n::text, 6, '0'), \
     CASE WHEN n % 2 = 0 THEN 'pc_a' ELSE 'pc_b' END, 'x', 's', 'client_credentials', 0, 5000 \
     FROM generate_series(0, 249999) n; \
     INSERT INTO refresh_tokens (id, token_hash, family_id, scopes, created_at, expires_at) \
     SELECT 'rt_' || substr(id, 5), '\\x00'::bytea, id, 's', 0, 5000 FROM token_families;";

/// The refresh tokens of each client's families left, and the families noted for
/// a sweep.
async fn tokens_left(raw: &tokio_postgres::Client) -> (i64, i64, i64) {
    let row = raw
        .query_one(
            "SELECT count(*) FILTER (WHERE substr(id, 4)::int % 2 = 0), \
             count(*) FILTER (WHERE substr(id, 4)::int % 2 = 1), \
             (SELECT count(*) FROM refresh_sweep) FROM refresh_tokens",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

/// A new, migrated database with [`TWO_CLIENTS_MANY_TOKENS`], a store on it, and
/// a connection of its own to read it.
async fn two_clients_many_tokens() -> (TestDatabase, PgStore, tokio_postgres::Client) {
    let db = database().await;
    let store = store_on(db.url()).await;
    store.migrate().await.unwrap();
    fixtures::create(&store, "pc_a").await;
    fixtures::create(&store, "pc_b").await;
    let raw = beside(db.url()).await;
    raw.batch_execute(TWO_CLIENTS_MANY_TOKENS).await.unwrap();
    (db, store, raw)
}

/// Deleting a client removes its refresh tokens a slice at a time (three slices
/// here) and returns once they are gone; the other client's stay, and nothing is
/// left noted.
#[tokio::test]
async fn a_deleted_client_s_refresh_tokens_go_in_slices() {
    let (_db, store, raw) = two_clients_many_tokens().await;
    assert_eq!(tokens_left(&raw).await, (125_000, 125_000, 0));
    store
        .delete_client(
            &fixtures::cid("pc_a"),
            200,
            5000,
            &fixtures::admin_event(200, "client.delete", "pc_a"),
        )
        .await
        .unwrap();
    assert_eq!(tokens_left(&raw).await, (0, 125_000, 0));
}

/// A sweep cut short (the node stopped after the delete committed) is ended by
/// the next pruning pass.
#[tokio::test]
async fn a_sweep_cut_short_ends_at_the_next_pruning_pass() {
    let (_db, store, raw) = two_clients_many_tokens().await;
    raw.batch_execute(
        "INSERT INTO refresh_sweep (family_id, client_id) \
         SELECT id, client_id FROM token_families WHERE client_id = 'pc_a'; \
         DELETE FROM token_families WHERE client_id = 'pc_a'; \
         DELETE FROM clients WHERE id = 'pc_a';",
    )
    .await
    .unwrap();
    assert_eq!(tokens_left(&raw).await, (125_000, 125_000, 125_000));
    // Unusable already: a refresh token is found through its family.
    assert!(
        store
            .find_refresh_token("rt_000000")
            .await
            .unwrap()
            .is_none()
    );
    store.prune(100).await.unwrap();
    assert_eq!(tokens_left(&raw).await, (0, 125_000, 0));
}
