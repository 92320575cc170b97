//! [`ScheduleService`]: booking, rescheduling and cancelling appointments (authorized by the
//! matrix, audited, stored with their event, then pushed to every subscribed session), and a
//! socket's schedule subscriptions: which schedule it may follow, and its catch-up (the changes
//! after its last event id, or a snapshot), each patient's read audited before it is sent.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;

use confidant_actors::audit::{Action, Outcome, ResourceType, Role};
use confidant_actors::clock::Clock;
use confidant_actors::hub::Topic;
use confidant_actors::ids::{PatientId, UserId};
use confidant_actors::session::CatchUp;
use confidant_protocol::{ScheduleScope, ServerFrame, VERSION};
use uuid::Uuid;

use super::{Change, Filter, Schedule, ScheduleError};
use crate::access::{AccessError, Decision, Denial, Gate, Operation, Requester, Resource, Target};
use crate::auditor::About;
use crate::identity::{AccountStatus, Accounts, AuthError};
use crate::patients::{InvalidField, PatientError, Patients};
use crate::push::Pusher;
use crate::reminders::ReminderError;
use crate::storage::StorageError;

/// Changes replayed to a reconnecting client at most; beyond that it gets a snapshot.
const MAX_REPLAY: usize = 1000;
/// A snapshot holds appointments that ended at most this long ago.
const SNAPSHOT_PAST_MS: i64 = 24 * 3600 * 1000;

/// Why a schedule operation did not succeed. Messages name fields and rules, never values.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleServiceError {
    /// A field breaks its rule (bad input): times out of order or range, a clinician that is
    /// not an active clinician account, a patient that is not a record. Names the field and
    /// the rule, never the value.
    #[error(transparent)]
    Invalid(#[from] InvalidField),
    /// The permission check refused (not allowed); the refusal is audited.
    #[error(transparent)]
    Denied(#[from] Denial),
    /// The schedule asked for is not one the caller's role follows (a clinician asking for the
    /// practice's, say): not allowed, and nothing was read.
    #[error("your role does not follow that schedule")]
    NotYourSchedule,
    /// No such appointment, or a topic that is not a schedule (not found).
    #[error("not found")]
    NotFound,
    /// The clinician already has a booked appointment overlapping this time (conflict).
    #[error("the clinician already has an appointment at that time")]
    DoubleBooked,
    /// A cancelled appointment cannot change again (conflict).
    #[error("the appointment is cancelled")]
    Cancelled,
    /// The audit trail could not record the access or change, so it was not made (dependency
    /// down).
    #[error("the audit trail cannot record the access")]
    AuditUnavailable,
    /// The accounts could not be read (dependency down, or our bug).
    #[error("the accounts could not be read")]
    Accounts(#[source] AuthError),
    /// The patient records could not be read (dependency down, or our bug).
    #[error("the patient records could not be read")]
    Patients(#[source] PatientError),
    /// The reminders a change queues or withdraws could not be written, so the change was not
    /// stored either (dependency down, or our bug).
    #[error(transparent)]
    Reminders(ReminderError),
    /// The database failed (dependency down, or our bug: [`StorageError::is_unavailable`]
    /// tells which).
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<AccessError> for ScheduleServiceError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Denied(denial) => ScheduleServiceError::Denied(denial),
            AccessError::Storage(e) => ScheduleServiceError::Storage(e),
            AccessError::AuditUnavailable => ScheduleServiceError::AuditUnavailable,
        }
    }
}

impl From<ScheduleError> for ScheduleServiceError {
    fn from(error: ScheduleError) -> Self {
        match error {
            ScheduleError::DoubleBooked => ScheduleServiceError::DoubleBooked,
            ScheduleError::NotFound => ScheduleServiceError::NotFound,
            ScheduleError::Cancelled => ScheduleServiceError::Cancelled,
            ScheduleError::InvalidTimes => ScheduleServiceError::Invalid(InvalidField {
                field: "ends_at_ms",
                rule: "must be after starts_at_ms, at most 12 hours later, both positive",
            }),
            ScheduleError::Storage(e) => ScheduleServiceError::Storage(e),
            ScheduleError::Reminders(e) => ScheduleServiceError::Reminders(e),
        }
    }
}

/// An appointment to book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Booking {
    /// The clinician, on whose schedule it goes.
    pub clinician_id: UserId,
    /// The patient.
    pub patient_id: PatientId,
    /// Start (UTC ms).
    pub starts_at_ms: i64,
    /// End (UTC ms).
    pub ends_at_ms: i64,
}

/// The schedule operations.
#[derive(Clone)]
pub struct ScheduleService {
    gate: Gate,
    schedule: Schedule,
    accounts: Accounts,
    patients: Patients,
    pusher: Pusher,
    clock: Arc<dyn Clock>,
}

impl ScheduleService {
    /// The operations over `schedule`, passing `gate`, checking clinicians in `accounts` and
    /// patients in `patients`, pushing changes through `pusher`, with `clock`.
    pub fn new(
        gate: Gate,
        schedule: Schedule,
        accounts: Accounts,
        patients: Patients,
        pusher: Pusher,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { gate, schedule, accounts, patients, pusher, clock }
    }

    /// Books an appointment (a clinician on their own schedule only, for their own patients).
    pub async fn book(&self, who: &Requester, booking: Booking) -> Result<Change, ScheduleServiceError> {
        let Booking { clinician_id, patient_id, starts_at_ms, ends_at_ms } = booking;
        let target = Target::Appointment { patient: patient_id, clinician: clinician_id };
        let about = About::new(Action::Create, ResourceType::Appointment, None).for_patient(patient_id);
        self.gate.authorize(who, Resource::Appointment, Operation::Create, target, about).await?;
        let clinician = self.accounts.get(clinician_id).await.map_err(ScheduleServiceError::Accounts)?;
        if !clinician.is_some_and(|a| a.role == Role::Clinician && a.status == AccountStatus::Active) {
            return Err(InvalidField { field: "clinician_id", rule: "is not an active clinician account" }.into());
        }
        if !self.patients.exists(patient_id).await.map_err(ScheduleServiceError::Patients)? {
            return Err(InvalidField { field: "patient_id", rule: "is not a patient record" }.into());
        }
        let now = self.clock.now_ms();
        let run = self.schedule.book(clinician_id, patient_id, starts_at_ms, ends_at_ms, who.principal.user_id, now);
        self.change(who, about, "appointment_booked", run).await
    }

    /// Moves appointment `id` to a new time.
    pub async fn reschedule(
        &self,
        who: &Requester,
        id: Uuid,
        starts_at_ms: i64,
        ends_at_ms: i64,
    ) -> Result<Change, ScheduleServiceError> {
        let about = self.authorize_change(who, id, Operation::Update).await?;
        let now = self.clock.now_ms();
        let run = self.schedule.reschedule(id, starts_at_ms, ends_at_ms, now);
        self.change(who, about, "appointment_rescheduled", run).await
    }

    /// Cancels appointment `id`.
    pub async fn cancel(&self, who: &Requester, id: Uuid) -> Result<Change, ScheduleServiceError> {
        let about = self.authorize_change(who, id, Operation::Delete).await?;
        let now = self.clock.now_ms();
        self.change(who, about, "appointment_cancelled", self.schedule.cancel(id, now)).await
    }

    /// The authorization of `operation` on `resource` of existing appointment `id` (the
    /// appointment itself, or its reminders): its patient and clinician are the target; a
    /// refusal is audited. Returns what to audit (as `action` on `resource_type`) and how it
    /// was allowed.
    pub async fn authorize_on(
        &self,
        who: &Requester,
        id: Uuid,
        (resource, resource_type): (Resource, ResourceType),
        operation: Operation,
        action: Action,
    ) -> Result<(About, Decision), ScheduleServiceError> {
        let appointment = self.schedule.get(id).await?.ok_or(ScheduleServiceError::NotFound)?;
        let patient = PatientId::from_uuid(appointment.patient_id);
        let target = Target::Appointment { patient, clinician: UserId::from_uuid(appointment.clinician_id) };
        let about = About::new(action, resource_type, Some(id)).for_patient(patient);
        let decision = self.gate.authorize(who, resource, operation, target, about).await?;
        Ok((about, decision))
    }

    /// The authorization of a change to existing appointment `id` (recorded as an update).
    async fn authorize_change(
        &self,
        who: &Requester,
        id: Uuid,
        operation: Operation,
    ) -> Result<About, ScheduleServiceError> {
        let appointment = (Resource::Appointment, ResourceType::Appointment);
        Ok(self.authorize_on(who, id, appointment, operation, Action::Update).await?.0)
    }

    /// Audits the attempt, runs the change, records a failure as such, and pushes a success.
    async fn change(
        &self,
        who: &Requester,
        about: About,
        code: &'static str,
        run: impl Future<Output = Result<Change, ScheduleError>>,
    ) -> Result<Change, ScheduleServiceError> {
        self.gate.record_all(vec![self.gate.event(who, about, Outcome::Success, code)]).await?;
        match run.await {
            Ok(change) => {
                super::publish(&self.pusher, &change).await;
                Ok(change)
            }
            Err(error) => {
                let failed = match error {
                    ScheduleError::DoubleBooked => "double_booked",
                    ScheduleError::Cancelled => "already_cancelled",
                    _ => "failed",
                };
                // The attempt was recorded before; its failure is recorded too.
                let failure = self.gate.event(who, about, Outcome::Error, failed);
                self.gate.auditor().record_follow_up(failure, "schedule_change_failed").await;
                Err(error.into())
            }
        }
    }

    /// The topic `who` may follow for `scope`: the practice's schedule, a clinician's own, or
    /// a patient's own. A refusal by the matrix is audited.
    pub async fn subscription(&self, who: &Requester, scope: ScheduleScope) -> Result<Topic, ScheduleServiceError> {
        let about = About::new(Action::Read, ResourceType::Appointment, None);
        let decision = self.gate.authorize(who, Resource::Appointment, Operation::Read, Target::Any, about).await?;
        match (scope, decision) {
            (ScheduleScope::Practice, Decision::Practice) => Ok(Topic::PracticeSchedule),
            (ScheduleScope::Mine, Decision::CareTeam) => Ok(Topic::ClinicianSchedule(who.principal.user_id)),
            (ScheduleScope::Mine, Decision::Own) => {
                who.principal.patient_id.map(Topic::PatientSchedule).ok_or(ScheduleServiceError::NotYourSchedule)
            }
            _ => Err(ScheduleServiceError::NotYourSchedule),
        }
    }

    /// The catch-up of schedule `topic` for request `id`: the changes after `after`, or a
    /// snapshot (when `after` is absent or too far behind). One read per patient whose
    /// appointments are sent is audited, and acknowledged, before they are.
    pub async fn catch_up(
        &self,
        who: &Requester,
        topic: Topic,
        id: String,
        after: Option<u64>,
    ) -> Result<CatchUp, ScheduleServiceError> {
        let (filter, scope) = match topic {
            Topic::ClinicianSchedule(c) => (Filter::Clinician(c), ScheduleScope::Mine),
            Topic::PatientSchedule(p) => (Filter::Patient(p), ScheduleScope::Mine),
            Topic::PracticeSchedule => (Filter::Practice, ScheduleScope::Practice),
            Topic::Alerts(_) | Topic::Device(_) => {
                return Err(ScheduleServiceError::NotFound);
            }
        };
        let replay = match after {
            Some(after) => self.schedule.changes_after(filter, after, MAX_REPLAY).await?,
            None => None,
        };
        let (frames, last_event_id, patients) = match (replay, after) {
            (Some(changes), Some(after)) => {
                let last = changes.last().map_or(after, |c| c.event_id);
                let patients = changes.iter().map(|c| c.appointment.patient_id).collect::<BTreeSet<_>>();
                let mut frames: Vec<ServerFrame> = changes.iter().map(super::frame).collect();
                frames.push(ServerFrame::ack(id));
                (frames, last, patients)
            }
            _ => {
                let now = self.clock.now_ms();
                let (last, appointments) = self.schedule.snapshot(filter, now - SNAPSHOT_PAST_MS).await?;
                let patients = appointments.iter().map(|a| a.patient_id).collect::<BTreeSet<_>>();
                let snapshot =
                    ServerFrame::ScheduleSnapshot { v: VERSION, id, scope, last_event_id: last, appointments };
                (vec![snapshot], last, patients)
            }
        };
        let events = patients
            .into_iter()
            .map(|patient| {
                let about = About::new(Action::Read, ResourceType::Appointment, None)
                    .for_patient(PatientId::from_uuid(patient));
                self.gate.event(who, about, Outcome::Success, "schedule_subscription")
            })
            .collect();
        self.gate.record_all(events).await?;
        Ok(CatchUp { frames, last_event_id })
    }
}
