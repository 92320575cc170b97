//! [`PatientService`]: creating, listing, reading and replacing patient records. Each passes the
//! [`Gate`], and each access to a record is audited, and acknowledged, before data is returned
//! or changed; a list audits every record it holds, by how the caller reached it.

use confidant_actors::audit::{Action, Outcome, ResourceType};
use confidant_actors::ids::PatientId;

use super::care::CareAccess;
use super::{InvalidField, Patient, PatientError, PatientRecord, Patients};
use crate::access::{AccessError, Decision, Denial, Gate, Operation, Requester, Resource, Target, allowed_because};
use crate::auditor::About;
use crate::crypto::CryptoError;
use crate::storage::StorageError;

/// The most records one list returns.
const LIST_LIMIT: i64 = 500;

/// Why a patient record operation did not succeed. Messages name fields and rules, never
/// values.
#[derive(Debug, thiserror::Error)]
pub enum PatientServiceError {
    /// A field of the record breaks its rule (bad input): names the field and the rule, never
    /// the value.
    #[error(transparent)]
    Invalid(#[from] InvalidField),
    /// The permission check refused (not allowed); the refusal is audited.
    #[error(transparent)]
    Denied(#[from] Denial),
    /// No such patient record (not found).
    #[error("not found")]
    NotFound,
    /// The audit trail could not record the access, so it was not made (dependency down).
    #[error("the audit trail cannot record the access")]
    AuditUnavailable,
    /// A stored value failed its integrity check (our bug, or tampering).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The database failed (dependency down, or our bug: [`StorageError::is_unavailable`]
    /// tells which).
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<AccessError> for PatientServiceError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Denied(denial) => PatientServiceError::Denied(denial),
            AccessError::Storage(e) => PatientServiceError::Storage(e),
            AccessError::AuditUnavailable => PatientServiceError::AuditUnavailable,
        }
    }
}

impl From<PatientError> for PatientServiceError {
    fn from(error: PatientError) -> Self {
        match error {
            PatientError::Invalid(field) => PatientServiceError::Invalid(field),
            PatientError::Crypto(e) => PatientServiceError::Crypto(e),
            PatientError::Storage(e) => PatientServiceError::Storage(e),
        }
    }
}

/// The patient record operations.
#[derive(Clone)]
pub struct PatientService {
    gate: Gate,
    patients: Patients,
    care_access: CareAccess,
}

impl PatientService {
    /// The operations over `patients`, passing `gate`; a clinician's new record joins their
    /// care team through `care_access`.
    pub fn new(gate: Gate, patients: Patients, care_access: CareAccess) -> Self {
        Self { gate, patients, care_access }
    }

    /// Creates a record and returns its id. A clinician who creates one joins its care team.
    pub async fn create(&self, who: &Requester, record: &PatientRecord) -> Result<PatientId, PatientServiceError> {
        Patients::check(record)?;
        let id = PatientId::generate();
        let about = About::patient(Action::Create, id);
        self.gate
            .authorize_and_record(who, Resource::PatientDemographics, Operation::Create, Target::Any, about)
            .await?;
        self.patients.create_with_id(id, record).await?;
        self.care_access.creator_joins(who, id).await?;
        Ok(id)
    }

    /// The records `who` may see: all (up to [`LIST_LIMIT`]) for a practice-wide role; the
    /// care team and live break-glass grants for a clinician; their own for a patient. Each is
    /// audited, by how it was reached, before any is read.
    pub async fn list(&self, who: &Requester) -> Result<Vec<Patient>, PatientServiceError> {
        let about = About::new(Action::Read, ResourceType::Patient, None);
        let decision =
            self.gate.authorize(who, Resource::PatientDemographics, Operation::Read, Target::Any, about).await?;
        let access = self.gate.access();
        let ids = match decision {
            Decision::Practice => self.patients.all_ids(LIST_LIMIT).await?,
            Decision::CareTeam | Decision::BreakGlass { .. } => {
                access.reachable_patients(who.principal.user_id).await?
            }
            Decision::Own => who.principal.patient_id.into_iter().collect(),
        };
        let mut events = Vec::with_capacity(ids.len());
        for &id in &ids {
            // A clinician's list mixes care team and break-glass patients: each is checked (and
            // so audited) for how it was reached.
            let reached = match decision {
                Decision::CareTeam | Decision::BreakGlass { .. } => {
                    let target = Target::Patient(id);
                    access.check(&who.principal, Resource::PatientDemographics, Operation::Read, target).await?
                }
                other => other,
            };
            events.push(self.gate.event(
                who,
                About::patient(Action::Read, id),
                Outcome::Success,
                allowed_because(reached),
            ));
        }
        self.gate.record_all(events).await?;
        Ok(self.patients.get_many(&ids).await?)
    }

    /// One record.
    pub async fn read(&self, who: &Requester, id: PatientId) -> Result<Patient, PatientServiceError> {
        let about = About::patient(Action::Read, id);
        let target = Target::Patient(id);
        self.gate.authorize_and_record(who, Resource::PatientDemographics, Operation::Read, target, about).await?;
        self.patients.get(id).await?.ok_or(PatientServiceError::NotFound)
    }

    /// Replaces a record.
    pub async fn update(
        &self,
        who: &Requester,
        id: PatientId,
        record: &PatientRecord,
    ) -> Result<(), PatientServiceError> {
        Patients::check(record)?;
        let about = About::patient(Action::Update, id);
        let target = Target::Patient(id);
        self.gate.authorize_and_record(who, Resource::PatientDemographics, Operation::Update, target, about).await?;
        if !self.patients.update(id, record).await? {
            return Err(PatientServiceError::NotFound);
        }
        Ok(())
    }
}
