-- The audit log is read newest first, by id, optionally for one client; nothing reads
-- it by time alone.
--
-- audit_events_by_time (at) served no query: the dashboard's count per day goes
-- through audit_events_by_kind (kind, at), and the audit page pages by id. Every
-- audit event (one per token issued) still paid for it with an index entry and, in
-- every group commit, one more index page written to the log.
--
-- audit_events_by_client was (client_id, at), whose order is not the page's order
-- (newest id first), so a client's page had to read and sort all of the client's
-- events, and the planner preferred reading the whole table backwards by id. By
-- (client_id) alone, whose entries are ordered by rowid (= id) within a client, a
-- client's page, and every page after it (id < cursor), is a range read of the index
-- that stops after the page's rows.
DROP INDEX audit_events_by_time;
DROP INDEX audit_events_by_client;
CREATE INDEX audit_events_by_client ON audit_events (client_id);
