//! [`IntakeService`]: every intake operation, whichever transport asks. Clinicians assign forms
//! and read what was submitted (REST); patients open, autosave and submit them (the socket).
//! Each operation passes the gate (a refusal is audited) and records its access, acknowledged,
//! before anything is read or stored; a submission raises the clinician's live notifications,
//! the PHQ-9 urgent alert among them, in one place (`IntakeService::raise_alerts`).

use std::sync::Arc;

use confidant_actors::audit::{Action, AuditEvent, Outcome, ResourceType};
use confidant_actors::clock::Clock;
use confidant_actors::hub::Topic;
use confidant_actors::ids::PatientId;
use confidant_protocol::{AlertKind, IntakeAnswers, ScreeningScore, ServerFrame, VERSION};
use uuid::Uuid;

use super::store::{Assignment, Intake, IntakeError};
use super::templates::{self, FormKind, InvalidAnswer, Score, Template};
use crate::access::{AccessError, Denial, Gate, Operation, Requester, Resource, Target};
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
    clock: Arc<dyn Clock>,
}

impl IntakeService {
    /// The service over `intake` (and `patients`, to know a patient exists), checking and
    /// recording through `gate`, pushing through `pusher`, with `clock`.
    pub fn new(intake: Intake, patients: Patients, gate: Gate, pusher: Pusher, clock: Arc<dyn Clock>) -> Self {
        Self { intake, patients, gate, pusher, clock }
    }

    /// Assigns `form` to `patient`; the requester (a clinician of their care team) is alerted on
    /// submission.
    pub async fn assign(
        &self,
        who: &Requester,
        patient: PatientId,
        form: FormKind,
    ) -> Result<Assignment, IntakeServiceError> {
        let about = About::new(Action::Create, ResourceType::IntakeResponse, None).for_patient(patient);
        self.gate.authorize(who, Resource::IntakeResponse, Operation::Create, Target::Patient(patient), about).await?;
        let exists = self.patients.exists(patient).await.map_err(|error| match error {
            PatientError::Storage(e) => IntakeError::Storage(e).into(),
            PatientError::Crypto(e) => IntakeError::Crypto(e).into(),
            // Only a record being written is validated; a lookup by id never names a field.
            PatientError::Invalid(_) => IntakeServiceError::NotFound,
        })?;
        if !exists {
            return Err(IntakeServiceError::NotFound);
        }
        self.gate.record_all(vec![self.gate.event(who, about, Outcome::Success, "intake_assigned")]).await?;
        let me = who.principal.user_id;
        Ok(self.intake.assign(patient, me, form, me, self.clock.now_ms()).await?)
    }

    /// A patient's forms, newest first, without answers.
    pub async fn list(&self, who: &Requester, patient: PatientId) -> Result<Vec<Assignment>, IntakeServiceError> {
        let about = About::new(Action::Read, ResourceType::IntakeResponse, None).for_patient(patient);
        self.gate
            .authorize_and_record(who, Resource::IntakeResponse, Operation::Read, Target::Patient(patient), about)
            .await?;
        Ok(self.intake.of_patient(patient).await?)
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

    /// Submits the form: every required item answered, scored, stored once (sealed), then the
    /// clinician is told at once (`raise_alerts`).
    pub async fn submit(&self, who: &Requester, id: Uuid, answers: &IntakeAnswers) -> Result<(), IntakeServiceError> {
        let assignment = self.assignment(who, id, Operation::Update).await?;
        templates::validate(assignment.form, answers, true)?;
        let score = templates::score(assignment.form, answers);
        let mut events = vec![self.event(who, &assignment, Action::Create, "intake_submitted")];
        if score.as_ref().is_some_and(|s| s.urgent) {
            events.push(self.event(who, &assignment, Action::Create, "urgent_alert_phq9_item9"));
        }
        self.gate.record_all(events).await?;
        let now = self.clock.now_ms();
        if !self.intake.submit(id, answers, score.as_ref(), now).await? {
            return Err(IntakeServiceError::AlreadySubmitted);
        }
        self.raise_alerts(&assignment, score.as_ref(), now).await;
        Ok(())
    }

    /// Raises the assigned clinician's notifications of a stored submission: `intake.submitted`
    /// (with the total and severity band of a screening) and, when PHQ-9 item 9 was answered
    /// above zero, whatever the total, the urgent `alert` of kind `phq9_item9`. This is the one
    /// place the urgent alert is raised; its audit record (`urgent_alert_phq9_item9`) was made
    /// with the submission's, before the answers were stored.
    ///
    /// Live only, for now: both go to the clinician's open sessions (`ClinicianAlerts`), and a
    /// clinician with none, or a push that fails (logged by the pusher), misses them; the
    /// submission itself is stored and readable over REST. Storing alerts durably belongs here.
    async fn raise_alerts(&self, assignment: &Assignment, score: Option<&Score>, at_ms: i64) {
        let patient_id = *assignment.patient_id.as_uuid();
        let mut frames = vec![ServerFrame::IntakeSubmitted {
            v: VERSION,
            assignment_id: assignment.id,
            patient_id,
            form: assignment.form.as_str().to_owned(),
            score: score.map(|s| ScreeningScore(s.total)),
            severity: score.map(|s| s.severity),
            submitted_at_ms: at_ms,
        }];
        if score.is_some_and(|s| s.urgent) {
            frames.push(ServerFrame::Alert {
                v: VERSION,
                kind: AlertKind::Phq9Item9,
                patient_id,
                assignment_id: Some(assignment.id),
                clinician_id: None,
                at_ms,
            });
        }
        let topic = Topic::ClinicianAlerts(assignment.clinician_id);
        for frame in frames {
            self.pusher.push([topic], None, &frame, "intake_submission").await;
        }
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

/// What an access to `assignment` is about, for its audit event.
fn about(assignment: &Assignment, action: Action) -> About {
    About::new(action, ResourceType::IntakeResponse, Some(assignment.id)).for_patient(assignment.patient_id)
}
