//! The SQLite store's own tests: what only this backend has (migrations from
//! old layouts, query plans).

#![allow(clippy::unwrap_used)]
use super::*;
use crate::{AuditFilter, AuditStore, ClientStore, NewAuditEvent, NewGrant, TokenStore, UserStore};
use portcullis_core::{AuditKind, ClientId};

/// A database at migration `before` with `sql` run on it, then opened as a store
/// that applies the migrations after it (asserting how many); the directory
/// holds it.
async fn migrated_from(before: usize, sql: &str) -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let mut raw = conn::open(&path, conn::Role::Writer).unwrap();
    assert_eq!(
        apply_migrations(&mut raw, &SQLITE[..before]).unwrap(),
        before
    );
    raw.execute_batch(sql).unwrap();
    drop(raw);
    let store = SqliteStore::open(&path).await.unwrap();
    assert_eq!(store.migrate().await.unwrap(), SQLITE.len() - before);
    (dir, store)
}

#[tokio::test]
async fn migration_5_keeps_refresh_tokens_stored_before_it_findable() {
    let sql = format!(
        "INSERT INTO clients (id, name, status, grant_types, redirect_uris, created_at, \
         updated_at) VALUES ('pc_old', 'old', 'active', '[]', '[]', 0, 0); \
         INSERT INTO token_families (id, client_id, subject, scopes, grant_type, \
         created_at, expires_at) VALUES ('fam_old', 'pc_old', 'pc_old', 'upload-data', \
         'client_credentials', 0, 5000); \
         INSERT INTO refresh_tokens (token_hash, family_id, scopes, created_at, expires_at) \
         VALUES (x'{}AB', 'fam_old', 'upload-data', 0, 5000);",
        "00".repeat(31)
    );
    let (_dir, store) = migrated_from(4, &sql).await;
    let id = format!("h{}AB", "00".repeat(31));
    let found = store.find_refresh_token(&id).await.unwrap().unwrap();
    let mut hash = [0u8; 32];
    hash[31] = 0xAB;
    assert_eq!(found.token_hash, hash);
    assert_eq!(found.family.id, "fam_old");
    assert_eq!(found.spent_at, None);
}

#[tokio::test]
async fn migration_11_keeps_a_code_spent_before_it_spent_and_one_unspent_spendable() {
    let sql = format!(
        "INSERT INTO clients (id, name, status, grant_types, redirect_uris, created_at, \
         updated_at) VALUES ('pc_app', 'app', 'active', '[]', '[]', 0, 0); \
         INSERT INTO users (id, name, password_hash, status, created_at, updated_at) \
         VALUES ('usr_a', 'alice', 'x', 'active', 0, 0); \
         INSERT INTO authorization_codes (code_hash, client_id, user_id, redirect_uri, \
         redirect_uri_given, scopes, code_challenge, created_at, expires_at, used_at, family_id) \
         VALUES (x'01{z}', 'pc_app', 'usr_a', 'https://app/cb', 1, 'upload-data', 'c', 0, 60, \
         30, 'fam_spent'), (x'02{z}', 'pc_app', 'usr_a', 'https://app/cb', 1, 'upload-data', \
         'c', 0, 60, NULL, NULL);",
        z = "00".repeat(31)
    );
    let (_dir, store) = migrated_from(10, &sql).await;
    let mut h = [0u8; 32];
    h[0] = 1;
    let spent = store.find_code(&h).await.unwrap();
    let spent = spent.unwrap();
    assert!(spent.spent);
    assert_eq!(spent.code.family_id.as_deref(), Some("fam_spent"));
    h[0] = 2;
    let fresh = store.find_code(&h).await.unwrap().unwrap();
    assert!(!fresh.spent);
    assert_eq!(fresh.code.family_id, None, "its grant chooses a family");
}

#[tokio::test]
async fn migration_12_counts_the_tokens_issued_before_it_per_day() {
    let day = 20 * 86_400;
    let sql = format!(
        "INSERT INTO audit_events (at, kind, actor_kind) VALUES \
         ({a}, 'token.issue', 'client'), ({b}, 'token.refresh', 'client'), \
         ({c}, 'token.issue', 'client'), ({b}, 'client.create', 'admin');",
        a = day - 10,
        b = day + 10,
        c = day + 20,
    );
    let (_dir, store) = migrated_from(11, &sql).await;
    let stats = store.dashboard(day + 100, 2).await.unwrap();
    assert_eq!(stats.tokens_per_day, [(day - 86_400, 1), (day, 2)]);
}

/// Before migration 13 a grant rewrote its label's last issue; after it, the
/// label's families carry it. A time recorded the old way still counts, and a
/// grant after the migration moves it on without touching the label's row.
/// A grace answer saved before migration 15 is still returned after it (from
/// its own table), and the pruning pass still clears it after the grace.
#[tokio::test]
async fn migration_15_keeps_a_grace_answer_saved_before_it() {
    let sql = &format!(
        "INSERT INTO clients (id, name, status, grant_types, redirect_uris, created_at, \
               updated_at, refresh_reuse_grace) \
               VALUES ('pc_old', 'old', 'active', '[]', '[]', 0, 0, 30); \
               INSERT INTO token_families (id, client_id, subject, scopes, grant_type, \
               created_at, expires_at) VALUES ('fam_old', 'pc_old', 'pc_old', 'upload-data', \
               'client_credentials', 0, 5000); \
               INSERT INTO refresh_tokens (id, token_hash, family_id, scopes, created_at, \
               expires_at, spent_at, replaced_by, grace_response) VALUES \
               ('rt_old', x'{h}', 'fam_old', 'upload-data', 0, 5000, 100, 'rt_new', x'0102'), \
               ('rt_new', x'{h}', 'fam_old', 'upload-data', 100, 5000, NULL, NULL, NULL);",
        h = "00".repeat(32)
    );
    let (_dir, store) = migrated_from(14, sql).await;
    let old = store.find_refresh_token("rt_old").await.unwrap().unwrap();
    assert_eq!(old.spent_at, Some(100));
    assert_eq!(old.grace_response.as_deref(), Some(&[1u8, 2][..]));
    let new = store.find_refresh_token("rt_new").await.unwrap().unwrap();
    assert_eq!(new.grace_response, None);
    assert_eq!(store.prune(129).await.unwrap().grace_responses, 0);
    assert_eq!(store.prune(130).await.unwrap().grace_responses, 1);
    let old = store.find_refresh_token("rt_old").await.unwrap().unwrap();
    assert_eq!((old.spent_at, old.grace_response), (Some(100), None));
}

/// Deleting a client deletes the grace answers of its refresh tokens with them,
/// and no other client's.
#[tokio::test]
async fn a_deleted_client_leaves_no_grace_answer() {
    let sql = &format!(
        "INSERT INTO clients (id, name, status, grant_types, redirect_uris, created_at, \
         updated_at) VALUES ('pc_a', 'a', 'active', '[]', '[]', 0, 0), \
         ('pc_b', 'b', 'active', '[]', '[]', 0, 0); \
         INSERT INTO token_families (id, client_id, subject, scopes, grant_type, created_at, \
         expires_at) VALUES ('fam_a', 'pc_a', 'pc_a', 's', 'client_credentials', 0, 5000), \
         ('fam_b', 'pc_b', 'pc_b', 's', 'client_credentials', 0, 5000); \
         INSERT INTO refresh_tokens (id, token_hash, family_id, scopes, created_at, expires_at, \
         spent_at) VALUES ('rt_a', x'{h}', 'fam_a', 's', 0, 5000, 100), \
         ('rt_b', x'{h}', 'fam_b', 's', 0, 5000, 100); \
         INSERT INTO refresh_grace (id, spent_at, response) \
         VALUES ('rt_a', 100, x'01'), ('rt_b', 100, x'02');",
        h = "00".repeat(32)
    );
    let (_dir, store) = migrated_from(SQLITE.len(), sql).await;
    let a = ClientId::parse("pc_a").unwrap();
    store
        .delete_client(&a, 200, 5000, &event(200, "client.delete", "pc_a", "-"))
        .await
        .unwrap();
    let left: Vec<String> = store
        .read(|c| {
            let mut stmt = c.prepare("SELECT id FROM refresh_grace")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
        .unwrap();
    assert_eq!(left, ["rt_b"]);
}

#[tokio::test]
async fn migration_13_keeps_a_label_s_last_issue_recorded_before_it() {
    let sql = "INSERT INTO clients (id, name, status, grant_types, redirect_uris, created_at, \
               updated_at) VALUES ('pc_old', 'old', 'active', '[]', '[]', 0, 0); \
               INSERT INTO labels (client_id, name, created_at, last_issued_at) \
               VALUES ('pc_old', 'home', 10, 500); \
               INSERT INTO token_families (id, client_id, label, subject, scopes, grant_type, \
               created_at, expires_at) VALUES ('fam_old', 'pc_old', 'home', 'pc_old', \
               'upload-data', 'client_credentials', 10, 5000);";
    let (_dir, store) = migrated_from(12, sql).await;
    let client = ClientId::parse("pc_old").unwrap();
    let last_issue = |labels: Vec<crate::LabelRecord>| {
        labels
            .iter()
            .map(|l| (l.name.clone(), l.last_issued_at, l.live_families))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        last_issue(store.list_labels(&client, 200).await.unwrap()),
        [("home".to_owned(), Some(500), 1)]
    );
    let mut later = grant("pc_old", "fam_new", "rt_new", 5000);
    later.created_at = 700;
    assert!(store.record_grant(later).await.unwrap());
    assert_eq!(
        last_issue(store.list_labels(&client, 800).await.unwrap()),
        [("home".to_owned(), Some(700), 2)]
    );
    let row: Option<i64> = store
        .read(|c| {
            Ok(c.query_row(
                "SELECT last_issued_at FROM labels WHERE name = 'home'",
                [],
                |r| r.get(0),
            )?)
        })
        .await
        .unwrap();
    assert_eq!(row, Some(500), "the grant left the label's row as it was");
}

async fn refresh_rows(store: &SqliteStore) -> i64 {
    store
        .read(|c| Ok(c.query_row("SELECT count(*) FROM refresh_tokens", [], |r| r.get(0))?))
        .await
        .unwrap()
}

fn grant(client: &str, family: &str, selector: &str, expires_at: i64) -> NewGrant {
    NewGrant {
        family_id: family.into(),
        client_id: client.into(),
        label: Some("home".into()),
        subject: client.into(),
        scopes: portcullis_core::ScopeSet::parse("upload-data").unwrap(),
        grant_type: "client_credentials".into(),
        created_at: 100,
        expires_at,
        refresh_token: Some(crate::NewRefresh {
            id: selector.into(),
            hash: [7; 32],
            expires_at,
        }),
        actor: crate::Actor::system(),
        spends_code: None,
    }
}

/// Refresh tokens have no foreign key to their family since migration 7: the
/// store itself must leave no row behind when a client is deleted or a family
/// is pruned.
#[tokio::test]
async fn refresh_tokens_go_with_their_client_and_with_pruning() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
    store.migrate().await.unwrap();
    store
        .write(|tx| {
            tx.execute_batch(
                "INSERT INTO clients (id, name, status, grant_types, redirect_uris, \
                 created_at, updated_at) VALUES ('pc_gone', 'g', 'active', '[]', '[]', 0, 0), \
                 ('pc_kept', 'k', 'active', '[]', '[]', 0, 0);",
            )?;
            Ok(())
        })
        .await
        .unwrap();
    store
        .record_grant(grant("pc_gone", "fam_g", "r_g", 1000))
        .await
        .unwrap();
    store
        .record_grant(grant("pc_kept", "fam_k", "r_k", 1000))
        .await
        .unwrap();
    store
        .record_grant(grant("pc_kept", "fam_short", "r_s", 500))
        .await
        .unwrap();
    assert_eq!(refresh_rows(&store).await, 3);

    store
        .delete_client(
            &ClientId::parse("pc_gone").unwrap(),
            100,
            200,
            &NewAuditEvent::new(100, AuditKind::ClientDelete, crate::Actor::system()),
        )
        .await
        .unwrap();
    assert_eq!(refresh_rows(&store).await, 2);
    assert!(store.find_refresh_token("r_k").await.unwrap().is_some());

    let pruned = store.prune(500).await.unwrap();
    assert_eq!(pruned.families, 1);
    assert_eq!(refresh_rows(&store).await, 1);
    assert!(store.find_refresh_token("r_s").await.unwrap().is_none());
    assert!(store.find_refresh_token("r_k").await.unwrap().is_some());
}

fn event(at: i64, kind: &str, client: &str, label: &str) -> NewAuditEvent {
    NewAuditEvent {
        at,
        kind: kind.parse().unwrap(),
        actor: crate::Actor::system(),
        target: None,
        client_id: Some(client.into()),
        label: Some(label.into()),
        detail: None,
    }
}

async fn audit_ids(store: &SqliteStore, f: AuditFilter) -> Vec<i64> {
    let found = store.list_audit(&f).await.unwrap();
    found.iter().map(|r| r.id).collect()
}

fn everything() -> AuditFilter {
    AuditFilter {
        limit: 100,
        ..AuditFilter::default()
    }
}

fn of_client(client: &str) -> AuditFilter {
    AuditFilter {
        client_id: Some(client.into()),
        ..everything()
    }
}

/// Each filter alone and together, newest first, paged by id.
#[tokio::test]
async fn the_audit_log_filters_and_pages_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
    store.migrate().await.unwrap();
    // ids 1..=8 in this order.
    for e in [
        event(100, "token.issue", "pc_a", "home-1"),
        event(100, "token.issue", "pc_b", "home-1"),
        event(200, "token.refresh", "pc_a", "home-2"),
        event(200, "token.issue", "pc_a", "home-1"),
        event(300, "token.revoke", "pc_b", "home-2"),
        event(300, "token.issue", "pc_a", "home-2"),
        event(400, "token.refresh", "pc_a", "home-1"),
        event(400, "token.issue", "pc_b", "home-1"),
    ] {
        store.append_audit(&e).await.unwrap();
    }
    let ids = |f| audit_ids(&store, f);
    assert_eq!(ids(everything()).await, [8, 7, 6, 5, 4, 3, 2, 1]);
    assert_eq!(ids(of_client("pc_a")).await, [7, 6, 4, 3, 1]);
    assert!(ids(of_client("pc_none")).await.is_empty());
    let label = AuditFilter {
        label: Some("home-2".into()),
        ..of_client("pc_a")
    };
    assert_eq!(ids(label).await, [6, 3]);
    let kind = AuditFilter {
        kind: Some(AuditKind::TokenIssue),
        ..everything()
    };
    assert_eq!(ids(kind.clone()).await, [8, 6, 4, 2, 1]);
    let kind_and_client = AuditFilter {
        client_id: Some("pc_b".into()),
        ..kind
    };
    assert_eq!(ids(kind_and_client).await, [8, 2]);
    let since = AuditFilter {
        since: Some(300),
        ..of_client("pc_a")
    };
    assert_eq!(ids(since).await, [7, 6]);

    // Pages of two, each after the last id of the one before.
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = ids(AuditFilter {
            before_id: before,
            limit: 2,
            ..of_client("pc_a")
        })
        .await;
        let Some(&last) = page.last() else { break };
        before = Some(last);
        pages.push(page);
    }
    assert_eq!(pages, [vec![7, 6], vec![4, 3], vec![1]]);
}

/// A refresh finds its family by id, whatever the statistics say. After
/// `ANALYZE` (SQLite here keeps `sqlite_stat4` samples), a client the samples do
/// not know looks rare in the index by client, and SQLite chose that index for
/// the family check: every refresh read all of its client's families.
#[tokio::test]
async fn a_refresh_reads_its_family_by_id_on_a_grown_analysed_database() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
    store.migrate().await.unwrap();
    let plan: Vec<String> = store
        .write(|tx| {
            tx.execute_batch(
                "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < 19) \
                 INSERT INTO clients (id, name, status, grant_types, redirect_uris, created_at, \
                 updated_at) SELECT 'pc_' || i, 'c', 'active', '[]', '[]', 0, 0 FROM c; \
                 WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < 19999) \
                 INSERT INTO token_families (id, client_id, label, subject, scopes, grant_type, \
                 created_at, expires_at) SELECT printf('fam_%026d', n), 'pc_' || (n % 20), \
                 'home', 'pc_' || (n % 20), 's', 'client_credentials', n, n + 100 FROM s; \
                 ANALYZE;",
            )?;
            let mut stmt = tx.prepare(&format!(
                "EXPLAIN QUERY PLAN {}",
                super::tokens::SPEND_REFRESH_TOKEN
            ))?;
            let binds = rusqlite::params![1, "new", "rt", "fam_x", "pc_new", [0u8; 32].as_slice()];
            let rows = stmt.query_map(binds, |r| r.get::<_, String>("detail"))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
        .unwrap();
    let families: Vec<&String> = plan.iter().filter(|l| l.contains(" f ")).collect();
    assert_eq!(
        families,
        ["SEARCH f USING INDEX sqlite_autoindex_token_families_1 (id=?)"],
        "{plan:?}"
    );
}

/// A client's sites page and the count of live sites read only the index by
/// client (migration 14), never the families' rows, which a grown database
/// scatters: at 10 million families the page's first fetch read 10,000 of them
/// and the count every live one. The same plans after `ANALYZE`.
#[tokio::test]
async fn sites_are_read_from_the_index_by_client() {
    let seed = "WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i < 19) \
                INSERT INTO clients (id, name, status, grant_types, redirect_uris, created_at, \
                updated_at) SELECT 'pc_' || i, 'c', 'active', '[]', '[]', 0, 0 FROM c; \
                WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < 19999) \
                INSERT INTO token_families (id, client_id, label, subject, scopes, grant_type, \
                created_at, expires_at) SELECT printf('fam_%026d', n), 'pc_' || (n % 20), \
                'home-' || (n % 7), 'pc_' || (n % 20), 's', 'client_credentials', n, n + 100 \
                FROM s;";
    let statements = [
        (
            super::tokens::SITES_OF_A_CLIENT,
            vec!["pc_3".to_owned().into(), 50.into()],
        ),
        (super::audit::LIVE_SITES, vec![50.into()]),
    ];
    for (analysed, plans) in plans_before_and_after_analyze(seed, &statements).await {
        let families: Vec<Vec<&String>> = plans
            .iter()
            .map(|p| p.iter().filter(|l| l.contains("token_families")).collect())
            .collect();
        assert_eq!(
            families[0],
            ["SEARCH token_families USING COVERING INDEX token_families_by_client (client_id=?)"],
            "analysed: {analysed}, {plans:?}"
        );
        assert_eq!(
            families[1],
            ["SCAN token_families USING COVERING INDEX token_families_by_client"],
            "analysed: {analysed}, {plans:?}"
        );
    }
}

/// The plans of `statements` (each with its binds) on a new database, then on it
/// again once `seed` has filled it and `ANALYZE` has run: `(analysed, plans)`.
async fn plans_before_and_after_analyze(
    seed: &'static str,
    statements: &[(&'static str, Vec<rusqlite::types::Value>)],
) -> Vec<(bool, Vec<Vec<String>>)> {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
    store.migrate().await.unwrap();
    let mut all = Vec::new();
    for analysed in [false, true] {
        let statements = statements.to_vec();
        let plans = store
            .write(move |tx| {
                if analysed {
                    tx.execute_batch(&format!("{seed} ANALYZE;"))?;
                }
                let mut plans = Vec::new();
                for (sql, binds) in &statements {
                    let mut stmt = tx.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
                    let rows = stmt.query_map(rusqlite::params_from_iter(binds), |r| {
                        r.get::<_, String>("detail")
                    })?;
                    plans.push(rows.collect::<Result<Vec<String>, _>>()?);
                }
                Ok(plans)
            })
            .await
            .unwrap();
        all.push((analysed, plans));
    }
    all
}

/// The plan SQLite makes for the audit page's query, with the filter's own binds.
async fn audit_plan(store: &SqliteStore, f: &AuditFilter) -> Vec<String> {
    let (sql, binds) = audit::audit_query("EXPLAIN QUERY PLAN SELECT *", f);
    store
        .read(move |c| {
            let mut stmt = c.prepare(&sql)?;
            let rows = stmt.query_map(rusqlite::params_from_iter(binds), |r| {
                r.get::<_, String>("detail")
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
        .unwrap()
}

/// A client's page is a range read of the index by client in the page's order:
/// no scan of the whole log, no sort of all of the client's events. Without a
/// client, the log is read backwards by id, never sorted.
#[tokio::test]
async fn audit_pages_read_in_their_own_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
    store.migrate().await.unwrap();
    let page = AuditFilter {
        kind: Some(AuditKind::TokenIssue),
        before_id: Some(1000),
        limit: 50,
        ..of_client("pc_a")
    };
    assert_eq!(
        audit_plan(&store, &page).await,
        ["SEARCH audit_events USING INDEX audit_events_by_client (client_id=? AND rowid<?)"]
    );
    let by_kind = AuditFilter {
        kind: Some(AuditKind::TokenIssue),
        ..everything()
    };
    assert_eq!(audit_plan(&store, &by_kind).await, ["SCAN audit_events"]);
}

/// Retention removes the oldest events, in batches, and nothing newer; its delete
/// reads the log from its start (no scan of the events it keeps).
#[tokio::test]
async fn audit_retention_removes_only_events_older_than_the_cutoff_in_batches() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("t.db")).await.unwrap();
    store.migrate().await.unwrap();
    for at in [100, 200, 300, 400, 500] {
        store
            .append_audit(&event(at, "token.issue", "pc_a", "home-1"))
            .await
            .unwrap();
    }
    assert_eq!(store.prune_audit(350, 2).await.unwrap(), 2);
    assert_eq!(store.prune_audit(350, 2).await.unwrap(), 1);
    assert_eq!(store.prune_audit(350, 2).await.unwrap(), 0);
    assert_eq!(audit_ids(&store, everything()).await, [5, 4]);
    let plan: Vec<String> = store
        .read(|c| {
            let mut stmt = c.prepare(
                "EXPLAIN QUERY PLAN DELETE FROM audit_events WHERE id IN \
                 (SELECT id FROM audit_events ORDER BY id LIMIT 10) AND at < 5",
            )?;
            let rows = stmt.query_map([], |r| r.get::<_, String>("detail"))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
        .unwrap();
    assert!(
        plan.iter().all(|p| !p.contains("TEMP B-TREE")),
        "no sort of the log: {plan:?}"
    );
}

/// Every statement of the pruning pass reads by an index, before and after
/// `ANALYZE`: the pass holds the writer's transaction, and clearing the grace
/// answers used to read every refresh token (0.6 s at 10 million, during which
/// no grant committed). Only the pass's own grouped families, the clients (for
/// the longest grace) and the grace answers (migration 15: those kept since the
/// last pass) may be read whole.
#[tokio::test]
async fn the_pruning_pass_reads_by_index() {
    let seed = "INSERT INTO clients (id, name, status, grant_types, redirect_uris, created_at, \
                updated_at) VALUES ('pc_a', 'c', 'active', '[]', '[]', 0, 0); \
                WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < 19999) \
                INSERT INTO refresh_tokens (id, token_hash, family_id, scopes, created_at, \
                expires_at, spent_at) SELECT printf('rt_%026d', n), x'00', \
                printf('fam_%026d', n), 's', n, n + 100, n + 1 FROM s; \
                INSERT INTO refresh_grace (id, spent_at, response) \
                SELECT id, spent_at, x'01' FROM refresh_tokens WHERE spent_at % 1000 = 0;";
    let statements = super::prune::PRUNE.map(|sql| (sql, vec![50.into()]));
    for (analysed, plans) in plans_before_and_after_analyze(seed, &statements).await {
        let scans: Vec<&String> = plans
            .iter()
            .flatten()
            .filter(|l| {
                l.starts_with("SCAN ")
                    && !["SCAN f", "SCAN clients", "SCAN refresh_grace"].contains(&l.as_str())
            })
            .collect();
        assert!(scans.is_empty(), "analysed: {analysed}, {plans:?}");
        assert!(
            plans[4].iter().all(|l| !l.contains("refresh_tokens")),
            "the grace answers are cleared without reading refresh tokens: {plans:?}"
        );
    }
}

/// Clients `pc_a` and `pc_b`, ten families each with a refresh token, their
/// keys interleaved (`rt_00` `pc_a`'s, `rt_01` `pc_b`'s, …).
const TWO_CLIENTS_TEN_TOKENS_EACH: &str = "INSERT INTO clients (id, name, status, grant_types, \
     redirect_uris, created_at, updated_at) VALUES ('pc_a', 'a', 'active', '[]', '[]', 0, 0), \
     ('pc_b', 'b', 'active', '[]', '[]', 0, 0); \
     WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < 19) \
     INSERT INTO token_families (id, client_id, subject, scopes, grant_type, created_at, \
     expires_at) SELECT printf('fam_%02d', n), iif(n % 2, 'pc_b', 'pc_a'), 'x', 's', \
     'client_credentials', 0, 5000 FROM s; \
     INSERT INTO refresh_tokens (id, token_hash, family_id, scopes, created_at, expires_at) \
     SELECT 'rt_' || substr(id, 5), zeroblob(32), id, 's', 0, 5000 FROM token_families;";

/// The refresh tokens left, in key order.
async fn refresh_ids(store: &SqliteStore) -> Vec<String> {
    store
        .read(|c| {
            let mut stmt = c.prepare("SELECT id FROM refresh_tokens ORDER BY id")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await
        .unwrap()
}

/// The families noted for a sweep (migration 16).
async fn noted(store: &SqliteStore) -> i64 {
    store
        .read(|c| Ok(c.query_row("SELECT count(*) FROM refresh_sweep", [], |r| r.get(0))?))
        .await
        .unwrap()
}

/// Only `pc_b`'s ten refresh tokens are left (the odd keys).
async fn assert_only_pc_b_s_tokens_left(store: &SqliteStore) {
    let left = refresh_ids(store).await;
    assert_eq!(left.len(), 10, "{left:?}");
    assert!(
        left.iter()
            .all(|id| id[3..].parse::<u32>().unwrap() % 2 == 1),
        "{left:?}"
    );
}

/// A slice of the sweep deletes the noted families' tokens among the keys it
/// reads, and only those; the last slice says it reached the end.
#[tokio::test]
async fn a_sweep_slice_deletes_noted_families_tokens_among_its_keys() {
    let (_dir, store) = migrated_from(SQLITE.len(), TWO_CLIENTS_TEN_TOKENS_EACH).await;
    store
        .write(|tx| {
            tx.execute_batch(
                "INSERT INTO refresh_sweep (family_id, client_id) \
                 SELECT id, client_id FROM token_families WHERE client_id = 'pc_a'; \
                 DELETE FROM token_families WHERE client_id = 'pc_a';",
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let first = store
        .write(|tx| super::sweep::sweep_slice(tx, "", 5))
        .await
        .unwrap();
    assert_eq!(first, (3, Some("rt_04".to_owned())));
    assert_eq!(
        refresh_ids(&store).await[..4],
        ["rt_01", "rt_03", "rt_05", "rt_06"]
    );
    let rest = store
        .write(|tx| super::sweep::sweep_slice(tx, "rt_04", 100))
        .await
        .unwrap();
    assert_eq!(rest, (7, None));
    assert_only_pc_b_s_tokens_left(&store).await;
}

/// Deleting a client removes its refresh tokens a slice at a time and returns
/// once they are gone; the other client's stay, and nothing is left noted.
#[tokio::test]
async fn a_deleted_client_s_refresh_tokens_go_in_slices() {
    let (_dir, mut store) = migrated_from(SQLITE.len(), TWO_CLIENTS_TEN_TOKENS_EACH).await;
    store.sweep_slice = 3;
    let a = ClientId::parse("pc_a").unwrap();
    store
        .delete_client(&a, 200, 5000, &event(200, "client.delete", "pc_a", "-"))
        .await
        .unwrap();
    assert_only_pc_b_s_tokens_left(&store).await;
    assert_eq!(noted(&store).await, 0);
    assert!(store.find_refresh_token("rt_01").await.unwrap().is_some());
}

/// A sweep cut short (the process stopped after the delete committed) is ended
/// by the next pruning pass, which the server runs at start.
#[tokio::test]
async fn a_sweep_cut_short_ends_at_the_next_pruning_pass() {
    let sql = format!(
        "{TWO_CLIENTS_TEN_TOKENS_EACH} \
         INSERT INTO refresh_sweep (family_id, client_id) \
         SELECT id, client_id FROM token_families WHERE client_id = 'pc_a'; \
         DELETE FROM clients WHERE id = 'pc_a';"
    );
    let (_dir, mut store) = migrated_from(SQLITE.len(), &sql).await;
    store.sweep_slice = 4;
    assert_eq!(refresh_ids(&store).await.len(), 20);
    // Unusable already: a refresh token is found through its family.
    assert!(store.find_refresh_token("rt_00").await.unwrap().is_none());
    store.prune(100).await.unwrap();
    assert_only_pc_b_s_tokens_left(&store).await;
    assert_eq!(noted(&store).await, 0);
}

/// A slice reads refresh tokens by key range and finds a noted family by
/// `refresh_sweep`'s key, and the sweep's end finds the grace answers left by
/// the refresh tokens' key: none of them reads a large table whole.
#[tokio::test]
async fn a_sweep_reads_by_key() {
    let seed = "WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < 19999) \
                INSERT INTO refresh_tokens (id, token_hash, family_id, scopes, created_at, \
                expires_at) SELECT printf('rt_%026d', n), x'00', printf('fam_%026d', n), 's', \
                n, n + 100 FROM s; \
                INSERT INTO refresh_sweep (family_id, client_id) \
                SELECT family_id, 'pc_a' FROM refresh_tokens WHERE created_at % 10 = 0; \
                INSERT INTO refresh_grace (id, spent_at, response) VALUES ('rt_x', 1, x'01');";
    let statements = [
        (
            super::sweep::SWEEP_RANGE,
            vec!["rt_1".to_owned().into(), "rt_2".to_owned().into()],
        ),
        (
            "DELETE FROM refresh_grace WHERE id NOT IN (SELECT id FROM refresh_tokens)",
            vec![],
        ),
    ];
    for (analysed, plans) in plans_before_and_after_analyze(seed, &statements).await {
        assert_eq!(
            plans,
            [
                [
                    "SEARCH refresh_tokens USING PRIMARY KEY (id>? AND id<?)",
                    "USING INDEX sqlite_autoindex_refresh_sweep_1 FOR IN-OPERATOR"
                ],
                [
                    "SCAN refresh_grace",
                    "USING INDEX sqlite_autoindex_refresh_tokens_1 FOR IN-OPERATOR"
                ]
            ],
            "analysed: {analysed}"
        );
    }
}

/// Deleting a client finds what it owns by index (families, labels, secrets,
/// scopes, consents, counters, and since migration 17 its upload batches),
/// before and after `ANALYZE`: the delete holds the writer, and reading every
/// batch stored held every grant back for 2 s at 10 million. Only the
/// authorization codes, which live an hour, are read whole.
#[tokio::test]
async fn deleting_a_client_reads_what_it_owns_by_index() {
    let seed = "INSERT INTO clients (id, name, status, grant_types, redirect_uris, created_at, \
                updated_at) VALUES ('pc_a', 'a', 'active', '[]', '[]', 0, 0); \
                WITH RECURSIVE s(n) AS (SELECT 0 UNION ALL SELECT n + 1 FROM s WHERE n < 9999) \
                INSERT INTO data_batches (id, client_id, label, token_id, records, received_at) \
                SELECT printf('bat_%026d', n), 'pc_a', 'home', 'jti', 1, n FROM s;";
    let statements = [(
        "DELETE FROM clients WHERE id = ?1",
        vec!["pc_a".to_owned().into()],
    )];
    for (analysed, plans) in plans_before_and_after_analyze(seed, &statements).await {
        let scans: Vec<&String> = plans[0].iter().filter(|l| l.starts_with("SCAN ")).collect();
        assert_eq!(
            scans,
            ["SCAN authorization_codes"],
            "analysed: {analysed}, {plans:?}"
        );
        assert!(
            plans[0].contains(
                &"SEARCH data_batches USING COVERING INDEX data_batches_by_client (client_id=?)"
                    .to_owned()
            ),
            "{plans:?}"
        );
    }
}
