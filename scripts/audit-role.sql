-- The role Confidant's server uses for the PostgreSQL audit database: it may read and append
-- audit records and nothing else (no UPDATE, DELETE or TRUNCATE, no DDL). Run it as the owner of
-- the audit database AFTER `confidant migrate` created the tables, for example
--
--     psql "$OWNER_AUDIT_URL" -v role=confidant_audit -f scripts/audit-role.sql
--
-- then create the login itself (`CREATE ROLE confidant_audit LOGIN PASSWORD '...'`) if it does
-- not exist, and give the server audit_database_url with that role. `confidant audit
-- setup-role` does all of this in one step. Migrations keep running as the owner.

REVOKE ALL ON ALL TABLES IN SCHEMA public FROM :"role";
REVOKE CREATE ON SCHEMA public FROM :"role";
GRANT USAGE ON SCHEMA public TO :"role";
GRANT SELECT, INSERT ON audit_entries, audit_checkpoints, audit_keys TO :"role";
GRANT SELECT ON audit_purges TO :"role";
GRANT SELECT ON _sqlx_migrations TO :"role";
