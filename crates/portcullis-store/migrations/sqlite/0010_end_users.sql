-- Version 10: end users (the people who let applications use their data), their
-- web sessions, what they allowed each application (consents), and the
-- authorization codes of the authorization code flow (RFC 6749 §4.1, RFC 7636).
-- Codes and session cookies appear only as 32-byte HMAC-SHA256 values (BLOB);
-- passwords only as Argon2id PHC strings.

CREATE TABLE users (
    id            TEXT PRIMARY KEY,            -- usr_…: the `sub` of their tokens
    name          TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE TABLE user_sessions (
    id_hash      BLOB PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf_token   TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,             -- absolute expiry
    source       TEXT
);
CREATE INDEX user_sessions_by_user ON user_sessions (user_id);
CREATE INDEX user_sessions_by_expiry ON user_sessions (expires_at);

-- A grant: the scopes a user allowed an application. The tokens issued under it
-- are the client's families whose subject is the user.
CREATE TABLE consents (
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_id  TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    scopes     TEXT NOT NULL,                  -- space separated
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (user_id, client_id)
);
CREATE INDEX consents_by_client ON consents (client_id);

CREATE TABLE authorization_codes (
    code_hash          BLOB PRIMARY KEY,
    client_id          TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    user_id            TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    redirect_uri       TEXT NOT NULL,
    redirect_uri_given INTEGER NOT NULL,       -- 1: the token request must repeat it
    scopes             TEXT NOT NULL,
    code_challenge     TEXT NOT NULL,          -- PKCE S256
    created_at         INTEGER NOT NULL,
    expires_at         INTEGER NOT NULL,
    used_at            INTEGER,                -- set by the one exchange that spends it
    family_id          TEXT                    -- what that exchange issued
);
CREATE INDEX authorization_codes_by_expiry ON authorization_codes (expires_at);

-- A user's tokens, for disabling the user and ending one of their grants.
CREATE INDEX token_families_by_subject ON token_families (subject, client_id);
