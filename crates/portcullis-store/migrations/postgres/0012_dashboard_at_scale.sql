-- Tokens issued per day for the dashboard: counted by each server in memory and
-- added to daily_counters every few seconds (kind 'tokens_issued'), instead of
-- counting the audit log's events at every view (a count that grew with the
-- tokens of the last 30 days). The days before this migration are counted here
-- once, from the audit log.
INSERT INTO daily_counters (day, kind, count)
SELECT at - (at % 86400), 'tokens_issued', count(*) FROM audit_events
WHERE kind IN ('token.issue', 'token.refresh')
GROUP BY at - (at % 86400);
