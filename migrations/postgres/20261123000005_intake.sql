-- Intake and screening forms (docs/PROTOCOL.md). A clinician assigns a form to a patient on their
-- care team; the patient's draft answers autosave and the submitted answers and score are
-- stored sealed like every PHI column (key_id names their data key; the AAD binds the
-- assignment id). Only the form name, the people and the times stay plain.
CREATE TABLE intake_assignments (
    assignment_id       TEXT    PRIMARY KEY NOT NULL,
    key_id              BIGINT  NOT NULL REFERENCES data_keys (key_id),
    patient_id          TEXT    NOT NULL REFERENCES patients (patient_id),
    clinician_id        TEXT    NOT NULL REFERENCES users (user_id),
    form                TEXT    NOT NULL CHECK (form IN ('general_intake', 'phq9', 'gad7')),
    status              TEXT    NOT NULL CHECK (status IN ('assigned', 'submitted')),
    assigned_by         TEXT    NOT NULL,
    assigned_at_ms      BIGINT  NOT NULL,
    draft               BYTEA,
    draft_updated_at_ms BIGINT,
    response            BYTEA,
    result              BYTEA,
    submitted_at_ms     BIGINT
);
CREATE INDEX intake_by_patient ON intake_assignments (patient_id, assigned_at_ms);
CREATE INDEX intake_by_key ON intake_assignments (key_id);
