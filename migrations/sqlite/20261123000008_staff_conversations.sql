-- Staff conversations (docs/MESSAGING.md): a conversation is either about one patient (`care`,
-- `patient_id` set) or among staff about no patient (`staff`, `patient_id` NULL). The kind
-- decides, through the permission module, who may be added to it.
--
-- SQLite cannot drop a NOT NULL constraint, so `conversations` is rebuilt. Three tables refer
-- to it; foreign keys stay enforced and are deferred to the end of this migration's
-- transaction: dropping the old table leaves its children's rows without a parent for a
-- moment, and inserting the same rows into the new table (of the same name) restores every
-- parent before the commit checks them. Renaming the old table away instead would make the
-- children follow it to the new name.
PRAGMA defer_foreign_keys = ON;

CREATE TABLE conversations_before_staff AS SELECT * FROM conversations;
DROP TABLE conversations;

CREATE TABLE conversations (
    conversation_id TEXT    PRIMARY KEY NOT NULL,
    kind            TEXT    NOT NULL CHECK (kind IN ('care', 'staff')),
    patient_id      TEXT    REFERENCES patients (patient_id),
    created_by      TEXT    NOT NULL REFERENCES users (user_id),
    created_at_ms   BIGINT  NOT NULL,
    epoch           BIGINT  NOT NULL,
    last_seq        BIGINT  NOT NULL,
    public_group    BLOB    NOT NULL,
    CHECK ((kind = 'care') = (patient_id IS NOT NULL))
);

INSERT INTO conversations (conversation_id, kind, patient_id, created_by, created_at_ms, epoch, last_seq, public_group)
SELECT conversation_id, 'care', patient_id, created_by, created_at_ms, epoch, last_seq, public_group
FROM conversations_before_staff;

DROP TABLE conversations_before_staff;
CREATE INDEX conversations_by_patient ON conversations (patient_id);
