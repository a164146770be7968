-- A deleted client's refresh tokens, removed a slice at a time. Refresh tokens
-- have no index by family (each would cost every grant and every refresh), so
-- finding a client's reads every refresh token: at 10 million, 0.8 s from the
-- OS's cache and 3.7 s from disk, inside the writer's transaction, during which
-- no grant could commit. The delete now notes the client's families here, in its
-- own transaction (from then on the tokens cannot be used: a refresh finds its
-- token through its family), and the tokens go afterwards in slices of the
-- refresh tokens' key order, each its own short transaction, with grants
-- committing between them. A sweep cut short (the process stopped) is finished
-- by the next pruning pass; a family's row here goes when its sweep has ended.
-- (PostgreSQL's 0016 adds the same table: there the read held the client's lock,
-- and with it every grant batch carrying one of its grants.)
CREATE TABLE refresh_sweep (
    family_id TEXT PRIMARY KEY,   -- a deleted family
    client_id TEXT NOT NULL       -- its deleted client
) WITHOUT ROWID;
