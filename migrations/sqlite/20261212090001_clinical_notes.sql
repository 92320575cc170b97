-- Clinical notes (docs/ARCHITECTURE.md, "notes/"): the practice's own note templates (data, not
-- PHI: a template holds headings and choices, never a patient's answer), which clinicians are
-- supervised and by whom, the notes themselves and their addenda.
--
-- A note's whole content (its fields and what was filled in for it, the latest screening scores
-- and the treatment plan's diagnosis and goals) is one sealed value, `content`, under the row's
-- `key_id`; an addendum's text is sealed in `body`. A note keeps the template key and version
-- it was written on. Signing moves `status` from 'draft' once (a conditional update), and every
-- later write of the content is conditional on 'draft', so a signed note never changes.
CREATE TABLE note_templates (
    template_key        TEXT    NOT NULL,
    version             BIGINT  NOT NULL CHECK (version >= 1),
    kind                TEXT    NOT NULL,
    definition          TEXT    NOT NULL,
    created_by          TEXT    NOT NULL REFERENCES users (user_id),
    created_at_ms       BIGINT  NOT NULL,
    PRIMARY KEY (template_key, version)
);

CREATE TABLE supervisions (
    clinician_id        TEXT    PRIMARY KEY NOT NULL REFERENCES users (user_id),
    supervisor_id       TEXT    NOT NULL REFERENCES users (user_id),
    set_by              TEXT    NOT NULL REFERENCES users (user_id),
    set_at_ms           BIGINT  NOT NULL,
    CHECK (clinician_id <> supervisor_id)
);
CREATE INDEX supervisions_by_supervisor ON supervisions (supervisor_id);

CREATE TABLE clinical_notes (
    note_id             TEXT    PRIMARY KEY NOT NULL,
    key_id              BIGINT  NOT NULL REFERENCES data_keys (key_id),
    patient_id          TEXT    NOT NULL REFERENCES patients (patient_id),
    appointment_id      TEXT    REFERENCES appointments (appointment_id),
    author_id           TEXT    NOT NULL REFERENCES users (user_id),
    template_key        TEXT    NOT NULL,
    template_version    BIGINT  NOT NULL,
    kind                TEXT    NOT NULL CHECK (kind IN ('progress', 'intake_assessment', 'treatment_plan',
                                    'discharge_summary', 'psychotherapy')),
    status              TEXT    NOT NULL CHECK (status IN ('draft', 'awaiting_cosign', 'final')),
    content             BLOB   NOT NULL,
    service_at_ms       BIGINT  NOT NULL,
    created_at_ms       BIGINT  NOT NULL,
    updated_at_ms       BIGINT  NOT NULL,
    signed_at_ms        BIGINT,
    signed_digest       TEXT,
    late_entry          BIGINT  NOT NULL DEFAULT 0 CHECK (late_entry IN (0, 1)),
    cosigner_id         TEXT    REFERENCES users (user_id),
    cosigned_at_ms      BIGINT
);
CREATE INDEX clinical_notes_by_patient ON clinical_notes (patient_id, service_at_ms);
CREATE INDEX clinical_notes_by_cosigner ON clinical_notes (cosigner_id, status);
CREATE INDEX clinical_notes_by_key ON clinical_notes (key_id);

CREATE TABLE note_addenda (
    addendum_id         TEXT    PRIMARY KEY NOT NULL,
    key_id              BIGINT  NOT NULL REFERENCES data_keys (key_id),
    note_id             TEXT    NOT NULL REFERENCES clinical_notes (note_id),
    patient_id          TEXT    NOT NULL REFERENCES patients (patient_id),
    author_id           TEXT    NOT NULL REFERENCES users (user_id),
    body                BLOB   NOT NULL,
    signed_at_ms        BIGINT  NOT NULL,
    signed_digest       TEXT    NOT NULL,
    late_entry          BIGINT  NOT NULL CHECK (late_entry IN (0, 1))
);
CREATE INDEX note_addenda_by_note ON note_addenda (note_id, signed_at_ms);
CREATE INDEX note_addenda_by_key ON note_addenda (key_id);
