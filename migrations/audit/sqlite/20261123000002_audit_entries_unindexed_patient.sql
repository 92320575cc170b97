-- A per-patient index on the audit trail touched a random leaf page for nearly every appended
-- entry (patient ids are random), so each group commit rewrote thousands of index pages and the
-- commit grew with the table. No query used it: exports and disclosure reports select by time
-- (audit_entries_by_time, which only ever appends) and filter on patient_id in that range.
DROP INDEX audit_entries_by_patient;
