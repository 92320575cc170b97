//! `reminder_preferences`: per patient, whether email reminders are on, their lead times, and
//! their OpenPGP key as the keyring sealed it.

use confidant_actors::ids::{PatientId, UserId};
use sqlx::Row;

use crate::storage::{Storage, StorageError};

/// A patient's preferences as stored, the OpenPGP key sealed.
pub struct StoredPreferences {
    pub email_enabled: bool,
    /// `None`: the practice's defaults.
    pub lead_minutes: Option<Vec<u32>>,
    /// The sealed armored key.
    pub pgp_key: Option<Vec<u8>>,
}

/// `patient`'s stored preferences, if set.
pub async fn stored(storage: &Storage, patient: PatientId) -> Result<Option<StoredPreferences>, StorageError> {
    let row = sqlx::query(
        "SELECT email_enabled, lead_minutes, pgp_public_key FROM reminder_preferences WHERE patient_id = $1",
    )
    .bind(patient.to_string())
    .fetch_optional(storage.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let enabled: i64 = row.try_get(0)?;
    let lead: String = row.try_get(1)?;
    Ok(Some(StoredPreferences {
        email_enabled: enabled == 1,
        lead_minutes: parse_lead(&lead)?,
        pgp_key: row.try_get(2)?,
    }))
}

/// Replaces `patient`'s preferences, the key sealed under `key_id`.
pub async fn put(
    storage: &Storage,
    patient: PatientId,
    preferences: &StoredPreferences,
    key_id: u32,
    by: UserId,
    now_ms: i64,
) -> Result<(), StorageError> {
    let lead = serde_json::to_string(&preferences.lead_minutes).map_err(|_| StorageError::Encode)?;
    // One statement: two concurrent writers cannot collide on the primary key (last wins).
    sqlx::query(
        "INSERT INTO reminder_preferences (patient_id, key_id, email_enabled, lead_minutes, pgp_public_key, \
         updated_by, updated_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) \
         ON CONFLICT (patient_id) DO UPDATE SET key_id = excluded.key_id, email_enabled = excluded.email_enabled, \
         lead_minutes = excluded.lead_minutes, pgp_public_key = excluded.pgp_public_key, \
         updated_by = excluded.updated_by, updated_at_ms = excluded.updated_at_ms",
    )
    .bind(patient.to_string())
    .bind(i64::from(key_id))
    .bind(i64::from(preferences.email_enabled))
    .bind(lead)
    .bind(preferences.pgp_key.clone())
    .bind(by.to_string())
    .bind(now_ms)
    .execute(storage.pool())
    .await?;
    Ok(())
}

/// Whether `patient` has reminders on, and their lead times (`None`: the defaults), read in
/// `tx`; `None` when unset.
pub async fn plan_row(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    patient: PatientId,
) -> Result<Option<(bool, Option<Vec<u32>>)>, StorageError> {
    let row = sqlx::query("SELECT email_enabled, lead_minutes FROM reminder_preferences WHERE patient_id = $1")
        .bind(patient.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let enabled: i64 = row.try_get(0)?;
    let lead: String = row.try_get(1)?;
    Ok(Some((enabled == 1, parse_lead(&lead)?)))
}

fn parse_lead(text: &str) -> Result<Option<Vec<u32>>, StorageError> {
    serde_json::from_str(text).map_err(|_| StorageError::Corrupt { column: "lead_minutes" })
}
