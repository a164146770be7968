//! What every [`Store`] must do, whatever its database: one check per behaviour,
//! each generic over the store (it never names a backend), run for a backend by
//! [`conformance_tests!`] with that backend's [`Backend`] harness.
//!
//! Checks take one of three forms:
//! - `async fn check<S: Store + ?Sized>(store: &S)`: most of them;
//! - `async fn check<S: Store + ?Sized>(store: Arc<S>)`: those that spawn tasks;
//! - `async fn check<B: Backend>(backend: &B, store: &B::S)`: those that make the
//!   database fail on purpose (atomicity), which only the harness can do.
//!
//! Every store a check gets is fresh and migrated: no clients, no audit events,
//! only the built-in scopes. Times are small Unix seconds chosen per check.

use portcullis_core::scope::BUILT_IN;
use portcullis_core::{
    AuditKind, Client, ClientId, ClientStatus, GrantType, RedirectUri, ScopeName, ScopeSet, Ttl,
};
use portcullis_store::KeyState;
use portcullis_store::prelude::*;
use portcullis_store::{
    Actor, AdminSessionRow, AuditFilter, AuditRecord, FamilyRecord, LabelRecord, NewAuditEvent,
    NewGrant, NewRefresh, NewUpload, Revocation, RevokeScope, Rotation, ScopeRecord, SiteCounters,
    StoreError, StoredKey, UploadOutcome, Usage,
};
use std::any::Any;
use std::sync::Arc;

/// What the suite needs from a backend.
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// The store under test.
    type S: Store;
    /// A fresh, migrated store (the returned guard keeps its files or database
    /// alive until the check ends).
    async fn fresh(&self) -> (Box<dyn Any + Send>, Arc<Self::S>);
    /// Makes every later insert of an audit event of `kind` fail inside the
    /// database, as a full disk or a lost connection would in the middle of a
    /// transaction.
    async fn fail_audit_inserts_of(&self, store: &Self::S, kind: &str);
}

/// Expands, in the invoking module, to a module `conformance` with one
/// `#[tokio::test]` per check of this suite, each on a fresh store from
/// `$backend` (an expression of a type that implements [`Backend`]).
macro_rules! conformance_tests {
    ($backend:expr) => {
        conformance_tests!(@expand $backend;
            store: [
                migrating_again_applies_nothing_and_keeps_what_was_stored,
                a_migrated_store_answers_ping,
                settings_are_absent_until_put_and_a_put_replaces_them,
                a_fresh_store_has_the_built_in_scopes,
                a_created_scope_is_listed_by_name_and_can_be_given_to_clients,
                a_scope_can_be_created_only_once,
                a_created_client_reads_back_as_it_was_written,
                clients_are_listed_oldest_first,
                a_client_id_can_be_registered_only_once,
                a_client_with_an_unknown_scope_is_refused_whole,
                every_change_to_a_missing_client_is_not_found_and_leaves_nothing,
                an_update_replaces_the_editable_settings_only,
                an_update_to_an_unknown_scope_is_refused_and_changes_nothing,
                a_rotated_secret_overlaps_the_old_one_until_old_valid_until,
                a_secret_rotation_valid_until_now_retires_the_old_secret_at_once,
                a_second_secret_rotation_never_extends_an_older_secret,
                disabling_a_client_revokes_its_families_and_all_its_tokens,
                a_disabled_client_gets_no_grant_and_no_refresh,
                enabling_a_client_allows_new_grants_but_keeps_old_tokens_revoked,
                deleting_a_client_removes_what_it_owns_but_keeps_its_revocation,
                a_grant_for_an_unknown_client_writes_nothing,
                a_grant_records_its_family_refresh_token_label_and_audit_event,
                a_grant_without_refresh_token_or_label_records_only_its_family,
                a_grant_reusing_a_family_id_is_refused_and_changes_nothing,
                families_are_listed_newest_first_and_by_label,
                each_label_counts_its_own_live_families_and_revokes_only_them,
                a_rotation_spends_the_token_and_stores_its_successor,
                a_spent_token_reports_its_successor_unused_until_the_successor_is_spent,
                a_token_is_rotated_only_once,
                a_rotation_to_a_taken_selector_fails_and_spends_nothing,
                a_rotation_must_present_the_stored_hash_not_just_the_selector,
                an_expired_token_cannot_be_rotated,
                a_token_cannot_be_rotated_by_another_client_or_for_another_family,
                a_token_of_a_revoked_family_cannot_be_rotated,
                an_unknown_token_is_not_found_and_cannot_be_rotated,
                usage_moves_last_used_forward_only,
                revoking_families_records_a_revocation_and_an_audit_event_per_family,
                a_family_is_revoked_only_for_its_own_client_and_only_once,
                a_revoked_access_token_is_listed_until_its_expiry,
                revocations_are_listed_after_a_given_id_oldest_first,
                a_new_signing_key_becomes_current_and_the_old_one_previous,
                admin_users_are_counted_created_once_and_their_passwords_replaced,
                admin_sessions_live_until_they_expire_and_end_when_deleted,
                an_appended_audit_event_reads_back_whole,
                the_audit_log_filters_and_pages_newest_first,
                daily_counters_add_up_across_calls,
                the_dashboard_counts_clients_sites_tokens_uploads_and_failures,
                an_upload_is_stored_replayed_with_its_key_and_refused_with_another_body,
                uploads_without_a_key_are_each_stored_and_counted_per_label,
                pruning_keeps_what_reuse_detection_needs_until_the_family_expires,
                pruning_keeps_a_revoked_family_until_it_expires,
                pruning_drops_grace_answers_after_the_grace_but_keeps_the_spent_token,
                revocations_are_kept_until_their_tokens_expire,
            ];
            shared: [
                of_eight_concurrent_rotations_of_one_token_exactly_one_wins,
                concurrent_grants_are_all_recorded,
            ];
            harness: [
                an_injected_failure_hits_only_its_own_kind,
                a_client_creation_that_cannot_be_audited_creates_nothing,
                an_update_that_cannot_be_audited_changes_nothing,
                a_disable_that_cannot_be_audited_changes_nothing,
                an_enable_that_cannot_be_audited_changes_nothing,
                a_delete_that_cannot_be_audited_changes_nothing,
                a_secret_rotation_that_cannot_be_audited_changes_nothing,
                a_scope_creation_that_cannot_be_audited_creates_nothing,
                a_family_revocation_that_cannot_be_audited_changes_nothing,
                an_access_token_revocation_that_cannot_be_audited_changes_nothing,
                a_grant_that_cannot_be_audited_writes_nothing,
                a_refresh_that_cannot_be_audited_spends_nothing,
            ];
        );
    };
    (@expand $backend:expr;
        store: [$($store:ident),* $(,)?];
        shared: [$($shared:ident),* $(,)?];
        harness: [$($harness:ident),* $(,)?];
    ) => {
        mod conformance {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $store() {
                    let backend = $backend;
                    let (_guard, store) =
                        crate::conformance::Backend::fresh(&backend).await;
                    crate::conformance::$store(&*store).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $shared() {
                    let backend = $backend;
                    let (_guard, store) =
                        crate::conformance::Backend::fresh(&backend).await;
                    crate::conformance::$shared(store).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $harness() {
                    let backend = $backend;
                    let (_guard, store) =
                        crate::conformance::Backend::fresh(&backend).await;
                    crate::conformance::$harness(&backend, &*store).await;
                }
            )*
        }
    };
}

// ---------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------

const PC: &str = "pc_test";
const OTHER: &str = "pc_other";

fn cid(id: &str) -> ClientId {
    ClientId::parse(id).unwrap()
}

fn scope_set(names: &[&str]) -> ScopeSet {
    names.iter().map(|n| ScopeName::parse(n).unwrap()).collect()
}

/// A stand-in for an HMAC: distinct inputs give distinct values.
fn digest(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, b) in s.bytes().enumerate() {
        out[i % 32] = out[i % 32].wrapping_mul(31).wrapping_add(b);
    }
    out[31] ^= s.len() as u8;
    out
}

/// An active client taking client credentials and refresh tokens, no grace.
fn client(id: &str) -> Client {
    Client {
        id: cid(id),
        name: format!("client {id}"),
        scopes: scope_set(&["upload-data"]),
        grant_types: vec![GrantType::ClientCredentials, GrantType::RefreshToken],
        redirect_uris: vec![],
        status: ClientStatus::Active,
        created_at: 10,
        access_token_ttl: None,
        refresh_token_ttl: None,
        issue_refresh_token: true,
        refresh_reuse_grace: Ttl::from_secs_allow_zero(0).unwrap(),
    }
}

/// The audit kind named `name`.
fn k(name: &str) -> AuditKind {
    name.parse().unwrap()
}

/// A scope set from its space-separated names.
fn ss(names: &str) -> ScopeSet {
    ScopeSet::parse(names).unwrap()
}

/// An admin's audit event about a client.
fn admin_event(at: i64, kind: &str, client: &str) -> NewAuditEvent {
    NewAuditEvent {
        target: Some(client.into()),
        client_id: Some(client.into()),
        ..NewAuditEvent::new(at, k(kind), Actor::cli_admin())
    }
}

fn client_actor(client: &str) -> Actor {
    Actor {
        kind: "client",
        id: Some(client.into()),
        source: Some("192.0.2.7".into()),
    }
}

/// Registers `client(id)` with the secret `digest(id)`.
async fn create<S: Store + ?Sized>(s: &S, id: &str) {
    create_client(s, &client(id)).await;
}

async fn create_client<S: Store + ?Sized>(s: &S, c: &Client) {
    s.create_client(
        c,
        &digest(c.id.as_str()),
        &admin_event(c.created_at, "client.create", c.id.as_str()),
    )
    .await
    .unwrap();
}

/// The selector of a family's first refresh token.
fn rt(family: &str) -> String {
    format!("rt_{family}")
}

/// A grant at 100 whose family and first refresh token (`rt(family)`) last until 1000.
fn grant(client: &str, family: &str, label: Option<&str>) -> NewGrant {
    NewGrant {
        family_id: family.into(),
        client_id: client.into(),
        label: label.map(Into::into),
        subject: client.into(),
        scopes: ss("upload-data"),
        grant_type: "client_credentials".into(),
        created_at: 100,
        expires_at: 1000,
        refresh_token: Some(NewRefresh {
            id: rt(family),
            hash: digest(&rt(family)),
            expires_at: 1000,
        }),
        actor: client_actor(client),
    }
}

async fn granted<S: Store + ?Sized>(s: &S, g: NewGrant) {
    assert!(s.record_grant(g).await.unwrap(), "the grant is recorded");
}

/// Spends `old` for `new` (which, like its family, lasts until 1000).
fn rotation(client: &str, family: &str, old: &str, new: &str, now: i64) -> Rotation {
    Rotation {
        old_id: old.into(),
        old_hash: digest(old),
        family_id: family.into(),
        client_id: client.into(),
        now,
        new: NewRefresh {
            id: new.into(),
            hash: digest(new),
            expires_at: 1000,
        },
        scopes: ss("upload-data"),
        family_expires_at: 1000,
        grace_response: None,
        audit: NewAuditEvent {
            target: Some(family.into()),
            client_id: Some(client.into()),
            ..NewAuditEvent::new(now, k("token.refresh"), client_actor(client))
        },
    }
}

fn everything() -> AuditFilter {
    AuditFilter {
        limit: 1000,
        ..AuditFilter::default()
    }
}

async fn audit_of<S: Store + ?Sized>(s: &S, kind: &str) -> Vec<AuditRecord> {
    s.list_audit(&AuditFilter {
        kind: Some(k(kind)),
        ..everything()
    })
    .await
    .unwrap()
}

async fn all_audit<S: Store + ?Sized>(s: &S) -> Vec<AuditRecord> {
    s.list_audit(&everything()).await.unwrap()
}

/// Every revocation still live at 0 (all the checks' revocations).
async fn revocations<S: Store + ?Sized>(s: &S) -> Vec<Revocation> {
    s.revocations_since(0, 0).await.unwrap()
}

/// A revocation without its sequence number.
fn rev(r: &Revocation) -> (&str, &str, Option<i64>, i64) {
    (&r.kind, &r.target, r.issued_before, r.expires_at)
}

async fn family<S: Store + ?Sized>(s: &S, id: &str) -> FamilyRecord {
    s.get_family(id).await.unwrap().expect("the family exists")
}

async fn spent_at<S: Store + ?Sized>(s: &S, selector: &str) -> Option<i64> {
    s.find_refresh_token(selector)
        .await
        .unwrap()
        .expect("the refresh token exists")
        .spent_at
}

async fn secrets<S: Store + ?Sized>(s: &S, id: &str, now: i64) -> Vec<[u8; 32]> {
    let mut hashes = s
        .get_client_auth(&cid(id), now)
        .await
        .unwrap()
        .expect("the client exists")
        .secret_hashes;
    hashes.sort();
    hashes
}

fn sorted(mut hashes: Vec<[u8; 32]>) -> Vec<[u8; 32]> {
    hashes.sort();
    hashes
}

fn upload(client: &str, batch: &str, label: Option<&str>, key: Option<&str>) -> NewUpload {
    NewUpload {
        batch_id: batch.into(),
        client_id: client.into(),
        label: label.map(Into::into),
        token_id: format!("jti_{batch}"),
        received_at: 100,
        idempotency_key: key.map(Into::into),
        body_hash: digest(batch),
        records: vec![r#"{"n":1}"#.into(), r#"{"n":2}"#.into()],
    }
}

// ---------------------------------------------------------------------------
// The database as a whole
// ---------------------------------------------------------------------------

pub async fn migrating_again_applies_nothing_and_keeps_what_was_stored<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    s.put_setting("issuer", "https://auth.example")
        .await
        .unwrap();
    assert_eq!(s.migrate().await.unwrap(), 0);
    assert_eq!(s.migrate().await.unwrap(), 0);
    assert!(s.get_client(&cid(PC)).await.unwrap().is_some());
    assert_eq!(
        s.get_setting("issuer").await.unwrap().as_deref(),
        Some("https://auth.example")
    );
}

pub async fn a_migrated_store_answers_ping<S: Store + ?Sized>(s: &S) {
    s.ping().await.unwrap();
}

pub async fn settings_are_absent_until_put_and_a_put_replaces_them<S: Store + ?Sized>(s: &S) {
    assert_eq!(s.get_setting("issuer").await.unwrap(), None);
    s.put_setting("issuer", "https://a.example").await.unwrap();
    s.put_setting("other", "x").await.unwrap();
    assert_eq!(
        s.get_setting("issuer").await.unwrap().as_deref(),
        Some("https://a.example")
    );
    s.put_setting("issuer", "https://b.example").await.unwrap();
    assert_eq!(
        s.get_setting("issuer").await.unwrap().as_deref(),
        Some("https://b.example")
    );
    assert_eq!(s.get_setting("other").await.unwrap().as_deref(), Some("x"));
}

// ---------------------------------------------------------------------------
// Scopes
// ---------------------------------------------------------------------------

pub async fn a_fresh_store_has_the_built_in_scopes<S: Store + ?Sized>(s: &S) {
    let scopes = s.list_scopes().await.unwrap();
    let mut expected: Vec<ScopeRecord> = BUILT_IN
        .iter()
        .map(|(name, description)| ScopeRecord {
            name: (*name).into(),
            description: (*description).into(),
            created_at: 0,
        })
        .collect();
    expected.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(scopes, expected);
}

pub async fn a_created_scope_is_listed_by_name_and_can_be_given_to_clients<S: Store + ?Sized>(
    s: &S,
) {
    let reports = ScopeRecord {
        name: "reports".into(),
        description: "Read monthly reports".into(),
        created_at: 500,
    };
    let audit = NewAuditEvent {
        target: Some("reports".into()),
        ..NewAuditEvent::new(500, k("scope.create"), Actor::cli_admin())
    };
    s.create_scope(&reports, &audit).await.unwrap();
    let scopes = s.list_scopes().await.unwrap();
    assert!(scopes.contains(&reports));
    assert_eq!(scopes.len(), BUILT_IN.len() + 1);
    assert!(
        scopes.windows(2).all(|w| w[0].name < w[1].name),
        "listed by name"
    );
    let events = audit_of(s, "scope.create").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].target.as_deref(), Some("reports"));

    let c = Client {
        scopes: scope_set(&["reports", "upload-data"]),
        ..client(PC)
    };
    create_client(s, &c).await;
    assert_eq!(s.get_client(&cid(PC)).await.unwrap(), Some(c));
}

pub async fn a_scope_can_be_created_only_once<S: Store + ?Sized>(s: &S) {
    let audit = NewAuditEvent::new(500, k("scope.create"), Actor::cli_admin());
    let reports = ScopeRecord {
        name: "reports".into(),
        description: "first".into(),
        created_at: 500,
    };
    s.create_scope(&reports, &audit).await.unwrap();
    let again = ScopeRecord {
        description: "second".into(),
        ..reports.clone()
    };
    let err = s.create_scope(&again, &audit).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let builtin = ScopeRecord {
        name: "upload-data".into(),
        description: "mine".into(),
        created_at: 500,
    };
    let err = s.create_scope(&builtin, &audit).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    let scopes = s.list_scopes().await.unwrap();
    assert!(scopes.contains(&reports), "the first one stays as it was");
    assert_eq!(scopes.len(), BUILT_IN.len() + 1);
    assert_eq!(audit_of(s, "scope.create").await.len(), 1);
}

// ---------------------------------------------------------------------------
// Clients and their secrets
// ---------------------------------------------------------------------------

pub async fn a_created_client_reads_back_as_it_was_written<S: Store + ?Sized>(s: &S) {
    let c = Client {
        id: cid(PC),
        name: "Care homes of the north".into(),
        scopes: scope_set(&["upload-data", "view-indicator"]),
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        redirect_uris: vec![
            RedirectUri::parse("https://app.example/cb").unwrap(),
            RedirectUri::parse("http://127.0.0.1:8080/cb").unwrap(),
        ],
        status: ClientStatus::Active,
        created_at: 1234,
        access_token_ttl: Ttl::from_secs(600),
        refresh_token_ttl: Ttl::from_secs(86_400),
        issue_refresh_token: false,
        refresh_reuse_grace: Ttl::from_secs_allow_zero(30).unwrap(),
    };
    s.create_client(&c, &[7; 32], &admin_event(1234, "client.create", PC))
        .await
        .unwrap();
    assert_eq!(s.get_client(&cid(PC)).await.unwrap(), Some(c.clone()));
    let auth = s.get_client_auth(&cid(PC), 2000).await.unwrap().unwrap();
    assert_eq!(auth.client, c);
    assert_eq!(auth.secret_hashes, vec![[7; 32]]);
    assert_eq!(s.list_clients().await.unwrap(), vec![c]);

    let events = audit_of(s, "client.create").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].client_id.as_deref(), Some(PC));
    assert_eq!(events[0].target.as_deref(), Some(PC));
    assert_eq!(events[0].actor_kind, "admin");
    assert_eq!(events[0].at, 1234);

    assert_eq!(s.get_client(&cid("pc_missing")).await.unwrap(), None);
    assert!(
        s.get_client_auth(&cid("pc_missing"), 0)
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn clients_are_listed_oldest_first<S: Store + ?Sized>(s: &S) {
    for (id, at) in [("pc_c", 300), ("pc_a", 100), ("pc_b", 200)] {
        create_client(
            s,
            &Client {
                created_at: at,
                ..client(id)
            },
        )
        .await;
    }
    let ids: Vec<String> = s
        .list_clients()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id.to_string())
        .collect();
    assert_eq!(ids, ["pc_a", "pc_b", "pc_c"]);
}

pub async fn a_client_id_can_be_registered_only_once<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    let twin = Client {
        name: "twin".into(),
        ..client(PC)
    };
    let err = s
        .create_client(&twin, &[9; 32], &admin_event(20, "client.create", PC))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(s.get_client(&cid(PC)).await.unwrap(), Some(client(PC)));
    assert_eq!(secrets(s, PC, 20).await, vec![digest(PC)]);
    assert_eq!(audit_of(s, "client.create").await.len(), 1);
}

pub async fn a_client_with_an_unknown_scope_is_refused_whole<S: Store + ?Sized>(s: &S) {
    let c = Client {
        scopes: scope_set(&["upload-data", "no-such-scope"]),
        ..client(PC)
    };
    let err = s
        .create_client(&c, &[1; 32], &admin_event(10, "client.create", PC))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(s.get_client(&cid(PC)).await.unwrap(), None);
    assert!(s.get_client_auth(&cid(PC), 10).await.unwrap().is_none());
    assert!(s.list_clients().await.unwrap().is_empty());
    assert!(all_audit(s).await.is_empty());
    // Nothing half-written stands in the way of registering it properly.
    create(s, PC).await;
}

pub async fn every_change_to_a_missing_client_is_not_found_and_leaves_nothing<S: Store + ?Sized>(
    s: &S,
) {
    let id = cid("pc_missing");
    let not_found = |r: Result<(), StoreError>| match r {
        Err(StoreError::NotFound(_)) => {}
        other => panic!("expected NotFound, got {other:?}"),
    };
    not_found(
        s.update_client(
            &client("pc_missing"),
            100,
            &admin_event(100, "client.update", "pc_missing"),
        )
        .await,
    );
    not_found(
        s.disable_client(
            &id,
            100,
            2000,
            &admin_event(100, "client.disable", "pc_missing"),
        )
        .await,
    );
    not_found(
        s.enable_client(&id, 100, &admin_event(100, "client.enable", "pc_missing"))
            .await,
    );
    not_found(
        s.delete_client(
            &id,
            100,
            2000,
            &admin_event(100, "client.delete", "pc_missing"),
        )
        .await,
    );
    not_found(
        s.rotate_client_secret(
            &id,
            &[3; 32],
            100,
            100,
            &admin_event(100, "client.rotate_secret", "pc_missing"),
        )
        .await,
    );
    assert!(s.get_client(&id).await.unwrap().is_none());
    assert!(
        revocations(s).await.is_empty(),
        "no revocation is left of a failed change"
    );
    assert!(
        all_audit(s).await.is_empty(),
        "no audit event is left of a failed change"
    );
}

pub async fn an_update_replaces_the_editable_settings_only<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    let edited = Client {
        name: "renamed".into(),
        scopes: scope_set(&["upload-data", "view-indicator"]),
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        redirect_uris: vec![RedirectUri::parse("https://app.example/cb").unwrap()],
        access_token_ttl: Ttl::from_secs(600),
        refresh_token_ttl: Ttl::from_secs(86_400),
        issue_refresh_token: false,
        refresh_reuse_grace: Ttl::from_secs_allow_zero(30).unwrap(),
        // Not editable: status goes through disable/enable, creation time stays.
        status: ClientStatus::Disabled,
        created_at: 999,
        ..client(PC)
    };
    s.update_client(&edited, 300, &admin_event(300, "client.update", PC))
        .await
        .unwrap();
    let expected = Client {
        status: ClientStatus::Active,
        created_at: 10,
        ..edited.clone()
    };
    assert_eq!(s.get_client(&cid(PC)).await.unwrap(), Some(expected));
    assert_eq!(
        secrets(s, PC, 300).await,
        vec![digest(PC)],
        "secrets untouched"
    );
    assert_eq!(audit_of(s, "client.update").await.len(), 1);

    // Scopes can also shrink.
    let narrower = Client {
        scopes: scope_set(&["view-indicator"]),
        ..edited
    };
    s.update_client(&narrower, 400, &admin_event(400, "client.update", PC))
        .await
        .unwrap();
    let got = s.get_client(&cid(PC)).await.unwrap().unwrap();
    assert_eq!(got.scopes, scope_set(&["view-indicator"]));
}

pub async fn an_update_to_an_unknown_scope_is_refused_and_changes_nothing<S: Store + ?Sized>(
    s: &S,
) {
    create(s, PC).await;
    let edited = Client {
        name: "renamed".into(),
        scopes: scope_set(&["no-such-scope"]),
        ..client(PC)
    };
    let err = s
        .update_client(&edited, 300, &admin_event(300, "client.update", PC))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(s.get_client(&cid(PC)).await.unwrap(), Some(client(PC)));
    assert!(audit_of(s, "client.update").await.is_empty());
}

pub async fn a_rotated_secret_overlaps_the_old_one_until_old_valid_until<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    let (old, new) = (digest(PC), [0xB; 32]);
    s.rotate_client_secret(
        &cid(PC),
        &new,
        500,
        200,
        &admin_event(200, "client.rotate_secret", PC),
    )
    .await
    .unwrap();
    assert_eq!(secrets(s, PC, 200).await, sorted(vec![old, new]));
    assert_eq!(secrets(s, PC, 499).await, sorted(vec![old, new]));
    assert_eq!(secrets(s, PC, 500).await, vec![new]);
    assert_eq!(secrets(s, PC, 100_000).await, vec![new]);
    assert_eq!(audit_of(s, "client.rotate_secret").await.len(), 1);
}

pub async fn a_secret_rotation_valid_until_now_retires_the_old_secret_at_once<S: Store + ?Sized>(
    s: &S,
) {
    create(s, PC).await;
    s.rotate_client_secret(
        &cid(PC),
        &[0xB; 32],
        200,
        200,
        &admin_event(200, "client.rotate_secret", PC),
    )
    .await
    .unwrap();
    assert_eq!(secrets(s, PC, 200).await, vec![[0xB; 32]]);
}

pub async fn a_second_secret_rotation_never_extends_an_older_secret<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    let (a, b, c) = (digest(PC), [0xB; 32], [0xC; 32]);
    let audit = admin_event(100, "client.rotate_secret", PC);
    s.rotate_client_secret(&cid(PC), &b, 500, 100, &audit)
        .await
        .unwrap();
    s.rotate_client_secret(&cid(PC), &c, 900, 200, &audit)
        .await
        .unwrap();
    assert_eq!(secrets(s, PC, 200).await, sorted(vec![a, b, c]));
    assert_eq!(
        secrets(s, PC, 600).await,
        sorted(vec![b, c]),
        "the first secret still ends at 500"
    );
    assert_eq!(secrets(s, PC, 900).await, vec![c]);
}

pub async fn disabling_a_client_revokes_its_families_and_all_its_tokens<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    create(s, OTHER).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    granted(s, grant(PC, "fam_2", None)).await;
    granted(s, grant(OTHER, "fam_o", Some("home"))).await;

    s.disable_client(&cid(PC), 300, 2000, &admin_event(300, "client.disable", PC))
        .await
        .unwrap();
    let got = s.get_client(&cid(PC)).await.unwrap().unwrap();
    assert_eq!(got.status, ClientStatus::Disabled);
    assert_eq!(family(s, "fam_1").await.revoked_at, Some(300));
    assert_eq!(family(s, "fam_2").await.revoked_at, Some(300));
    assert_eq!(
        family(s, "fam_o").await.revoked_at,
        None,
        "other clients keep theirs"
    );
    let revs = revocations(s).await;
    assert_eq!(
        revs.iter().map(rev).collect::<Vec<_>>(),
        [("client", PC, Some(300), 2000)]
    );
    let labels = s.list_labels(&cid(PC), 300).await.unwrap();
    assert_eq!(labels.len(), 1);
    assert_eq!(labels[0].live_families, 0);
    let events = audit_of(s, "client.disable").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].client_id.as_deref(), Some(PC));
}

pub async fn a_disabled_client_gets_no_grant_and_no_refresh<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    s.disable_client(&cid(PC), 300, 2000, &admin_event(300, "client.disable", PC))
        .await
        .unwrap();
    let issued = audit_of(s, "token.issue").await.len();

    assert!(
        !s.record_grant(grant(PC, "fam_2", Some("elsewhere")))
            .await
            .unwrap()
    );
    assert!(s.get_family("fam_2").await.unwrap().is_none());
    assert!(s.find_refresh_token(&rt("fam_2")).await.unwrap().is_none());
    let labels: Vec<String> = s
        .list_labels(&cid(PC), 300)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.name)
        .collect();
    assert_eq!(labels, ["home"], "no label for a refused grant");
    assert_eq!(audit_of(s, "token.issue").await.len(), issued);

    assert!(
        !s.rotate_refresh_token(rotation(PC, "fam_1", &rt("fam_1"), "rt_next", 400))
            .await
            .unwrap()
    );
    assert_eq!(spent_at(s, &rt("fam_1")).await, None);
    assert!(s.find_refresh_token("rt_next").await.unwrap().is_none());
    assert!(audit_of(s, "token.refresh").await.is_empty());
}

pub async fn enabling_a_client_allows_new_grants_but_keeps_old_tokens_revoked<S: Store + ?Sized>(
    s: &S,
) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    s.disable_client(&cid(PC), 300, 2000, &admin_event(300, "client.disable", PC))
        .await
        .unwrap();
    s.enable_client(&cid(PC), 400, &admin_event(400, "client.enable", PC))
        .await
        .unwrap();
    let got = s.get_client(&cid(PC)).await.unwrap().unwrap();
    assert_eq!(got.status, ClientStatus::Active);
    assert_eq!(audit_of(s, "client.enable").await.len(), 1);

    assert_eq!(family(s, "fam_1").await.revoked_at, Some(300));
    assert!(
        !s.rotate_refresh_token(rotation(PC, "fam_1", &rt("fam_1"), "rt_next", 450))
            .await
            .unwrap()
    );
    assert_eq!(revocations(s).await.len(), 1, "the client revocation stays");

    granted(s, grant(PC, "fam_2", Some("home"))).await;
    assert!(
        s.rotate_refresh_token(rotation(PC, "fam_2", &rt("fam_2"), "rt_next", 450))
            .await
            .unwrap()
    );
}

pub async fn deleting_a_client_removes_what_it_owns_but_keeps_its_revocation<S: Store + ?Sized>(
    s: &S,
) {
    create(s, PC).await;
    create(s, OTHER).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    granted(s, grant(OTHER, "fam_o", Some("home"))).await;
    s.store_upload(upload(PC, "b1", Some("home"), None))
        .await
        .unwrap();

    s.delete_client(&cid(PC), 300, 2000, &admin_event(300, "client.delete", PC))
        .await
        .unwrap();
    assert!(s.get_client(&cid(PC)).await.unwrap().is_none());
    assert!(s.get_client_auth(&cid(PC), 300).await.unwrap().is_none());
    let left: Vec<String> = s
        .list_clients()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id.to_string())
        .collect();
    assert_eq!(left, [OTHER]);
    assert!(s.get_family("fam_1").await.unwrap().is_none());
    assert!(s.find_refresh_token(&rt("fam_1")).await.unwrap().is_none());
    assert!(s.list_families(&cid(PC), None).await.unwrap().is_empty());
    assert!(s.list_labels(&cid(PC), 300).await.unwrap().is_empty());
    assert!(s.site_counters(&cid(PC)).await.unwrap().is_empty());
    let revs = revocations(s).await;
    assert_eq!(
        revs.iter().map(rev).collect::<Vec<_>>(),
        [("client", PC, Some(300), 2000)]
    );
    assert_eq!(audit_of(s, "client.delete").await.len(), 1);
    assert!(
        !s.record_grant(grant(PC, "fam_2", None)).await.unwrap(),
        "no grant for a deleted client"
    );

    assert!(s.get_family("fam_o").await.unwrap().is_some());
    assert!(s.find_refresh_token(&rt("fam_o")).await.unwrap().is_some());
}

// ---------------------------------------------------------------------------
// Grants, families, labels, refresh tokens
// ---------------------------------------------------------------------------

pub async fn a_grant_for_an_unknown_client_writes_nothing<S: Store + ?Sized>(s: &S) {
    assert!(
        !s.record_grant(grant("pc_ghost", "fam_1", Some("home")))
            .await
            .unwrap()
    );
    assert!(s.get_family("fam_1").await.unwrap().is_none());
    assert!(s.find_refresh_token(&rt("fam_1")).await.unwrap().is_none());
    assert!(
        s.list_labels(&cid("pc_ghost"), 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(all_audit(s).await.is_empty());
}

pub async fn a_grant_records_its_family_refresh_token_label_and_audit_event<S: Store + ?Sized>(
    s: &S,
) {
    create(s, PC).await;
    let g = NewGrant {
        scopes: ss("upload-data view-indicator"),
        ..grant(PC, "fam_1", Some("home"))
    };
    granted(s, g).await;
    let fam = FamilyRecord {
        id: "fam_1".into(),
        client_id: PC.into(),
        label: Some("home".into()),
        subject: PC.into(),
        scopes: ss("upload-data view-indicator"),
        grant_type: "client_credentials".into(),
        created_at: 100,
        last_used_at: None,
        expires_at: 1000,
        revoked_at: None,
    };
    assert_eq!(family(s, "fam_1").await, fam);

    let found = s.find_refresh_token(&rt("fam_1")).await.unwrap().unwrap();
    assert_eq!(found.id, rt("fam_1"));
    assert_eq!(found.token_hash, digest(&rt("fam_1")));
    assert_eq!(found.family, fam);
    assert_eq!(found.scopes.to_vec(), ["upload-data", "view-indicator"]);
    assert_eq!(found.expires_at, 1000);
    assert_eq!(found.spent_at, None);
    assert_eq!(found.grace_response, None);
    assert!(!found.successor_unused, "an unspent token has no successor");

    assert_eq!(
        s.list_labels(&cid(PC), 100).await.unwrap(),
        [LabelRecord {
            name: "home".into(),
            created_at: 100,
            last_issued_at: Some(100),
            last_used_at: None,
            uploads: 0,
            live_families: 1,
        }]
    );
    granted(
        s,
        NewGrant {
            created_at: 150,
            ..grant(PC, "fam_2", Some("home"))
        },
    )
    .await;
    let labels = s.list_labels(&cid(PC), 150).await.unwrap();
    assert_eq!(labels.len(), 1);
    assert_eq!(labels[0].created_at, 100);
    assert_eq!(labels[0].last_issued_at, Some(150));
    assert_eq!(labels[0].live_families, 2);

    let events = audit_of(s, "token.issue").await;
    assert_eq!(events.len(), 2);
    let first = &events[1];
    assert_eq!(first.at, 100);
    assert_eq!(first.target.as_deref(), Some("fam_1"));
    assert_eq!(first.client_id.as_deref(), Some(PC));
    assert_eq!(first.label.as_deref(), Some("home"));
    assert_eq!(first.actor_kind, "client");
    assert_eq!(first.actor_id.as_deref(), Some(PC));
    assert_eq!(first.source.as_deref(), Some("192.0.2.7"));
}

pub async fn a_grant_without_refresh_token_or_label_records_only_its_family<S: Store + ?Sized>(
    s: &S,
) {
    create(s, PC).await;
    granted(
        s,
        NewGrant {
            refresh_token: None,
            ..grant(PC, "fam_1", None)
        },
    )
    .await;
    let fam = family(s, "fam_1").await;
    assert_eq!(fam.label, None);
    assert!(s.find_refresh_token(&rt("fam_1")).await.unwrap().is_none());
    assert!(s.list_labels(&cid(PC), 100).await.unwrap().is_empty());
    assert_eq!(audit_of(s, "token.issue").await.len(), 1);
}

pub async fn a_grant_reusing_a_family_id_is_refused_and_changes_nothing<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    create(s, OTHER).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    let twin = NewGrant {
        refresh_token: Some(NewRefresh {
            id: "rt_twin".into(),
            hash: digest("rt_twin"),
            expires_at: 1000,
        }),
        created_at: 200,
        ..grant(OTHER, "fam_1", Some("elsewhere"))
    };
    s.record_grant(twin).await.unwrap_err();
    let fam = family(s, "fam_1").await;
    assert_eq!((fam.client_id.as_str(), fam.created_at), (PC, 100));
    assert!(s.find_refresh_token("rt_twin").await.unwrap().is_none());
    assert!(s.list_labels(&cid(OTHER), 200).await.unwrap().is_empty());
    assert_eq!(audit_of(s, "token.issue").await.len(), 1);
}

pub async fn families_are_listed_newest_first_and_by_label<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    create(s, OTHER).await;
    for (fam, label, at) in [
        ("fam_1", Some("home-a"), 100),
        ("fam_3", Some("home-a"), 300),
        ("fam_2", Some("home-b"), 200),
        ("fam_4", None, 400),
    ] {
        granted(
            s,
            NewGrant {
                created_at: at,
                ..grant(PC, fam, label)
            },
        )
        .await;
    }
    granted(s, grant(OTHER, "fam_o", Some("home-a"))).await;
    let ids = |fams: Vec<FamilyRecord>| fams.into_iter().map(|f| f.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s.list_families(&cid(PC), None).await.unwrap()),
        ["fam_4", "fam_3", "fam_2", "fam_1"]
    );
    assert_eq!(
        ids(s.list_families(&cid(PC), Some("home-a")).await.unwrap()),
        ["fam_3", "fam_1"]
    );
    assert!(
        s.list_families(&cid(PC), Some("nowhere"))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.list_families(&cid("pc_none"), None)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn each_label_counts_its_own_live_families_and_revokes_only_them<S: Store + ?Sized>(
    s: &S,
) {
    create(s, PC).await;
    let labelled = |family: &str, label: &str, expires: i64| NewGrant {
        expires_at: expires,
        ..grant(PC, family, Some(label))
    };
    granted(s, labelled("fam_a1", "home-a", 1000)).await;
    granted(s, labelled("fam_a2", "home-a", 1000)).await;
    granted(s, labelled("fam_a3", "home-a", 1000)).await;
    granted(s, labelled("fam_b1", "home-b", 150)).await;
    granted(s, labelled("fam_c1", "home-c", 1000)).await;
    let id = cid(PC);
    let audit = NewAuditEvent::new(200, k("token.revoke"), Actor::cli_admin());
    let revoked = s
        .revoke_families(
            RevokeScope::Family {
                id: "fam_a3",
                client: Some(&id),
            },
            200,
            "admin",
            2000,
            &audit,
        )
        .await
        .unwrap();
    assert_eq!(revoked, ["fam_a3"]);

    let live: Vec<(String, i64)> = s
        .list_labels(&id, 200)
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.name, l.live_families))
        .collect();
    assert_eq!(
        live,
        [
            ("home-a".to_owned(), 2),
            ("home-b".to_owned(), 0),
            ("home-c".to_owned(), 1)
        ]
    );

    let revoked = s
        .revoke_families(
            RevokeScope::Client {
                client: &id,
                label: Some("home-c"),
            },
            300,
            "admin",
            2000,
            &audit,
        )
        .await
        .unwrap();
    assert_eq!(revoked, ["fam_c1"]);
    assert_eq!(family(s, "fam_a1").await.revoked_at, None);
    let live = s.list_labels(&id, 300).await.unwrap();
    assert_eq!(live.iter().map(|l| l.live_families).sum::<i64>(), 2);
}

pub async fn a_rotation_spends_the_token_and_stores_its_successor<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    granted(
        s,
        NewGrant {
            scopes: ss("upload-data view-indicator"),
            ..grant(PC, "fam_1", Some("home"))
        },
    )
    .await;
    let r = Rotation {
        new: NewRefresh {
            id: "rt_2".into(),
            hash: digest("rt_2"),
            expires_at: 1500,
        },
        family_expires_at: 1500,
        grace_response: Some(vec![1, 2, 3]),
        ..rotation(PC, "fam_1", &rt("fam_1"), "rt_2", 200)
    };
    assert!(s.rotate_refresh_token(r).await.unwrap());

    let old = s.find_refresh_token(&rt("fam_1")).await.unwrap().unwrap();
    assert_eq!(old.spent_at, Some(200));
    assert_eq!(old.grace_response.as_deref(), Some(&[1u8, 2, 3][..]));
    assert!(old.successor_unused);
    let new = s.find_refresh_token("rt_2").await.unwrap().unwrap();
    assert_eq!(new.token_hash, digest("rt_2"));
    assert_eq!(
        new.scopes.to_vec(),
        ["upload-data"],
        "the successor's own scopes"
    );
    assert_eq!(new.expires_at, 1500);
    assert_eq!(new.spent_at, None);
    assert!(!new.successor_unused);
    assert_eq!(new.family.id, "fam_1");
    assert_eq!(
        new.family.scopes.to_vec(),
        ["upload-data", "view-indicator"]
    );
    assert_eq!(
        new.family.expires_at, 1500,
        "the family lasts as its tokens"
    );

    let labels = s.list_labels(&cid(PC), 200).await.unwrap();
    assert_eq!(labels[0].last_issued_at, Some(200));
    let events = audit_of(s, "token.refresh").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].at, 200);
    assert_eq!(events[0].target.as_deref(), Some("fam_1"));

    // A later rotation with an earlier family expiry does not shorten the family.
    let r = Rotation {
        family_expires_at: 1200,
        ..rotation(PC, "fam_1", "rt_2", "rt_3", 300)
    };
    assert!(s.rotate_refresh_token(r).await.unwrap());
    assert_eq!(family(s, "fam_1").await.expires_at, 1500);
}

pub async fn a_spent_token_reports_its_successor_unused_until_the_successor_is_spent<
    S: Store + ?Sized,
>(
    s: &S,
) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", None)).await;
    let first = rt("fam_1");
    let unused = |sel: &str| {
        let sel = sel.to_owned();
        async move {
            s.find_refresh_token(&sel)
                .await
                .unwrap()
                .unwrap()
                .successor_unused
        }
    };
    assert!(!unused(&first).await);
    assert!(
        s.rotate_refresh_token(rotation(PC, "fam_1", &first, "rt_2", 200))
            .await
            .unwrap()
    );
    assert!(unused(&first).await, "spent, its successor not yet used");
    assert!(!unused("rt_2").await);
    assert!(
        s.rotate_refresh_token(rotation(PC, "fam_1", "rt_2", "rt_3", 300))
            .await
            .unwrap()
    );
    assert!(!unused(&first).await, "its successor has been used");
    assert!(unused("rt_2").await);
    assert!(!unused("rt_3").await);
}

pub async fn a_token_is_rotated_only_once<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", None)).await;
    assert!(
        s.rotate_refresh_token(rotation(PC, "fam_1", &rt("fam_1"), "rt_2", 200))
            .await
            .unwrap()
    );
    assert!(
        !s.rotate_refresh_token(rotation(PC, "fam_1", &rt("fam_1"), "rt_x", 210))
            .await
            .unwrap()
    );
    assert_eq!(
        spent_at(s, &rt("fam_1")).await,
        Some(200),
        "first spend kept"
    );
    assert!(s.find_refresh_token("rt_x").await.unwrap().is_none());
    assert_eq!(spent_at(s, "rt_2").await, None);
    assert_eq!(audit_of(s, "token.refresh").await.len(), 1);
}

pub async fn a_rotation_to_a_taken_selector_fails_and_spends_nothing<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    granted(s, grant(PC, "fam_2", None)).await;
    let r = Rotation {
        family_expires_at: 1500,
        ..rotation(PC, "fam_1", &rt("fam_1"), &rt("fam_2"), 200)
    };
    s.rotate_refresh_token(r).await.unwrap_err();
    assert_eq!(spent_at(s, &rt("fam_1")).await, None, "nothing spent");
    let other = s.find_refresh_token(&rt("fam_2")).await.unwrap().unwrap();
    assert_eq!(other.family.id, "fam_2", "the taken selector is untouched");
    assert_eq!(other.token_hash, digest(&rt("fam_2")));
    assert_eq!(family(s, "fam_1").await.expires_at, 1000);
    assert!(audit_of(s, "token.refresh").await.is_empty());
    assert!(
        s.rotate_refresh_token(rotation(PC, "fam_1", &rt("fam_1"), "rt_new", 300))
            .await
            .unwrap(),
        "the token can still be rotated"
    );
}

pub async fn of_eight_concurrent_rotations_of_one_token_exactly_one_wins<S: Store + ?Sized>(
    s: Arc<S>,
) {
    create(&*s, PC).await;
    granted(&*s, grant(PC, "fam_1", None)).await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let s = Arc::clone(&s);
            tokio::spawn(async move {
                let next = format!("rt_next_{i}");
                s.rotate_refresh_token(rotation(PC, "fam_1", &rt("fam_1"), &next, 200))
                    .await
                    .unwrap()
            })
        })
        .collect();
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
    assert_eq!(spent_at(&*s, &rt("fam_1")).await, Some(200));
    let mut successors = 0;
    for i in 0..8 {
        let found = s.find_refresh_token(&format!("rt_next_{i}")).await.unwrap();
        successors += usize::from(found.is_some());
    }
    assert_eq!(successors, 1, "only the winner's successor is stored");
    assert_eq!(audit_of(&*s, "token.refresh").await.len(), 1);
}

pub async fn concurrent_grants_are_all_recorded<S: Store + ?Sized>(s: Arc<S>) {
    create(&*s, PC).await;
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let s = Arc::clone(&s);
            tokio::spawn(async move {
                s.record_grant(grant(PC, &format!("fam_{i}"), Some("home")))
                    .await
                    .unwrap()
            })
        })
        .collect();
    for t in tasks {
        assert!(t.await.unwrap());
    }
    assert_eq!(s.list_families(&cid(PC), None).await.unwrap().len(), 8);
    assert_eq!(audit_of(&*s, "token.issue").await.len(), 8);
    let labels = s.list_labels(&cid(PC), 100).await.unwrap();
    assert_eq!(labels.len(), 1);
    assert_eq!(labels[0].live_families, 8);
}

pub async fn a_rotation_must_present_the_stored_hash_not_just_the_selector<S: Store + ?Sized>(
    s: &S,
) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", None)).await;
    let forged = Rotation {
        old_hash: [7; 32],
        ..rotation(PC, "fam_1", &rt("fam_1"), "rt_2", 200)
    };
    assert!(!s.rotate_refresh_token(forged).await.unwrap());
    assert_eq!(spent_at(s, &rt("fam_1")).await, None);
    assert!(s.find_refresh_token("rt_2").await.unwrap().is_none());
    assert!(
        s.rotate_refresh_token(rotation(PC, "fam_1", &rt("fam_1"), "rt_2", 200))
            .await
            .unwrap()
    );
}

pub async fn an_expired_token_cannot_be_rotated<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    granted(
        s,
        NewGrant {
            refresh_token: Some(NewRefresh {
                id: rt("fam_1"),
                hash: digest(&rt("fam_1")),
                expires_at: 500,
            }),
            ..grant(PC, "fam_1", None)
        },
    )
    .await;
    assert!(
        !s.rotate_refresh_token(rotation(PC, "fam_1", &rt("fam_1"), "rt_2", 600))
            .await
            .unwrap()
    );
    assert_eq!(spent_at(s, &rt("fam_1")).await, None);
    assert!(s.find_refresh_token("rt_2").await.unwrap().is_none());
    assert!(audit_of(s, "token.refresh").await.is_empty());
}

pub async fn a_token_cannot_be_rotated_by_another_client_or_for_another_family<
    S: Store + ?Sized,
>(
    s: &S,
) {
    create(s, PC).await;
    create(s, OTHER).await;
    granted(s, grant(PC, "fam_1", None)).await;
    granted(s, grant(OTHER, "fam_o", None)).await;
    // The other client presents this client's token, naming its family.
    assert!(
        !s.rotate_refresh_token(rotation(OTHER, "fam_1", &rt("fam_1"), "rt_2", 200))
            .await
            .unwrap()
    );
    // Or naming its own family.
    assert!(
        !s.rotate_refresh_token(rotation(OTHER, "fam_o", &rt("fam_1"), "rt_2", 200))
            .await
            .unwrap()
    );
    // The owner names a family the token is not of.
    assert!(
        !s.rotate_refresh_token(rotation(PC, "fam_o", &rt("fam_1"), "rt_2", 200))
            .await
            .unwrap()
    );
    assert_eq!(spent_at(s, &rt("fam_1")).await, None);
    assert_eq!(spent_at(s, &rt("fam_o")).await, None);
    assert!(s.find_refresh_token("rt_2").await.unwrap().is_none());
    assert!(audit_of(s, "token.refresh").await.is_empty());
}

pub async fn a_token_of_a_revoked_family_cannot_be_rotated<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", None)).await;
    let revoked = s
        .revoke_families(
            RevokeScope::Family {
                id: "fam_1",
                client: None,
            },
            150,
            "reuse",
            2000,
            &NewAuditEvent::new(150, k("token.revoke"), Actor::system()),
        )
        .await
        .unwrap();
    assert_eq!(revoked, ["fam_1"]);
    let found = s.find_refresh_token(&rt("fam_1")).await.unwrap().unwrap();
    assert_eq!(
        found.family.revoked_at,
        Some(150),
        "the lookup shows the revocation"
    );
    assert!(
        !s.rotate_refresh_token(rotation(PC, "fam_1", &rt("fam_1"), "rt_2", 200))
            .await
            .unwrap()
    );
    assert_eq!(spent_at(s, &rt("fam_1")).await, None);
    assert!(s.find_refresh_token("rt_2").await.unwrap().is_none());
}

pub async fn an_unknown_token_is_not_found_and_cannot_be_rotated<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", None)).await;
    assert!(s.find_refresh_token("rt_nope").await.unwrap().is_none());
    assert!(
        !s.rotate_refresh_token(rotation(PC, "fam_1", "rt_nope", "rt_2", 200))
            .await
            .unwrap()
    );
    assert!(s.find_refresh_token("rt_2").await.unwrap().is_none());
}

pub async fn usage_moves_last_used_forward_only<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    granted(s, grant(PC, "fam_2", Some("home"))).await;
    let usage = |family: &str, label: Option<&str>, at| Usage {
        family_id: family.into(),
        client_id: PC.into(),
        label: label.map(Into::into),
        at,
    };
    s.record_usage(&[]).await.unwrap();
    s.record_usage(&[usage("fam_1", Some("home"), 300)])
        .await
        .unwrap();
    assert_eq!(family(s, "fam_1").await.last_used_at, Some(300));
    assert_eq!(family(s, "fam_2").await.last_used_at, None);
    let labels = s.list_labels(&cid(PC), 300).await.unwrap();
    assert_eq!(labels[0].last_used_at, Some(300));

    s.record_usage(&[usage("fam_1", Some("home"), 250), usage("fam_2", None, 400)])
        .await
        .unwrap();
    assert_eq!(
        family(s, "fam_1").await.last_used_at,
        Some(300),
        "never backwards"
    );
    assert_eq!(family(s, "fam_2").await.last_used_at, Some(400));
    let labels = s.list_labels(&cid(PC), 400).await.unwrap();
    assert_eq!(
        labels[0].last_used_at,
        Some(300),
        "a use without a label leaves labels alone"
    );
}

// ---------------------------------------------------------------------------
// Revocations
// ---------------------------------------------------------------------------

pub async fn revoking_families_records_a_revocation_and_an_audit_event_per_family<
    S: Store + ?Sized,
>(
    s: &S,
) {
    create(s, PC).await;
    create(s, OTHER).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    granted(s, grant(PC, "fam_2", None)).await;
    granted(
        s,
        NewGrant {
            refresh_token: None,
            expires_at: 250,
            ..grant(PC, "fam_old", Some("home"))
        },
    )
    .await;
    granted(s, grant(OTHER, "fam_o", Some("home"))).await;

    let audit = NewAuditEvent {
        detail: Some(r#"{"reason":"admin"}"#.into()),
        ..NewAuditEvent::new(300, k("token.revoke"), Actor::cli_admin())
    };
    let mut revoked = s
        .revoke_families(
            RevokeScope::Client {
                client: &cid(PC),
                label: None,
            },
            300,
            "admin",
            2000,
            &audit,
        )
        .await
        .unwrap();
    revoked.sort();
    assert_eq!(revoked, ["fam_1", "fam_2"], "live families only");
    assert_eq!(family(s, "fam_1").await.revoked_at, Some(300));
    assert_eq!(family(s, "fam_2").await.revoked_at, Some(300));
    assert_eq!(family(s, "fam_old").await.revoked_at, None);
    assert_eq!(family(s, "fam_o").await.revoked_at, None);

    let mut revs: Vec<_> = revocations(s).await;
    revs.sort_by(|a, b| a.target.cmp(&b.target));
    assert_eq!(
        revs.iter().map(rev).collect::<Vec<_>>(),
        [
            ("family", "fam_1", None, 2000),
            ("family", "fam_2", None, 2000)
        ]
    );

    let mut events = audit_of(s, "token.revoke").await;
    events.sort_by(|a, b| a.target.cmp(&b.target));
    assert_eq!(events.len(), 2, "one audit event per family");
    let summary: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.target.as_deref(),
                e.client_id.as_deref(),
                e.label.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (Some("fam_1"), Some(PC), Some("home")),
            (Some("fam_2"), Some(PC), None)
        ]
    );
    for e in &events {
        assert_eq!(e.at, 300);
        assert_eq!(e.actor_kind, "admin");
        assert_eq!(e.actor_id.as_deref(), Some("cli"));
        assert_eq!(e.detail.as_deref(), Some(r#"{"reason":"admin"}"#));
    }
}

pub async fn a_family_is_revoked_only_for_its_own_client_and_only_once<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    create(s, OTHER).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    let audit = NewAuditEvent::new(300, k("token.revoke"), Actor::cli_admin());
    let other = cid(OTHER);
    let foreign = RevokeScope::Family {
        id: "fam_1",
        client: Some(&other),
    };
    let revoked = s
        .revoke_families(foreign, 300, "client", 2000, &audit)
        .await
        .unwrap();
    assert!(revoked.is_empty());
    assert_eq!(family(s, "fam_1").await.revoked_at, None);
    assert!(revocations(s).await.is_empty());
    assert!(audit_of(s, "token.revoke").await.is_empty());

    let own = cid(PC);
    let scope = RevokeScope::Family {
        id: "fam_1",
        client: Some(&own),
    };
    let revoked = s
        .revoke_families(scope, 300, "client", 2000, &audit)
        .await
        .unwrap();
    assert_eq!(revoked, ["fam_1"]);
    let revoked = s
        .revoke_families(scope, 400, "client", 3000, &audit)
        .await
        .unwrap();
    assert!(revoked.is_empty(), "already revoked");
    assert_eq!(
        family(s, "fam_1").await.revoked_at,
        Some(300),
        "first revocation kept"
    );
    assert_eq!(revocations(s).await.len(), 1);
    assert_eq!(audit_of(s, "token.revoke").await.len(), 1);

    let none = s
        .revoke_families(
            RevokeScope::Family {
                id: "fam_missing",
                client: None,
            },
            300,
            "admin",
            2000,
            &audit,
        )
        .await
        .unwrap();
    assert!(none.is_empty());
}

pub async fn a_revoked_access_token_is_listed_until_its_expiry<S: Store + ?Sized>(s: &S) {
    let audit = NewAuditEvent {
        target: Some("jti_1".into()),
        ..NewAuditEvent::new(100, k("token.revoke"), Actor::cli_admin())
    };
    s.revoke_access_token("jti_1", 100, 500, &audit)
        .await
        .unwrap();
    let revs = s.revocations_since(0, 100).await.unwrap();
    assert_eq!(
        revs.iter().map(rev).collect::<Vec<_>>(),
        [("token", "jti_1", None, 500)]
    );
    assert_eq!(s.revocations_since(0, 499).await.unwrap().len(), 1);
    assert!(
        s.revocations_since(0, 500).await.unwrap().is_empty(),
        "gone once the token has expired"
    );
    let events = audit_of(s, "token.revoke").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].target.as_deref(), Some("jti_1"));
}

pub async fn revocations_are_listed_after_a_given_id_oldest_first<S: Store + ?Sized>(s: &S) {
    let audit = NewAuditEvent::new(100, k("token.revoke"), Actor::cli_admin());
    for (jti, exp) in [("jti_1", 500), ("jti_2", 300), ("jti_3", 500)] {
        s.revoke_access_token(jti, 100, exp, &audit).await.unwrap();
    }
    let all = s.revocations_since(0, 100).await.unwrap();
    let targets = |revs: &[Revocation]| revs.iter().map(|r| r.target.clone()).collect::<Vec<_>>();
    assert_eq!(targets(&all), ["jti_1", "jti_2", "jti_3"]);
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "by id");
    let after_first = s.revocations_since(all[0].id, 100).await.unwrap();
    assert_eq!(targets(&after_first), ["jti_2", "jti_3"]);
    assert!(
        s.revocations_since(all[2].id, 100)
            .await
            .unwrap()
            .is_empty()
    );
    let live = s.revocations_since(0, 300).await.unwrap();
    assert_eq!(
        targets(&live),
        ["jti_1", "jti_3"],
        "expired ones are left out"
    );
}

// ---------------------------------------------------------------------------
// Signing keys
// ---------------------------------------------------------------------------

pub async fn a_new_signing_key_becomes_current_and_the_old_one_previous<S: Store + ?Sized>(s: &S) {
    assert!(s.signing_keys().await.unwrap().is_empty());
    let key = |kid: &str, alg: &str, at| StoredKey {
        kid: kid.into(),
        alg: alg.into(),
        private_key_enc: kid.as_bytes().to_vec(),
        public_jwk: format!(r#"{{"kid":"{kid}"}}"#),
        state: KeyState::Current,
        created_at: at,
        retire_after: None,
    };
    s.add_signing_key(&key("k1", "ES256", 100), 0)
        .await
        .unwrap();
    let keys = s.signing_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].kid, "k1");
    assert_eq!(keys[0].alg, "ES256");
    assert_eq!(keys[0].private_key_enc, b"k1");
    assert_eq!(keys[0].public_jwk, r#"{"kid":"k1"}"#);
    assert_eq!(keys[0].state, KeyState::Current);
    assert_eq!(keys[0].created_at, 100);
    assert_eq!(keys[0].retire_after, None);

    s.add_signing_key(&key("k2", "EdDSA", 200), 900)
        .await
        .unwrap();
    let keys = s.signing_keys().await.unwrap();
    let summary: Vec<_> = keys
        .iter()
        .map(|k| (k.kid.as_str(), k.state.as_str(), k.retire_after))
        .collect();
    assert_eq!(
        summary,
        [("k2", "current", None), ("k1", "previous", Some(900))]
    );
    assert_eq!(keys[0].alg, "EdDSA");

    s.add_signing_key(&key("k3", "RS256", 300), 1200)
        .await
        .unwrap();
    let keys = s.signing_keys().await.unwrap();
    assert_eq!(keys[0].kid, "k3", "current first");
    assert_eq!(keys[0].state, KeyState::Current);
    assert_eq!(
        keys.iter().filter(|k| k.state == KeyState::Current).count(),
        1,
        "one current key"
    );
    let k2 = keys.iter().find(|k| k.kid == "k2").unwrap();
    assert_eq!(
        (k2.state.as_str(), k2.retire_after),
        ("previous", Some(1200))
    );
}

// ---------------------------------------------------------------------------
// Admin users and sessions
// ---------------------------------------------------------------------------

pub async fn admin_users_are_counted_created_once_and_their_passwords_replaced<
    S: Store + ?Sized,
>(
    s: &S,
) {
    assert_eq!(s.count_admin_users().await.unwrap(), 0);
    assert_eq!(s.admin_password_hash("alice").await.unwrap(), None);
    s.create_admin_user("alice", "$argon2id$one", 100)
        .await
        .unwrap();
    s.create_admin_user("bob", "$argon2id$bob", 100)
        .await
        .unwrap();
    assert_eq!(s.count_admin_users().await.unwrap(), 2);
    let err = s
        .create_admin_user("alice", "$argon2id$two", 200)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        s.admin_password_hash("alice").await.unwrap().as_deref(),
        Some("$argon2id$one")
    );
    s.set_admin_password("alice", "$argon2id$three", 300)
        .await
        .unwrap();
    assert_eq!(
        s.admin_password_hash("alice").await.unwrap().as_deref(),
        Some("$argon2id$three")
    );
    assert_eq!(
        s.admin_password_hash("bob").await.unwrap().as_deref(),
        Some("$argon2id$bob")
    );
    let err = s
        .set_admin_password("carol", "$argon2id$x", 300)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(s.count_admin_users().await.unwrap(), 2);
}

pub async fn admin_sessions_live_until_they_expire_and_end_when_deleted<S: Store + ?Sized>(s: &S) {
    s.create_admin_user("alice", "$argon2id$one", 100)
        .await
        .unwrap();
    let session = AdminSessionRow {
        id_hash: [1; 32],
        user_name: "alice".into(),
        csrf_token: "csrf-1".into(),
        created_at: 100,
        last_seen_at: 100,
        expires_at: 1000,
        source: Some("198.51.100.4".into()),
    };
    s.create_admin_session(&session).await.unwrap();
    let other = AdminSessionRow {
        id_hash: [2; 32],
        csrf_token: "csrf-2".into(),
        source: None,
        ..session.clone()
    };
    s.create_admin_session(&other).await.unwrap();

    assert_eq!(
        s.get_admin_session(&[1; 32], 500).await.unwrap(),
        Some(session.clone())
    );
    assert_eq!(s.get_admin_session(&[3; 32], 500).await.unwrap(), None);
    s.touch_admin_session(&[1; 32], 600).await.unwrap();
    let touched = s.get_admin_session(&[1; 32], 600).await.unwrap().unwrap();
    assert_eq!(touched.last_seen_at, 600);
    assert_eq!(touched.expires_at, 1000, "touching does not extend expiry");
    assert_eq!(
        s.get_admin_session(&[1; 32], 1000).await.unwrap(),
        None,
        "expired"
    );

    s.delete_admin_session(&[1; 32]).await.unwrap();
    assert_eq!(s.get_admin_session(&[1; 32], 500).await.unwrap(), None);
    assert_eq!(
        s.get_admin_session(&[2; 32], 500).await.unwrap(),
        Some(other)
    );
    s.delete_admin_session(&[9; 32]).await.unwrap();
}

// ---------------------------------------------------------------------------
// The audit log and the dashboard
// ---------------------------------------------------------------------------

pub async fn an_appended_audit_event_reads_back_whole<S: Store + ?Sized>(s: &S) {
    let e = NewAuditEvent {
        at: 123,
        kind: AuditKind::ClientAuthFailedBurst,
        actor: Actor {
            kind: "user",
            id: Some("alice".into()),
            source: Some("203.0.113.9".into()),
        },
        target: Some("fam_x".into()),
        client_id: Some(PC.into()),
        label: Some("home".into()),
        detail: Some(r#"{"why":"bad secret"}"#.into()),
    };
    s.append_audit(&e).await.unwrap();
    s.append_audit(&NewAuditEvent::new(124, k("key.rotate"), Actor::system()))
        .await
        .unwrap();
    let all = all_audit(s).await;
    assert_eq!(all.len(), 2);
    assert!(all[0].id > all[1].id, "newest first");
    assert_eq!(
        all[1],
        AuditRecord {
            id: all[1].id,
            at: 123,
            kind: "client.auth_failed_burst".into(),
            actor_kind: "user".into(),
            actor_id: Some("alice".into()),
            target: Some("fam_x".into()),
            client_id: Some(PC.into()),
            label: Some("home".into()),
            source: Some("203.0.113.9".into()),
            detail: Some(r#"{"why":"bad secret"}"#.into()),
        }
    );
    assert_eq!(
        all[0],
        AuditRecord {
            id: all[0].id,
            at: 124,
            kind: "key.rotate".into(),
            actor_kind: "system".into(),
            actor_id: None,
            target: None,
            client_id: None,
            label: None,
            source: None,
            detail: None,
        }
    );
}

/// The events' numbers (1 = first appended) of what `f` lists, in its order.
async fn numbers<S: Store + ?Sized>(s: &S, ids: &[i64], f: AuditFilter) -> Vec<usize> {
    s.list_audit(&f)
        .await
        .unwrap()
        .iter()
        .map(|r| ids.iter().position(|id| *id == r.id).unwrap() + 1)
        .collect()
}

pub async fn the_audit_log_filters_and_pages_newest_first<S: Store + ?Sized>(s: &S) {
    let events = [
        (100, "token.issue", "pc_a", "home-1"),
        (100, "token.issue", "pc_b", "home-1"),
        (200, "token.refresh", "pc_a", "home-2"),
        (200, "token.issue", "pc_a", "home-1"),
        (300, "token.revoke", "pc_b", "home-2"),
        (300, "token.issue", "pc_a", "home-2"),
        (400, "token.refresh", "pc_a", "home-1"),
        (400, "token.issue", "pc_b", "home-1"),
    ];
    for (at, kind, client, label) in events {
        s.append_audit(&NewAuditEvent {
            client_id: Some(client.into()),
            label: Some(label.into()),
            ..NewAuditEvent::new(at, k(kind), Actor::system())
        })
        .await
        .unwrap();
    }
    let all = all_audit(s).await;
    let mut ids: Vec<i64> = all.iter().map(|r| r.id).collect();
    ids.reverse();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "ids grow as events are appended"
    );
    let kinds: Vec<&str> = all.iter().rev().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, events.map(|e| e.1), "one record per event");

    let of_client = |c: &str| AuditFilter {
        client_id: Some(c.into()),
        ..everything()
    };
    let n = |f| numbers(s, &ids, f);
    assert_eq!(n(everything()).await, [8, 7, 6, 5, 4, 3, 2, 1]);
    assert_eq!(n(of_client("pc_a")).await, [7, 6, 4, 3, 1]);
    assert!(n(of_client("pc_none")).await.is_empty());
    let label = AuditFilter {
        label: Some("home-2".into()),
        ..everything()
    };
    assert_eq!(n(label.clone()).await, [6, 5, 3]);
    let label_and_client = AuditFilter {
        client_id: Some("pc_a".into()),
        ..label
    };
    assert_eq!(n(label_and_client).await, [6, 3]);
    let kind = AuditFilter {
        kind: Some(AuditKind::TokenIssue),
        ..everything()
    };
    assert_eq!(n(kind.clone()).await, [8, 6, 4, 2, 1]);
    let kind_and_client = AuditFilter {
        client_id: Some("pc_b".into()),
        ..kind.clone()
    };
    assert_eq!(n(kind_and_client).await, [8, 2]);
    let since = AuditFilter {
        since: Some(300),
        ..of_client("pc_a")
    };
    assert_eq!(n(since).await, [7, 6]);
    let since_all = AuditFilter {
        since: Some(200),
        ..everything()
    };
    assert_eq!(n(since_all).await, [8, 7, 6, 5, 4, 3]);
    let before = AuditFilter {
        before_id: Some(ids[4]),
        ..kind
    };
    assert_eq!(n(before).await, [4, 2, 1], "strictly before the id");
    let limited = AuditFilter {
        limit: 3,
        ..everything()
    };
    assert_eq!(n(limited).await, [8, 7, 6], "the newest ones");

    // Pages of two, each after the last id of the one before.
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = n(AuditFilter {
            before_id: before,
            limit: 2,
            ..of_client("pc_a")
        })
        .await;
        let Some(&last) = page.last() else { break };
        before = Some(ids[last - 1]);
        pages.push(page);
    }
    assert_eq!(pages, [vec![7, 6], vec![4, 3], vec![1]]);
}

const DAY: i64 = 86_400;

pub async fn daily_counters_add_up_across_calls<S: Store + ?Sized>(s: &S) {
    let today = 20 * DAY;
    s.bump_daily_counters(&[]).await.unwrap();
    s.bump_daily_counters(&[
        (today, "client_auth_failed".into(), 2),
        (today - DAY, "client_auth_failed".into(), 1),
    ])
    .await
    .unwrap();
    s.bump_daily_counters(&[(today, "client_auth_failed".into(), 3)])
        .await
        .unwrap();
    let stats = s.dashboard(today + 100, 7).await.unwrap();
    assert_eq!(stats.failed_auth_per_day, [(today - DAY, 1), (today, 5)]);
}

pub async fn the_dashboard_counts_clients_sites_tokens_uploads_and_failures<S: Store + ?Sized>(
    s: &S,
) {
    let today = 20 * DAY;
    let yesterday = today - DAY;
    let now = today + 3600;
    let empty = s.dashboard(now, 7).await.unwrap();
    assert_eq!(empty.clients, 0);
    assert_eq!(empty.live_sites, 0);
    assert_eq!(empty.tokens_today, 0);
    assert_eq!(empty.uploads_today, 0);
    assert!(empty.tokens_per_day.is_empty());
    assert!(empty.uploads_per_site_day.is_empty());
    assert!(empty.failed_auth_per_day.is_empty());

    create(s, "pc_a").await;
    create(s, "pc_b").await;
    let at = |client: &str, fam: &str, label: Option<&str>, created: i64, expires: i64| NewGrant {
        created_at: created,
        expires_at: expires,
        refresh_token: None,
        ..grant(client, fam, label)
    };
    let later = today + 10 * DAY;
    // Live, labelled: two sites of pc_a.
    granted(s, at("pc_a", "fam_1", Some("home-1"), today + 100, later)).await;
    granted(
        s,
        at("pc_a", "fam_2", Some("home-2"), yesterday + 50, later),
    )
    .await;
    // Expired before now, and without a label: no site.
    granted(
        s,
        at("pc_b", "fam_3", Some("home-1"), today + 200, today + 500),
    )
    .await;
    granted(s, at("pc_b", "fam_4", None, today + 300, later)).await;
    // Outside the seven days asked for.
    granted(s, at("pc_b", "fam_5", None, today - 10 * DAY, later)).await;
    // One refresh today.
    granted(
        s,
        NewGrant {
            created_at: today + 100,
            expires_at: later,
            refresh_token: Some(NewRefresh {
                id: "rt_6".into(),
                hash: digest("rt_6"),
                expires_at: later,
            }),
            ..grant("pc_a", "fam_6", None)
        },
    )
    .await;
    let r = Rotation {
        family_expires_at: later,
        new: NewRefresh {
            id: "rt_7".into(),
            hash: digest("rt_7"),
            expires_at: later,
        },
        ..rotation("pc_a", "fam_6", "rt_6", "rt_7", today + 400)
    };
    assert!(s.rotate_refresh_token(r).await.unwrap());

    s.bump_daily_counters(&[
        (today, "client_auth_failed".into(), 4),
        (yesterday, "client_auth_failed".into(), 1),
        (today, "something_else".into(), 9),
    ])
    .await
    .unwrap();

    for (batch, label, received) in [
        ("b1", Some("home-1"), today + 10),
        ("b2", Some("home-1"), today + 20),
        ("b3", None, yesterday + 5),
        ("b4", Some("home-1"), today - 30 * DAY),
    ] {
        let u = NewUpload {
            received_at: received,
            ..upload("pc_a", batch, label, None)
        };
        s.store_upload(u).await.unwrap();
    }

    let stats = s.dashboard(now, 7).await.unwrap();
    assert_eq!(stats.clients, 2);
    assert_eq!(stats.live_sites, 2);
    // Today: fam_1, fam_3, fam_4, fam_6 and the refresh; yesterday: fam_2.
    assert_eq!(stats.tokens_per_day, [(yesterday, 1), (today, 5)]);
    assert_eq!(stats.tokens_today, 5);
    assert_eq!(
        stats.uploads_per_site_day,
        [
            (String::new(), yesterday, 1),
            ("home-1".to_owned(), today, 2)
        ]
    );
    assert_eq!(stats.uploads_today, 2);
    assert_eq!(stats.failed_auth_per_day, [(yesterday, 1), (today, 4)]);

    let one_day = s.dashboard(now, 1).await.unwrap();
    assert_eq!(one_day.tokens_per_day, [(today, 5)]);
    assert_eq!(one_day.failed_auth_per_day, [(today, 4)]);
}

// ---------------------------------------------------------------------------
// Uploads
// ---------------------------------------------------------------------------

pub async fn an_upload_is_stored_replayed_with_its_key_and_refused_with_another_body<
    S: Store + ?Sized,
>(
    s: &S,
) {
    create(s, PC).await;
    create(s, OTHER).await;
    let first = NewUpload {
        records: vec!["{}".into(), "{}".into(), "{}".into()],
        ..upload(PC, "b1", Some("home"), Some("key-1"))
    };
    assert_eq!(
        s.store_upload(first.clone()).await.unwrap(),
        UploadOutcome::Stored {
            batch_id: "b1".into(),
            accepted: 3
        }
    );
    let retry = NewUpload {
        batch_id: "b2".into(),
        received_at: 200,
        ..first.clone()
    };
    assert_eq!(
        s.store_upload(retry).await.unwrap(),
        UploadOutcome::Replayed {
            batch_id: "b1".into(),
            accepted: 3
        }
    );
    let reused = NewUpload {
        batch_id: "b3".into(),
        body_hash: [0xEE; 32],
        records: vec!["{}".into()],
        ..first.clone()
    };
    assert_eq!(
        s.store_upload(reused).await.unwrap(),
        UploadOutcome::KeyReused
    );
    // Keys are the client's own: another client may use the same one.
    let theirs = NewUpload {
        batch_id: "b4".into(),
        client_id: OTHER.into(),
        ..first
    };
    assert_eq!(
        s.store_upload(theirs).await.unwrap(),
        UploadOutcome::Stored {
            batch_id: "b4".into(),
            accepted: 3
        }
    );

    assert_eq!(
        s.site_counters(&cid(PC)).await.unwrap(),
        [SiteCounters {
            label: Some("home".into()),
            records: 3,
            batches: 1,
            last_upload_at: Some(100),
        }],
        "a replay or a refused reuse counts nothing"
    );
    let labels = s.list_labels(&cid(PC), 300).await.unwrap();
    assert_eq!(labels.len(), 1);
    assert_eq!(labels[0].uploads, 1);
}

pub async fn uploads_without_a_key_are_each_stored_and_counted_per_label<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    assert!(s.site_counters(&cid(PC)).await.unwrap().is_empty());
    for (batch, label, at) in [
        ("b1", Some("home"), 100),
        ("b2", Some("home"), 300),
        ("b3", Some("home"), 200),
        ("b4", None, 150),
    ] {
        let u = NewUpload {
            received_at: at,
            ..upload(PC, batch, label, None)
        };
        assert_eq!(
            s.store_upload(u).await.unwrap(),
            UploadOutcome::Stored {
                batch_id: batch.into(),
                accepted: 2
            }
        );
    }
    assert_eq!(
        s.site_counters(&cid(PC)).await.unwrap(),
        [
            SiteCounters {
                label: None,
                records: 2,
                batches: 1,
                last_upload_at: Some(150),
            },
            SiteCounters {
                label: Some("home".into()),
                records: 6,
                batches: 3,
                last_upload_at: Some(300),
            },
        ]
    );
    let labels = s.list_labels(&cid(PC), 400).await.unwrap();
    assert_eq!(labels.len(), 1);
    assert_eq!(labels[0].name, "home");
    assert_eq!(labels[0].uploads, 3);
    assert_eq!(labels[0].last_used_at, Some(300));
    assert!(s.site_counters(&cid(OTHER)).await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------
// Housekeeping
// ---------------------------------------------------------------------------

pub async fn pruning_keeps_what_reuse_detection_needs_until_the_family_expires<
    S: Store + ?Sized,
>(
    s: &S,
) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", None)).await;
    assert!(
        s.rotate_refresh_token(rotation(PC, "fam_1", &rt("fam_1"), "rt_2", 200))
            .await
            .unwrap()
    );
    // Long after the spend, but before the family expires: the spent token stays,
    // so presenting it again is still recognised as reuse.
    let p = s.prune(900).await.unwrap();
    assert_eq!(p.families, 0);
    assert_eq!(spent_at(s, &rt("fam_1")).await, Some(200));
    assert!(family(s, "fam_1").await.revoked_at.is_none());
    // Once every token of the family has expired, it all goes.
    let p = s.prune(1000).await.unwrap();
    assert_eq!(p.families, 1);
    assert!(s.get_family("fam_1").await.unwrap().is_none());
    assert!(s.find_refresh_token(&rt("fam_1")).await.unwrap().is_none());
    assert!(s.find_refresh_token("rt_2").await.unwrap().is_none());
    assert_eq!(s.prune(1000).await.unwrap(), Default::default());
}

pub async fn pruning_keeps_a_revoked_family_until_it_expires<S: Store + ?Sized>(s: &S) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    s.revoke_families(
        RevokeScope::Family {
            id: "fam_1",
            client: None,
        },
        150,
        "reuse",
        5000,
        &NewAuditEvent::new(150, k("token.revoke"), Actor::system()),
    )
    .await
    .unwrap();
    let p = s.prune(999).await.unwrap();
    assert_eq!(p.families, 0);
    assert_eq!(p.revocations, 0);
    let found = s.find_refresh_token(&rt("fam_1")).await.unwrap().unwrap();
    assert_eq!(found.family.revoked_at, Some(150), "a revoked family stays");
    let p = s.prune(1000).await.unwrap();
    assert_eq!(p.families, 1);
    assert_eq!(p.revocations, 0, "its revocation lasts until deny_until");
    assert_eq!(revocations(s).await.len(), 1);
    assert!(s.get_family("fam_1").await.unwrap().is_none());
    assert!(s.find_refresh_token(&rt("fam_1")).await.unwrap().is_none());
    assert!(s.get_client(&cid(PC)).await.unwrap().is_some());
}

pub async fn pruning_drops_grace_answers_after_the_grace_but_keeps_the_spent_token<
    S: Store + ?Sized,
>(
    s: &S,
) {
    create_client(
        s,
        &Client {
            refresh_reuse_grace: Ttl::from_secs_allow_zero(60).unwrap(),
            ..client(PC)
        },
    )
    .await;
    granted(s, grant(PC, "fam_1", None)).await;
    let r = Rotation {
        grace_response: Some(vec![4, 5, 6]),
        ..rotation(PC, "fam_1", &rt("fam_1"), "rt_2", 200)
    };
    assert!(s.rotate_refresh_token(r).await.unwrap());
    let p = s.prune(250).await.unwrap();
    assert_eq!(p.grace_responses, 0, "still within the grace");
    let old = s.find_refresh_token(&rt("fam_1")).await.unwrap().unwrap();
    assert_eq!(old.grace_response.as_deref(), Some(&[4u8, 5, 6][..]));

    let p = s.prune(400).await.unwrap();
    assert_eq!(p.grace_responses, 1);
    assert_eq!(p.families, 0);
    let old = s.find_refresh_token(&rt("fam_1")).await.unwrap().unwrap();
    assert_eq!(old.grace_response, None);
    assert_eq!(old.spent_at, Some(200), "the spent token stays for reuse");
    assert!(old.successor_unused);
}

pub async fn revocations_are_kept_until_their_tokens_expire<S: Store + ?Sized>(s: &S) {
    let audit = NewAuditEvent::new(100, k("token.revoke"), Actor::system());
    s.revoke_access_token("jti_1", 100, 500, &audit)
        .await
        .unwrap();
    s.revoke_access_token("jti_2", 100, 800, &audit)
        .await
        .unwrap();
    assert_eq!(s.revocations_since(0, 400).await.unwrap().len(), 2);
    let p = s.prune(499).await.unwrap();
    assert_eq!(p.revocations, 0);
    let p = s.prune(500).await.unwrap();
    assert_eq!(p.revocations, 1);
    let left = revocations(s).await;
    assert_eq!(
        left.iter().map(rev).collect::<Vec<_>>(),
        [("token", "jti_2", None, 800)]
    );
}

// ---------------------------------------------------------------------------
// Atomicity: an admin change whose audit event cannot be written leaves nothing
// ---------------------------------------------------------------------------

pub async fn an_injected_failure_hits_only_its_own_kind<B: Backend>(b: &B, s: &B::S) {
    b.fail_audit_inserts_of(s, "client.update").await;
    s.append_audit(&NewAuditEvent::new(
        100,
        k("client.update"),
        Actor::system(),
    ))
    .await
    .unwrap_err();
    s.append_audit(&NewAuditEvent::new(
        100,
        k("client.enable"),
        Actor::system(),
    ))
    .await
    .unwrap();
    create(s, PC).await;
    let kinds: Vec<String> = all_audit(s).await.into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, ["client.create", "client.enable"]);
}

pub async fn a_client_creation_that_cannot_be_audited_creates_nothing<B: Backend>(b: &B, s: &B::S) {
    create(s, OTHER).await;
    b.fail_audit_inserts_of(s, "client.create").await;
    s.create_client(&client(PC), &[1; 32], &admin_event(10, "client.create", PC))
        .await
        .unwrap_err();
    assert!(s.get_client(&cid(PC)).await.unwrap().is_none());
    assert!(s.get_client_auth(&cid(PC), 10).await.unwrap().is_none());
    assert_eq!(s.list_clients().await.unwrap(), [client(OTHER)]);
    assert!(
        !s.record_grant(grant(PC, "fam_1", None)).await.unwrap(),
        "no half-created client takes grants"
    );
}

pub async fn an_update_that_cannot_be_audited_changes_nothing<B: Backend>(b: &B, s: &B::S) {
    create(s, PC).await;
    b.fail_audit_inserts_of(s, "client.update").await;
    let edited = Client {
        name: "renamed".into(),
        scopes: scope_set(&["view-indicator"]),
        grant_types: vec![GrantType::AuthorizationCode],
        redirect_uris: vec![RedirectUri::parse("https://app.example/cb").unwrap()],
        access_token_ttl: Ttl::from_secs(60),
        issue_refresh_token: false,
        ..client(PC)
    };
    s.update_client(&edited, 300, &admin_event(300, "client.update", PC))
        .await
        .unwrap_err();
    assert_eq!(s.get_client(&cid(PC)).await.unwrap(), Some(client(PC)));
}

pub async fn a_disable_that_cannot_be_audited_changes_nothing<B: Backend>(b: &B, s: &B::S) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    granted(s, grant(PC, "fam_2", None)).await;
    b.fail_audit_inserts_of(s, "client.disable").await;
    s.disable_client(&cid(PC), 300, 2000, &admin_event(300, "client.disable", PC))
        .await
        .unwrap_err();

    let got = s.get_client(&cid(PC)).await.unwrap().unwrap();
    assert_eq!(got.status, ClientStatus::Active);
    assert_eq!(family(s, "fam_1").await.revoked_at, None);
    assert_eq!(family(s, "fam_2").await.revoked_at, None);
    assert!(revocations(s).await.is_empty(), "no client revocation");
    assert_eq!(
        s.list_labels(&cid(PC), 300).await.unwrap()[0].live_families,
        1
    );
    // The client still works.
    assert!(
        s.rotate_refresh_token(rotation(PC, "fam_1", &rt("fam_1"), "rt_next", 400))
            .await
            .unwrap()
    );
    granted(s, grant(PC, "fam_3", None)).await;
}

pub async fn an_enable_that_cannot_be_audited_changes_nothing<B: Backend>(b: &B, s: &B::S) {
    create(s, PC).await;
    s.disable_client(&cid(PC), 300, 2000, &admin_event(300, "client.disable", PC))
        .await
        .unwrap();
    b.fail_audit_inserts_of(s, "client.enable").await;
    s.enable_client(&cid(PC), 400, &admin_event(400, "client.enable", PC))
        .await
        .unwrap_err();
    let got = s.get_client(&cid(PC)).await.unwrap().unwrap();
    assert_eq!(got.status, ClientStatus::Disabled);
    assert!(!s.record_grant(grant(PC, "fam_1", None)).await.unwrap());
}

pub async fn a_delete_that_cannot_be_audited_changes_nothing<B: Backend>(b: &B, s: &B::S) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    s.store_upload(upload(PC, "b1", Some("home"), None))
        .await
        .unwrap();
    b.fail_audit_inserts_of(s, "client.delete").await;
    s.delete_client(&cid(PC), 300, 2000, &admin_event(300, "client.delete", PC))
        .await
        .unwrap_err();

    assert_eq!(s.get_client(&cid(PC)).await.unwrap(), Some(client(PC)));
    assert_eq!(secrets(s, PC, 300).await, vec![digest(PC)]);
    assert_eq!(family(s, "fam_1").await.revoked_at, None);
    assert!(s.find_refresh_token(&rt("fam_1")).await.unwrap().is_some());
    assert_eq!(s.list_labels(&cid(PC), 300).await.unwrap().len(), 1);
    assert_eq!(s.site_counters(&cid(PC)).await.unwrap().len(), 1);
    assert!(revocations(s).await.is_empty(), "no client revocation");
    assert!(
        s.rotate_refresh_token(rotation(PC, "fam_1", &rt("fam_1"), "rt_next", 400))
            .await
            .unwrap()
    );
}

pub async fn a_secret_rotation_that_cannot_be_audited_changes_nothing<B: Backend>(b: &B, s: &B::S) {
    create(s, PC).await;
    b.fail_audit_inserts_of(s, "client.rotate_secret").await;
    s.rotate_client_secret(
        &cid(PC),
        &[0xB; 32],
        500,
        200,
        &admin_event(200, "client.rotate_secret", PC),
    )
    .await
    .unwrap_err();
    assert_eq!(secrets(s, PC, 200).await, vec![digest(PC)]);
    assert_eq!(
        secrets(s, PC, 100_000).await,
        vec![digest(PC)],
        "and it does not expire"
    );
}

pub async fn a_scope_creation_that_cannot_be_audited_creates_nothing<B: Backend>(b: &B, s: &B::S) {
    b.fail_audit_inserts_of(s, "scope.create").await;
    let reports = ScopeRecord {
        name: "reports".into(),
        description: "Read monthly reports".into(),
        created_at: 500,
    };
    s.create_scope(
        &reports,
        &NewAuditEvent::new(500, k("scope.create"), Actor::cli_admin()),
    )
    .await
    .unwrap_err();
    let scopes = s.list_scopes().await.unwrap();
    assert!(scopes.iter().all(|sc| sc.name != "reports"));
    assert_eq!(scopes.len(), BUILT_IN.len());
    let c = Client {
        scopes: scope_set(&["reports"]),
        ..client(PC)
    };
    let err = s
        .create_client(&c, &[1; 32], &admin_event(10, "client.create", PC))
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict(_)),
        "the scope is unknown: {err:?}"
    );
}

pub async fn a_family_revocation_that_cannot_be_audited_changes_nothing<B: Backend>(
    b: &B,
    s: &B::S,
) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    granted(s, grant(PC, "fam_2", Some("home"))).await;
    b.fail_audit_inserts_of(s, "token.revoke").await;
    let audit = NewAuditEvent::new(300, k("token.revoke"), Actor::cli_admin());
    let id = cid(PC);
    s.revoke_families(
        RevokeScope::Client {
            client: &id,
            label: None,
        },
        300,
        "admin",
        2000,
        &audit,
    )
    .await
    .unwrap_err();
    s.revoke_families(
        RevokeScope::Client {
            client: &id,
            label: Some("home"),
        },
        300,
        "admin",
        2000,
        &audit,
    )
    .await
    .unwrap_err();
    s.revoke_families(
        RevokeScope::Family {
            id: "fam_2",
            client: Some(&id),
        },
        300,
        "admin",
        2000,
        &audit,
    )
    .await
    .unwrap_err();
    assert_eq!(family(s, "fam_1").await.revoked_at, None);
    assert_eq!(family(s, "fam_2").await.revoked_at, None);
    assert!(revocations(s).await.is_empty(), "no family revocation");
    assert_eq!(s.list_labels(&id, 300).await.unwrap()[0].live_families, 2);
    assert!(
        s.rotate_refresh_token(rotation(PC, "fam_2", &rt("fam_2"), "rt_next", 400))
            .await
            .unwrap()
    );
}

pub async fn an_access_token_revocation_that_cannot_be_audited_changes_nothing<B: Backend>(
    b: &B,
    s: &B::S,
) {
    b.fail_audit_inserts_of(s, "token.revoke").await;
    s.revoke_access_token(
        "jti_1",
        100,
        500,
        &NewAuditEvent::new(100, k("token.revoke"), Actor::cli_admin()),
    )
    .await
    .unwrap_err();
    assert!(revocations(s).await.is_empty());
}

pub async fn a_grant_that_cannot_be_audited_writes_nothing<B: Backend>(b: &B, s: &B::S) {
    create(s, PC).await;
    b.fail_audit_inserts_of(s, "token.issue").await;
    s.record_grant(grant(PC, "fam_1", Some("home")))
        .await
        .unwrap_err();
    assert!(s.get_family("fam_1").await.unwrap().is_none());
    assert!(s.find_refresh_token(&rt("fam_1")).await.unwrap().is_none());
    assert!(s.list_labels(&cid(PC), 100).await.unwrap().is_empty());
}

pub async fn a_refresh_that_cannot_be_audited_spends_nothing<B: Backend>(b: &B, s: &B::S) {
    create(s, PC).await;
    granted(s, grant(PC, "fam_1", Some("home"))).await;
    b.fail_audit_inserts_of(s, "token.refresh").await;
    let r = Rotation {
        family_expires_at: 1500,
        ..rotation(PC, "fam_1", &rt("fam_1"), "rt_2", 200)
    };
    s.rotate_refresh_token(r).await.unwrap_err();
    assert_eq!(spent_at(s, &rt("fam_1")).await, None);
    assert!(s.find_refresh_token("rt_2").await.unwrap().is_none());
    assert_eq!(family(s, "fam_1").await.expires_at, 1000);
    assert_eq!(
        s.list_labels(&cid(PC), 200).await.unwrap()[0].last_issued_at,
        Some(100)
    );
}
