-- PostgreSQL's migration 0009 moves a label's last issue time onto its families, so
-- that concurrent writers do not wait on the label's row. SQLite has one writer per
-- file, which updates the label's row with no one to wait for: nothing changes here.
-- The file keeps the two engines' migration numbers the same.
SELECT 1;
