//! `patients`: every PHI column sealed with the keyring before it reaches sqlx (AAD: table,
//! column, patient id), the email also kept as a blind index for lookups. The caller (an API
//! handler) checks permissions and records the audit event before calling in here.

use std::sync::Arc;

use confidant_actors::clock::now_ms;
use confidant_actors::ids::PatientId;
use sqlx::Row;
use sqlx::any::AnyRow;
use zeroize::Zeroizing;

use super::record::{EmergencyContact, InvalidField, Patient, PatientRecord};
use crate::crypto::tables::PATIENTS;
use crate::crypto::{CryptoError, Field, Keyring};
use crate::email::normalized_email;
use crate::phi::PhiText;
use crate::storage::{Storage, StorageError};

/// Why a patient operation failed. The messages name fields and causes, never values.
#[derive(Debug, thiserror::Error)]
pub enum PatientError {
    /// The record breaks a validation rule (the client's input: 400).
    #[error(transparent)]
    Invalid(#[from] InvalidField),
    /// A stored value failed to decrypt (tampering or corruption: 500, detail only in the log).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<sqlx::Error> for PatientError {
    fn from(error: sqlx::Error) -> Self {
        PatientError::Storage(StorageError::Query(error))
    }
}

const COLUMNS: &str = "patient_id, key_id, legal_name, preferred_name, date_of_birth, email, phone, address, \
                       emergency_contact, created_at_ms, updated_at_ms";

/// The patient table, through the keyring.
#[derive(Clone)]
pub struct Patients {
    storage: Storage,
    keyring: Arc<Keyring>,
}

/// The sealed columns of one row, in [`PATIENTS`] column order.
struct Sealed {
    key_id: i64,
    values: [Option<Vec<u8>>; 7],
    email_index: Option<Vec<u8>>,
}

impl Patients {
    /// The patient table of `storage`, sealed by `keyring`.
    pub fn new(storage: Storage, keyring: Arc<Keyring>) -> Self {
        Self { storage, keyring }
    }

    /// Stores a new patient; returns its id.
    pub async fn create(&self, record: &PatientRecord) -> Result<PatientId, PatientError> {
        let id = PatientId::generate();
        self.create_with_id(id, record).await?;
        Ok(id)
    }

    /// Stores a new patient under an id chosen beforehand (so its creation can be audited
    /// before the record exists).
    pub async fn create_with_id(&self, id: PatientId, record: &PatientRecord) -> Result<(), PatientError> {
        const INSERT: &str = "INSERT INTO patients (patient_id, key_id, legal_name, preferred_name, date_of_birth, \
             email, phone, address, emergency_contact, email_index, created_at_ms, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)";
        self.write(INSERT, id, record).await?;
        Ok(())
    }

    /// Checks a record against the validation rules without storing it (so bad input is
    /// refused before anything is audited or written).
    pub fn check(record: &PatientRecord) -> Result<(), PatientError> {
        Ok(record.validate(today())?)
    }

    /// Whether a patient exists.
    pub async fn exists(&self, id: PatientId) -> Result<bool, PatientError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM patients WHERE patient_id = $1")
            .bind(id.to_string())
            .fetch_optional(self.storage.pool())
            .await?;
        Ok(found.is_some())
    }

    /// Every patient id, oldest record first, at most `limit`.
    pub async fn all_ids(&self, limit: i64) -> Result<Vec<PatientId>, PatientError> {
        let ids: Vec<String> =
            sqlx::query_scalar("SELECT patient_id FROM patients ORDER BY created_at_ms, patient_id LIMIT $1")
                .bind(limit)
                .fetch_all(self.storage.pool())
                .await?;
        Ok(ids.iter().map(|id| crate::storage::parse_id(id, "patient_id")).collect::<Result<_, _>>()?)
    }

    /// Replaces a patient's record; `false` when there is no such patient.
    pub async fn update(&self, id: PatientId, record: &PatientRecord) -> Result<bool, PatientError> {
        const UPDATE: &str = "UPDATE patients SET key_id = $2, legal_name = $3, preferred_name = $4, \
             date_of_birth = $5, email = $6, phone = $7, address = $8, emergency_contact = $9, email_index = $10, \
             updated_at_ms = $11 WHERE patient_id = $1";
        Ok(self.write(UPDATE, id, record).await? == 1)
    }

    /// Validates and seals `record` for row `id`, then runs `sql` with the parameters both
    /// writes share: $1 the id, $2 the key id, $3-$9 the sealed columns in [`PATIENTS`] order,
    /// $10 the email's blind index, $11 now. Returns the rows affected.
    async fn write(&self, sql: &'static str, id: PatientId, record: &PatientRecord) -> Result<u64, PatientError> {
        record.validate(today())?;
        let sealed = self.seal(&id.to_string(), record)?;
        let mut query = sqlx::query(sql).bind(id.to_string()).bind(sealed.key_id);
        for value in sealed.values {
            query = query.bind(value);
        }
        let done = query.bind(sealed.email_index).bind(now_ms()).execute(self.storage.pool()).await?;
        Ok(done.rows_affected())
    }

    /// One patient, decrypted; `None` when there is no such patient.
    pub async fn get(&self, id: PatientId) -> Result<Option<Patient>, PatientError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM patients WHERE patient_id = $1")))
            .bind(id.to_string())
            .fetch_optional(self.storage.pool())
            .await?;
        match row {
            Some(row) => Ok(Some(self.open(&row).await?)),
            None => Ok(None),
        }
    }

    /// Several patients at once, in the order of `ids`; unknown ids are skipped.
    pub async fn get_many(&self, ids: &[PatientId]) -> Result<Vec<Patient>, PatientError> {
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let placeholders = (1..=chunk.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
            let sql = format!("SELECT {COLUMNS} FROM patients WHERE patient_id IN ({placeholders})");
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id.to_string());
            }
            let rows = query.fetch_all(self.storage.pool()).await?;
            let mut found = Vec::with_capacity(rows.len());
            for row in &rows {
                found.push(self.open(row).await?);
            }
            for id in chunk {
                if let Some(i) = found.iter().position(|p| p.id == *id) {
                    out.push(found.swap_remove(i));
                }
            }
        }
        Ok(out)
    }

    /// The patients with this email (however it is capitalized), found through the blind index.
    pub async fn find_by_email(&self, email: &str) -> Result<Vec<Patient>, PatientError> {
        let index = self.keyring.blind_index(PATIENTS.name, "email", &normalized_email(email));
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM patients WHERE email_index = $1 ORDER BY patient_id"
        )))
        .bind(index)
        .fetch_all(self.storage.pool())
        .await?;
        let mut patients = Vec::with_capacity(rows.len());
        for row in &rows {
            patients.push(self.open(row).await?);
        }
        Ok(patients)
    }

    fn seal(&self, row_id: &str, record: &PatientRecord) -> Result<Sealed, PatientError> {
        let sealer = self.keyring.sealer();
        let contact = record
            .emergency_contact
            .as_ref()
            .map(|c| serde_json::to_vec(c).map(Zeroizing::new))
            .transpose()
            .map_err(|_| StorageError::Encode)?;
        let plain: [Option<&[u8]>; 7] = [
            Some(record.legal_name.expose().as_bytes()),
            record.preferred_name.as_ref().map(|v| v.expose().as_bytes()),
            Some(record.date_of_birth.expose().as_bytes()),
            record.email.as_ref().map(|v| v.expose().as_bytes()),
            record.phone.as_ref().map(|v| v.expose().as_bytes()),
            record.address.as_ref().map(|v| v.expose().as_bytes()),
            contact.as_ref().map(|c| c.as_slice()),
        ];
        let mut values: [Option<Vec<u8>>; 7] = Default::default();
        for ((slot, column), plain) in values.iter_mut().zip(PATIENTS.columns).zip(plain) {
            *slot = plain.map(|p| sealer.seal(Field { table: PATIENTS.name, column, row_id }, p));
        }
        let email_index = record
            .email
            .as_ref()
            .map(|e| self.keyring.blind_index(PATIENTS.name, "email", &normalized_email(e.expose())));
        Ok(Sealed { key_id: i64::from(sealer.key_id()), values, email_index })
    }

    async fn open(&self, row: &AnyRow) -> Result<Patient, PatientError> {
        let row_id: String = row.try_get(0)?;
        let id: PatientId = row_id.parse().map_err(|_| CryptoError::Integrity)?;
        let mut texts: Vec<Option<Zeroizing<Vec<u8>>>> = Vec::with_capacity(PATIENTS.columns.len());
        for (i, column) in PATIENTS.columns.iter().enumerate() {
            let stored: Option<Vec<u8>> = row.try_get(2 + i)?;
            let field = Field { table: PATIENTS.name, column, row_id: &row_id };
            texts.push(match stored {
                Some(stored) => Some(self.keyring.open_value(field, &stored).await?),
                None => None,
            });
        }
        let text = |i: usize| -> Result<Option<PhiText>, CryptoError> {
            texts[i].as_ref().map(|b| PhiText::from_plaintext(b).ok_or(CryptoError::Integrity)).transpose()
        };
        let required = |i: usize| text(i)?.ok_or(CryptoError::Integrity);
        let emergency_contact = texts[6]
            .as_ref()
            .map(|b| serde_json::from_slice::<EmergencyContact>(b).map_err(|_| CryptoError::Integrity))
            .transpose()?;
        Ok(Patient {
            id,
            record: PatientRecord {
                legal_name: required(0)?,
                preferred_name: text(1)?,
                date_of_birth: required(2)?,
                email: text(3)?,
                phone: text(4)?,
                address: text(5)?,
                emergency_contact,
            },
            created_at_ms: row.try_get(9)?,
            updated_at_ms: row.try_get(10)?,
        })
    }
}

fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}
