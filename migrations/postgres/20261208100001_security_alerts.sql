-- Security alerts (docs/ARCHITECTURE.md, "Alerts"): a sign-in attack pattern alerts the
-- practice's owners. Such an alert is about no patient, so `patient_id` may be NULL; and it is
-- raised once per pattern, source and window, so it carries `dedup_key` (an HMAC of the three,
-- never a source in the clear), unique: a second insert with the same key stores nothing.
-- Alerts about a patient keep their patient and have no key (NULLs never collide).
ALTER TABLE alerts ALTER COLUMN patient_id DROP NOT NULL;
ALTER TABLE alerts ADD COLUMN dedup_key BYTEA;
CREATE UNIQUE INDEX alerts_one_per_dedup_key ON alerts (dedup_key);
