//! [`ReminderService`]: a reminder sent now on request, the status of an appointment's
//! reminders, and a patient's reminder preferences (read and replaced, OpenPGP key included).
//! Each is authorized by the matrix (`reminder`) and audited before data moves; what it
//! returns holds ids, times, states and reason codes, never a message or an address.

use std::sync::Arc;

use confidant_actors::audit::{Action, Outcome, ResourceType};
use confidant_actors::clock::Clock;
use confidant_actors::ids::PatientId;
use uuid::Uuid;

use super::pgp_mime::{InvalidKey, PgpKey};
use super::preferences::checked_lead_minutes;
use super::{Outbox, PreferenceStore, Preferences, ReminderError, ReminderView};
use crate::access::{AccessError, Denial, Gate, Operation, Requester, Resource, Target, allowed_because};
use crate::auditor::About;
use crate::patients::{InvalidField, PatientError, Patients};
use crate::schedule::{ScheduleService, ScheduleServiceError};
use crate::storage::StorageError;

/// Why a reminder operation did not succeed. Messages name fields and causes, never recipients
/// or contents.
#[derive(Debug, thiserror::Error)]
pub enum ReminderServiceError {
    /// A field breaks its rule (bad input): names the field and the rule, never the value.
    #[error(transparent)]
    Invalid(#[from] InvalidField),
    /// The permission check refused (not allowed); the refusal is audited.
    #[error(transparent)]
    Denied(#[from] Denial),
    /// No such patient record, or no such appointment (not found).
    #[error("not found")]
    NotFound,
    /// The appointment is cancelled or over: nothing to remind of (conflict).
    #[error("the appointment is cancelled or already started")]
    NotRemindable,
    /// The patient turned email reminders off (conflict).
    #[error("the patient turned email reminders off")]
    Disabled,
    /// The appointment could not be reached: the schedule's own answer (not found, not
    /// allowed, or a dependency down).
    #[error(transparent)]
    Appointment(#[from] ScheduleServiceError),
    /// The audit trail could not record the access, so it was not made (dependency down).
    #[error("the audit trail cannot record the access")]
    AuditUnavailable,
    /// The patient records could not be read (dependency down, or our bug).
    #[error("the patient records could not be read")]
    Patients(#[source] PatientError),
    /// The outbox or the preferences could not be read or written (dependency down, or our
    /// bug: a sealed key that does not open).
    #[error(transparent)]
    Store(ReminderError),
    /// The database failed (dependency down, or our bug: [`StorageError::is_unavailable`]
    /// tells which).
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<AccessError> for ReminderServiceError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Denied(denial) => ReminderServiceError::Denied(denial),
            AccessError::Storage(e) => ReminderServiceError::Storage(e),
            AccessError::AuditUnavailable => ReminderServiceError::AuditUnavailable,
        }
    }
}

impl From<ReminderError> for ReminderServiceError {
    fn from(error: ReminderError) -> Self {
        match error {
            ReminderError::NotFound => ReminderServiceError::NotFound,
            ReminderError::NotRemindable => ReminderServiceError::NotRemindable,
            ReminderError::Disabled => ReminderServiceError::Disabled,
            other => ReminderServiceError::Store(other),
        }
    }
}

/// A patient's reminder preferences as asked for, before they are checked.
pub struct PreferencesChange {
    /// Whether reminders go by email.
    pub email_enabled: bool,
    /// Minutes before the start (at most 5, each 1 to 43200); `None`: the practice's.
    pub lead_minutes: Option<Vec<u32>>,
    /// An ASCII-armored OpenPGP public key with an encryption subkey; `None` or blank: none.
    pub pgp_public_key: Option<String>,
}

/// The reminder operations.
#[derive(Clone)]
pub struct ReminderService {
    gate: Gate,
    schedule: ScheduleService,
    outbox: Outbox,
    preferences: PreferenceStore,
    patients: Patients,
    clock: Arc<dyn Clock>,
}

impl ReminderService {
    /// The operations over `outbox` and `preferences`, passing `gate`; appointments are
    /// reached through `schedule`, patients checked in `patients`, with `clock`.
    pub fn new(
        gate: Gate,
        schedule: ScheduleService,
        outbox: Outbox,
        preferences: PreferenceStore,
        patients: Patients,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { gate, schedule, outbox, preferences, patients, clock }
    }

    /// Queues a reminder of `appointment`, due now (the scheduler sends it). A failure after
    /// the attempt was recorded is recorded too.
    pub async fn send_now(&self, who: &Requester, appointment: Uuid) -> Result<ReminderView, ReminderServiceError> {
        let about = self.appointment_access(who, appointment, Operation::Create, Action::Create).await?;
        let now = self.clock.now_ms();
        let defaults = self.preferences.default_lead_minutes();
        match self.outbox.send_now(appointment, who.principal.user_id, defaults, now).await {
            Ok(queued) => {
                tracing::info!(reminder_id = %queued.id, appointment_id = %appointment, "reminder queued on request");
                Ok(queued)
            }
            Err(error) => {
                let failed = self.gate.event(who, about, Outcome::Error, "reminder_not_queued");
                self.gate.auditor().record_follow_up(failed, "reminder_not_queued").await;
                Err(error.into())
            }
        }
    }

    /// The reminders of `appointment` and where each stands.
    pub async fn status(&self, who: &Requester, appointment: Uuid) -> Result<Vec<ReminderView>, ReminderServiceError> {
        self.appointment_access(who, appointment, Operation::Read, Action::Read).await?;
        Ok(self.outbox.of_appointment(appointment).await?)
    }

    /// `patient`'s reminder preferences.
    pub async fn preferences(&self, who: &Requester, patient: PatientId) -> Result<Preferences, ReminderServiceError> {
        let about = About::new(Action::Read, ResourceType::Reminder, Some(*patient.as_uuid())).for_patient(patient);
        self.gate.authorize(who, Resource::Reminder, Operation::Read, Target::Patient(patient), about).await?;
        self.record_preferences_access(who, patient, about).await?;
        Ok(self.preferences.get(patient).await?)
    }

    /// Replaces `patient`'s reminder preferences (a patient may set their own, key included)
    /// and returns them as stored.
    pub async fn set_preferences(
        &self,
        who: &Requester,
        patient: PatientId,
        change: PreferencesChange,
    ) -> Result<Preferences, ReminderServiceError> {
        let about = About::new(Action::Update, ResourceType::Reminder, Some(*patient.as_uuid())).for_patient(patient);
        self.gate.authorize(who, Resource::Reminder, Operation::Update, Target::Patient(patient), about).await?;
        let lead_minutes = match change.lead_minutes {
            Some(minutes) => Some(checked_lead_minutes(minutes).ok_or(InvalidField {
                field: "lead_minutes",
                rule: "at most 5 lead times, each 1 to 43200 minutes",
            })?),
            None => None,
        };
        let pgp_key = match change.pgp_public_key.as_deref().map(str::trim).filter(|k| !k.is_empty()) {
            Some(armored) => Some(PgpKey::parse(armored).map_err(invalid_key)?),
            None => None,
        };
        self.record_preferences_access(who, patient, about).await?;
        let preferences = Preferences { email_enabled: change.email_enabled, lead_minutes, pgp_key };
        let now = self.clock.now_ms();
        self.preferences.put(patient, &preferences, who.principal.user_id, now).await?;
        Ok(preferences)
    }

    /// The lead times in effect under `preferences`: the patient's, or the practice's.
    pub fn effective_lead_minutes(&self, preferences: &Preferences) -> Vec<u32> {
        preferences.lead_minutes.clone().unwrap_or_else(|| self.preferences.default_lead_minutes().to_vec())
    }

    /// The reminders of `appointment`, authorized for `operation` and audited as allowed.
    async fn appointment_access(
        &self,
        who: &Requester,
        appointment: Uuid,
        operation: Operation,
        action: Action,
    ) -> Result<About, ReminderServiceError> {
        let reminders = (Resource::Reminder, ResourceType::Reminder);
        let (about, decision) = self.schedule.authorize_on(who, appointment, reminders, operation, action).await?;
        self.gate.record_all(vec![self.gate.event(who, about, Outcome::Success, allowed_because(decision))]).await?;
        Ok(about)
    }

    /// `patient`'s preferences, about to be read or replaced: not found for no such patient,
    /// else the access audited (and acknowledged) before it happens.
    async fn record_preferences_access(
        &self,
        who: &Requester,
        patient: PatientId,
        about: About,
    ) -> Result<(), ReminderServiceError> {
        if !self.patients.exists(patient).await.map_err(ReminderServiceError::Patients)? {
            return Err(ReminderServiceError::NotFound);
        }
        self.gate.record_all(vec![self.gate.event(who, about, Outcome::Success, "reminder_preferences")]).await?;
        Ok(())
    }
}

/// The rule an OpenPGP key breaks.
fn invalid_key(why: InvalidKey) -> InvalidField {
    let rule = match why {
        InvalidKey::NotAKey => "is not an ASCII-armored OpenPGP public key",
        InvalidKey::BadSignature => "has a binding signature that does not verify",
        InvalidKey::NoEncryptionKey => "has no subkey for encryption",
    };
    InvalidField { field: "pgp_public_key", rule }
}
