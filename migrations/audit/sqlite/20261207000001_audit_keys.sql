-- The public keys that sign checkpoints and purge anchors: each node, and each data directory's
-- command-line chain, registers its own when it starts, so that `confidant audit verify` run
-- anywhere finds every node's key. A registered key is only as trustworthy as this table: verify
-- trusts registered keys only when no key is pinned (audit.trusted_keys or --trusted-key), and
-- says so (docs/AUDIT.md, "Which key verify trusts").
CREATE TABLE audit_keys (
    public_key       BLOB   NOT NULL PRIMARY KEY,
    node_id          TEXT   NOT NULL,
    registered_at_ms BIGINT NOT NULL
);

CREATE TRIGGER audit_keys_refuse_update BEFORE UPDATE ON audit_keys
BEGIN
    SELECT RAISE(ABORT, 'audit keys are append-only');
END;

CREATE TRIGGER audit_keys_refuse_delete BEFORE DELETE ON audit_keys
BEGIN
    SELECT RAISE(ABORT, 'audit keys are append-only');
END;
