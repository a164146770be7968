-- When a label last had a token issued is kept on its families, not by updating the
-- label's row on every grant and refresh.
--
-- With many nodes and writers committing at once, every grant batch updated the rows
-- of the labels it issued for; two batches issuing for the same care homes then
-- waited for each other's commit (a row lock held until the fsync), and group commit
-- became one commit at a time. Now a grant only inserts a label that does not exist
-- yet (ON CONFLICT DO NOTHING takes no lock on an existing row), a refresh records
-- its time on its own family's row (which it updates anyway), and a label's last
-- issue is the latest of its row and its families. Pruning folds a family's time
-- into its label before the family goes.
ALTER TABLE token_families ADD COLUMN last_issued_at BIGINT;

-- Families lose their foreign key to clients (as refresh tokens lost theirs to
-- families in 0007): its check ran per inserted family and share-locked the
-- client's row from every concurrent grant transaction. A family is written only
-- while its client is active (checked in the grant's own transaction, under the
-- client's lock), and deleting a client deletes its families in the same
-- transaction.
ALTER TABLE token_families DROP CONSTRAINT token_families_client_id_fkey;
