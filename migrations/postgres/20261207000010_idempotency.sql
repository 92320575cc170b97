-- Idempotency-Key (docs/API.md, "Retrying a write"): each key an account sends on a write is
-- claimed here before the write runs, and the write's successful answer is kept, sealed, so a
-- retry with the same key gets that answer instead of doing the write again. Keys are stored as
-- SHA-256 digests (a key is the client's, and could hold anything), requests as the digest of
-- method, path, media type and body. Rows expire after 24 hours (idempotency/mod.rs).
CREATE TABLE idempotency_keys (
    claim_id       TEXT    PRIMARY KEY NOT NULL,
    user_id        TEXT    NOT NULL REFERENCES users (user_id),
    key_digest     BYTEA   NOT NULL,
    request_digest BYTEA   NOT NULL,
    -- The request that claimed the key: its audit events say what the write did.
    request_id     TEXT    NOT NULL,
    claimed_at_ms  BIGINT  NOT NULL,
    expires_at_ms  BIGINT  NOT NULL,
    UNIQUE (user_id, key_digest)
);
CREATE INDEX idempotency_keys_by_expiry ON idempotency_keys (expires_at_ms);

-- The answer of a claimed key's write, once it succeeded. Only complete answers are here: a
-- claim without an answer is a write in progress (or one whose outcome is unknown). The body
-- is sealed like every PHI column (crypto/tables.rs); the patient is the one whose PHI it
-- carries, for the audit record of each replay.
CREATE TABLE idempotent_answers (
    claim_id     TEXT    PRIMARY KEY NOT NULL REFERENCES idempotency_keys (claim_id) ON DELETE CASCADE,
    key_id       BIGINT  NOT NULL REFERENCES data_keys (key_id),
    patient_id   TEXT    REFERENCES patients (patient_id),
    status       INTEGER NOT NULL,
    content_type TEXT,
    body         BYTEA   NOT NULL,
    kept_at_ms   BIGINT  NOT NULL
);
