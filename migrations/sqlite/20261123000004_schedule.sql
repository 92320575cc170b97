-- The schedule (docs/API.md). An appointment names a clinician, a patient and a time span:
-- ids and times only (the reason for a visit, if ever recorded, belongs in a sealed table).
-- Booked appointments of one clinician never overlap: the booking transaction checks it while
-- holding the schedule's write lock (src/schedule/store.rs).
CREATE TABLE appointments (
    appointment_id TEXT    PRIMARY KEY NOT NULL,
    clinician_id   TEXT    NOT NULL REFERENCES users (user_id),
    patient_id     TEXT    NOT NULL REFERENCES patients (patient_id),
    starts_at_ms   BIGINT  NOT NULL,
    ends_at_ms     BIGINT  NOT NULL,
    status         TEXT    NOT NULL CHECK (status IN ('booked', 'cancelled')),
    created_by     TEXT    NOT NULL,
    created_at_ms  BIGINT  NOT NULL,
    updated_at_ms  BIGINT  NOT NULL,
    CHECK (ends_at_ms > starts_at_ms)
);
CREATE INDEX appointments_by_clinician ON appointments (clinician_id, starts_at_ms);
CREATE INDEX appointments_by_patient ON appointments (patient_id, starts_at_ms);

-- Every change, in order: live subscribers get it pushed; a client that reconnects asks for the
-- events after the last id it saw. `appointment` is the state after the change (JSON).
CREATE TABLE schedule_events (
    event_id       INTEGER PRIMARY KEY AUTOINCREMENT,
    appointment_id TEXT    NOT NULL REFERENCES appointments (appointment_id),
    clinician_id   TEXT    NOT NULL,
    patient_id     TEXT    NOT NULL,
    change         TEXT    NOT NULL CHECK (change IN ('created', 'rescheduled', 'cancelled')),
    appointment    TEXT    NOT NULL,
    at_ms          BIGINT  NOT NULL
);
CREATE INDEX schedule_events_by_clinician ON schedule_events (clinician_id, event_id);
CREATE INDEX schedule_events_by_patient ON schedule_events (patient_id, event_id);
