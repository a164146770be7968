-- Nothing to change. On SQLite this migration adds the table from which a
-- deleted client's refresh tokens are removed a slice at a time, so that the
-- single writer is never held for long. PostgreSQL deletes them in the client's
-- own transaction: it reads every refresh token too, but other writers commit
-- meanwhile (it locks only the rows it deletes). The number is kept so that both
-- engines count the same migrations.
SELECT 1;
