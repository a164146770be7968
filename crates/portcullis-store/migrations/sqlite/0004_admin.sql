-- Version 4: admin web sessions and daily counters for the dashboard.

-- Server-side sessions. The cookie carries 256 random bits; only their HMAC is stored.
CREATE TABLE admin_sessions (
    id_hash      BLOB PRIMARY KEY,
    user_name    TEXT NOT NULL REFERENCES admin_users (name) ON DELETE CASCADE,
    csrf_token   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,       -- absolute expiry
    source       TEXT
);
CREATE INDEX admin_sessions_by_expiry ON admin_sessions (expires_at);

-- Counts per UTC day for charts of things not otherwise stored (failed client
-- authentication), written in batches.
CREATE TABLE daily_counters (
    day   INTEGER NOT NULL,              -- Unix seconds of 00:00 UTC
    kind  TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (day, kind)
);
CREATE INDEX data_batches_by_time ON data_batches (received_at);
CREATE INDEX audit_events_by_kind ON audit_events (kind, at);
