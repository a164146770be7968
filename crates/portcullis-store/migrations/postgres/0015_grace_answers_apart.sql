-- Grace answers found by an index. A refresh token spent by a client with a reuse
-- grace keeps the sealed answer of its rotation for that grace; the pruning pass
-- (at start and every 10 minutes, on every node) clears the answers once the
-- longest grace is over, and without an index that statement read the whole
-- table. Only the tokens spent with an answer, those of the last minutes, have
-- an entry. Its key is the selector, which a spend never changes, and a spend
-- without an answer (the default) leaves `grace_response` NULL: such a spend
-- changes no column this index reads, so it can still be a heap-only update.
-- (SQLite keeps the answers in a table of their own instead, migration 15 there:
-- an index costs each of its statements that write a refresh token.)
CREATE INDEX refresh_tokens_with_grace ON refresh_tokens (id)
    WHERE grace_response IS NOT NULL;
