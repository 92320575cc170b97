//! [`NoteService`]: every clinical-note operation, whichever transport asks (REST, and the
//! socket's live drafts). Each passes the gate (a refusal is audited) and records its access,
//! acknowledged, before a note is read or written. The rules the matrix cannot state live here,
//! each in one place: a draft is its author's alone; break-glass reads progress notes only; a
//! patient reads their own signed progress notes only under open notes; a psychotherapy note is
//! its author's alone; a signed note is never written again (the store's writes are conditional
//! on `draft`).

use std::sync::Arc;

use confidant_actors::audit::{Action, AuditEvent, Outcome, ReasonCode, ResourceType, Role};
use confidant_actors::clock::Clock;
use confidant_actors::ids::{PatientId, UserId};
use confidant_protocol::{FieldValue, NoteFields};
use uuid::Uuid;

use super::content::{Measure, NoteContent, NoteContext};
use super::store::{Addendum, NewNote, NoteError, NoteMeta, NoteStatus, Notes, Supervision};
use super::templates::{self, InvalidField, InvalidTemplate, NoteKind, Template};
use crate::access::{AccessError, Decision, Denial, Gate, Operation, Requester, Resource, Target, allowed_because};
use crate::auditor::About;
use crate::crypto::tables::{CLINICAL_NOTES, NOTE_ADDENDA};
use crate::identity::{AuthError, Identity};
use crate::intake::{FormKind, Intake, IntakeError, ScreeningResult};
use crate::phi::PhiText;
use crate::plain_text;
use crate::schedule::{Schedule, ScheduleError};
use crate::settings::NoteSettings;

/// The longest addendum, in characters.
pub const MAX_ADDENDUM_CHARS: usize = 20_000;

/// Why a note operation did not succeed. No message carries a note's content.
#[derive(Debug, thiserror::Error)]
pub enum NoteServiceError {
    /// Bad input: a template definition breaks a rule (names the place and the rule).
    #[error(transparent)]
    InvalidTemplate(#[from] InvalidTemplate),
    /// Bad input: a field breaks its section's rule (names the field and the rule).
    #[error(transparent)]
    InvalidField(#[from] InvalidField),
    /// Bad input other than a field: names the field and the rule; nothing was stored.
    #[error("{field} {rule}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// Not allowed: the permission matrix or a note rule refuses. The refusal was audited.
    #[error("not allowed")]
    NotAllowed(Denial),
    /// No such note, template, patient or appointment.
    #[error("not found")]
    NotFound,
    /// The note is signed: it never changes again (an addendum corrects it).
    #[error("the note is signed and locked; add an addendum instead")]
    Locked,
    /// The act needs a signed note (an addendum), or a note awaiting this co-signature.
    #[error("{0}")]
    Conflict(&'static str),
    /// The fresh second factor failed (wrong or used code, throttled): identity's answer.
    #[error(transparent)]
    StepUp(AuthError),
    /// Unavailable: the audit trail could not record the access (fail closed).
    #[error("the audit trail cannot record the access")]
    AuditUnavailable,
    /// Unavailable: the database or the keyring failed. The cause is for the log only.
    #[error(transparent)]
    Store(#[from] NoteError),
}

impl From<AccessError> for NoteServiceError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Denied(denial) => NoteServiceError::NotAllowed(denial),
            AccessError::Storage(e) => NoteServiceError::Store(NoteError::Storage(e)),
            AccessError::AuditUnavailable => NoteServiceError::AuditUnavailable,
        }
    }
}

impl From<IntakeError> for NoteServiceError {
    fn from(error: IntakeError) -> Self {
        match error {
            IntakeError::Crypto(e) => NoteError::Crypto(e).into(),
            IntakeError::Storage(e) => NoteError::Storage(e).into(),
        }
    }
}

/// A template as listed: its definition and whether it ships with Confidant.
#[derive(Debug, Clone)]
pub struct ListedTemplate {
    /// The definition.
    pub template: Template,
    /// Built in (`true`) or the practice's own.
    pub built_in: bool,
}

/// A note opened whole: what a clinician (or, under open notes, the patient) reads.
#[derive(Debug)]
pub struct OpenedNote {
    /// Its facts.
    pub meta: NoteMeta,
    /// The template version it was written on.
    pub template: Template,
    /// Its content.
    pub content: NoteContent,
    /// Its signed addenda, in order.
    pub addenda: Vec<Addendum>,
}

/// The clinical-note operations.
#[derive(Clone)]
pub struct NoteService {
    notes: Notes,
    intake: Intake,
    schedule: Schedule,
    identity: Identity,
    gate: Gate,
    settings: NoteSettings,
    clock: Arc<dyn Clock>,
}

impl NoteService {
    /// The service over `notes` (with `intake` for screening scores and `schedule` for the
    /// appointment a note documents), the fresh second factor through `identity`, checking and
    /// recording through `gate`.
    pub fn new(
        notes: Notes,
        intake: Intake,
        schedule: Schedule,
        identity: Identity,
        gate: Gate,
        settings: NoteSettings,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { notes, intake, schedule, identity, gate, settings, clock }
    }

    // Templates.

    /// Every template: the built-in ones, then every version of the practice's own.
    pub async fn templates(&self, who: &Requester) -> Result<Vec<ListedTemplate>, NoteServiceError> {
        let about = About::new(Action::Read, ResourceType::Note, None);
        self.gate.authorize(who, Resource::NoteTemplate, Operation::Read, Target::Any, about).await?;
        let mut listed: Vec<ListedTemplate> =
            templates::built_in().iter().map(|t| ListedTemplate { template: t.clone(), built_in: true }).collect();
        listed.extend(
            self.notes
                .practice_templates()
                .await?
                .into_iter()
                .map(|template| ListedTemplate { template, built_in: false }),
        );
        Ok(listed)
    }

    /// Adds a practice's template from its JSON definition: checked, then stored as the next
    /// version of its key (a built-in key's first practice version is 2), so notes written on
    /// an earlier version keep theirs.
    pub async fn add_template(&self, who: &Requester, definition: &[u8]) -> Result<Template, NoteServiceError> {
        let about = About::new(Action::Create, ResourceType::Note, None);
        self.gate.authorize(who, Resource::NoteTemplate, Operation::Create, Target::Any, about).await?;
        let mut template = Template::parse(definition)?;
        let built_in = templates::built_in().iter().filter(|t| t.key == template.key).map(|t| t.version).max();
        let stored = self.notes.latest_template_version(&template.key).await?;
        template.version = built_in.max(stored).unwrap_or(0).saturating_add(1);
        self.gate.record_all(vec![self.gate.event(who, about, Outcome::Success, "note_template_added")]).await?;
        if !self.notes.add_template(&template, who.principal.user_id, self.clock.now_ms()).await? {
            return Err(NoteServiceError::Conflict("another version of this template was added at the same time"));
        }
        Ok(template)
    }

    /// Template `key` at `version`, built in or the practice's.
    async fn template(&self, key: &str, version: Option<u32>) -> Result<Template, NoteServiceError> {
        let built_in = templates::built_in().iter().find(|t| t.key == key);
        let version = match version {
            Some(version) => version,
            None => match self.notes.latest_template_version(key).await? {
                Some(latest) => latest,
                None => built_in.map(|t| t.version).ok_or(NoteServiceError::NotFound)?,
            },
        };
        if let Some(template) = built_in.filter(|t| t.version == version) {
            return Ok(template.clone());
        }
        self.notes.practice_template(key, version).await?.ok_or(NoteServiceError::NotFound)
    }

    // Supervision.

    /// Marks `clinician` as supervised by `supervisor` (both clinicians), or not (`None`):
    /// an owner's decision, recorded as a permission change.
    pub async fn set_supervisor(
        &self,
        who: &Requester,
        clinician: UserId,
        supervisor: Option<UserId>,
    ) -> Result<(), NoteServiceError> {
        let about = About::new(Action::PermissionChange, ResourceType::User, Some(*clinician.as_uuid()));
        self.gate.authorize(who, Resource::Supervision, Operation::Update, Target::Account(clinician), about).await?;
        if !self.is_clinician(clinician).await? {
            return Err(NoteServiceError::Invalid { field: "user_id", rule: "must be a clinician" });
        }
        if let Some(supervisor) = supervisor {
            if supervisor == clinician {
                return Err(NoteServiceError::Invalid { field: "supervisor_id", rule: "must be another clinician" });
            }
            if !self.is_clinician(supervisor).await? {
                return Err(NoteServiceError::Invalid { field: "supervisor_id", rule: "must be a clinician" });
            }
        }
        let why = if supervisor.is_some() { "supervisor_set" } else { "supervisor_removed" };
        self.gate.record_all(vec![self.gate.event(who, about, Outcome::Success, why)]).await?;
        Ok(self.notes.set_supervisor(clinician, supervisor, who.principal.user_id, self.clock.now_ms()).await?)
    }

    /// Who supervises whom: every supervision for an owner; for a clinician, those they are
    /// part of (as supervisor or supervised). Names no patient.
    pub async fn supervisions(&self, who: &Requester) -> Result<Vec<Supervision>, NoteServiceError> {
        let me = who.principal.user_id;
        let about = About::new(Action::Read, ResourceType::User, None);
        let decision =
            self.gate.authorize(who, Resource::Supervision, Operation::Read, Target::Account(me), about).await?;
        let everyone = decision == Decision::Practice;
        Ok(self
            .notes
            .supervisions()
            .await?
            .into_iter()
            .filter(|s| everyone || s.clinician == me || s.supervisor == me)
            .collect())
    }

    async fn is_clinician(&self, user: UserId) -> Result<bool, NoteServiceError> {
        let account = self.identity.accounts.get(user).await.map_err(auth_store)?;
        Ok(account.is_some_and(|a| a.role == Role::Clinician))
    }

    /// The notes awaiting the caller's co-signature, without content; each listed note's read
    /// recorded.
    pub async fn cosign_queue(&self, who: &Requester) -> Result<Vec<NoteMeta>, NoteServiceError> {
        let me = who.principal.user_id;
        let about = About::new(Action::Read, ResourceType::Note, None);
        self.gate.authorize(who, Resource::Supervision, Operation::Read, Target::Account(me), about).await?;
        let queue = self.notes.awaiting_cosign(me).await?;
        if !queue.is_empty() {
            let events = queue
                .iter()
                .map(|n| self.gate.event(who, note_about(n, Action::Read), Outcome::Success, "supervisor"))
                .collect();
            self.gate.record_all(events).await?;
        }
        Ok(queue)
    }

    // Notes.

    /// Begins a note on `template_key` (its latest version) about `patient`, for
    /// `appointment` (a session of the caller's with the patient) or for no session. The
    /// author must treat the patient (care team; not through break-glass); a psychotherapy
    /// template makes a psychotherapy note, the author's alone. Its context is filled in now.
    pub async fn create(
        &self,
        who: &Requester,
        patient: PatientId,
        template_key: &str,
        appointment: Option<Uuid>,
    ) -> Result<OpenedNote, NoteServiceError> {
        let me = who.principal.user_id;
        let about = About::new(Action::Create, ResourceType::Note, None).for_patient(patient);
        self.gate.authorize(who, Resource::ClinicalNote, Operation::Create, Target::Patient(patient), about).await?;
        if !templates::is_identifier(template_key) {
            return Err(NoteServiceError::Invalid {
                field: "template_key",
                rule: "must be 1 to 40 characters of a-z, 0-9 and _",
            });
        }
        let template = self.template(template_key, None).await?;
        if template.kind == NoteKind::Psychotherapy {
            self.gate
                .authorize(who, Resource::PsychotherapyNote, Operation::Create, Target::Account(me), about)
                .await?;
        }
        let now = self.clock.now_ms();
        let service_at_ms = match appointment {
            None => now,
            Some(id) => {
                let found = self.schedule.get(id).await.map_err(|error| match error {
                    ScheduleError::Storage(e) => NoteError::Storage(e),
                    // A lookup by id fails only in the database.
                    _ => NoteError::Storage(crate::storage::StorageError::Encode),
                })?;
                match found {
                    Some(a) if a.patient_id == *patient.as_uuid() && a.clinician_id == *me.as_uuid() => a.starts_at_ms,
                    _ => {
                        return Err(NoteServiceError::Invalid {
                            field: "appointment_id",
                            rule: "must be one of your appointments with this patient",
                        });
                    }
                }
            }
        };
        let context = if template.kind == NoteKind::Psychotherapy {
            NoteContext::default()
        } else {
            self.context(patient).await?
        };
        let mut fields = NoteFields::new();
        for (id, values) in [("diagnosis", &context.diagnosis), ("goals", &context.goals)] {
            if !values.is_empty() && matches!(template.section(id).map(|s| &s.field), Some(templates::FieldKind::List))
            {
                fields.insert(id, FieldValue::List(values.clone()));
            }
        }
        let content = NoteContent { fields, context };
        self.gate.record_all(vec![self.gate.event(who, about, Outcome::Success, "note_created")]).await?;
        let meta = self
            .notes
            .create(
                NewNote { patient, appointment, author: me, template: &template, service_at_ms, content: &content },
                now,
            )
            .await?;
        Ok(OpenedNote { meta, template, content, addenda: Vec::new() })
    }

    /// What a new note about `patient` is pre-filled with: the latest PHQ-9 and GAD-7 with
    /// their change since the patient's previous note, the diagnosis and goals of the latest
    /// final treatment plan.
    async fn context(&self, patient: PatientId) -> Result<NoteContext, NoteServiceError> {
        let notes = self.notes.of_patient(patient).await?;
        let record: Vec<&NoteMeta> = notes.iter().filter(|n| n.kind != NoteKind::Psychotherapy).collect();
        let previous = record.iter().map(|n| n.created_at_ms).max();
        let screenings = self.intake.screenings(patient).await?;
        let measure = |form: FormKind| -> Option<Measure> {
            let of_form: Vec<&ScreeningResult> = screenings.iter().filter(|s| s.form == form).collect();
            let latest = of_form.last()?;
            let before = previous.and_then(|at| of_form.iter().rev().find(|s| s.submitted_at_ms <= at));
            Some(Measure {
                total: latest.score.total,
                severity: latest.score.severity,
                submitted_at_ms: latest.submitted_at_ms,
                change_since_last_note: before.map(|b| i64::from(latest.score.total) - i64::from(b.score.total)),
            })
        };
        let mut context =
            NoteContext { phq9: measure(FormKind::Phq9), gad7: measure(FormKind::Gad7), ..NoteContext::default() };
        let plan = record
            .iter()
            .filter(|n| n.kind == NoteKind::TreatmentPlan && n.status == NoteStatus::Final)
            .max_by_key(|n| n.signed_at_ms);
        if let Some(plan) = plan
            && let Some(content) = self.notes.content(plan.id).await?
        {
            let list = |id: &str| match content.fields.get(id) {
                Some(FieldValue::List(items)) => items.clone(),
                _ => Vec::new(),
            };
            context.diagnosis = list("diagnosis");
            context.goals = list("goals");
        }
        Ok(context)
    }

    /// A patient's notes as the chart lists them: date, kind, status, never content. Front
    /// desk and billing see this much; a psychotherapy note is listed to its author only; a
    /// patient sees their own final progress notes, and only under open notes.
    pub async fn list(&self, who: &Requester, patient: PatientId) -> Result<Vec<NoteMeta>, NoteServiceError> {
        let about = About::new(Action::Read, ResourceType::Note, None).for_patient(patient);
        self.gate
            .authorize_and_record(who, Resource::NoteSummary, Operation::Read, Target::Patient(patient), about)
            .await?;
        let me = who.principal.user_id;
        let patient_reads = who.principal.role == Role::Patient;
        Ok(self
            .notes
            .of_patient(patient)
            .await?
            .into_iter()
            .filter(|n| n.kind != NoteKind::Psychotherapy || n.author_id == me)
            .filter(|n| !patient_reads || self.shared_with_patient(n))
            .collect())
    }

    /// Whether open notes shows `note` to its patient.
    fn shared_with_patient(&self, note: &NoteMeta) -> bool {
        self.settings.open_notes && note.kind == NoteKind::Progress && note.status == NoteStatus::Final
    }

    /// Opens a note whole (content, template version, addenda), if `who` may read it:
    /// its author; for a record note, a clinician of the care team once it is signed (drafts
    /// are the author's), through break-glass only a signed progress note, the supervisor who
    /// must co-sign it; for a psychotherapy note, its author alone; under open notes, the
    /// patient their own final progress notes.
    pub async fn read(&self, who: &Requester, id: Uuid) -> Result<OpenedNote, NoteServiceError> {
        let meta = self.notes.get(id).await?.ok_or(NoteServiceError::NotFound)?;
        let about = note_about(&meta, Action::Read);
        let decision = self.authorize_read(who, &meta, about).await?;
        self.gate.record_all(vec![self.gate.event(who, about, Outcome::Success, allowed_because(decision))]).await?;
        self.open(meta).await
    }

    /// A signed record note as a PDF for release of records (`notes/pdf.rs`: what the note's
    /// screen shows, with its addenda and signatures): for whoever may read it, audited as a
    /// read before it is made. A draft is not part of the record (`Conflict`); a psychotherapy
    /// note is never part of an export of the record, so it is refused to everyone, its author
    /// included (audited).
    pub async fn export_pdf(&self, who: &Requester, id: Uuid) -> Result<Vec<u8>, NoteServiceError> {
        let meta = self.notes.get(id).await?.ok_or(NoteServiceError::NotFound)?;
        let about = note_about(&meta, Action::Read);
        if meta.kind == NoteKind::Psychotherapy {
            return Err(self.refuse(who, about, Denial::NotPermitted).await);
        }
        let decision = self.authorize_read(who, &meta, about).await?;
        if meta.status == NoteStatus::Draft {
            return Err(NoteServiceError::Conflict("a draft is not part of the record: sign it first"));
        }
        let mut event = self.gate.event(who, about, Outcome::Success, allowed_because(decision));
        event.reason = ReasonCode::new("note_exported_pdf");
        self.gate.record_all(vec![event]).await?;
        let note = self.open(meta).await?;
        let mut people = vec![note.meta.author_id];
        people.extend(note.meta.cosigner_id);
        people.extend(note.addenda.iter().map(|a| a.author_id));
        let mut names = std::collections::HashMap::new();
        for person in people {
            if names.contains_key(&person) {
                continue;
            }
            // As the portal's directory names staff: by name, or by role until named (no email).
            let account = self.identity.accounts.get(person).await.map_err(auth_store)?;
            let name = account.and_then(|a| a.name.map(|n| n.shown())).unwrap_or_else(|| "Clinician".to_owned());
            names.insert(person, name);
        }
        let name_of = |id: UserId| names.get(&id).cloned().unwrap_or_else(|| "Clinician".to_owned());
        let document = super::pdf::NoteDocument {
            meta: &note.meta,
            template: &note.template,
            content: &note.content,
            addenda: &note.addenda,
        };
        Ok(super::pdf::render(&document, &name_of))
    }

    async fn open(&self, meta: NoteMeta) -> Result<OpenedNote, NoteServiceError> {
        let template = self.template(&meta.template_key, Some(meta.template_version)).await?;
        let content = self.notes.content(meta.id).await?.ok_or(NoteServiceError::NotFound)?;
        let addenda = self.notes.addenda(meta.id).await?;
        Ok(OpenedNote { meta, template, content, addenda })
    }

    /// The read decision of [`Self::read`] (a refusal audited).
    async fn authorize_read(
        &self,
        who: &Requester,
        meta: &NoteMeta,
        about: About,
    ) -> Result<Decision, NoteServiceError> {
        let me = who.principal.user_id;
        if meta.kind == NoteKind::Psychotherapy {
            let target = Target::Account(meta.author_id);
            return Ok(self.gate.authorize(who, Resource::PsychotherapyNote, Operation::Read, target, about).await?);
        }
        let target = Target::Patient(meta.patient_id);
        if who.principal.role == Role::Patient {
            let decision = self.gate.authorize(who, Resource::SharedNote, Operation::Read, target, about).await?;
            if !self.shared_with_patient(meta) {
                return Err(self.refuse(who, about, Denial::NotPermitted).await);
            }
            return Ok(decision);
        }
        if meta.cosigner_id == Some(me) && meta.author_id != me {
            let target = Target::Account(me);
            return Ok(self.gate.authorize(who, Resource::Supervision, Operation::Read, target, about).await?);
        }
        let decision = self.gate.authorize(who, Resource::ClinicalNote, Operation::Read, target, about).await?;
        if meta.status == NoteStatus::Draft && meta.author_id != me {
            return Err(self.refuse(who, about, Denial::NotOwn).await);
        }
        if matches!(decision, Decision::BreakGlass { .. }) && meta.kind != NoteKind::Progress {
            return Err(self.refuse(who, about, Denial::NotOnCareTeam).await);
        }
        Ok(decision)
    }

    /// Records a refusal the matrix alone could not make, and returns it.
    async fn refuse(&self, who: &Requester, about: About, denial: Denial) -> NoteServiceError {
        let mut denied = self.gate.event(who, about, Outcome::Denied, "denied");
        denied.reason = Some(denial.reason());
        match self.gate.record_all(vec![denied]).await {
            Ok(()) => NoteServiceError::NotAllowed(denial),
            Err(error) => error.into(),
        }
    }

    /// Note `id` as its author may write it: found, theirs, the permission to update still
    /// theirs (care team, or their own psychotherapy note), and still a draft.
    async fn draft_of_author(&self, who: &Requester, id: Uuid) -> Result<NoteMeta, NoteServiceError> {
        let meta = self.notes.get(id).await?.ok_or(NoteServiceError::NotFound)?;
        let about = note_about(&meta, Action::Update);
        self.authorize_write(who, &meta, about).await?;
        if meta.author_id != who.principal.user_id {
            return Err(self.refuse(who, about, Denial::NotOwn).await);
        }
        if meta.status != NoteStatus::Draft {
            return Err(NoteServiceError::Locked);
        }
        Ok(meta)
    }

    /// The write permission on `meta`: the care team's for a record note (never break-glass),
    /// the author's own for a psychotherapy note.
    async fn authorize_write(&self, who: &Requester, meta: &NoteMeta, about: About) -> Result<(), NoteServiceError> {
        if meta.kind == NoteKind::Psychotherapy {
            let target = Target::Account(meta.author_id);
            self.gate.authorize(who, Resource::PsychotherapyNote, Operation::Update, target, about).await?;
        } else {
            let target = Target::Patient(meta.patient_id);
            self.gate.authorize(who, Resource::ClinicalNote, Operation::Update, target, about).await?;
        }
        Ok(())
    }

    /// Opens the caller's draft to go on writing it (on this device or another).
    pub async fn open_draft(&self, who: &Requester, id: Uuid) -> Result<OpenedNote, NoteServiceError> {
        let meta = self.draft_of_author(who, id).await?;
        let about = note_about(&meta, Action::Read);
        self.gate.record_all(vec![self.gate.event(who, about, Outcome::Success, "note_draft_opened")]).await?;
        self.open(meta).await
    }

    /// Replaces the draft's fields (autosave): partial is fine, each given field must be
    /// valid for the note's template version, or nothing is saved. A signed note refuses.
    pub async fn save_draft(&self, who: &Requester, id: Uuid, fields: NoteFields) -> Result<(), NoteServiceError> {
        let meta = self.draft_of_author(who, id).await?;
        let template = self.template(&meta.template_key, Some(meta.template_version)).await?;
        template.check_fields(&fields, false)?;
        let about = note_about(&meta, Action::Update);
        self.gate.record_all(vec![self.gate.event(who, about, Outcome::Success, "note_draft_saved")]).await?;
        let mut content = self.notes.content(id).await?.ok_or(NoteServiceError::NotFound)?;
        content.fields = fields;
        match self.notes.save_draft(id, &content, self.clock.now_ms()).await? {
            true => Ok(()),
            false => Err(NoteServiceError::Locked),
        }
    }

    /// Signs and locks the caller's draft with a fresh TOTP code: every required field filled
    /// in (checked before the code, which a refused draft does not spend), the keyed digest of the content on record (`signed_<digest>`), late entries marked.
    /// A supervised author's record note then awaits the supervisor's co-signature.
    pub async fn sign(&self, who: &Requester, id: Uuid, totp_code: &str) -> Result<NoteMeta, NoteServiceError> {
        let meta = self.draft_of_author(who, id).await?;
        let template = self.template(&meta.template_key, Some(meta.template_version)).await?;
        let content = self.notes.content(id).await?.ok_or(NoteServiceError::NotFound)?;
        // A draft that cannot be signed is refused before the code is checked, so the code is
        // not spent on it (the person fills the section and signs with the same code).
        template.check_fields(&content.fields, true)?;
        self.step_up(who, totp_code).await?;
        let text = content.signing_text(id, &meta.template_key, meta.template_version);
        let digest = self.notes.digest(CLINICAL_NOTES.name, "content", &text);
        let now = self.clock.now_ms();
        let late = self.is_late(meta.service_at_ms, now);
        let supervisor = match meta.kind {
            NoteKind::Psychotherapy => None,
            _ => self.notes.supervisor_of(meta.author_id).await?,
        };
        let status = if supervisor.is_some() { NoteStatus::AwaitingCosign } else { NoteStatus::Final };
        let about = note_about(&meta, Action::Update);
        self.gate.record_all(vec![self.signature_event(who, about, "signed", &digest)]).await?;
        if !self.notes.sign(id, meta.updated_at_ms, status, supervisor, &digest, late, now).await? {
            return Err(NoteServiceError::Conflict("the note changed or was signed meanwhile; open it again"));
        }
        self.notes.get(id).await?.ok_or(NoteServiceError::NotFound)
    }

    /// Co-signs a note awaiting the caller (its author's supervisor), with a fresh TOTP code:
    /// the note becomes final.
    pub async fn cosign(&self, who: &Requester, id: Uuid, totp_code: &str) -> Result<NoteMeta, NoteServiceError> {
        let meta = self.notes.get(id).await?.ok_or(NoteServiceError::NotFound)?;
        let about = note_about(&meta, Action::Update);
        let cosigner = meta.cosigner_id.unwrap_or(meta.author_id);
        self.gate.authorize(who, Resource::Supervision, Operation::Create, Target::Account(cosigner), about).await?;
        if meta.cosigner_id != Some(who.principal.user_id) {
            return Err(self.refuse(who, about, Denial::NotOwn).await);
        }
        if meta.status != NoteStatus::AwaitingCosign {
            return Err(NoteServiceError::Conflict("the note is not awaiting a co-signature"));
        }
        self.step_up(who, totp_code).await?;
        let digest = meta.signed_digest.clone().unwrap_or_default();
        self.gate.record_all(vec![self.signature_event(who, about, "cosigned", &digest)]).await?;
        if !self.notes.cosign(id, who.principal.user_id, self.clock.now_ms()).await? {
            return Err(NoteServiceError::Conflict("the note is not awaiting a co-signature"));
        }
        self.notes.get(id).await?.ok_or(NoteServiceError::NotFound)
    }

    /// Appends a signed addendum to a signed note (a fresh TOTP code): a clinician of the care
    /// team for a record note, the author for a psychotherapy note. Late entries are marked.
    pub async fn add_addendum(
        &self,
        who: &Requester,
        id: Uuid,
        text: &str,
        totp_code: &str,
    ) -> Result<Addendum, NoteServiceError> {
        let meta = self.notes.get(id).await?.ok_or(NoteServiceError::NotFound)?;
        let about = note_about(&meta, Action::Create);
        self.authorize_write(who, &meta, about).await?;
        if meta.status == NoteStatus::Draft {
            return Err(NoteServiceError::Conflict("a draft is changed, not amended: sign it first"));
        }
        let text = plain_text::nfc(text.trim());
        if text.is_empty() || text.chars().count() > MAX_ADDENDUM_CHARS {
            return Err(NoteServiceError::Invalid { field: "text", rule: "must be 1 to 20000 characters" });
        }
        plain_text::check(&text, true)
            .map_err(|refusal| NoteServiceError::Invalid { field: "text", rule: refusal.rule() })?;
        self.step_up(who, totp_code).await?;
        let body = PhiText::new(text);
        let digest = self.notes.digest(NOTE_ADDENDA.name, "body", &format!("{id}\n{}", body.expose()));
        let now = self.clock.now_ms();
        self.gate.record_all(vec![self.signature_event(who, about, "addendum", &digest)]).await?;
        Ok(self
            .notes
            .add_addendum(&meta, who.principal.user_id, &body, &digest, self.is_late(meta.service_at_ms, now), now)
            .await?)
    }

    /// A fresh second factor for one signature.
    async fn step_up(&self, who: &Requester, code: &str) -> Result<(), NoteServiceError> {
        let p = &who.principal;
        self.identity.fresh_totp(p.user_id, p.role, code, who.origin).await.map_err(NoteServiceError::StepUp)
    }

    fn is_late(&self, service_at_ms: i64, now_ms: i64) -> bool {
        now_ms - service_at_ms > i64::from(self.settings.late_entry_hours) * 3_600_000
    }

    /// The audit event of a signature: reason `<what>_<digest>` (the first 52 hex digits of
    /// the keyed digest: a reason code holds 64 characters), so the trail proves what was signed.
    fn signature_event(&self, who: &Requester, about: About, what: &'static str, digest: &str) -> AuditEvent {
        let mut event = self.gate.event(who, about, Outcome::Success, "note_signed");
        let cut = digest.get(..52).unwrap_or(digest);
        if let Some(code) = ReasonCode::new(&format!("{what}_{cut}")) {
            event.reason = Some(code);
        }
        event
    }
}

/// What an access to `note` is about, for its audit event.
fn note_about(note: &NoteMeta, action: Action) -> About {
    About::new(action, ResourceType::Note, Some(note.id)).for_patient(note.patient_id)
}

/// An identity store failure as a notes failure.
fn auth_store(error: AuthError) -> NoteServiceError {
    match error {
        AuthError::Storage(e) => NoteError::Storage(e).into(),
        other => NoteServiceError::StepUp(other),
    }
}
