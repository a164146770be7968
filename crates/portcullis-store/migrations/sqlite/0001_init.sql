-- Portcullis schema, version 1 (SQLite). Times are Unix seconds (INTEGER).
-- Secrets and tokens appear only as 32-byte HMAC-SHA256 values (BLOB).
-- PostgreSQL gets the same tables under migrations/postgres/0001_init.sql.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE signing_keys (
    kid             TEXT PRIMARY KEY,
    alg             TEXT NOT NULL CHECK (alg IN ('RS256', 'ES256', 'EdDSA')),
    -- AES-256-GCM(PKCS#8 DER) under a key derived from the master key, AAD = kid.
    private_key_enc BLOB NOT NULL,
    public_jwk      TEXT NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('current', 'previous', 'retired')),
    created_at      INTEGER NOT NULL,
    -- When it stopped being current; it verifies until every token it signed expired.
    rotated_at      INTEGER,
    retire_after    INTEGER
);

CREATE TABLE scopes (
    name        TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    created_at  INTEGER NOT NULL
);

-- Built-in scopes (data, not credentials).
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
    access_token_ttl    INTEGER,         -- NULL: the server default
    refresh_token_ttl   INTEGER,
    issue_refresh_token INTEGER NOT NULL DEFAULT 1,
    refresh_reuse_grace INTEGER NOT NULL DEFAULT 0,
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);

CREATE TABLE client_scopes (
    client_id TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scope     TEXT NOT NULL REFERENCES scopes (name),
    PRIMARY KEY (client_id, scope)
);

CREATE TABLE client_secrets (
    client_id   TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    secret_hash BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER,             -- NULL: valid until rotated
    PRIMARY KEY (client_id, secret_hash)
);

-- A data access point (a care home) under a client.
CREATE TABLE labels (
    client_id      TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    name           TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    last_issued_at INTEGER,
    last_used_at   INTEGER,
    uploads        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (client_id, name)
);

-- One grant and everything descending from it.
CREATE TABLE token_families (
    id             TEXT PRIMARY KEY,
    client_id      TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    label          TEXT,
    subject        TEXT NOT NULL,
    scopes         TEXT NOT NULL,      -- space separated
    grant_type     TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,   -- when its last token expires
    last_used_at   INTEGER,
    revoked_at     INTEGER,
    revoked_reason TEXT
);
CREATE INDEX token_families_by_client ON token_families (client_id, label);
CREATE INDEX token_families_by_expiry ON token_families (expires_at);

CREATE TABLE refresh_tokens (
    token_hash  BLOB PRIMARY KEY,
    family_id   TEXT NOT NULL REFERENCES token_families (id) ON DELETE CASCADE,
    scopes      TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    spent_at    INTEGER,
    replaced_by BLOB
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);

CREATE TABLE admin_users (
    name          TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,     -- argon2id PHC string
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

-- Append-only.
CREATE TABLE audit_events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    kind       TEXT NOT NULL,
    actor_kind TEXT NOT NULL,      -- client | admin | user | system
    actor_id   TEXT,
    target     TEXT,
    client_id  TEXT,
    label      TEXT,
    source     TEXT,
    detail     TEXT
);
CREATE INDEX audit_events_by_time ON audit_events (at);
