-- The dashboard and a client's sites without reading every token family (as
-- SQLite's migration 12).
--
-- Live sites: a partial index of the families not revoked, by client, label and
-- expiry. "Is this label live?" is one seek in it, and a label's live families
-- are counted in it without reading the table.
CREATE INDEX token_families_live_by_site ON token_families (client_id, label, expires_at)
    WHERE revoked_at IS NULL;

-- Tokens issued per day: counted by each server in memory and added to
-- daily_counters every few seconds (kind 'tokens_issued'), instead of counting
-- the audit log's events at every view. The days before this migration are
-- counted here once, from the audit log.
INSERT INTO daily_counters (day, kind, count)
SELECT at - (at % 86400), 'tokens_issued', count(*) FROM audit_events
WHERE kind IN ('token.issue', 'token.refresh')
GROUP BY at - (at % 86400);
