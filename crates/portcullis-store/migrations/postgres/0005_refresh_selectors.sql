-- Refresh tokens keyed by the time-ordered selector the token carries
-- (`pcr_<selector>.<secret>`); see migrations/sqlite/0005. Rows from before get the
-- selector 'h' || upper-case hex of their hash, which the server looks up for a
-- token without one.
ALTER TABLE refresh_tokens DROP CONSTRAINT refresh_tokens_pkey;
ALTER TABLE refresh_tokens ADD COLUMN id TEXT;
UPDATE refresh_tokens SET id = 'h' || upper(encode(token_hash, 'hex'));
ALTER TABLE refresh_tokens ALTER COLUMN id SET NOT NULL;
ALTER TABLE refresh_tokens ADD PRIMARY KEY (id);
ALTER TABLE refresh_tokens ALTER COLUMN replaced_by TYPE TEXT
    USING CASE WHEN replaced_by IS NULL THEN NULL ELSE 'h' || upper(encode(replaced_by, 'hex')) END;
