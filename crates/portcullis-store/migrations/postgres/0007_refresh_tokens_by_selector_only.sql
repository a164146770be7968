-- Refresh tokens lose their index by family, and the foreign key that needed it
-- (see migrations/sqlite/0007): the store deletes a family's refresh tokens itself
-- (pruning by expiry; deleting a client in the same transaction).
ALTER TABLE refresh_tokens DROP CONSTRAINT refresh_tokens_family_id_fkey;
DROP INDEX refresh_tokens_by_family;
