-- Encrypted attachments (docs/MESSAGING.md, "Attachments"): a file a device encrypted with a
-- key only the conversation's members get (inside the MLS message that carries it), uploaded as
-- ciphertext. The server keeps and serves the ciphertext and its SHA-256; it never holds the key.
-- In the main store, so every node serves every attachment and it is backed up, replicated and
-- deleted with the rest of the conversation. Linked to the message that names it
-- (`message_seq`) when that message is stored, and deleted with it by the retention purge; one
-- never linked is deleted a day after its upload.
CREATE TABLE attachments (
    attachment_id   TEXT    PRIMARY KEY NOT NULL,
    conversation_id TEXT    NOT NULL REFERENCES conversations (conversation_id),
    uploaded_by     TEXT    NOT NULL REFERENCES users (user_id),
    size_bytes      BIGINT  NOT NULL,
    sha256          BYTEA   NOT NULL,
    ciphertext      BYTEA   NOT NULL,
    uploaded_at_ms  BIGINT  NOT NULL,
    message_seq     BIGINT
);
CREATE INDEX attachments_by_message ON attachments (conversation_id, message_seq);
CREATE INDEX attachments_unlinked ON attachments (uploaded_at_ms) WHERE message_seq IS NULL;

-- The ciphertext does not compress: store it out of line without trying.
ALTER TABLE attachments ALTER COLUMN ciphertext SET STORAGE EXTERNAL;
