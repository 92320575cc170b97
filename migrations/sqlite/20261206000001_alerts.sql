-- Alerts (docs/ARCHITECTURE.md, "Alerts"): what needs a person's attention (an urgent screening
-- answer, a submitted form, a break-glass grant, a reminder that could not be delivered). A row
-- is written in the same transaction as the event that raised it, with its recipients, and is
-- kept: a recipient who was offline receives it when they connect, until it is acknowledged.
--
-- What the alert says (its kind, the form, the clinician) is sealed in body like every PHI
-- column (key_id names its data key; the AAD binds the alert id), and so is the follow-up note.
-- The patient, the times, whether it is urgent and where its escalation stands stay plain: the
-- escalation worker and the urgent flags of lists query them.
CREATE TABLE alerts (
    alert_id            TEXT    PRIMARY KEY NOT NULL,
    key_id              BIGINT  NOT NULL REFERENCES data_keys (key_id),
    patient_id          TEXT    NOT NULL REFERENCES patients (patient_id),
    -- The intake assignment, break-glass grant or reminder it is about.
    subject_id          TEXT,
    body                BLOB   NOT NULL,
    urgent              BIGINT  NOT NULL CHECK (urgent IN (0, 1)),
    raised_at_ms        BIGINT  NOT NULL,
    acknowledged_by     TEXT    REFERENCES users (user_id),
    acknowledged_at_ms  BIGINT,
    follow_up           BLOB,
    followed_up_by      TEXT    REFERENCES users (user_id),
    followed_up_at_ms   BIGINT,
    -- Escalation steps taken so far, and when the next one is due (NULL: none is).
    escalation_step     BIGINT  NOT NULL,
    escalate_at_ms      BIGINT
);
CREATE INDEX alerts_escalation_due ON alerts (escalate_at_ms);
CREATE INDEX alerts_by_patient ON alerts (patient_id, raised_at_ms);
CREATE INDEX alerts_by_subject ON alerts (subject_id);
CREATE INDEX alerts_by_key ON alerts (key_id);

-- Who receives an alert: step 0 when it was raised, step n when escalation step n added them.
CREATE TABLE alert_recipients (
    alert_id     TEXT    NOT NULL REFERENCES alerts (alert_id),
    user_id      TEXT    NOT NULL REFERENCES users (user_id),
    step         BIGINT  NOT NULL,
    added_at_ms  BIGINT  NOT NULL,
    PRIMARY KEY (alert_id, user_id)
);
CREATE INDEX alert_recipients_by_user ON alert_recipients (user_id, alert_id);
