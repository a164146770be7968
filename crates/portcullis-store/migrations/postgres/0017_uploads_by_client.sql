-- Upload batches by client. Deleting a client deletes its upload batches (and
-- their records) by cascade, and the only index led by the client was the
-- partial one of idempotency keys, which that lookup cannot use: every delete
-- read every batch stored, in the delete's own transaction, under the client's
-- lock (every grant batch carrying one of its grants waits for that lock); on
-- SQLite, with 10 million batches, that held every grant back for 2 s. An upload
-- writes one entry more here, beside its hundred records.
CREATE INDEX data_batches_by_client ON data_batches (client_id);
