-- The public keys that sign checkpoints and purge anchors: each node, and each data directory's
-- command-line chain, registers its own when it starts, so that `confidant audit verify` run
-- anywhere finds every node's key. A registered key is only as trustworthy as this table: verify
-- trusts registered keys only when no key is pinned (audit.trusted_keys or --trusted-key), and
-- says so (docs/AUDIT.md, "Which key verify trusts").
CREATE TABLE audit_keys (
    public_key       BYTEA  NOT NULL PRIMARY KEY,
    node_id          TEXT   NOT NULL,
    registered_at_ms BIGINT NOT NULL
);

CREATE TRIGGER audit_keys_refuse_change BEFORE UPDATE OR DELETE ON audit_keys
    FOR EACH ROW EXECUTE FUNCTION audit_refuse_change();
CREATE TRIGGER audit_keys_refuse_truncate BEFORE TRUNCATE ON audit_keys
    FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();

-- A server already running on the insert-only audit role (scripts/audit-role.sql) registers its
-- key at start: give every role that may append audit entries the same right here.
DO $$
DECLARE
    grantee_name TEXT;
BEGIN
    FOR grantee_name IN
        SELECT DISTINCT grantee FROM information_schema.role_table_grants
        WHERE table_name = 'audit_entries' AND privilege_type = 'INSERT' AND grantee <> current_user
    LOOP
        EXECUTE format('GRANT SELECT, INSERT ON audit_keys TO %I', grantee_name);
    END LOOP;
END;
$$;
