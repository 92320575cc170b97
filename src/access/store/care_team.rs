//! The care team: which clinicians treat which patient. A clinician's reach over patients is
//! exactly this table (plus live break-glass grants).

use confidant_actors::ids::{PatientId, UserId};
use sqlx::Row;

use crate::storage::{Storage, StorageError, parse_id};

/// The `care_team` table.
#[derive(Clone)]
pub struct CareTeam {
    storage: Storage,
}

/// One clinician on a patient's care team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The clinician.
    pub clinician_id: UserId,
    /// Who assigned them (`None`: the system, e.g. the clinician created the patient).
    pub assigned_by: Option<UserId>,
    /// When (UTC ms).
    pub assigned_at_ms: i64,
}

impl CareTeam {
    /// The care team table of `storage`.
    pub fn new(storage: Storage) -> Self {
        Self { storage }
    }

    /// Puts `clinician` on `patient`'s care team; `false` when already there.
    pub async fn assign(
        &self,
        patient: PatientId,
        clinician: UserId,
        by: Option<UserId>,
        at_ms: i64,
    ) -> Result<bool, StorageError> {
        let done = sqlx::query(
            "INSERT INTO care_team (patient_id, clinician_id, assigned_by, assigned_at_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (patient_id, clinician_id) DO NOTHING",
        )
        .bind(patient.to_string())
        .bind(clinician.to_string())
        .bind(by.map(|u| u.to_string()))
        .bind(at_ms)
        .execute(self.storage.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Takes `clinician` off `patient`'s care team; `false` when not there.
    pub async fn unassign(&self, patient: PatientId, clinician: UserId) -> Result<bool, StorageError> {
        let done = sqlx::query("DELETE FROM care_team WHERE patient_id = $1 AND clinician_id = $2")
            .bind(patient.to_string())
            .bind(clinician.to_string())
            .execute(self.storage.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether `clinician` is on `patient`'s care team.
    pub async fn includes(&self, patient: PatientId, clinician: UserId) -> Result<bool, StorageError> {
        let found: Option<i64> =
            sqlx::query_scalar("SELECT 1 FROM care_team WHERE patient_id = $1 AND clinician_id = $2")
                .bind(patient.to_string())
                .bind(clinician.to_string())
                .fetch_optional(self.storage.pool())
                .await?;
        Ok(found.is_some())
    }

    /// The clinicians on `patient`'s care team, earliest assigned first.
    pub async fn members(&self, patient: PatientId) -> Result<Vec<Member>, StorageError> {
        let rows = sqlx::query(
            "SELECT clinician_id, assigned_by, assigned_at_ms FROM care_team WHERE patient_id = $1 \
             ORDER BY assigned_at_ms, clinician_id",
        )
        .bind(patient.to_string())
        .fetch_all(self.storage.pool())
        .await?;
        rows.iter()
            .map(|row| {
                let clinician: String = row.try_get(0)?;
                let by: Option<String> = row.try_get(1)?;
                Ok(Member {
                    clinician_id: parse_id(&clinician, "clinician_id")?,
                    assigned_by: by.as_deref().map(|b| parse_id(b, "assigned_by")).transpose()?,
                    assigned_at_ms: row.try_get(2)?,
                })
            })
            .collect()
    }

    /// The patients `clinician` treats.
    pub async fn patients_of(&self, clinician: UserId) -> Result<Vec<PatientId>, StorageError> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT patient_id FROM care_team WHERE clinician_id = $1 ORDER BY patient_id")
                .bind(clinician.to_string())
                .fetch_all(self.storage.pool())
                .await?;
        ids.iter().map(|id| parse_id(id, "patient_id")).collect()
    }
}
