-- Staff display names (issue 26): how a member of staff appears on every screen and in the
-- "Clinician:" line of a reminder with details, e.g. "Dr. Ana Ruiz" with credentials "PsyD"
-- shown as "Dr. Ana Ruiz, PsyD". A workforce member's professional name is not PHI (patients
-- are named by their encrypted patient record and never get these columns), so it is stored
-- in the clear; NULL means not given yet, and the account appears by its email until then.
ALTER TABLE users ADD COLUMN display_name TEXT;
ALTER TABLE users ADD COLUMN credentials TEXT;
