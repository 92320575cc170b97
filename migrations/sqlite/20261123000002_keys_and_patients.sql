-- Field encryption (docs/SECURITY.md). Each data key is 32 random bytes wrapped with
-- AES-256-GCM by the master key, which is never stored here; master_key_id is only a
-- fingerprint of it. One key per purpose is active; a retired key's material is deleted.
CREATE TABLE data_keys (
    key_id            INTEGER PRIMARY KEY NOT NULL,
    audit_id          TEXT    NOT NULL UNIQUE,
    purpose           TEXT    NOT NULL CHECK (purpose IN ('field', 'index')),
    state             TEXT    NOT NULL CHECK (state IN ('active', 'decrypt_only', 'retired')),
    wrapped           BLOB,
    master_key_id     TEXT    NOT NULL,
    created_at_ms     BIGINT  NOT NULL,
    deactivated_at_ms BIGINT,
    retired_at_ms     BIGINT,
    CHECK ((state = 'retired') = (wrapped IS NULL))
);
CREATE UNIQUE INDEX data_keys_one_active ON data_keys (purpose) WHERE state = 'active';

-- The patient record. Every PHI column holds ciphertext (version, key id, nonce, AES-256-GCM
-- ciphertext and tag; the AAD binds table, column and patient_id). key_id names the data key of
-- all of the row's values, so key status and re-encryption need no decryption to find them.
-- email_index is HMAC-SHA-256 of the normalized email under the index key: lookups, no plaintext.
CREATE TABLE patients (
    patient_id        TEXT    PRIMARY KEY NOT NULL,
    key_id            INTEGER NOT NULL REFERENCES data_keys (key_id),
    legal_name        BLOB    NOT NULL,
    preferred_name    BLOB,
    date_of_birth     BLOB    NOT NULL,
    email             BLOB,
    phone             BLOB,
    address           BLOB,
    emergency_contact BLOB,
    email_index       BLOB,
    created_at_ms     BIGINT  NOT NULL,
    updated_at_ms     BIGINT  NOT NULL
);
CREATE INDEX patients_by_key ON patients (key_id);
CREATE INDEX patients_by_email ON patients (email_index);
