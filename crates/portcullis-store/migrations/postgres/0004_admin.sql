-- Version 4: admin web sessions and daily counters for the dashboard.

CREATE TABLE admin_sessions (
    id_hash      BYTEA PRIMARY KEY,
    user_name    TEXT NOT NULL REFERENCES admin_users (name) ON DELETE CASCADE,
    csrf_token   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_seen_at BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    source       TEXT
);
CREATE INDEX admin_sessions_by_expiry ON admin_sessions (expires_at);

CREATE TABLE daily_counters (
    day   BIGINT NOT NULL,
    kind  TEXT NOT NULL,
    count BIGINT NOT NULL,
    PRIMARY KEY (day, kind)
);
CREATE INDEX data_batches_by_time ON data_batches (received_at);
CREATE INDEX audit_events_by_kind ON audit_events (kind, at);
