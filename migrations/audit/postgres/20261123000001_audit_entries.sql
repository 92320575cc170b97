-- The audit trail: one hash chain per node. Append-only: the triggers below refuse UPDATE and
-- TRUNCATE always, and DELETE unless `confidant audit purge` set confidant.audit_purge = 'on'
-- for its transaction (and the server's own role has no DELETE privilege at all; see
-- scripts/audit-role.sql). The canonical encoding that `hash` covers is in docs/AUDIT.md.
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
    prev_hash     BYTEA  NOT NULL,
    hash          BYTEA  NOT NULL,
    PRIMARY KEY (node_id, seq)
);
CREATE INDEX audit_entries_by_time ON audit_entries (at_ms);
CREATE INDEX audit_entries_by_patient ON audit_entries (patient_id, at_ms);

CREATE TABLE audit_checkpoints (
    node_id   TEXT   NOT NULL,
    seq       BIGINT NOT NULL,
    hash      BYTEA  NOT NULL,
    at_ms     BIGINT NOT NULL,
    signature BYTEA  NOT NULL,
    PRIMARY KEY (node_id, seq)
);

-- One row per purge: the last purged entry's seq and hash, signed, so the chain that remains
-- (starting at up_to_seq + 1 with prev_hash = hash) still verifies.
CREATE TABLE audit_purges (
    node_id    TEXT   NOT NULL,
    up_to_seq  BIGINT NOT NULL,
    hash       BYTEA  NOT NULL,
    at_ms      BIGINT NOT NULL,
    signature  BYTEA  NOT NULL,
    PRIMARY KEY (node_id, up_to_seq)
);

CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('confidant.audit_purge', true) = 'on' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit records are append-only (% refused on %)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_entries_refuse_change BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_entries_refuse_truncate BEFORE TRUNCATE ON audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_refuse_change BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_checkpoints_refuse_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_purges_refuse_change BEFORE UPDATE OR DELETE ON audit_purges
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_purges_refuse_truncate BEFORE TRUNCATE ON audit_purges
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
