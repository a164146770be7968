-- Version 2: revocations that reach self-contained access tokens, and the
-- encrypted answer a refresh retry within the client's grace period gets again.

-- Every revocation, kept until the tokens it covers have expired. Each server loads
-- the live ones at start and polls for new ones (by id) every second.
CREATE TABLE revocations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT NOT NULL CHECK (kind IN ('family', 'token', 'client')),
    target        TEXT NOT NULL,        -- family id, jti, or client id
    issued_before INTEGER,              -- client: tokens issued at or before this
    created_at    INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX revocations_by_expiry ON revocations (expires_at);

-- AES-256-GCM (master key) of the token response that replaced this refresh token;
-- kept only while the client's reuse grace lasts.
ALTER TABLE refresh_tokens ADD COLUMN grace_response BLOB;

CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);
CREATE INDEX audit_events_by_client ON audit_events (client_id, at);
