-- A client's sites read from one index (issue 17, item 4). The sites page sums a
-- client's families per label (live ones, last issue), and the dashboard counts
-- the labels with a live family. Both read every family row they count: a
-- client's families are spread over the whole table (grants of many clients
-- interleave), so at 10 million families the sites page of a client with 10,000
-- of them read 10,000 scattered pages (70 ms from the OS's cache, 121–282 ms in
-- `portcullis-bench growth`), and the count of live sites read every row by the
-- index by expiry (21 s), slowing every read beside it.
--
-- The index by client now carries what those two reads need, so they read only
-- it, in the client's order: 3 ms for the sites page's rows, 2 s for the count.
-- Its order is unchanged (client, then time), and the family's id (time-ordered,
-- to the millisecond) comes before the carried columns: a grant still adds its
-- entry at the end of its client's run. (With the label right after the time,
-- the second's grants were ordered by label, and a commit of a dozen grants wrote
-- a dozen pages of this index: 15% of the token rate.) A refresh (which moves
-- `expires_at` and `last_issued_at`) and a revocation rewrite their family's
-- entry in place.
DROP INDEX token_families_by_client;
CREATE INDEX token_families_by_client ON token_families
    (client_id, created_at, id, label, expires_at, revoked_at, last_issued_at);
