-- Version 2: revocations that reach self-contained access tokens, and the
-- encrypted answer a refresh retry within the client's grace period gets again.
--
-- recorded_at (PostgreSQL only) is the database's clock, in milliseconds, when the
-- row was written. Nodes read new revocations by it, with an overlap, not by id:
-- ids come from a sequence in the order transactions ask for them, not the order
-- they commit, so a revocation committing late with a lower id than one already
-- read would be missed by an `id > last` reader forever.
CREATE TABLE revocations (
    id            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('family', 'token', 'client')),
    target        TEXT NOT NULL,
    issued_before BIGINT,
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    recorded_at   BIGINT NOT NULL
        DEFAULT (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT
);
CREATE INDEX revocations_by_expiry ON revocations (expires_at);
CREATE INDEX revocations_by_recorded_at ON revocations (recorded_at);

ALTER TABLE refresh_tokens ADD COLUMN grace_response BYTEA;

CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);
CREATE INDEX audit_events_by_client ON audit_events (client_id, at);
