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
--
-- SQLite cannot change a CHECK, so `reminders` is rebuilt (no table refers to it).
CREATE TABLE reminders_with_audit_heads (
    reminder_id        TEXT    PRIMARY KEY NOT NULL,
    appointment_id     TEXT    REFERENCES appointments (appointment_id),
    patient_id         TEXT    REFERENCES patients (patient_id),
    alert_id           TEXT    REFERENCES alerts (alert_id),
    recipient_user_id  TEXT    REFERENCES users (user_id),
    escalation_step    BIGINT,
    -- An audit head email: the node whose report it carries, and the report's period.
    audit_node_id      TEXT,
    audit_period       BIGINT,
    kind               TEXT    NOT NULL CHECK (kind IN ('upcoming', 'cancelled', 'staff_notice', 'audit_head')),
    origin             TEXT    NOT NULL CHECK (origin IN ('schedule', 'staff', 'alert', 'audit')),
    lead_minutes       BIGINT,
    state              TEXT    NOT NULL CHECK (state IN ('queued', 'sending', 'sent', 'failed', 'withdrawn')),
    due_at_ms          BIGINT  NOT NULL,
    next_attempt_at_ms BIGINT  NOT NULL,
    attempts           BIGINT  NOT NULL,
    lease_owner        TEXT,
    lease_until_ms     BIGINT,
    handed_over_at_ms  BIGINT,
    message_id         TEXT    NOT NULL UNIQUE,
    encrypted          BIGINT  NOT NULL CHECK (encrypted IN (0, 1)),
    failure_reason     TEXT,
    created_by         TEXT,
    created_at_ms      BIGINT  NOT NULL,
    finished_at_ms     BIGINT,
    FOREIGN KEY (audit_node_id, audit_period) REFERENCES audit_head_reports (node_id, period),
    CONSTRAINT reminders_one_kind_of_row CHECK (
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
    )
);

INSERT INTO reminders_with_audit_heads (reminder_id, appointment_id, patient_id, alert_id, recipient_user_id,
    escalation_step, kind, origin, lead_minutes, state, due_at_ms, next_attempt_at_ms, attempts, lease_owner,
    lease_until_ms, handed_over_at_ms, message_id, encrypted, failure_reason, created_by, created_at_ms, finished_at_ms)
SELECT reminder_id, appointment_id, patient_id, alert_id, recipient_user_id,
    escalation_step, kind, origin, lead_minutes, state, due_at_ms, next_attempt_at_ms, attempts, lease_owner,
    lease_until_ms, handed_over_at_ms, message_id, encrypted, failure_reason, created_by, created_at_ms, finished_at_ms
FROM reminders;

DROP TABLE reminders;
ALTER TABLE reminders_with_audit_heads RENAME TO reminders;

CREATE INDEX reminders_due ON reminders (state, next_attempt_at_ms);
CREATE INDEX reminders_by_appointment ON reminders (appointment_id, created_at_ms);
CREATE UNIQUE INDEX reminders_one_staff_notice_per_step ON reminders (alert_id, escalation_step, recipient_user_id);
CREATE UNIQUE INDEX reminders_one_audit_head_per_owner ON reminders (audit_node_id, audit_period, recipient_user_id);
