-- Version 3: data uploaded to the resource API, and the counters indicators read.

CREATE TABLE data_batches (
    id              TEXT PRIMARY KEY,
    client_id       TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    label           TEXT,
    token_id        TEXT NOT NULL,
    records         BIGINT NOT NULL,
    received_at     BIGINT NOT NULL,
    idempotency_key TEXT,
    body_hash       BYTEA
);
CREATE UNIQUE INDEX data_batches_by_idempotency_key
    ON data_batches (client_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE data_records (
    batch_id TEXT NOT NULL REFERENCES data_batches (id) ON DELETE CASCADE,
    seq      BIGINT NOT NULL,
    body     TEXT NOT NULL,
    PRIMARY KEY (batch_id, seq)
);

CREATE TABLE indicator_counters (
    client_id      TEXT NOT NULL REFERENCES clients (id) ON DELETE CASCADE,
    label          TEXT NOT NULL,
    records        BIGINT NOT NULL DEFAULT 0,
    batches        BIGINT NOT NULL DEFAULT 0,
    last_upload_at BIGINT,
    PRIMARY KEY (client_id, label)
);
