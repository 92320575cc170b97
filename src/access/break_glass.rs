//! Break-glass: a clinician opening a patient outside their care team in an emergency. Only
//! with a stated reason, only for a limited time; the grant is audited as `break_glass` by the
//! caller and listed for owners. The reason is sealed like PHI: it may describe the patient.

use std::sync::Arc;

use confidant_actors::ids::{PatientId, UserId};
use sqlx::Row;
use uuid::Uuid;

use crate::crypto::tables::BREAK_GLASS_GRANTS;
use crate::crypto::{CryptoError, Field, Keyring};
use crate::phi::PhiText;
use crate::storage::{Storage, StorageError, parse_id};

/// Shortest and longest accepted reason, in characters: long enough to say something, short
/// enough to stay a reason.
pub const REASON_CHARS: std::ops::RangeInclusive<usize> = 10..=1000;

/// Why a grant could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum BreakGlassError {
    /// The reason is missing, too short or too long (bad input).
    #[error("`reason` must be {min} to {max} characters", min = REASON_CHARS.start(), max = REASON_CHARS.end())]
    Reason,
    /// A stored reason failed its integrity check.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<sqlx::Error> for BreakGlassError {
    fn from(error: sqlx::Error) -> Self {
        BreakGlassError::Storage(StorageError::Query(error))
    }
}

/// A break-glass grant.
#[derive(Debug, Clone)]
pub struct Grant {
    /// The grant's id (in the audit trail).
    pub grant_id: Uuid,
    /// Who broke the glass.
    pub clinician_id: UserId,
    /// Whose record they opened.
    pub patient_id: PatientId,
    /// What they said, decrypted (only [`BreakGlass::list`] fills it).
    pub reason: Option<PhiText>,
    /// When (UTC ms).
    pub created_at_ms: i64,
    /// Until when it lets them in (UTC ms).
    pub expires_at_ms: i64,
}

/// The `break_glass_grants` table, through the keyring.
#[derive(Clone)]
pub struct BreakGlass {
    storage: Storage,
    keyring: Arc<Keyring>,
}

impl BreakGlass {
    /// The grants of `storage`, reasons sealed by `keyring`.
    pub fn new(storage: Storage, keyring: Arc<Keyring>) -> Self {
        Self { storage, keyring }
    }

    /// Stores a grant for `clinician` on `patient` from `now_ms` for `lifetime_ms`.
    pub async fn grant(
        &self,
        clinician: UserId,
        patient: PatientId,
        reason: &PhiText,
        now_ms: i64,
        lifetime_ms: i64,
    ) -> Result<Grant, BreakGlassError> {
        if !REASON_CHARS.contains(&reason.expose().trim().chars().count()) {
            return Err(BreakGlassError::Reason);
        }
        let grant_id = Uuid::new_v4();
        let row_id = grant_id.to_string();
        let sealer = self.keyring.sealer();
        let sealed = sealer.seal(
            Field { table: BREAK_GLASS_GRANTS.name, column: "reason", row_id: &row_id },
            reason.expose().trim().as_bytes(),
        );
        let stored = StoredGrant {
            row_id,
            grant_id,
            clinician_id: clinician,
            patient_id: patient,
            reason: sealed,
            created_at_ms: now_ms,
            expires_at_ms: now_ms.saturating_add(lifetime_ms),
        };
        insert(&self.storage, &stored, sealer.key_id()).await?;
        Ok(Grant {
            grant_id,
            clinician_id: clinician,
            patient_id: patient,
            reason: None,
            created_at_ms: stored.created_at_ms,
            expires_at_ms: stored.expires_at_ms,
        })
    }

    /// The live grant letting `clinician` reach `patient` at `now_ms`, if any (the latest).
    pub async fn active(
        &self,
        clinician: UserId,
        patient: PatientId,
        now_ms: i64,
    ) -> Result<Option<Uuid>, StorageError> {
        active(&self.storage, clinician, patient, now_ms).await
    }

    /// The patients `clinician` reaches through live grants at `now_ms`.
    pub async fn patients_of(&self, clinician: UserId, now_ms: i64) -> Result<Vec<PatientId>, StorageError> {
        patients_of(&self.storage, clinician, now_ms).await
    }

    /// Grants made since `since_ms`, newest first, with their reasons (for owners).
    pub async fn list(&self, since_ms: i64) -> Result<Vec<Grant>, BreakGlassError> {
        let stored = since(&self.storage, since_ms).await?;
        let mut grants = Vec::with_capacity(stored.len());
        for grant in stored {
            let field = Field { table: BREAK_GLASS_GRANTS.name, column: "reason", row_id: &grant.row_id };
            let plain = self.keyring.open_value(field, &grant.reason).await?;
            grants.push(Grant {
                grant_id: grant.grant_id,
                clinician_id: grant.clinician_id,
                patient_id: grant.patient_id,
                reason: Some(PhiText::from_plaintext(&plain).ok_or(CryptoError::Integrity)?),
                created_at_ms: grant.created_at_ms,
                expires_at_ms: grant.expires_at_ms,
            });
        }
        Ok(grants)
    }
}

/// A grant as stored, its reason sealed.
struct StoredGrant {
    /// The grant's id as stored (the row id of the reason's AAD).
    row_id: String,
    grant_id: Uuid,
    clinician_id: UserId,
    patient_id: PatientId,
    /// The sealed reason.
    reason: Vec<u8>,
    created_at_ms: i64,
    expires_at_ms: i64,
}

/// Stores `grant`, its reason sealed under `key_id`.
async fn insert(storage: &Storage, grant: &StoredGrant, key_id: u32) -> Result<(), StorageError> {
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
    .execute(storage.pool())
    .await?;
    Ok(())
}

/// The latest grant letting `clinician` reach `patient` at `now_ms`.
async fn active(
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
async fn patients_of(storage: &Storage, clinician: UserId, now_ms: i64) -> Result<Vec<PatientId>, StorageError> {
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
async fn since(storage: &Storage, since_ms: i64) -> Result<Vec<StoredGrant>, StorageError> {
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
