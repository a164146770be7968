-- Refresh tokens lose their index by family, and with it the foreign key that needed
-- it.
--
-- A rotation inserts the successor under its family. Indexed by (family_id), the
-- rotations of one group commit landed in as many index pages as they had families,
-- one scattered page each, written to the log again: the largest part of what a
-- refresh grant wrote, and why it ran at two thirds of the rate of client
-- credentials. Nothing looks refresh tokens up by family: the grant reads a token
-- by its selector and joins its family. The index was there for the foreign key's
-- ON DELETE CASCADE, and the store now deletes refresh tokens itself instead:
--   * pruning deletes a token when it expires (by expires_at), and a family only
--     once its last token has expired (a family's expires_at is never earlier than
--     its tokens'), so a pruned family's tokens are already gone;
--   * deleting a client deletes its families' refresh tokens in the same
--     transaction (one pass over this table: an admin action, not a hot path).
-- A token whose family is missing is not found, because the lookup joins the family.
CREATE TABLE refresh_tokens_v7 (
    id             TEXT PRIMARY KEY,
    token_hash     BLOB NOT NULL,
    family_id      TEXT NOT NULL,       -- token_families (id), kept by the store
    scopes         TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    spent_at       INTEGER,
    replaced_by    TEXT,                -- the successor's selector
    grace_response BLOB
) WITHOUT ROWID;

INSERT INTO refresh_tokens_v7 (id, token_hash, family_id, scopes, created_at, expires_at,
                               spent_at, replaced_by, grace_response)
SELECT id, token_hash, family_id, scopes, created_at, expires_at, spent_at, replaced_by,
       grace_response
FROM refresh_tokens;

DROP TABLE refresh_tokens;
ALTER TABLE refresh_tokens_v7 RENAME TO refresh_tokens;
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);
