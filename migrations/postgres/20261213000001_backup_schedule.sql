-- Scheduled backups (docs/OPERATIONS.md, "Scheduled backups"): one row shared by every node
-- of the practice. A node takes a due backup by a conditional update of `last_started_at_ms`
-- that also takes the lease (so one node takes each, and none starts while another's runs),
-- then records how it ended. `/readyz` shows the last success and failure from here. Nothing
-- in it is PHI: times, a file name of the backup directory, a size and a reason code. The row
-- is made by the first claim (a migration seeds no rows: `store copy` needs empty tables).
CREATE TABLE backup_schedule (
    schedule_id         BIGINT  PRIMARY KEY NOT NULL CHECK (schedule_id = 1),
    lease_owner         TEXT,
    lease_until_ms      BIGINT,
    last_started_at_ms  BIGINT,
    last_success_at_ms  BIGINT,
    last_success_file   TEXT,
    last_success_bytes  BIGINT,
    last_failure_at_ms  BIGINT,
    last_failure        TEXT
);
