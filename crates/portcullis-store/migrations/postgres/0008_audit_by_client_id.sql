-- The audit log is read newest first, by id, optionally for one client (see
-- migrations/sqlite/0008). (client_id, id) makes a client's page, and every page
-- after it, a range read that stops after the page's rows.
DROP INDEX audit_events_by_time;
DROP INDEX audit_events_by_client;
CREATE INDEX audit_events_by_client ON audit_events (client_id, id);
