//! `break_glass_grants`: the grants, each reason stored as the keyring sealed it (the caller
//! seals and opens it).

use confidant_actors::ids::{PatientId, UserId};
use sqlx::Row;
use uuid::Uuid;

use crate::storage::{Storage, StorageError, parse_id};

/// A grant as stored, its reason sealed.
pub struct StoredGrant {
    /// The grant's id as stored (the row id of the reason's AAD).
    pub row_id: String,
    /// The grant.
    pub grant_id: Uuid,
    /// Who broke the glass.
    pub clinician_id: UserId,
    /// Whose record.
    pub patient_id: PatientId,
    /// The sealed reason.
    pub reason: Vec<u8>,
    /// When (UTC ms).
    pub created_at_ms: i64,
    /// Until when (UTC ms).
    pub expires_at_ms: i64,
}

/// Stores `grant`, its reason sealed under `key_id`.
pub async fn insert(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    grant: &StoredGrant,
    key_id: u32,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO break_glass_grants (grant_id, key_id, clinician_id, patient_id, reason, created_at_ms, \
         expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(grant.row_id.clone())
    .bind(i64::from(key_id))
    .bind(grant.clinician_id.to_string())
    .bind(grant.patient_id.to_string())
    .bind(grant.reason.clone())
    .bind(grant.created_at_ms)
    .bind(grant.expires_at_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The latest grant letting `clinician` reach `patient` at `now_ms`.
pub async fn active(
    storage: &Storage,
    clinician: UserId,
    patient: PatientId,
    now_ms: i64,
) -> Result<Option<Uuid>, StorageError> {
    let id: Option<String> = sqlx::query_scalar(
        "SELECT grant_id FROM break_glass_grants WHERE clinician_id = $1 AND patient_id = $2 \
         AND created_at_ms <= $3 AND expires_at_ms > $3 ORDER BY expires_at_ms DESC LIMIT 1",
    )
    .bind(clinician.to_string())
    .bind(patient.to_string())
    .bind(now_ms)
    .fetch_optional(storage.pool())
    .await?;
    id.map(|id| parse_id(&id, "grant_id")).transpose()
}

/// The patients of `clinician`'s grants live at `now_ms`.
pub async fn patients_of(storage: &Storage, clinician: UserId, now_ms: i64) -> Result<Vec<PatientId>, StorageError> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT patient_id FROM break_glass_grants WHERE clinician_id = $1 AND created_at_ms <= $2 \
         AND expires_at_ms > $2 ORDER BY patient_id",
    )
    .bind(clinician.to_string())
    .bind(now_ms)
    .fetch_all(storage.pool())
    .await?;
    ids.iter().map(|id| parse_id(id, "patient_id")).collect()
}

/// Grants made since `since_ms`, newest first (at most 1,000).
pub async fn since(storage: &Storage, since_ms: i64) -> Result<Vec<StoredGrant>, StorageError> {
    let rows = sqlx::query(
        "SELECT grant_id, clinician_id, patient_id, reason, created_at_ms, expires_at_ms FROM break_glass_grants \
         WHERE created_at_ms >= $1 ORDER BY created_at_ms DESC, grant_id LIMIT 1000",
    )
    .bind(since_ms)
    .fetch_all(storage.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let row_id: String = row.try_get(0)?;
            Ok(StoredGrant {
                grant_id: parse_id(&row_id, "grant_id")?,
                clinician_id: parse_id(&row.try_get::<String, _>(1)?, "clinician_id")?,
                patient_id: parse_id(&row.try_get::<String, _>(2)?, "patient_id")?,
                reason: row.try_get(3)?,
                created_at_ms: row.try_get(4)?,
                expires_at_ms: row.try_get(5)?,
                row_id,
            })
        })
        .collect()
}
