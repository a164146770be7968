-- Token families of a client are found by client and time, not by client and label.
--
-- Every client-credentials grant adds a family. Indexed by (client_id, label), the
-- new entries of one group commit landed in as many index pages as the batch had
-- distinct labels (a client with 100 care homes: up to 100 pages), and each page
-- was written to the log again: half the bytes the database wrote per token. By
-- (client_id, created_at) they are appended at the end of the client's run, one
-- page for the whole batch. Listing or revoking one label's families now reads the
-- client's families and filters them, which the admin pages and revocation can
-- afford; the token endpoint cannot afford the scattered writes.
DROP INDEX token_families_by_client;
CREATE INDEX token_families_by_client ON token_families (client_id, created_at);
