-- The audit trail: one hash chain per node. Append-only: the triggers below refuse UPDATE, and
-- DELETE unless `confidant audit purge` has opened the purge guard in the same transaction.
-- The canonical encoding that `hash` covers is specified in docs/AUDIT.md.
CREATE TABLE audit_entries (
    node_id       TEXT   NOT NULL,
    seq           BIGINT NOT NULL,
    event_id      TEXT   NOT NULL UNIQUE,
    at_ms         BIGINT NOT NULL,
    actor_kind    TEXT   NOT NULL,
    actor_user_id TEXT,
    actor_role    TEXT,
    session_id    TEXT,
    request_id    TEXT,
    source_ip     TEXT,
    action        TEXT   NOT NULL,
    resource_type TEXT,
    resource_id   TEXT,
    patient_id    TEXT,
    outcome       TEXT   NOT NULL,
    reason        TEXT,
    prev_hash     BLOB   NOT NULL,
    hash          BLOB   NOT NULL,
    PRIMARY KEY (node_id, seq)
);
CREATE INDEX audit_entries_by_time ON audit_entries (at_ms);
CREATE INDEX audit_entries_by_patient ON audit_entries (patient_id, at_ms);

-- Signed checkpoints of each chain: (seq, hash) at a time, Ed25519-signed by the node.
CREATE TABLE audit_checkpoints (
    node_id   TEXT   NOT NULL,
    seq       BIGINT NOT NULL,
    hash      BLOB   NOT NULL,
    at_ms     BIGINT NOT NULL,
    signature BLOB   NOT NULL,
    PRIMARY KEY (node_id, seq)
);

-- One row per purge: the last purged entry's seq and hash, signed, so the chain that remains
-- (starting at up_to_seq + 1 with prev_hash = hash) still verifies.
CREATE TABLE audit_purges (
    node_id    TEXT   NOT NULL,
    up_to_seq  BIGINT NOT NULL,
    hash       BLOB   NOT NULL,
    at_ms      BIGINT NOT NULL,
    signature  BLOB   NOT NULL,
    PRIMARY KEY (node_id, up_to_seq)
);

-- One row; `open` is 1 only inside a purge transaction.
CREATE TABLE audit_purge_guard (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    open INTEGER NOT NULL DEFAULT 0
);
INSERT INTO audit_purge_guard (id, open) VALUES (1, 0);

CREATE TRIGGER audit_entries_refuse_update BEFORE UPDATE ON audit_entries
BEGIN
    SELECT RAISE(ABORT, 'audit entries are append-only');
END;

CREATE TRIGGER audit_entries_refuse_delete BEFORE DELETE ON audit_entries
WHEN (SELECT open FROM audit_purge_guard WHERE id = 1) = 0
BEGIN
    SELECT RAISE(ABORT, 'audit entries are removed only by confidant audit purge');
END;

CREATE TRIGGER audit_checkpoints_refuse_update BEFORE UPDATE ON audit_checkpoints
BEGIN
    SELECT RAISE(ABORT, 'audit checkpoints are append-only');
END;

CREATE TRIGGER audit_checkpoints_refuse_delete BEFORE DELETE ON audit_checkpoints
WHEN (SELECT open FROM audit_purge_guard WHERE id = 1) = 0
BEGIN
    SELECT RAISE(ABORT, 'audit checkpoints are removed only by confidant audit purge');
END;

CREATE TRIGGER audit_purges_refuse_update BEFORE UPDATE ON audit_purges
BEGIN
    SELECT RAISE(ABORT, 'audit purge records are append-only');
END;

CREATE TRIGGER audit_purges_refuse_delete BEFORE DELETE ON audit_purges
BEGIN
    SELECT RAISE(ABORT, 'audit purge records are append-only');
END;
