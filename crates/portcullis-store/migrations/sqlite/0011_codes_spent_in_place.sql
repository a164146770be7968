-- Spending an authorization code flips `spent` from 0 to 1 and names the family
-- its grant records, which is chosen when the code is issued and stored with it.
-- SQLite keeps the integers 0 and 1 in the record header alone, so the row keeps
-- its size and is rewritten in place. Before, spending set `used_at` and
-- `family_id`, which grew the row: pages of codes split as they were spent, and
-- each split's page renumbering made the writer sweep its whole page cache at
-- commit, a cost every code exchange paid. (The grant's audit event records when.)
ALTER TABLE authorization_codes ADD COLUMN spent INTEGER NOT NULL DEFAULT 0;
UPDATE authorization_codes SET spent = 1 WHERE used_at IS NOT NULL;
ALTER TABLE authorization_codes DROP COLUMN used_at;
