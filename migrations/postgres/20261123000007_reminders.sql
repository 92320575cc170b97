-- Appointment reminders by email (docs/OPERATIONS.md, "Reminder delivery").
--
-- reminder_preferences: per patient, whether email reminders are on, how long before an
-- appointment they go (minutes, a JSON array), and the patient's OpenPGP public key, sealed like
-- every PHI column (key_id names its data key; the AAD binds the patient id).
CREATE TABLE reminder_preferences (
    patient_id     TEXT    PRIMARY KEY NOT NULL REFERENCES patients (patient_id),
    key_id         BIGINT  NOT NULL REFERENCES data_keys (key_id),
    email_enabled  BIGINT  NOT NULL CHECK (email_enabled IN (0, 1)),
    lead_minutes   TEXT    NOT NULL,
    pgp_public_key BYTEA,
    updated_by     TEXT    NOT NULL,
    updated_at_ms  BIGINT  NOT NULL
);
CREATE INDEX reminder_preferences_by_key ON reminder_preferences (key_id);

-- The durable outbox. A row is written in the same transaction as the schedule change (or the
-- staff request) that causes it and holds ids, times and states only: the message itself is
-- built when it is sent, from the sealed tables, and never stored. A row leaves 'queued' only
-- through a claim that sets a lease ('sending'); 'handed_over_at_ms' is set just before the
-- message is given to the SMTP server, which is how recovery tells "never offered" (safe to
-- retry) from "perhaps accepted" (never retried). message_id is stable per reminder.
CREATE TABLE reminders (
    reminder_id        TEXT    PRIMARY KEY NOT NULL,
    appointment_id     TEXT    NOT NULL REFERENCES appointments (appointment_id),
    patient_id         TEXT    NOT NULL REFERENCES patients (patient_id),
    kind               TEXT    NOT NULL CHECK (kind IN ('upcoming', 'cancelled')),
    origin             TEXT    NOT NULL CHECK (origin IN ('schedule', 'staff')),
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
    finished_at_ms     BIGINT
);
CREATE INDEX reminders_due ON reminders (state, next_attempt_at_ms);
CREATE INDEX reminders_by_appointment ON reminders (appointment_id, created_at_ms);
