-- Fewer pages written per group commit (issue 17). Every grant and refresh of a
-- batch lands on the last page of each B-tree it touches, and each commit writes
-- every page it changed to the log (and syncs it): the number of B-trees a grant
-- touches, not the size of its rows, is the cost of a commit.
--
-- 1. The audit log's index by kind served no query since migration 12 (the
--    dashboard counts days in daily_counters; the audit page filters by kind
--    while reading by id).
DROP INDEX audit_events_by_kind;

-- 2. A label's last issue is kept on its families, as PostgreSQL has since its
--    migration 0009: a grant inserts a label only when it is new (an existing
--    label's page is read, not rewritten), and a refresh records its time on the
--    family row it updates anyway. A label's last issue is the latest of its row
--    and its families; pruning folds a family's time into its label before the
--    family goes.
ALTER TABLE token_families ADD COLUMN last_issued_at INTEGER;

-- 3. Only end users' grants are looked up by subject (disabling a user, ending
--    one of their grants, the account page); a client's own grants are not
--    entered in that index.
DROP INDEX token_families_by_subject;
CREATE INDEX token_families_by_subject ON token_families (subject, client_id)
    WHERE grant_type = 'authorization_code';
