//! The tables that hold ciphertext, and the one query each needs for key management: how many
//! values each data key protects. Every PHI table adds itself to [`ALL`]; status, retirement
//! and re-encryption then cover it without further code.

use std::collections::BTreeMap;

use confidant_actors::audit::ResourceType;
use sqlx::Row;

use super::KeyError;
use crate::storage::Storage;

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

/// Every table with encrypted columns.
pub const ALL: &[&EncryptedTable] =
    &[&PATIENTS, &USERS, &BREAK_GLASS_GRANTS, &INTAKE_ASSIGNMENTS, &REMINDER_PREFERENCES];

/// How much a data key protects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Protected {
    /// Rows sealed under it.
    pub rows: u64,
    /// Non-NULL encrypted values in those rows.
    pub values: u64,
}

impl EncryptedTable {
    /// Rows and values per key id.
    async fn protected(&self, storage: &Storage) -> Result<BTreeMap<u32, Protected>, KeyError> {
        // Identifiers come from the constants above, never from input.
        let values = self.columns.iter().map(|c| format!("COUNT({c})")).collect::<Vec<_>>().join(" + ");
        let sql = format!("SELECT key_id, COUNT(*), {values} FROM {} GROUP BY key_id", self.name);
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(storage.pool()).await?;
        let mut out = BTreeMap::new();
        for row in rows {
            let key_id: i64 = row.try_get(0)?;
            let count = |i| row.try_get::<i64, _>(i).map(|n| u64::try_from(n).unwrap_or(0));
            let key_id =
                u32::try_from(key_id).map_err(|_| KeyError::Corrupt { key_id: 0, what: "key id out of range" })?;
            out.insert(key_id, Protected { rows: count(1)?, values: count(2)? });
        }
        Ok(out)
    }
}

/// Rows and values protected by each data key, over every encrypted table.
pub async fn protected_by_key(storage: &Storage) -> Result<BTreeMap<u32, Protected>, KeyError> {
    let mut total: BTreeMap<u32, Protected> = BTreeMap::new();
    for table in ALL {
        for (key_id, p) in table.protected(storage).await? {
            let entry = total.entry(key_id).or_default();
            entry.rows += p.rows;
            entry.values += p.values;
        }
    }
    Ok(total)
}
