//! `intake_assignments`: who must fill which form for whom, the draft while they type, and
//! the submitted answers and score, all three sealed (table, column and assignment id in the
//! AAD). While a form is assigned only the draft is set; submitting replaces it with the
//! response and result in one conditional update, so a form is submitted once.

use std::sync::Arc;

use confidant_actors::ids::{PatientId, UserId};
use confidant_protocol::IntakeAnswers;
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::templates::{FormKind, Score};
use crate::crypto::tables::INTAKE_ASSIGNMENTS;
use crate::crypto::{CryptoError, Field, Keyring};
use crate::storage::{StorageError, parse_id};

/// Why an intake operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    /// A sealed value failed to open.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<sqlx::Error> for IntakeError {
    fn from(error: sqlx::Error) -> Self {
        IntakeError::Storage(StorageError::Query(error))
    }
}

/// An assignment, without its answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// Its id.
    pub id: Uuid,
    /// Whose form.
    pub patient_id: PatientId,
    /// Who is told when it is submitted.
    pub clinician_id: UserId,
    /// Which form.
    pub form: FormKind,
    /// Whether it was submitted.
    pub submitted: bool,
    /// When it was assigned (UTC ms).
    pub assigned_at_ms: i64,
    /// When it was submitted (UTC ms).
    pub submitted_at_ms: Option<i64>,
}

const COLUMNS: &str = "assignment_id, patient_id, clinician_id, form, status, assigned_at_ms, submitted_at_ms";

/// The intake table, through the keyring.
#[derive(Clone)]
pub struct Intake {
    keyring: Arc<Keyring>,
}

impl Intake {
    /// The intake forms of `keyring`'s store.
    pub fn new(keyring: Arc<Keyring>) -> Self {
        Self { keyring }
    }

    fn seal(
        &self,
        id: &str,
        column: &'static str,
        value: &impl serde::Serialize,
    ) -> Result<(i64, Vec<u8>), IntakeError> {
        let plain = zeroize::Zeroizing::new(serde_json::to_vec(value).map_err(|_| StorageError::Encode)?);
        let sealer = self.keyring.sealer();
        let sealed = sealer.seal(Field { table: INTAKE_ASSIGNMENTS.name, column, row_id: id }, &plain);
        Ok((i64::from(sealer.key_id()), sealed))
    }

    async fn open<T: serde::de::DeserializeOwned>(
        &self,
        id: &str,
        column: &'static str,
        sealed: &[u8],
    ) -> Result<T, IntakeError> {
        let plain =
            self.keyring.open_value(Field { table: INTAKE_ASSIGNMENTS.name, column, row_id: id }, sealed).await?;
        Ok(serde_json::from_slice(&plain).map_err(|_| CryptoError::Integrity)?)
    }

    /// Assigns `form` to `patient`, reporting to `clinician`.
    pub async fn assign(
        &self,
        patient: PatientId,
        clinician: UserId,
        form: FormKind,
        by: UserId,
        now_ms: i64,
    ) -> Result<Assignment, IntakeError> {
        let id = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO intake_assignments (assignment_id, key_id, patient_id, clinician_id, form, status, assigned_by, \
             assigned_at_ms) VALUES ($1, $2, $3, $4, $5, 'assigned', $6, $7)",
        )
        .bind(id.to_string())
        .bind(i64::from(self.keyring.sealer().key_id()))
        .bind(patient.to_string())
        .bind(clinician.to_string())
        .bind(form.as_str())
        .bind(by.to_string())
        .bind(now_ms)
        .execute(self.keyring.storage().pool())
        .await?;
        Ok(Assignment {
            id,
            patient_id: patient,
            clinician_id: clinician,
            form,
            submitted: false,
            assigned_at_ms: now_ms,
            submitted_at_ms: None,
        })
    }

    /// One assignment.
    pub async fn get(&self, id: Uuid) -> Result<Option<Assignment>, IntakeError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM intake_assignments WHERE assignment_id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(self.keyring.storage().pool())
        .await?;
        Ok(row.as_ref().map(assignment).transpose()?)
    }

    /// A patient's assignments, newest first.
    pub async fn of_patient(&self, patient: PatientId) -> Result<Vec<Assignment>, IntakeError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM intake_assignments WHERE patient_id = $1 ORDER BY assigned_at_ms DESC, assignment_id"
        )))
        .bind(patient.to_string())
        .fetch_all(self.keyring.storage().pool())
        .await?;
        Ok(rows.iter().map(assignment).collect::<Result<_, _>>()?)
    }

    /// The saved draft (empty when none).
    pub async fn draft(&self, id: Uuid) -> Result<IntakeAnswers, IntakeError> {
        let sealed: Option<Vec<u8>> =
            sqlx::query_scalar("SELECT draft FROM intake_assignments WHERE assignment_id = $1")
                .bind(id.to_string())
                .fetch_optional(self.keyring.storage().pool())
                .await?
                .flatten();
        match sealed {
            Some(sealed) => self.open(&id.to_string(), "draft", &sealed).await,
            None => Ok(IntakeAnswers::new()),
        }
    }

    /// Replaces the draft; `false` once the form was submitted.
    pub async fn save_draft(&self, id: Uuid, answers: &IntakeAnswers, now_ms: i64) -> Result<bool, IntakeError> {
        let (key_id, sealed) = self.seal(&id.to_string(), "draft", answers)?;
        let done = sqlx::query(
            "UPDATE intake_assignments SET key_id = $2, draft = $3, draft_updated_at_ms = $4 \
             WHERE assignment_id = $1 AND status = 'assigned'",
        )
        .bind(id.to_string())
        .bind(key_id)
        .bind(sealed)
        .bind(now_ms)
        .execute(self.keyring.storage().pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores the submitted answers and score in `tx` (with the alerts they raise), once;
    /// `false` if it was already submitted.
    pub async fn submit_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        id: Uuid,
        answers: &IntakeAnswers,
        score: Option<&Score>,
        now_ms: i64,
    ) -> Result<bool, IntakeError> {
        let row_id = id.to_string();
        let (key_id, response) = self.seal(&row_id, "response", answers)?;
        let (_, result) = self.seal(&row_id, "result", &score)?;
        let done = sqlx::query(
            "UPDATE intake_assignments SET key_id = $2, draft = NULL, response = $3, result = $4, status = 'submitted', \
             submitted_at_ms = $5 WHERE assignment_id = $1 AND status = 'assigned'",
        )
        .bind(&row_id)
        .bind(key_id)
        .bind(response)
        .bind(result)
        .bind(now_ms)
        .execute(&mut **tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The submitted answers and score.
    pub async fn response(&self, id: Uuid) -> Result<Option<(IntakeAnswers, Option<Score>)>, IntakeError> {
        let row = sqlx::query(
            "SELECT response, result FROM intake_assignments WHERE assignment_id = $1 AND status = 'submitted'",
        )
        .bind(id.to_string())
        .fetch_optional(self.keyring.storage().pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let row_id = id.to_string();
        let response: Vec<u8> = row.try_get(0)?;
        let result: Vec<u8> = row.try_get(1)?;
        Ok(Some((self.open(&row_id, "response", &response).await?, self.open(&row_id, "result", &result).await?)))
    }
}

/// A submitted screening's result, for a patient's series.
#[derive(Debug, Clone)]
pub struct ScreeningResult {
    /// The assignment.
    pub assignment_id: Uuid,
    /// PHQ-9 or GAD-7.
    pub form: FormKind,
    /// When it was submitted (UTC ms).
    pub submitted_at_ms: i64,
    /// Its total and band.
    pub score: Score,
}

impl Intake {
    /// A patient's submitted PHQ-9 and GAD-7 results, oldest first.
    pub async fn screenings(&self, patient: PatientId) -> Result<Vec<ScreeningResult>, IntakeError> {
        let rows = sqlx::query(
            "SELECT assignment_id, form, submitted_at_ms, result FROM intake_assignments \
             WHERE patient_id = $1 AND status = 'submitted' AND form IN ('phq9', 'gad7') \
             ORDER BY submitted_at_ms, assignment_id",
        )
        .bind(patient.to_string())
        .fetch_all(self.keyring.storage().pool())
        .await?;
        let mut results = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get(0)?;
            let form: String = row.try_get(1)?;
            let sealed: Vec<u8> = row.try_get(3)?;
            let score: Option<Score> = self.open(&id, "result", &sealed).await?;
            let Some(score) = score else { continue };
            results.push(ScreeningResult {
                assignment_id: parse_id(&id, "assignment_id")?,
                form: FormKind::parse(&form).ok_or(StorageError::Corrupt { column: "form" })?,
                submitted_at_ms: row.try_get::<Option<i64>, _>(2)?.unwrap_or_default(),
                score,
            });
        }
        Ok(results)
    }
}

fn assignment(row: &AnyRow) -> Result<Assignment, StorageError> {
    let form: String = row.try_get(3)?;
    let status: String = row.try_get(4)?;
    Ok(Assignment {
        id: parse_id(&row.try_get::<String, _>(0)?, "assignment_id")?,
        patient_id: parse_id(&row.try_get::<String, _>(1)?, "patient_id")?,
        clinician_id: parse_id(&row.try_get::<String, _>(2)?, "clinician_id")?,
        form: FormKind::parse(&form).ok_or(StorageError::Corrupt { column: "form" })?,
        submitted: status == "submitted",
        assigned_at_ms: row.try_get(5)?,
        submitted_at_ms: row.try_get(6)?,
    })
}
