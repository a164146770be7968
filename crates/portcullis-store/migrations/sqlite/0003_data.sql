-- Version 3: data uploaded to the resource API, and the counters indicators read.

CREATE TABLE data_batches (
    id              TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    label           TEXT,
    token_id        TEXT NOT NULL,       -- the jti of the access token that sent it
    records         INTEGER NOT NULL,
    received_at     INTEGER NOT NULL,
    idempotency_key TEXT,
    body_hash       BLOB                 -- SHA-256 of the body, to refuse a reused key
);
CREATE UNIQUE INDEX data_batches_by_idempotency_key
    ON data_batches (client_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE data_records (
    batch_id TEXT NOT NULL REFERENCES data_batches (id) ON DELETE CASCADE,
    seq      INTEGER NOT NULL,
    body     TEXT NOT NULL,              -- one JSON object
    PRIMARY KEY (batch_id, seq)
) WITHOUT ROWID;

-- Maintained on every upload so indicators never scan records. label '' = none.
CREATE TABLE indicator_counters (
    client_id      TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    label          TEXT NOT NULL,
    records        INTEGER NOT NULL DEFAULT 0,
    batches        INTEGER NOT NULL DEFAULT 0,
    last_upload_at INTEGER,
    PRIMARY KEY (client_id, label)
);
