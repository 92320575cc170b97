-- Staff notices (docs/OPERATIONS.md, "Reminder delivery"): the outbox also carries a short email
-- to a staff account saying only that an urgent item is waiting in Confidant, with the portal
-- link. Alert escalation queues one per alert, escalation step and recipient, in the
-- transaction that takes the step; it is claimed, handed over and finished like a reminder.
--
-- A row is either an appointment reminder (appointment and patient set, kind 'upcoming' or
-- 'cancelled', origin 'schedule' or 'staff') or a staff notice (alert, recipient and step set,
-- no appointment and no patient, kind 'staff_notice', origin 'alert'). The unique index keeps
-- one notice per step and person, so queuing a step again does nothing.
--
-- SQLite cannot drop a NOT NULL or change a CHECK, so `reminders` is rebuilt: a new table,
-- every row copied, the old one dropped and the new one renamed, then its indexes made again.
-- No table refers to `reminders`, so no foreign key has to wait.
CREATE TABLE reminders_with_staff_notices (
    reminder_id        TEXT    PRIMARY KEY NOT NULL,
    appointment_id     TEXT    REFERENCES appointments (appointment_id),
    patient_id         TEXT    REFERENCES patients (patient_id),
    -- A staff notice: the alert, the staff account it goes to, and the escalation step that
    -- added them (0: raised).
    alert_id           TEXT    REFERENCES alerts (alert_id),
    recipient_user_id  TEXT    REFERENCES users (user_id),
    escalation_step    BIGINT,
    kind               TEXT    NOT NULL CHECK (kind IN ('upcoming', 'cancelled', 'staff_notice')),
    origin             TEXT    NOT NULL CHECK (origin IN ('schedule', 'staff', 'alert')),
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
    CONSTRAINT reminders_appointment_reminder_or_staff_notice CHECK (
        (kind IN ('upcoming', 'cancelled') AND origin IN ('schedule', 'staff')
            AND appointment_id IS NOT NULL AND patient_id IS NOT NULL
            AND alert_id IS NULL AND recipient_user_id IS NULL AND escalation_step IS NULL)
        OR (kind = 'staff_notice' AND origin = 'alert'
            AND alert_id IS NOT NULL AND recipient_user_id IS NOT NULL AND escalation_step IS NOT NULL
            AND appointment_id IS NULL AND patient_id IS NULL)
    )
);

INSERT INTO reminders_with_staff_notices (reminder_id, appointment_id, patient_id, kind, origin, lead_minutes, state,
    due_at_ms, next_attempt_at_ms, attempts, lease_owner, lease_until_ms, handed_over_at_ms, message_id, encrypted,
    failure_reason, created_by, created_at_ms, finished_at_ms)
SELECT reminder_id, appointment_id, patient_id, kind, origin, lead_minutes, state,
    due_at_ms, next_attempt_at_ms, attempts, lease_owner, lease_until_ms, handed_over_at_ms, message_id, encrypted,
    failure_reason, created_by, created_at_ms, finished_at_ms
FROM reminders;

DROP TABLE reminders;
ALTER TABLE reminders_with_staff_notices RENAME TO reminders;

CREATE INDEX reminders_due ON reminders (state, next_attempt_at_ms);
CREATE INDEX reminders_by_appointment ON reminders (appointment_id, created_at_ms);
CREATE UNIQUE INDEX reminders_one_staff_notice_per_step ON reminders (alert_id, escalation_step, recipient_user_id);
