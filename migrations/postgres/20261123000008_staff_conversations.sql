-- Staff conversations (docs/MESSAGING.md): a conversation is either about one patient (`care`,
-- `patient_id` set) or among staff about no patient (`staff`, `patient_id` NULL). The kind
-- decides, through the permission module, who may be added to it. Every existing conversation
-- is about a patient.
ALTER TABLE conversations ADD COLUMN kind TEXT NOT NULL DEFAULT 'care' CHECK (kind IN ('care', 'staff'));
ALTER TABLE conversations ALTER COLUMN kind DROP DEFAULT;
ALTER TABLE conversations ALTER COLUMN patient_id DROP NOT NULL;
ALTER TABLE conversations ADD CONSTRAINT conversations_kind_names_patient
    CHECK ((kind = 'care') = (patient_id IS NOT NULL));
