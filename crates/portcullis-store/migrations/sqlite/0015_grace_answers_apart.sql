-- Grace answers in their own table. A refresh token spent by a client with a
-- reuse grace keeps the sealed answer of its rotation for that grace, so that a
-- retry gets the same pair; the pruning pass (at start and every 10 minutes)
-- clears the answers once the longest grace is over. Kept on the refresh token's
-- row, they could only be found by reading every refresh token, inside the
-- writer's transaction: at 10 million tokens 0.6 s from the OS's cache and 1.7 s
-- from disk, during which no grant could commit. An index on that table would
-- cost every grant and every refresh (each writes a refresh token row); this
-- table is written only by a spend that keeps an answer, and holds only the
-- answers of the last minutes. `refresh_tokens.grace_response` stays, unused and
-- NULL: dropping a column rewrites every row.
CREATE TABLE refresh_grace (
    id       TEXT PRIMARY KEY,   -- the spent refresh token's selector
    spent_at INTEGER NOT NULL,
    response BLOB NOT NULL       -- sealed with the master key
) WITHOUT ROWID;
INSERT INTO refresh_grace (id, spent_at, response)
    SELECT id, spent_at, grace_response FROM refresh_tokens
    WHERE grace_response IS NOT NULL AND spent_at IS NOT NULL;
UPDATE refresh_tokens SET grace_response = NULL WHERE grace_response IS NOT NULL;
