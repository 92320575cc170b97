//! The tables that hold ciphertext. Every PHI table adds itself to [`ALL`]; status, retirement
//! and re-encryption (whose statements are in `crypto/store/sealed.rs`) then cover it without
//! further code.

use confidant_actors::audit::ResourceType;

/// A table with encrypted columns. Each row has an id column (UUID text, bound into every
/// value's AAD) and a `key_id` column naming the data key of all its values.
#[derive(Debug)]
pub struct EncryptedTable {
    /// The table.
    pub name: &'static str,
    /// Its id column.
    pub id_column: &'static str,
    /// The column naming the patient a row belongs to, NULL for rows about no patient (for the
    /// audit trail).
    pub patient_column: &'static str,
    /// What a row is, in the audit trail.
    pub resource: ResourceType,
    /// The encrypted columns (BLOB / BYTEA, NULL allowed).
    pub columns: &'static [&'static str],
}

/// The patient record.
pub const PATIENTS: EncryptedTable = EncryptedTable {
    name: "patients",
    id_column: "patient_id",
    patient_column: "patient_id",
    resource: ResourceType::Patient,
    columns: &["legal_name", "preferred_name", "date_of_birth", "email", "phone", "address", "emergency_contact"],
};

/// Accounts: the sign-in email and the TOTP secret (patients' emails are PHI; staff emails are
/// sealed the same way so one code path handles all accounts).
pub const USERS: EncryptedTable = EncryptedTable {
    name: "users",
    id_column: "user_id",
    patient_column: "patient_id",
    resource: ResourceType::User,
    columns: &["email", "totp_secret"],
};

/// Break-glass grants: the reason a clinician gave (it may describe the patient's condition).
pub const BREAK_GLASS_GRANTS: EncryptedTable = EncryptedTable {
    name: "break_glass_grants",
    id_column: "grant_id",
    patient_column: "patient_id",
    resource: ResourceType::BreakGlassGrant,
    columns: &["reason"],
};

/// Intake and screening forms: draft answers, submitted answers and the score.
pub const INTAKE_ASSIGNMENTS: EncryptedTable = EncryptedTable {
    name: "intake_assignments",
    id_column: "assignment_id",
    patient_column: "patient_id",
    resource: ResourceType::IntakeResponse,
    columns: &["draft", "response", "result"],
};

/// Reminder preferences: the patient's OpenPGP public key (its user ids name the patient). The
/// reminder outbox holds ids, times and states only; a message is built when sent, never stored.
pub const REMINDER_PREFERENCES: EncryptedTable = EncryptedTable {
    name: "reminder_preferences",
    id_column: "patient_id",
    patient_column: "patient_id",
    resource: ResourceType::Reminder,
    columns: &["pgp_public_key"],
};

/// Alerts: what an alert says (its kind and references: beside the patient, "thoughts of
/// self-harm" is PHI) and the clinician's follow-up note.
pub const ALERTS: EncryptedTable = EncryptedTable {
    name: "alerts",
    id_column: "alert_id",
    patient_column: "patient_id",
    resource: ResourceType::Alert,
    columns: &["body", "follow_up"],
};

/// The answers of writes kept for their `Idempotency-Key` (`crate::idempotency`): a day's
/// copy of what a write answered, which may be a patient record.
pub const IDEMPOTENT_ANSWERS: EncryptedTable = EncryptedTable {
    name: "idempotent_answers",
    id_column: "claim_id",
    patient_column: "patient_id",
    resource: ResourceType::IdempotentAnswer,
    columns: &["body"],
};

/// Clinical notes: the whole content of each (every field the clinician wrote, and the
/// screening scores, diagnosis and goals filled in when it was begun), one sealed value.
pub const CLINICAL_NOTES: EncryptedTable = EncryptedTable {
    name: "clinical_notes",
    id_column: "note_id",
    patient_column: "patient_id",
    resource: ResourceType::Note,
    columns: &["content"],
};

/// Addenda of clinical notes: their text.
pub const NOTE_ADDENDA: EncryptedTable = EncryptedTable {
    name: "note_addenda",
    id_column: "addendum_id",
    patient_column: "patient_id",
    resource: ResourceType::Note,
    columns: &["body"],
};

/// Every table with encrypted columns.
pub const ALL: &[&EncryptedTable] = &[
    &PATIENTS,
    &USERS,
    &BREAK_GLASS_GRANTS,
    &INTAKE_ASSIGNMENTS,
    &REMINDER_PREFERENCES,
    &ALERTS,
    &IDEMPOTENT_ANSWERS,
    &CLINICAL_NOTES,
    &NOTE_ADDENDA,
];

/// How much a data key protects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Protected {
    /// Rows sealed under it.
    pub rows: u64,
    /// Non-NULL encrypted values in those rows.
    pub values: u64,
}
