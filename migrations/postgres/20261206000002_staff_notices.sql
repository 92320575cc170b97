-- Staff notices (docs/OPERATIONS.md, "Reminder delivery"): the outbox also carries a short email
-- to a staff account saying only that an urgent item is waiting in Confidant, with the portal
-- link. Alert escalation queues one per alert, escalation step and recipient, in the
-- transaction that takes the step; it is claimed, handed over and finished like a reminder.
--
-- A row is either an appointment reminder (appointment and patient set, kind 'upcoming' or
-- 'cancelled', origin 'schedule' or 'staff') or a staff notice (alert, recipient and step set,
-- no appointment and no patient, kind 'staff_notice', origin 'alert'). The unique index keeps
-- one notice per step and person, so queuing a step again does nothing. Every existing row is
-- an appointment reminder.
ALTER TABLE reminders ALTER COLUMN appointment_id DROP NOT NULL;
ALTER TABLE reminders ALTER COLUMN patient_id DROP NOT NULL;
-- A staff notice: the alert, the staff account it goes to, and the escalation step that added
-- them (0: raised).
ALTER TABLE reminders ADD COLUMN alert_id TEXT REFERENCES alerts (alert_id);
ALTER TABLE reminders ADD COLUMN recipient_user_id TEXT REFERENCES users (user_id);
ALTER TABLE reminders ADD COLUMN escalation_step BIGINT;
ALTER TABLE reminders DROP CONSTRAINT reminders_kind_check;
ALTER TABLE reminders ADD CONSTRAINT reminders_kind_check CHECK (kind IN ('upcoming', 'cancelled', 'staff_notice'));
ALTER TABLE reminders DROP CONSTRAINT reminders_origin_check;
ALTER TABLE reminders ADD CONSTRAINT reminders_origin_check CHECK (origin IN ('schedule', 'staff', 'alert'));
ALTER TABLE reminders ADD CONSTRAINT reminders_appointment_reminder_or_staff_notice CHECK (
    (kind IN ('upcoming', 'cancelled') AND origin IN ('schedule', 'staff')
        AND appointment_id IS NOT NULL AND patient_id IS NOT NULL
        AND alert_id IS NULL AND recipient_user_id IS NULL AND escalation_step IS NULL)
    OR (kind = 'staff_notice' AND origin = 'alert'
        AND alert_id IS NOT NULL AND recipient_user_id IS NOT NULL AND escalation_step IS NOT NULL
        AND appointment_id IS NULL AND patient_id IS NULL)
);
CREATE UNIQUE INDEX reminders_one_staff_notice_per_step ON reminders (alert_id, escalation_step, recipient_user_id);
