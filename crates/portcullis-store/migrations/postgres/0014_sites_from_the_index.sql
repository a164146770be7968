-- A client's sites read from one index (issue 17, item 4; SQLite's migration 0014
-- explains the cost it removes there). The index by client carries the columns
-- the sites page and the count of live sites read, so that they can be index-only
-- scans in the client's order instead of reads of scattered rows. A refresh
-- already writes new entries in every index (it moves `expires_at`, which the index
-- by expiry holds, so it is never a heap-only update): the wider entries cost only
-- their size.
DROP INDEX token_families_by_client;
CREATE INDEX token_families_by_client ON token_families (client_id, created_at)
    INCLUDE (label, expires_at, revoked_at, last_issued_at);
