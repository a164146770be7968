-- Refresh tokens keyed by a time-ordered selector that the token itself carries
-- (`pcr_<selector>.<secret>`), instead of by their random hash. New rows are then
-- appended to the end of the table rather than written to a random page, which is
-- what bounded the token endpoint: a group commit of N grants wrote N scattered
-- pages per index. The hash is still what proves a token: it is compared in
-- constant time after the row is found.
--
-- Tokens issued before this migration keep working: their rows get the selector
-- 'h' || hex(hash), which is what the server looks up for a token without one.
CREATE TABLE refresh_tokens_v5 (
    id             TEXT PRIMARY KEY,
    token_hash     BLOB NOT NULL,
    family_id      TEXT NOT NULL REFERENCES token_families (id) ON DELETE CASCADE,
    scopes         TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    spent_at       INTEGER,
    replaced_by    TEXT,                -- the successor's selector
    grace_response BLOB
) WITHOUT ROWID;

INSERT INTO refresh_tokens_v5 (id, token_hash, family_id, scopes, created_at, expires_at,
                               spent_at, replaced_by, grace_response)
SELECT 'h' || hex(token_hash), token_hash, family_id, scopes, created_at, expires_at,
       spent_at, CASE WHEN replaced_by IS NULL THEN NULL ELSE 'h' || hex(replaced_by) END,
       grace_response
FROM refresh_tokens;

DROP TABLE refresh_tokens;
ALTER TABLE refresh_tokens_v5 RENAME TO refresh_tokens;
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);
