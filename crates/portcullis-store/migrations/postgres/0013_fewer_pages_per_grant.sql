-- Fewer index entries per grant (issue 17); SQLite's migration 0013 explains the
-- cost. A label's last issue has been kept on its families here since 0009.
--
-- The audit log's index by kind served no query since migration 12 (the dashboard
-- counts days in daily_counters; the audit page filters by kind while reading by
-- id).
DROP INDEX audit_events_by_kind;

-- Only end users' grants are looked up by subject (disabling a user, ending one of
-- their grants, the account page); a client's own grants are not entered in that
-- index.
DROP INDEX token_families_by_subject;
CREATE INDEX token_families_by_subject ON token_families (subject, client_id)
    WHERE grant_type = 'authorization_code';
