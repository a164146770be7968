-- A deleted client's refresh tokens, removed a slice at a time. Refresh tokens
-- have no index by family (each would cost every grant and every refresh), so
-- finding a client's reads every refresh token. Done in the delete's
-- transaction, that held the client's lock, and with it every grant batch
-- carrying one of its grants, for the whole read, and at 10 million tokens could
-- outlast the store's timeout, rolling the delete back. The delete now notes the
-- client's families here (from then on the tokens cannot be used: a refresh
-- finds its token through its family), and the tokens go afterwards in slices of
-- the refresh tokens' key order, each its own short transaction. A sweep cut
-- short (the node stopped) is finished by the next pruning pass on any node; a
-- family's row here goes when its sweep has ended.
CREATE TABLE refresh_sweep (
    family_id TEXT PRIMARY KEY,   -- a deleted family
    client_id TEXT NOT NULL       -- its deleted client
);
