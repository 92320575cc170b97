//! Every statement of the notes domain: `note_templates` (a practice's own templates, plain
//! JSON: they hold no PHI), `supervisions`, `clinical_notes` (the content sealed, table, column
//! and note id in the AAD) and `note_addenda` (the text sealed). A note's content is written
//! only while its status is `draft`: each write is conditional on it, so once signing has moved
//! the status on, no statement here can change the content again.

use std::sync::Arc;

use confidant_actors::ids::{PatientId, UserId};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::content::NoteContent;
use super::templates::{NoteKind, Template};
use crate::crypto::tables::{CLINICAL_NOTES, NOTE_ADDENDA};
use crate::crypto::{CryptoError, Field, Keyring};
use crate::phi::PhiText;
use crate::storage::{StorageError, parse_id};

/// Why a notes statement failed.
#[derive(Debug, thiserror::Error)]
pub enum NoteError {
    /// A sealed value failed to open.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<sqlx::Error> for NoteError {
    fn from(error: sqlx::Error) -> Self {
        NoteError::Storage(StorageError::Query(error))
    }
}

/// A pre-licensed clinician and the clinician who supervises them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Supervision {
    /// The supervised clinician.
    pub clinician: UserId,
    /// Their supervisor, who co-signs their record notes.
    pub supervisor: UserId,
    /// When an owner set it (UTC ms).
    pub set_at_ms: i64,
}

/// Where a note stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteStatus {
    /// Being written: autosaved, changed, not part of the record yet.
    Draft,
    /// Signed by a supervised clinician, waiting for their supervisor's co-signature.
    AwaitingCosign,
    /// Signed (and co-signed where needed): locked, part of the record.
    Final,
}

impl NoteStatus {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            NoteStatus::Draft => "draft",
            NoteStatus::AwaitingCosign => "awaiting_cosign",
            NoteStatus::Final => "final",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [NoteStatus::Draft, NoteStatus::AwaitingCosign, NoteStatus::Final].into_iter().find(|s| s.as_str() == text)
    }
}

/// A note without its content: what front desk and billing may see of it, and what every
/// decision about it needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteMeta {
    /// Its id.
    pub id: Uuid,
    /// Whose record.
    pub patient_id: PatientId,
    /// The session it documents, if any.
    pub appointment_id: Option<Uuid>,
    /// Who writes it.
    pub author_id: UserId,
    /// The template's key.
    pub template_key: String,
    /// The template's version it was written on.
    pub template_version: u32,
    /// What it is.
    pub kind: NoteKind,
    /// Where it stands.
    pub status: NoteStatus,
    /// The date of service (UTC ms): the appointment's start, or when the note was begun.
    pub service_at_ms: i64,
    /// When it was begun.
    pub created_at_ms: i64,
    /// When its draft last changed.
    pub updated_at_ms: i64,
    /// When it was signed.
    pub signed_at_ms: Option<i64>,
    /// The keyed digest of its content at signing (hex), as the audit trail holds it.
    pub signed_digest: Option<String>,
    /// Signed late (after `notes.late_entry_hours` from the date of service).
    pub late_entry: bool,
    /// Who must co-sign (a supervised author's supervisor), or who did.
    pub cosigner_id: Option<UserId>,
    /// When it was co-signed.
    pub cosigned_at_ms: Option<i64>,
}

/// A note to create.
pub struct NewNote<'a> {
    /// Whose record.
    pub patient: PatientId,
    /// The session, if any.
    pub appointment: Option<Uuid>,
    /// Its author.
    pub author: UserId,
    /// The template it is written on.
    pub template: &'a Template,
    /// The date of service.
    pub service_at_ms: i64,
    /// The first content (empty fields, pre-filled context).
    pub content: &'a NoteContent,
}

/// An addendum: appended to a signed note, signed when written, never changed.
#[derive(Debug)]
pub struct Addendum {
    /// Its id.
    pub id: Uuid,
    /// The note it corrects or completes.
    pub note_id: Uuid,
    /// Its author.
    pub author_id: UserId,
    /// What it says (PHI).
    pub body: PhiText,
    /// When it was signed.
    pub signed_at_ms: i64,
    /// The keyed digest of its text.
    pub signed_digest: String,
    /// Written late (after `notes.late_entry_hours` from the note's date of service).
    pub late_entry: bool,
}

const COLUMNS: &str = "note_id, patient_id, appointment_id, author_id, template_key, template_version, kind, status, \
                       service_at_ms, created_at_ms, updated_at_ms, signed_at_ms, signed_digest, late_entry, \
                       cosigner_id, cosigned_at_ms";

/// The notes tables, through the keyring.
#[derive(Clone)]
pub struct Notes {
    keyring: Arc<Keyring>,
}

impl Notes {
    /// The notes of `keyring`'s store.
    pub fn new(keyring: Arc<Keyring>) -> Self {
        Self { keyring }
    }

    /// The keyed digest (HMAC-SHA-256 under the blind-index key, hex) of `text` for the column
    /// `column` of `table`: it proves what was signed without letting anyone who reads the audit
    /// trail confirm a guessed note.
    pub fn digest(&self, table: &'static str, column: &'static str, text: &str) -> String {
        self.keyring.blind_index(table, column, text).iter().map(|b| format!("{b:02x}")).collect()
    }

    fn pool(&self) -> &sqlx::AnyPool {
        self.keyring.storage().pool()
    }

    // Templates.

    /// The highest stored version of template `key`, if any.
    pub async fn latest_template_version(&self, key: &str) -> Result<Option<u32>, NoteError> {
        let version: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM note_templates WHERE template_key = $1")
                .bind(key)
                .fetch_one(self.pool())
                .await?;
        Ok(version.and_then(|v| u32::try_from(v).ok()))
    }

    /// Stores a practice's template; `false` when that key and version exist already (another
    /// owner added one at the same moment).
    pub async fn add_template(&self, template: &Template, by: UserId, now_ms: i64) -> Result<bool, NoteError> {
        let definition = serde_json::to_string(template).map_err(|_| StorageError::Encode)?;
        let done = sqlx::query(
            "INSERT INTO note_templates (template_key, version, kind, definition, created_by, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (template_key, version) DO NOTHING",
        )
        .bind(&template.key)
        .bind(i64::from(template.version))
        .bind(template.kind.as_str())
        .bind(definition)
        .bind(by.to_string())
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Every stored version of the practice's templates, by key then version.
    pub async fn practice_templates(&self) -> Result<Vec<Template>, NoteError> {
        let rows: Vec<String> =
            sqlx::query_scalar("SELECT definition FROM note_templates ORDER BY template_key, version")
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|json| {
                Template::parse(json.as_bytes()).map_err(|_| StorageError::Corrupt { column: "definition" }.into())
            })
            .collect()
    }

    /// One stored version of a practice's template.
    pub async fn practice_template(&self, key: &str, version: u32) -> Result<Option<Template>, NoteError> {
        let json: Option<String> =
            sqlx::query_scalar("SELECT definition FROM note_templates WHERE template_key = $1 AND version = $2")
                .bind(key)
                .bind(i64::from(version))
                .fetch_optional(self.pool())
                .await?;
        json.map(|json| {
            Template::parse(json.as_bytes()).map_err(|_| StorageError::Corrupt { column: "definition" }.into())
        })
        .transpose()
    }

    // Supervision.

    /// Marks `clinician` as supervised by `supervisor`, or as not supervised (`None`).
    pub async fn set_supervisor(
        &self,
        clinician: UserId,
        supervisor: Option<UserId>,
        by: UserId,
        now_ms: i64,
    ) -> Result<(), NoteError> {
        let mut tx = self.keyring.storage().begin().await?;
        sqlx::query("DELETE FROM supervisions WHERE clinician_id = $1")
            .bind(clinician.to_string())
            .execute(&mut *tx)
            .await?;
        if let Some(supervisor) = supervisor {
            sqlx::query(
                "INSERT INTO supervisions (clinician_id, supervisor_id, set_by, set_at_ms) VALUES ($1, $2, $3, $4)",
            )
            .bind(clinician.to_string())
            .bind(supervisor.to_string())
            .bind(by.to_string())
            .bind(now_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Every supervision: (clinician, supervisor, when it was set), in the order they were set.
    pub async fn supervisions(&self) -> Result<Vec<Supervision>, NoteError> {
        let rows = sqlx::query(
            "SELECT clinician_id, supervisor_id, set_at_ms FROM supervisions ORDER BY set_at_ms, clinician_id",
        )
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(Supervision {
                clinician: parse_id(&row.try_get::<String, _>(0)?, "clinician_id")?,
                supervisor: parse_id(&row.try_get::<String, _>(1)?, "supervisor_id")?,
                set_at_ms: row.try_get(2)?,
            });
        }
        Ok(out)
    }

    /// Who supervises `clinician`, if anyone.
    pub async fn supervisor_of(&self, clinician: UserId) -> Result<Option<UserId>, NoteError> {
        let id: Option<String> = sqlx::query_scalar("SELECT supervisor_id FROM supervisions WHERE clinician_id = $1")
            .bind(clinician.to_string())
            .fetch_optional(self.pool())
            .await?;
        Ok(id.map(|id| parse_id(&id, "supervisor_id")).transpose()?)
    }

    // Notes.

    fn seal_content(&self, id: &str, content: &NoteContent) -> Result<(i64, Vec<u8>), NoteError> {
        let plain = zeroize::Zeroizing::new(serde_json::to_vec(content).map_err(|_| StorageError::Encode)?);
        let sealer = self.keyring.sealer();
        let sealed = sealer.seal(Field { table: CLINICAL_NOTES.name, column: "content", row_id: id }, &plain);
        Ok((i64::from(sealer.key_id()), sealed))
    }

    /// Creates a draft.
    pub async fn create(&self, note: NewNote<'_>, now_ms: i64) -> Result<NoteMeta, NoteError> {
        let id = Uuid::new_v4();
        let (key_id, sealed) = self.seal_content(&id.to_string(), note.content)?;
        sqlx::query(
            "INSERT INTO clinical_notes (note_id, key_id, patient_id, appointment_id, author_id, template_key, \
             template_version, kind, status, content, service_at_ms, created_at_ms, updated_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'draft', $9, $10, $11, $11)",
        )
        .bind(id.to_string())
        .bind(key_id)
        .bind(note.patient.to_string())
        .bind(note.appointment.map(|a| a.to_string()))
        .bind(note.author.to_string())
        .bind(&note.template.key)
        .bind(i64::from(note.template.version))
        .bind(note.template.kind.as_str())
        .bind(sealed)
        .bind(note.service_at_ms)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(NoteMeta {
            id,
            patient_id: note.patient,
            appointment_id: note.appointment,
            author_id: note.author,
            template_key: note.template.key.clone(),
            template_version: note.template.version,
            kind: note.template.kind,
            status: NoteStatus::Draft,
            service_at_ms: note.service_at_ms,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            signed_at_ms: None,
            signed_digest: None,
            late_entry: false,
            cosigner_id: None,
            cosigned_at_ms: None,
        })
    }

    /// One note, without its content.
    pub async fn get(&self, id: Uuid) -> Result<Option<NoteMeta>, NoteError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM clinical_notes WHERE note_id = $1")))
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        Ok(row.as_ref().map(meta).transpose()?)
    }

    /// A patient's notes without content, newest date of service first.
    pub async fn of_patient(&self, patient: PatientId) -> Result<Vec<NoteMeta>, NoteError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM clinical_notes WHERE patient_id = $1 ORDER BY service_at_ms DESC, note_id"
        )))
        .bind(patient.to_string())
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(meta).collect::<Result<_, _>>()?)
    }

    /// The notes awaiting `supervisor`'s co-signature, oldest signed first.
    pub async fn awaiting_cosign(&self, supervisor: UserId) -> Result<Vec<NoteMeta>, NoteError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM clinical_notes WHERE cosigner_id = $1 AND status = 'awaiting_cosign' \
             ORDER BY signed_at_ms, note_id"
        )))
        .bind(supervisor.to_string())
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(meta).collect::<Result<_, _>>()?)
    }

    /// A note's content.
    pub async fn content(&self, id: Uuid) -> Result<Option<NoteContent>, NoteError> {
        let sealed: Option<Vec<u8>> = sqlx::query_scalar("SELECT content FROM clinical_notes WHERE note_id = $1")
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?;
        let Some(sealed) = sealed else { return Ok(None) };
        let row_id = id.to_string();
        let plain = self
            .keyring
            .open_value(Field { table: CLINICAL_NOTES.name, column: "content", row_id: &row_id }, &sealed)
            .await?;
        Ok(Some(serde_json::from_slice(&plain).map_err(|_| CryptoError::Integrity)?))
    }

    /// Replaces a draft's content (autosave); `false` once the note is signed.
    pub async fn save_draft(&self, id: Uuid, content: &NoteContent, now_ms: i64) -> Result<bool, NoteError> {
        let (key_id, sealed) = self.seal_content(&id.to_string(), content)?;
        let done = sqlx::query(
            "UPDATE clinical_notes SET key_id = $2, content = $3, updated_at_ms = $4 \
             WHERE note_id = $1 AND status = 'draft'",
        )
        .bind(id.to_string())
        .bind(key_id)
        .bind(sealed)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Signs a draft, once: its status becomes `status` (final, or awaiting `cosigner`), with
    /// the digest of its content. `false` if it was no longer a draft, or its content changed
    /// since it was read (`updated_at_ms` no longer the one read, so the digest would be of
    /// another text).
    #[allow(clippy::too_many_arguments)]
    pub async fn sign(
        &self,
        id: Uuid,
        read_at_update_ms: i64,
        status: NoteStatus,
        cosigner: Option<UserId>,
        digest: &str,
        late: bool,
        now_ms: i64,
    ) -> Result<bool, NoteError> {
        let done = sqlx::query(
            "UPDATE clinical_notes SET status = $2, cosigner_id = $3, signed_digest = $4, late_entry = $5, \
             signed_at_ms = $6 WHERE note_id = $1 AND status = 'draft' AND updated_at_ms = $7",
        )
        .bind(id.to_string())
        .bind(status.as_str())
        .bind(cosigner.map(|c| c.to_string()))
        .bind(digest)
        .bind(i64::from(late))
        .bind(now_ms)
        .bind(read_at_update_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Co-signs a note awaiting `supervisor`, once; `false` otherwise.
    pub async fn cosign(&self, id: Uuid, supervisor: UserId, now_ms: i64) -> Result<bool, NoteError> {
        let done = sqlx::query(
            "UPDATE clinical_notes SET status = 'final', cosigned_at_ms = $3 \
             WHERE note_id = $1 AND status = 'awaiting_cosign' AND cosigner_id = $2",
        )
        .bind(id.to_string())
        .bind(supervisor.to_string())
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Appends a signed addendum to note `note`.
    pub async fn add_addendum(
        &self,
        note: &NoteMeta,
        author: UserId,
        body: &PhiText,
        digest: &str,
        late: bool,
        now_ms: i64,
    ) -> Result<Addendum, NoteError> {
        let id = Uuid::new_v4();
        let row_id = id.to_string();
        let sealer = self.keyring.sealer();
        let sealed =
            sealer.seal(Field { table: NOTE_ADDENDA.name, column: "body", row_id: &row_id }, body.expose().as_bytes());
        sqlx::query(
            "INSERT INTO note_addenda (addendum_id, key_id, note_id, patient_id, author_id, body, signed_at_ms, \
             signed_digest, late_entry) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&row_id)
        .bind(i64::from(sealer.key_id()))
        .bind(note.id.to_string())
        .bind(note.patient_id.to_string())
        .bind(author.to_string())
        .bind(sealed)
        .bind(now_ms)
        .bind(digest)
        .bind(i64::from(late))
        .execute(self.pool())
        .await?;
        Ok(Addendum {
            id,
            note_id: note.id,
            author_id: author,
            body: PhiText::new(body.expose()),
            signed_at_ms: now_ms,
            signed_digest: digest.to_owned(),
            late_entry: late,
        })
    }

    /// A note's addenda, in the order they were signed.
    pub async fn addenda(&self, note: Uuid) -> Result<Vec<Addendum>, NoteError> {
        let rows = sqlx::query(
            "SELECT addendum_id, author_id, body, signed_at_ms, signed_digest, late_entry FROM note_addenda \
             WHERE note_id = $1 ORDER BY signed_at_ms, addendum_id",
        )
        .bind(note.to_string())
        .fetch_all(self.pool())
        .await?;
        let mut addenda = Vec::with_capacity(rows.len());
        for row in rows {
            let id: String = row.try_get(0)?;
            let sealed: Vec<u8> = row.try_get(2)?;
            let plain = self
                .keyring
                .open_value(Field { table: NOTE_ADDENDA.name, column: "body", row_id: &id }, &sealed)
                .await?;
            let text = std::str::from_utf8(&plain).map_err(|_| CryptoError::Integrity)?;
            addenda.push(Addendum {
                id: parse_id(&id, "addendum_id")?,
                note_id: note,
                author_id: parse_id(&row.try_get::<String, _>(1)?, "author_id")?,
                body: PhiText::new(text),
                signed_at_ms: row.try_get(3)?,
                signed_digest: row.try_get(4)?,
                late_entry: row.try_get::<i64, _>(5)? == 1,
            });
        }
        Ok(addenda)
    }
}

fn meta(row: &AnyRow) -> Result<NoteMeta, StorageError> {
    let appointment: Option<String> = row.try_get(2)?;
    let version: i64 = row.try_get(5)?;
    let kind: String = row.try_get(6)?;
    let status: String = row.try_get(7)?;
    let cosigner: Option<String> = row.try_get(14)?;
    Ok(NoteMeta {
        id: parse_id(&row.try_get::<String, _>(0)?, "note_id")?,
        patient_id: parse_id(&row.try_get::<String, _>(1)?, "patient_id")?,
        appointment_id: appointment.map(|a| parse_id(&a, "appointment_id")).transpose()?,
        author_id: parse_id(&row.try_get::<String, _>(3)?, "author_id")?,
        template_key: row.try_get(4)?,
        template_version: u32::try_from(version).map_err(|_| StorageError::Corrupt { column: "template_version" })?,
        kind: NoteKind::parse(&kind).ok_or(StorageError::Corrupt { column: "kind" })?,
        status: NoteStatus::parse(&status).ok_or(StorageError::Corrupt { column: "status" })?,
        service_at_ms: row.try_get(8)?,
        created_at_ms: row.try_get(9)?,
        updated_at_ms: row.try_get(10)?,
        signed_at_ms: row.try_get(11)?,
        signed_digest: row.try_get(12)?,
        late_entry: row.try_get::<i64, _>(13)? == 1,
        cosigner_id: cosigner.map(|c| parse_id(&c, "cosigner_id")).transpose()?,
        cosigned_at_ms: row.try_get(15)?,
    })
}
