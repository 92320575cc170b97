-- no-transaction
-- Security alerts (docs/ARCHITECTURE.md, "Alerts"): a sign-in attack pattern alerts the
-- practice's owners. Such an alert is about no patient, so `patient_id` may be NULL; and it is
-- raised once per pattern, source and window, so it carries `dedup_key` (an HMAC of the three,
-- never a source in the clear), unique: a second insert with the same key stores nothing.
-- Alerts about a patient keep their patient and have no key (NULLs never collide).
--
-- SQLite cannot drop a NOT NULL, so `alerts` is rebuilt: a new table, every row copied, the old
-- one dropped and the new one renamed, then its indexes made again. `alert_recipients` and
-- `reminders` refer to `alerts`, and with foreign keys on, dropping the old table would fail
-- (and renaming would rewrite their references), so this runs with foreign keys off (which
-- SQLite only allows outside a transaction, hence `no-transaction` above) inside a transaction
-- of its own, as SQLite's documented procedure for such changes does. Every step can run twice
-- (IF NOT EXISTS, OR IGNORE), so a crash between its commit and the migration's record only
-- repeats it.
PRAGMA foreign_keys = OFF;
BEGIN;
CREATE TABLE IF NOT EXISTS alerts_without_patient (
    alert_id            TEXT    PRIMARY KEY NOT NULL,
    key_id              BIGINT  NOT NULL REFERENCES data_keys (key_id),
    patient_id          TEXT    REFERENCES patients (patient_id),
    subject_id          TEXT,
    body                BLOB   NOT NULL,
    urgent              BIGINT  NOT NULL CHECK (urgent IN (0, 1)),
    raised_at_ms        BIGINT  NOT NULL,
    acknowledged_by     TEXT    REFERENCES users (user_id),
    acknowledged_at_ms  BIGINT,
    follow_up           BLOB,
    followed_up_by      TEXT    REFERENCES users (user_id),
    followed_up_at_ms   BIGINT,
    escalation_step     BIGINT  NOT NULL,
    escalate_at_ms      BIGINT,
    dedup_key           BLOB
);
INSERT OR IGNORE INTO alerts_without_patient (alert_id, key_id, patient_id, subject_id, body, urgent, raised_at_ms,
    acknowledged_by, acknowledged_at_ms, follow_up, followed_up_by, followed_up_at_ms, escalation_step, escalate_at_ms)
SELECT alert_id, key_id, patient_id, subject_id, body, urgent, raised_at_ms,
    acknowledged_by, acknowledged_at_ms, follow_up, followed_up_by, followed_up_at_ms, escalation_step, escalate_at_ms
FROM alerts;
DROP TABLE alerts;
ALTER TABLE alerts_without_patient RENAME TO alerts;
CREATE INDEX IF NOT EXISTS alerts_escalation_due ON alerts (escalate_at_ms);
CREATE INDEX IF NOT EXISTS alerts_by_patient ON alerts (patient_id, raised_at_ms);
CREATE INDEX IF NOT EXISTS alerts_by_subject ON alerts (subject_id);
CREATE INDEX IF NOT EXISTS alerts_by_key ON alerts (key_id);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_per_dedup_key ON alerts (dedup_key);
COMMIT;
PRAGMA foreign_keys = ON;
