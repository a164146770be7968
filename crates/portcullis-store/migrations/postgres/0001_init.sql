-- Portcullis schema, version 1 (PostgreSQL): the same tables as
-- migrations/sqlite/0001_init.sql. Times are Unix seconds (BIGINT). Secrets and
-- tokens appear only as 32-byte HMAC-SHA256 values (BYTEA).

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE signing_keys (
    kid             TEXT PRIMARY KEY,
    alg             TEXT NOT NULL CHECK (alg IN ('RS256', 'ES256', 'EdDSA')),
    -- AES-256-GCM(PKCS#8 DER) under a key derived from the master key, AAD = kid.
    private_key_enc BYTEA NOT NULL,
    public_jwk      TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('current', 'previous', 'retired')),
    created_at      BIGINT NOT NULL,
    rotated_at      BIGINT,
    retire_after    BIGINT
);

CREATE TABLE scopes (
    name        TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);

INSERT INTO scopes (name, description, created_at) VALUES
    ('upload-data', 'Send data records to the resource API', 0),
    ('view-indicator', 'Read indicators computed from uploaded data', 0),
    ('introspect', 'Introspect any client''s tokens (RFC 7662)', 0),
    ('admin', 'Use the admin API', 0);

CREATE TABLE clients (
    id                  TEXT PRIMARY KEY,
    name                TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    grant_types         TEXT NOT NULL,   -- JSON array of grant type names
    redirect_uris       TEXT NOT NULL,   -- JSON array of URIs
    access_token_ttl    BIGINT,          -- NULL: the server default
    refresh_token_ttl   BIGINT,
    issue_refresh_token BOOLEAN NOT NULL DEFAULT TRUE,
    refresh_reuse_grace BIGINT NOT NULL DEFAULT 0,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

CREATE TABLE client_scopes (
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scope     TEXT NOT NULL REFERENCES scopes (name),
    PRIMARY KEY (client_id, scope)
);

CREATE TABLE client_secrets (
    client_id   TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    secret_hash BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT,
    PRIMARY KEY (client_id, secret_hash)
);

CREATE TABLE labels (
    client_id      TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    last_issued_at BIGINT,
    last_used_at   BIGINT,
    uploads        BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (client_id, name)
);

CREATE TABLE token_families (
    id             TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    label          TEXT,
    subject        TEXT NOT NULL,
    scopes         TEXT NOT NULL,
    grant_type     TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL,
    last_used_at   BIGINT,
    revoked_at     BIGINT,
    revoked_reason TEXT
);
CREATE INDEX token_families_by_client ON token_families (client_id, label);
CREATE INDEX token_families_by_expiry ON token_families (expires_at);

CREATE TABLE refresh_tokens (
    token_hash  BYTEA PRIMARY KEY,
    family_id   TEXT NOT NULL REFERENCES token_families (id) ON DELETE CASCADE,
    scopes      TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    spent_at    BIGINT,
    replaced_by BYTEA
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);

CREATE TABLE admin_users (
    name          TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE audit_events (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at         BIGINT NOT NULL,
    kind       TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id   TEXT,
    target     TEXT,
    client_id  TEXT,
    label      TEXT,
    source     TEXT,
    detail     TEXT
);
CREATE INDEX audit_events_by_time ON audit_events (at);
