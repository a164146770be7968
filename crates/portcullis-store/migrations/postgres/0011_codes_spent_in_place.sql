-- Spending an authorization code sets `spent` and names the family its grant
-- records, which is chosen when the code is issued and stored with it (SQLite's
-- migration 0011 says why: there, the row then keeps its size). The grant's
-- audit event records when.
ALTER TABLE authorization_codes ADD COLUMN spent BOOLEAN NOT NULL DEFAULT false;
UPDATE authorization_codes SET spent = true WHERE used_at IS NOT NULL;
ALTER TABLE authorization_codes DROP COLUMN used_at;
