-- The email witness (docs/AUDIT.md, "Witnesses"; docs/OPERATIONS.md, "Audit trail"): every
-- period (`audit.head_email_every_secs`, a day by default) each node emails every owner the
-- newest signed head of its chains, one line each that `confidant audit verify --head` reads
-- back. No PHI: chain ids, sequence numbers, hashes, times, signatures, key fingerprints.
--
-- audit_head_reports: what one node reports for one period, written once (the primary key), in
-- the transaction that queues its emails; `heads` holds the signed head lines, one per chain.
CREATE TABLE audit_head_reports (
    node_id        TEXT    NOT NULL,
    period         BIGINT  NOT NULL,
    heads          TEXT    NOT NULL,
    created_at_ms  BIGINT  NOT NULL,
    PRIMARY KEY (node_id, period)
);

-- The emails go through the reminder outbox (claimed with a lease, sent at most once, retried,
-- audited before they leave). A row is now an appointment reminder, a staff notice, or an
-- audit head email (kind 'audit_head', origin 'audit': the report and the owner it goes to, no
-- appointment, patient, alert or step). The unique index keeps one email per report and owner.
ALTER TABLE reminders ADD COLUMN audit_node_id TEXT;
ALTER TABLE reminders ADD COLUMN audit_period BIGINT;
ALTER TABLE reminders ADD CONSTRAINT reminders_audit_head_report
    FOREIGN KEY (audit_node_id, audit_period) REFERENCES audit_head_reports (node_id, period);
ALTER TABLE reminders DROP CONSTRAINT reminders_kind_check;
ALTER TABLE reminders ADD CONSTRAINT reminders_kind_check
    CHECK (kind IN ('upcoming', 'cancelled', 'staff_notice', 'audit_head'));
ALTER TABLE reminders DROP CONSTRAINT reminders_origin_check;
ALTER TABLE reminders ADD CONSTRAINT reminders_origin_check CHECK (origin IN ('schedule', 'staff', 'alert', 'audit'));
ALTER TABLE reminders DROP CONSTRAINT reminders_appointment_reminder_or_staff_notice;
ALTER TABLE reminders ADD CONSTRAINT reminders_one_kind_of_row CHECK (
    (kind IN ('upcoming', 'cancelled') AND origin IN ('schedule', 'staff')
        AND appointment_id IS NOT NULL AND patient_id IS NOT NULL
        AND alert_id IS NULL AND recipient_user_id IS NULL AND escalation_step IS NULL
        AND audit_node_id IS NULL AND audit_period IS NULL)
    OR (kind = 'staff_notice' AND origin = 'alert'
        AND alert_id IS NOT NULL AND recipient_user_id IS NOT NULL AND escalation_step IS NOT NULL
        AND appointment_id IS NULL AND patient_id IS NULL
        AND audit_node_id IS NULL AND audit_period IS NULL)
    OR (kind = 'audit_head' AND origin = 'audit'
        AND audit_node_id IS NOT NULL AND audit_period IS NOT NULL AND recipient_user_id IS NOT NULL
        AND appointment_id IS NULL AND patient_id IS NULL AND alert_id IS NULL AND escalation_step IS NULL)
);
CREATE UNIQUE INDEX reminders_one_audit_head_per_owner ON reminders (audit_node_id, audit_period, recipient_user_id);
