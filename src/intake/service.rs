//! [`IntakeService`]: every intake operation, whichever transport asks. Clinicians assign forms
//! and read what was submitted (REST); patients open, autosave and submit them (the socket).
//! Each operation passes the gate (a refusal is audited) and records its access, acknowledged,
//! before anything is read or stored; a submission raises its alerts (the PHQ-9 urgent alert
//! among them) in one place, `alerts_of`, stored in the submission's transaction.

use std::sync::Arc;

use confidant_actors::audit::{Action, AuditEvent, Outcome, ResourceType, Role};
use confidant_actors::clock::Clock;
use confidant_actors::hub::Topic;
use confidant_actors::ids::{PatientId, UserId};
use confidant_protocol::{AlertKind, IntakeAnswers, ScreeningScore, ServerFrame, Severity, VERSION};
use uuid::Uuid;

use super::store::{Assignment, Intake, IntakeError, ScreeningResult};
use super::templates::{self, FormKind, InvalidAnswer, Score, Template};
use crate::access::{AccessError, Denial, Gate, Operation, Requester, Resource, Target};
use crate::alerts::{AlertError, AlertService, NewAlert, Recipients};
use crate::auditor::About;
use crate::patients::{PatientError, Patients};
use crate::push::Pusher;

/// Why an intake operation did not succeed. None of the messages carries an answer.
#[derive(Debug, thiserror::Error)]
pub enum IntakeServiceError {
    /// Bad input: an answer breaks a rule of its form. Names the item and the rule, never the
    /// value; nothing was stored.
    #[error(transparent)]
    InvalidAnswer(#[from] InvalidAnswer),
    /// Not allowed: the permission matrix refuses, or staff must prove a second factor first.
    /// The refusal was audited.
    #[error("not allowed")]
    NotAllowed(Denial),
    /// No such assignment or patient, or no submitted response to read yet.
    #[error("not found")]
    NotFound,
    /// The form was already submitted: it is submitted once, and then neither opened nor changed.
    #[error("the form was already submitted")]
    AlreadySubmitted,
    /// Bad input other than an answer: names the field and the rule; nothing was stored.
    #[error("{field} {rule}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// Unavailable: the audit trail could not record the access (fail closed), so nothing was
    /// read or stored.
    #[error("the audit trail cannot record the access")]
    AuditUnavailable,
    /// Unavailable: the database or the keyring failed (down, or a stored value failed its
    /// integrity check). The cause is for the log, never for a client.
    #[error(transparent)]
    Store(#[from] IntakeError),
}

impl From<AccessError> for IntakeServiceError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Denied(denial) => IntakeServiceError::NotAllowed(denial),
            AccessError::Storage(e) => IntakeServiceError::Store(IntakeError::Storage(e)),
            AccessError::AuditUnavailable => IntakeServiceError::AuditUnavailable,
        }
    }
}

/// A form opened to be filled: its template and the saved draft. `Debug` shows no answer.
#[derive(Debug)]
pub struct OpenedForm {
    /// The assignment.
    pub assignment: Assignment,
    /// The form.
    pub template: &'static Template,
    /// The saved draft (empty when none).
    pub draft: IntakeAnswers,
}

/// A submitted form, as its clinicians read it. `Debug` shows no answer and no score.
#[derive(Debug)]
pub struct SubmittedForm {
    /// The assignment.
    pub assignment: Assignment,
    /// Item id -> answer.
    pub answers: IntakeAnswers,
    /// Total, severity band and urgency, for screenings.
    pub score: Option<Score>,
}

/// The intake operations, over the intake store, the gate and the pusher.
#[derive(Clone)]
pub struct IntakeService {
    intake: Intake,
    patients: Patients,
    gate: Gate,
    pusher: Pusher,
    alerts: AlertService,
    clock: Arc<dyn Clock>,
}

/// A form in a patient's list.
#[derive(Debug)]
pub struct ListedForm {
    /// The assignment.
    pub assignment: Assignment,
    /// For staff: whether an urgent alert about it awaits a clinician's follow-up.
    pub urgent: Option<bool>,
}

impl IntakeService {
    /// The service over `intake` (and `patients`, to know a patient exists), checking and
    /// recording through `gate`, pushing through `pusher`, raising `alerts`, with `clock`.
    pub fn new(
        intake: Intake,
        patients: Patients,
        gate: Gate,
        pusher: Pusher,
        alerts: AlertService,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { intake, patients, gate, pusher, alerts, clock }
    }

    /// Assigns `form` to `patient`. A clinician of their care team assigns for themselves; front
    /// desk assigns for `for_clinician`, who must be on the patient's care team. That clinician
    /// reads the results and is alerted on submission.
    pub async fn assign(
        &self,
        who: &Requester,
        patient: PatientId,
        form: FormKind,
        for_clinician: Option<UserId>,
    ) -> Result<Assignment, IntakeServiceError> {
        let about = About::new(Action::Create, ResourceType::IntakeResponse, None).for_patient(patient);
        self.gate
            .authorize(who, Resource::IntakeAssignment, Operation::Create, Target::Patient(patient), about)
            .await?;
        let exists = self.patients.exists(patient).await.map_err(|error| match error {
            PatientError::Storage(e) => IntakeError::Storage(e).into(),
            PatientError::Crypto(e) => IntakeError::Crypto(e).into(),
            // Only a record being written is validated; a lookup by id never names a field.
            PatientError::Invalid(_) => IntakeServiceError::NotFound,
        })?;
        if !exists {
            return Err(IntakeServiceError::NotFound);
        }
        let me = who.principal.user_id;
        let clinician = match (who.principal.role, for_clinician) {
            (Role::Clinician, None) => me,
            (Role::Clinician, Some(other)) if other == me => me,
            (Role::Clinician, Some(_)) => {
                return Err(IntakeServiceError::Invalid { field: "clinician_id", rule: "must be yourself" });
            }
            (_, None) => {
                return Err(IntakeServiceError::Invalid {
                    field: "clinician_id",
                    rule: "is required: the clinician who reads the results",
                });
            }
            (_, Some(clinician)) => {
                let reachable = self.gate.access().reachable_patients(clinician).await.map_err(AccessError::from)?;
                if !reachable.contains(&patient) {
                    return Err(IntakeServiceError::Invalid {
                        field: "clinician_id",
                        rule: "is not on the patient's care team",
                    });
                }
                clinician
            }
        };
        self.gate.record_all(vec![self.gate.event(who, about, Outcome::Success, "intake_assigned")]).await?;
        Ok(self.intake.assign(patient, clinician, form, me, self.clock.now_ms()).await?)
    }

    /// A patient's forms, newest first, without answers; for staff, each with its urgent flag.
    pub async fn list(&self, who: &Requester, patient: PatientId) -> Result<Vec<ListedForm>, IntakeServiceError> {
        let about = About::new(Action::Read, ResourceType::IntakeResponse, None).for_patient(patient);
        self.gate
            .authorize_and_record(who, Resource::IntakeResponse, Operation::Read, Target::Patient(patient), about)
            .await?;
        let assignments = self.intake.of_patient(patient).await?;
        let flagged = match who.principal.role {
            Role::Patient => None,
            _ => Some(self.alerts.flagged_assignments(patient).await.map_err(alert_error)?),
        };
        Ok(assignments
            .into_iter()
            .map(|assignment| {
                let urgent = flagged.as_ref().map(|f| f.contains(&assignment.id));
                ListedForm { assignment, urgent }
            })
            .collect())
    }

    /// A patient's PHQ-9 and GAD-7 results over time (measurement-based care), oldest first:
    /// read like their forms, audited as one read of the patient's screening responses.
    pub async fn series(
        &self,
        who: &Requester,
        patient: PatientId,
    ) -> Result<Vec<ScreeningResult>, IntakeServiceError> {
        let about = About::new(Action::Read, ResourceType::IntakeResponse, None).for_patient(patient);
        self.gate
            .authorize_and_record(who, Resource::IntakeResponse, Operation::Read, Target::Patient(patient), about)
            .await?;
        Ok(self.intake.screenings(patient).await?)
    }

    /// A submitted form with its answers and score.
    pub async fn read(&self, who: &Requester, id: Uuid) -> Result<SubmittedForm, IntakeServiceError> {
        let assignment = self.intake.get(id).await?.ok_or(IntakeServiceError::NotFound)?;
        let patient = assignment.patient_id;
        self.gate
            .authorize_and_record(
                who,
                Resource::IntakeResponse,
                Operation::Read,
                Target::Patient(patient),
                about(&assignment, Action::Read),
            )
            .await?;
        let (answers, score) = self.intake.response(id).await?.ok_or(IntakeServiceError::NotFound)?;
        Ok(SubmittedForm { assignment, answers, score })
    }

    /// Opens an assigned form to be filled: the form and the saved draft, so a form started on
    /// one device continues on another.
    pub async fn open(&self, who: &Requester, id: Uuid) -> Result<OpenedForm, IntakeServiceError> {
        let assignment = self.assignment(who, id, Operation::Read).await?;
        if assignment.submitted {
            return Err(IntakeServiceError::AlreadySubmitted);
        }
        self.gate.record_all(vec![self.event(who, &assignment, Action::Read, "intake_opened")]).await?;
        let draft = self.intake.draft(id).await?;
        Ok(OpenedForm { template: templates::template(assignment.form), assignment, draft })
    }

    /// Replaces the draft (autosave): partial answers are fine, but each given answer must be
    /// valid, or nothing is saved.
    pub async fn save_draft(
        &self,
        who: &Requester,
        id: Uuid,
        answers: &IntakeAnswers,
    ) -> Result<(), IntakeServiceError> {
        let assignment = self.assignment(who, id, Operation::Update).await?;
        templates::validate(assignment.form, answers, false)?;
        self.gate.record_all(vec![self.event(who, &assignment, Action::Update, "intake_draft_saved")]).await?;
        match self.intake.save_draft(id, answers, self.clock.now_ms()).await? {
            true => Ok(()),
            false => Err(IntakeServiceError::AlreadySubmitted),
        }
    }

    /// Submits the form: every required item answered, scored, and stored once (sealed) in one
    /// transaction with the alerts it raises (`alerts_of`); then the clinician is told live.
    pub async fn submit(&self, who: &Requester, id: Uuid, answers: &IntakeAnswers) -> Result<(), IntakeServiceError> {
        let assignment = self.assignment(who, id, Operation::Update).await?;
        templates::validate(assignment.form, answers, true)?;
        let score = templates::score(assignment.form, answers);
        let mut events = vec![self.event(who, &assignment, Action::Create, "intake_submitted")];
        if score.as_ref().is_some_and(|s| s.urgent) {
            events.push(self.event(who, &assignment, Action::Create, "urgent_alert_phq9_item9"));
        }
        self.gate.record_all(events).await?;
        let alerts = self.alerts.prepare(&alerts_of(&assignment, score.as_ref())).await.map_err(alert_error)?;
        let now = self.clock.now_ms();
        let mut tx = self.alerts.begin().await.map_err(IntakeError::Storage)?;
        if !self.intake.submit_in(&mut tx, id, answers, score.as_ref(), now).await? {
            return Err(IntakeServiceError::AlreadySubmitted);
        }
        alerts.store_in(&mut tx).await.map_err(IntakeError::Storage)?;
        tx.commit().await.map_err(IntakeError::from)?;
        self.notify(&assignment, score.as_ref(), now).await;
        self.alerts.publish(alerts).await;
        Ok(())
    }

    /// Tells the assigned clinician's open sessions that a form was submitted (`intake.submitted`,
    /// with a screening's total and band), so an open list refreshes; the stored alerts are what
    /// a clinician who was not connected receives later.
    async fn notify(&self, assignment: &Assignment, score: Option<&Score>, at_ms: i64) {
        let frame = ServerFrame::IntakeSubmitted {
            v: VERSION,
            assignment_id: assignment.id,
            patient_id: *assignment.patient_id.as_uuid(),
            form: assignment.form.as_str().to_owned(),
            score: score.map(|s| ScreeningScore(s.total)),
            severity: score.map(|s| s.severity),
            submitted_at_ms: at_ms,
        };
        let about = (None, Some(assignment.patient_id));
        self.pusher.push([Topic::Alerts(assignment.clinician_id)], about, &frame, "intake_submission").await;
    }

    /// Assignment `id`, if `who` may perform `operation` on it. A refusal is audited, as a read
    /// of the assignment whatever the operation (as the socket always recorded it).
    async fn assignment(
        &self,
        who: &Requester,
        id: Uuid,
        operation: Operation,
    ) -> Result<Assignment, IntakeServiceError> {
        let assignment = self.intake.get(id).await?.ok_or(IntakeServiceError::NotFound)?;
        let target = Target::Patient(assignment.patient_id);
        self.gate.authorize(who, Resource::IntakeResponse, operation, target, about(&assignment, Action::Read)).await?;
        Ok(assignment)
    }

    /// The audit event of `who` doing `action` on `assignment`, allowed, for reason `why`.
    fn event(&self, who: &Requester, assignment: &Assignment, action: Action, why: &'static str) -> AuditEvent {
        self.gate.event(who, about(assignment, action), Outcome::Success, why)
    }
}

/// The alerts a submission raises, all to the assigned clinician: `intake_submitted` always;
/// `phq9_item9` when PHQ-9 item 9 was answered above zero, whatever the total (the one place
/// that urgent alert is raised); `phq9_severe` or `gad7_severe` for a total in the severe band.
fn alerts_of(assignment: &Assignment, score: Option<&Score>) -> Vec<NewAlert> {
    let clinician = assignment.clinician_id;
    let alert = |kind| NewAlert {
        assignment: Some(assignment.id),
        clinician: Some(clinician),
        ..NewAlert::new(kind, assignment.patient_id, Recipients::User(clinician))
    };
    let mut alerts = vec![alert(AlertKind::IntakeSubmitted)];
    if let Some(score) = score {
        if score.urgent {
            alerts.push(alert(AlertKind::Phq9Item9));
        }
        if score.severity == Severity::Severe {
            match assignment.form {
                FormKind::Phq9 => alerts.push(alert(AlertKind::Phq9Severe)),
                FormKind::Gad7 => alerts.push(alert(AlertKind::Gad7Severe)),
                FormKind::GeneralIntake => {}
            }
        }
    }
    alerts
}

/// An alert failure as the intake service reports it.
fn alert_error(error: AlertError) -> IntakeServiceError {
    match error {
        AlertError::AuditUnavailable => IntakeServiceError::AuditUnavailable,
        AlertError::NotAllowed(denial) => IntakeServiceError::NotAllowed(denial),
        AlertError::Crypto(e) => IntakeError::Crypto(e).into(),
        AlertError::Storage(e) => IntakeError::Storage(e).into(),
        AlertError::NotFound
        | AlertError::InvalidFollowUp
        | AlertError::AlreadyFollowedUp
        | AlertError::NoFollowUp
        | AlertError::Outbox(_)
        | AlertError::Accounts(_) => IntakeError::Storage(crate::storage::StorageError::Encode).into(),
    }
}

/// What an access to `assignment` is about, for its audit event.
fn about(assignment: &Assignment, action: Action) -> About {
    About::new(action, ResourceType::IntakeResponse, Some(assignment.id)).for_patient(assignment.patient_id)
}
