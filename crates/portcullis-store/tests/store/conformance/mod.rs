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
//!
//! The checks live in one module per part of the store ([`store`], [`clients`],
//! [`tokens`], [`revocations`], [`keys`], [`admin`], [`audit`], [`data`],
//! [`users`]) and one
//! for the injected failures ([`atomicity`]), all re-exported here for
//! [`conformance_tests!`]; what they share is in [`fixtures`].

pub mod admin;
pub mod atomicity;
pub mod audit;
pub mod clients;
pub mod data;
pub(crate) mod fixtures;
pub mod keys;
pub mod revocations;
pub mod store;
pub mod tokens;
pub mod users;

pub use admin::*;
pub use atomicity::*;
pub use audit::*;
pub use clients::*;
pub use data::*;
pub use keys::*;
pub use revocations::*;
pub use store::*;
pub use tokens::*;
pub use users::*;

use portcullis_store::prelude::*;
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
                an_initialised_setting_keeps_its_first_value,
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
                a_spend_judges_the_token_as_its_write_finds_it_and_rotates_it_once,
                a_spend_its_judge_refuses_or_its_conditions_forbid_changes_nothing,
                a_spend_of_an_unknown_token_finds_nothing_and_never_judges,
                usage_moves_last_used_forward_only,
                revoking_families_records_a_revocation_and_an_audit_event_per_family,
                a_family_is_revoked_only_for_its_own_client_and_only_once,
                a_revoked_access_token_is_listed_until_its_expiry,
                revocations_are_listed_after_a_given_id_oldest_first,
                a_new_signing_key_becomes_current_and_the_old_one_previous,
                an_automatic_rotation_is_skipped_when_the_current_key_is_recent,
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
                a_label_keeps_its_last_issue_after_its_families_are_pruned,
                pruning_drops_grace_answers_after_the_grace_but_keeps_the_spent_token,
                revocations_are_kept_until_their_tokens_expire,
                a_created_user_reads_back_by_id_and_by_name_and_users_are_listed_by_name,
                a_user_name_can_be_taken_only_once,
                a_new_password_replaces_the_hash_and_ends_only_that_users_sessions,
                every_change_to_a_missing_user_is_not_found_and_writes_nothing,
                user_sessions_live_until_they_expire_and_end_when_deleted,
                a_new_user_session_drops_the_expired_ones,
                a_disabled_users_session_is_not_returned,
                disabling_a_user_revokes_exactly_their_live_authorization_code_families,
                enabling_a_user_revokes_nothing,
                a_consent_is_created_then_widened_and_read_back_with_the_client_name,
                consents_are_listed_with_the_client_name_and_the_last_use_of_their_tokens,
                revoking_a_consent_deletes_it_and_revokes_only_that_clients_families_of_the_user,
                narrowing_a_consent_narrows_its_families_and_revokes_their_access_tokens,
                revoking_a_missing_consent_is_not_found_and_changes_nothing,
                deleting_a_client_removes_the_consents_and_codes_given_to_it,
                a_code_is_spent_once_by_the_grant_that_records_it,
                an_expired_or_unknown_code_or_an_inactive_client_spends_nothing,
                a_code_reads_whether_its_user_is_active,
                pruning_keeps_a_code_an_hour_past_its_expiry_for_reuse_detection,
            ];
            shared: [
                of_eight_concurrent_rotations_of_one_token_exactly_one_wins,
                of_eight_concurrent_spends_of_one_token_exactly_one_rotates,
                concurrent_grants_are_all_recorded,
                of_concurrent_initialisations_of_a_setting_one_wins_for_all,
                concurrent_consents_to_one_application_all_end_up_in_it,
                of_eight_concurrent_grants_spending_one_code_exactly_one_is_recorded,
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
                a_refresh_spend_that_cannot_be_audited_spends_nothing,
                a_key_rotation_that_cannot_be_audited_changes_nothing,
                a_user_creation_that_cannot_be_audited_creates_nothing,
                a_password_change_that_cannot_be_audited_changes_nothing,
                a_user_disable_that_cannot_be_audited_changes_nothing,
                a_consent_that_cannot_be_audited_is_not_recorded,
                a_consent_revocation_that_cannot_be_audited_changes_nothing,
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
