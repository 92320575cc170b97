//! [`AlertService`]: raising, delivering, acknowledging and following up alerts, whichever
//! transport asks.
//!
//! Raising is in three steps so an alert is stored in the same transaction as the event that
//! raises it: [`AlertService::prepare`] resolves the recipients, decides when an urgent alert
//! escalates, seals what it says and records `alert_raised` (fail closed); the raising service
//! then stores it with [`Prepared::store_in`] inside its own transaction; after the commit,
//! [`AlertService::publish`] pushes it to every recipient's open sessions, on any node. An
//! alert raised at most once per occasion (a sign-in attack) is raised whole by
//! [`AlertService::raise_once`] (`security.rs`).

use std::sync::Arc;

use confidant_actors::audit::{Action, AuditEvent, Outcome, ResourceType, Role};
use confidant_actors::clock::Clock;
use confidant_actors::hub::Topic;
use confidant_actors::ids::{PatientId, UserId};
use confidant_protocol::{AlertKind, AlertState, AlertView, FollowUpNote, ServerFrame, SignInAttack, VERSION};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::AlertError;
use super::store::{self as rows, StoredAlert};
use crate::access::{Gate, Operation, Requester, Resource, Target, matrix};
use crate::auditor::{About, reason};
use crate::crypto::tables::ALERTS;
use crate::crypto::{CryptoError, Field, Keyring};
use crate::identity::accounts::Accounts;
use crate::push::Pusher;
use crate::reminders::outbox::withdraw_staff_notices;
use crate::settings::AlertSettings;
use crate::storage::{Storage, StorageError};

/// The most alerts a (re)connecting session is sent at once (urgent ones first); the rest
/// follow once some are acknowledged, and all are listed over REST.
pub const REPLAY_LIMIT: i64 = 500;
/// `GET /api/v1/alerts` lists the unresolved ones and those of the last week.
const LIST_WINDOW_MS: i64 = 7 * 86_400_000;
/// ...at most this many.
const LIST_LIMIT: i64 = 500;

/// Who an alert is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipients {
    /// One account (the clinician who assigned the form).
    User(UserId),
    /// Every active account of these roles (owners for break-glass).
    Roles(&'static [Role]),
    /// Every active account whose role the permission matrix lets read this resource (owners,
    /// for `security_alert`).
    AllowedToRead(Resource),
}

/// An alert to raise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    /// What it is about.
    pub kind: AlertKind,
    /// The patient concerned; none for an alert about no patient (a sign-in attack).
    pub patient: Option<PatientId>,
    /// The form, for the intake kinds.
    pub assignment: Option<Uuid>,
    /// Whose patient submitted, or who broke the glass; an urgent alert escalates by the
    /// working hours of this clinician.
    pub clinician: Option<UserId>,
    /// The reminder, for `reminder_failed`.
    pub reminder: Option<Uuid>,
    /// The break-glass grant, for `break_glass`.
    pub grant: Option<Uuid>,
    /// What happened, for `sign_in_attack`.
    pub attack: Option<SignInAttack>,
    /// What makes it one of a kind: an alert with the same key is raised once (an HMAC, so it
    /// names no source in the clear).
    pub dedup_key: Option<Vec<u8>>,
    /// Its recipients.
    pub to: Recipients,
}

impl NewAlert {
    /// An alert of `kind` about `patient` for `to`, with no reference yet.
    pub fn new(kind: AlertKind, patient: PatientId, to: Recipients) -> Self {
        Self {
            kind,
            patient: Some(patient),
            assignment: None,
            clinician: None,
            reminder: None,
            grant: None,
            attack: None,
            dedup_key: None,
            to,
        }
    }

    /// What the alert is about, for lists that flag it (an intake assignment, a grant, a reminder).
    fn subject(&self) -> Option<Uuid> {
        self.assignment.or(self.grant).or(self.reminder)
    }
}

/// What an alert says, sealed in its `body`.
#[derive(Serialize, Deserialize)]
struct Body {
    kind: AlertKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    assignment_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    clinician_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    reminder_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sign_in_attack: Option<SignInAttack>,
}

/// An alert opened: its row and what it says.
struct Opened {
    row: StoredAlert,
    body: Body,
    follow_up: Option<FollowUpNote>,
}

impl Opened {
    fn state(&self) -> AlertState {
        state_of(&self.row)
    }

    fn frame(&self) -> ServerFrame {
        ServerFrame::Alert {
            v: VERSION,
            alert_id: self.row.alert_id,
            kind: self.body.kind,
            urgent: self.row.urgent,
            patient_id: self.row.patient_id.map(|p| *p.as_uuid()),
            assignment_id: self.body.assignment_id,
            clinician_id: self.body.clinician_id,
            reminder_id: self.body.reminder_id,
            sign_in_attack: self.body.sign_in_attack.clone(),
            escalation_step: u32::try_from(self.row.escalation_step).unwrap_or(u32::MAX),
            at_ms: self.row.raised_at_ms,
        }
    }

    fn view(self) -> AlertView {
        let state = self.state();
        let r = self.row;
        AlertView {
            alert_id: r.alert_id,
            kind: self.body.kind,
            urgent: r.urgent,
            patient_id: r.patient_id.map(|p| *p.as_uuid()),
            assignment_id: self.body.assignment_id,
            clinician_id: self.body.clinician_id,
            reminder_id: self.body.reminder_id,
            sign_in_attack: self.body.sign_in_attack,
            raised_at_ms: r.raised_at_ms,
            state,
            escalation_step: u32::try_from(r.escalation_step).unwrap_or(u32::MAX),
            acknowledged_by: r.acknowledged_by.map(|u| *u.as_uuid()),
            acknowledged_at_ms: r.acknowledged_at_ms,
            follow_up: self.follow_up,
            followed_up_by: r.followed_up_by.map(|u| *u.as_uuid()),
            followed_up_at_ms: r.followed_up_at_ms,
        }
    }
}

/// Where a stored alert stands.
fn state_of(row: &StoredAlert) -> AlertState {
    match (row.acknowledged_at_ms, row.followed_up_at_ms) {
        (None, _) => AlertState::Open,
        (Some(_), None) if row.urgent => AlertState::Acknowledged,
        (Some(_), _) => AlertState::Resolved,
    }
}

/// Alerts prepared by [`AlertService::prepare`]: audited and sealed, to be stored in the raising
/// transaction and published after it commits.
#[must_use = "an alert prepared must be stored in the raising transaction"]
pub struct Prepared {
    pub(super) alerts: Vec<(StoredAlert, Vec<UserId>, ServerFrame)>,
}

impl Prepared {
    /// Stores the alerts and their recipients in `tx`, the transaction of the raising event.
    pub async fn store_in(&self, tx: &mut sqlx::Transaction<'static, sqlx::Any>) -> Result<(), StorageError> {
        for (alert, recipients, _) in &self.alerts {
            rows::insert(tx, alert, recipients).await?;
        }
        Ok(())
    }

    /// The ids of the alerts, in the order given.
    pub fn ids(&self) -> Vec<Uuid> {
        self.alerts.iter().map(|(a, _, _)| a.alert_id).collect()
    }
}

/// The alerts about one patient that a clinician's view of them shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientAlerts {
    /// Whether an urgent alert awaits its follow-up: the chart's flag.
    pub urgent: bool,
    /// Urgent alerts unresolved or of the last week, newest first.
    pub alerts: Vec<AlertView>,
}

/// Raising, delivering, acknowledging and following up alerts.
#[derive(Clone)]
pub struct AlertService {
    storage: Storage,
    keyring: Arc<Keyring>,
    gate: Gate,
    pusher: Pusher,
    accounts: Accounts,
    clock: Arc<dyn Clock>,
    settings: Arc<AlertSettings>,
}

impl AlertService {
    /// The alerts of `keyring`'s store.
    pub fn new(
        keyring: Arc<Keyring>,
        gate: Gate,
        pusher: Pusher,
        accounts: Accounts,
        clock: Arc<dyn Clock>,
        settings: &AlertSettings,
    ) -> Self {
        let storage = keyring.storage().clone();
        Self { storage, keyring, gate, pusher, accounts, clock, settings: Arc::new(settings.clone()) }
    }

    /// A transaction on the main store, for an event that raises alerts.
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StorageError> {
        self.storage.begin().await
    }

    /// Resolves recipients, decides escalation, seals and audits `alerts` (`alert_raised`,
    /// durable before this returns: if the audit trail cannot take it, nothing is raised).
    pub async fn prepare(&self, alerts: &[NewAlert]) -> Result<Prepared, AlertError> {
        let (prepared, events) = self.seal_all(alerts).await?;
        self.gate.auditor().record_all(events).await.map_err(|_| AlertError::AuditUnavailable)?;
        Ok(prepared)
    }

    /// Resolves recipients, decides escalation and seals `alerts`, with the `alert_raised`
    /// event of each, not yet recorded.
    pub(super) async fn seal_all(&self, alerts: &[NewAlert]) -> Result<(Prepared, Vec<AuditEvent>), AlertError> {
        let now = self.clock.now_ms();
        let mut prepared = Vec::with_capacity(alerts.len());
        let mut events = Vec::with_capacity(alerts.len());
        for new in alerts {
            let recipients = match new.to {
                Recipients::User(user) => vec![user],
                Recipients::Roles(roles) => self.accounts.active_of_roles(roles).await?,
                Recipients::AllowedToRead(resource) => {
                    let roles = matrix::roles_allowed(resource, Operation::Read);
                    self.accounts.active_of_roles(&roles).await?
                }
            };
            let alert_id = Uuid::new_v4();
            let body = Body {
                kind: new.kind,
                assignment_id: new.assignment,
                clinician_id: new.clinician.map(|c| *c.as_uuid()),
                reminder_id: new.reminder,
                sign_in_attack: new.attack.clone(),
            };
            let (key_id, sealed) = self.seal(alert_id, "body", &body)?;
            let urgent = new.kind.is_urgent();
            let escalate_at_ms = if urgent { Some(self.escalation_due(new.clinician, now).await) } else { None };
            let stored = StoredAlert {
                alert_id,
                key_id,
                patient_id: new.patient,
                subject_id: new.subject(),
                body: sealed,
                urgent,
                raised_at_ms: now,
                acknowledged_by: None,
                acknowledged_at_ms: None,
                follow_up: None,
                followed_up_by: None,
                followed_up_at_ms: None,
                escalation_step: 0,
                escalate_at_ms,
                dedup_key: new.dedup_key.clone(),
            };
            let frame = Opened { row: stored.clone(), body, follow_up: None }.frame();
            events.push(self.system_event(Action::Create, alert_id, new.patient, "alert_raised"));
            prepared.push((stored, recipients, frame));
        }
        Ok((Prepared { alerts: prepared }, events))
    }

    /// Pushes committed alerts to their recipients' open sessions (on every node). A push that
    /// fails is logged; the recipient receives the alert from the database when they connect.
    pub async fn publish(&self, prepared: Prepared) {
        for (stored, recipients, frame) in prepared.alerts {
            let about = (None, stored.patient_id);
            self.pusher.push(recipients.into_iter().map(Topic::Alerts), about, &frame, "alert").await;
        }
    }

    /// When an urgent alert raised at `now` for `clinician`'s patient escalates: inside their
    /// working hours after `escalate_after_secs` (or when those hours end, if sooner), outside
    /// them at once.
    async fn escalation_due(&self, clinician: Option<UserId>, now: i64) -> i64 {
        let hours = self.working_hours_of(clinician).await;
        match hours.stretch_end(now, self.settings.utc_offset_minutes) {
            Some(end) => now.saturating_add(self.settings.escalate_after_ms()).min(end),
            None => now,
        }
    }

    /// `clinician`'s own working hours if configured, else the practice's.
    async fn working_hours_of(&self, clinician: Option<UserId>) -> crate::settings::WorkingHours {
        let practice = self.settings.working_hours;
        let Some(clinician) = clinician.filter(|_| !self.settings.clinician_hours.is_empty()) else {
            return practice;
        };
        let Ok(email) = self.accounts.email(clinician).await else { return practice };
        self.settings
            .clinician_hours
            .iter()
            .find(|c| crate::identity::Email::parse(&c.email).is_some_and(|e| e.expose() == email.expose()))
            .map_or(practice, |c| c.working_hours)
    }

    /// The alerts a session of `who` receives when it connects: their unacknowledged alerts,
    /// urgent ones first, then oldest first, each read audited (`alert_delivered`).
    pub async fn replay(&self, who: &Requester) -> Result<Vec<ServerFrame>, AlertError> {
        let rows = rows::pending_for(&self.storage, who.principal.user_id, REPLAY_LIMIT).await?;
        let opened = self.open_all(rows).await?;
        self.record_reads(who, &opened, "alert_delivered").await?;
        Ok(opened.iter().map(Opened::frame).collect())
    }

    /// `who`'s alerts: every unresolved one and those of the last week, newest first.
    pub async fn list(&self, who: &Requester) -> Result<Vec<AlertView>, AlertError> {
        let about = About::new(Action::Read, ResourceType::Alert, None);
        let own = Target::Account(who.principal.user_id);
        self.gate.authorize(who, Resource::Alert, Operation::Read, own, about).await?;
        let since = self.clock.now_ms() - LIST_WINDOW_MS;
        let rows = rows::listed_for(&self.storage, who.principal.user_id, since, LIST_LIMIT).await?;
        let opened = self.open_all(rows).await?;
        self.record_reads(who, &opened, "own_record").await?;
        Ok(opened.into_iter().map(Opened::view).collect())
    }

    /// `patient`'s urgent alerts for a clinician's view of them (intake results, the chart):
    /// with their follow-up notes, so authorized like reading the patient's clinical notes.
    pub async fn of_patient(&self, who: &Requester, patient: PatientId) -> Result<PatientAlerts, AlertError> {
        let about = About::new(Action::Read, ResourceType::Alert, None).for_patient(patient);
        let target = Target::Patient(patient);
        self.gate.authorize(who, Resource::ClinicalNote, Operation::Read, target, about).await?;
        let since = self.clock.now_ms() - LIST_WINDOW_MS;
        let opened = self.open_all(rows::urgent_of_patient(&self.storage, patient, since).await?).await?;
        self.record_reads(who, &opened, "care_team").await?;
        let urgent = opened.iter().any(|o| o.row.followed_up_at_ms.is_none());
        Ok(PatientAlerts { urgent, alerts: opened.into_iter().map(Opened::view).collect() })
    }

    /// The intake assignments of `patient` flagged urgent (an urgent alert awaits its
    /// follow-up), for a list the caller was already allowed to read.
    pub async fn flagged_assignments(&self, patient: PatientId) -> Result<Vec<Uuid>, AlertError> {
        Ok(rows::flagged_subjects(&self.storage, patient).await?)
    }

    /// `who` (a recipient) acknowledges `alert`: its escalation stops and it clears on every
    /// recipient's devices. With `follow_up`, the follow-up is documented too, which takes a
    /// clinician who may write notes about the patient. Acknowledging twice is not an error.
    pub async fn acknowledge(
        &self,
        who: &Requester,
        alert: Uuid,
        follow_up: Option<&FollowUpNote>,
    ) -> Result<AlertState, AlertError> {
        if let Some(note) = follow_up {
            return self.follow_up(who, alert, note).await;
        }
        let row = rows::get(&self.storage, alert).await?.ok_or(AlertError::NotFound)?;
        let about = About::new(Action::Update, ResourceType::Alert, Some(alert)).for_patient_if(row.patient_id);
        let recipients = rows::recipients(&self.storage, alert).await?;
        // A sign-in attack or a failed backup is the practice's, not one recipient's: whoever the matrix lets
        // act on security alerts acknowledges it (an owner invited since it was raised, too).
        // Only an alert about no patient can be one, so no PHI is opened to find out.
        let security = row.patient_id.is_none() && !self.open(&row).await?.body.kind.is_about_a_patient();
        let (resource, target) = if security {
            (Resource::SecurityAlert, Target::Any)
        } else {
            (Resource::Alert, Target::Account(self.owner_for(who, &recipients)))
        };
        self.gate.authorize(who, resource, Operation::Update, target, about).await?;
        if row.acknowledged_at_ms.is_some() {
            return Ok(state_of(&row));
        }
        let event = self.gate.event(who, about, Outcome::Success, "alert_acknowledged");
        self.gate.record_all(vec![event]).await?;
        let now = self.clock.now_ms();
        let mut tx = self.storage.begin().await?;
        if rows::acknowledge(&mut tx, alert, who.principal.user_id, now).await? {
            withdraw_staff_notices(&mut tx, alert, now).await?;
        }
        tx.commit().await?;
        let row = rows::get(&self.storage, alert).await?.ok_or(AlertError::NotFound)?;
        let state = state_of(&row);
        self.announce(alert, &recipients, state, who.principal.user_id, now).await;
        Ok(state)
    }

    /// A clinician who may write notes about the patient documents what was done after `alert`
    /// (acknowledging it, if nobody had): an urgent alert is then resolved and its flag clears.
    pub async fn follow_up(&self, who: &Requester, alert: Uuid, note: &FollowUpNote) -> Result<AlertState, AlertError> {
        if !note.is_valid() {
            return Err(AlertError::InvalidFollowUp);
        }
        let row = rows::get(&self.storage, alert).await?.ok_or(AlertError::NotFound)?;
        // A follow-up is a clinical note about the alert's patient; an alert about no patient
        // (a sign-in attack) takes none.
        let Some(patient) = row.patient_id else { return Err(AlertError::NoFollowUp) };
        let about = About::new(Action::Create, ResourceType::Alert, Some(alert)).for_patient(patient);
        let target = Target::Patient(patient);
        self.gate.authorize(who, Resource::ClinicalNote, Operation::Create, target, about).await?;
        if row.followed_up_at_ms.is_some() {
            return Err(AlertError::AlreadyFollowedUp);
        }
        let event = self.gate.event(who, about, Outcome::Success, "alert_followed_up");
        self.gate.record_all(vec![event]).await?;
        // A row's values share one data key: the body is sealed again with the note.
        let body = self.open(&row).await?.body;
        let plain = zeroize::Zeroizing::new(serde_json::to_vec(&body).map_err(|_| StorageError::Encode)?);
        let (row_id, sealer) = (alert.to_string(), self.keyring.sealer());
        let body = sealer.seal(field(&row_id, "body"), &plain);
        let sealed_note = sealer.seal(field(&row_id, "follow_up"), note.expose().as_bytes());
        let now = self.clock.now_ms();
        let by = who.principal.user_id;
        let key_id = i64::from(sealer.key_id());
        let done = rows::FollowUp { key_id, body: &body, note: &sealed_note, by, at_ms: now };
        let mut tx = self.storage.begin().await?;
        if !rows::follow_up(&mut tx, alert, &done).await? {
            return Err(AlertError::AlreadyFollowedUp);
        }
        withdraw_staff_notices(&mut tx, alert, now).await?;
        tx.commit().await?;
        let recipients = rows::recipients(&self.storage, alert).await?;
        self.announce(alert, &recipients, AlertState::Resolved, by, now).await;
        Ok(AlertState::Resolved)
    }

    /// Tells every recipient's sessions that `alert` now stands at `state`.
    async fn announce(&self, alert: Uuid, recipients: &[UserId], state: AlertState, by: UserId, at_ms: i64) {
        let frame = ServerFrame::AlertUpdated { v: VERSION, alert_id: alert, state, by: *by.as_uuid(), at_ms };
        self.pusher.push(recipients.iter().copied().map(Topic::Alerts), (None, None), &frame, "alert_updated").await;
    }

    /// The account an alert "belongs to" for the permission check: the caller's own when they
    /// are a recipient (so the matrix's `own` scope admits them), another's otherwise.
    fn owner_for(&self, who: &Requester, recipients: &[UserId]) -> UserId {
        let me = who.principal.user_id;
        if recipients.contains(&me) {
            me
        } else {
            recipients.first().copied().unwrap_or(UserId::from_uuid(Uuid::nil()))
        }
    }

    /// Records `who` reading each of `alerts`, for reason `why`, durable before they are sent.
    async fn record_reads(&self, who: &Requester, alerts: &[Opened], why: &'static str) -> Result<(), AlertError> {
        if alerts.is_empty() {
            return Ok(());
        }
        let events = alerts
            .iter()
            .map(|o| {
                let about = About::new(Action::Read, ResourceType::Alert, Some(o.row.alert_id))
                    .for_patient_if(o.row.patient_id);
                self.gate.event(who, about, Outcome::Success, why)
            })
            .collect();
        Ok(self.gate.record_all(events).await?)
    }

    /// An event the server records on its own (raising, escalating), naming the alert's
    /// patient when it has one.
    pub(super) fn system_event(
        &self,
        action: Action,
        alert: Uuid,
        patient: Option<PatientId>,
        why: &'static str,
    ) -> AuditEvent {
        let event = self
            .gate
            .auditor()
            .system(action, Outcome::Success)
            .on(ResourceType::Alert, Some(alert))
            .because(reason(why));
        match patient {
            Some(patient) => event.for_patient(patient),
            None => event,
        }
    }

    /// The alert `alert` as its recipients' sessions receive it, for escalation.
    pub(super) async fn frame_of(&self, alert: Uuid) -> Result<Option<(ServerFrame, Option<PatientId>)>, AlertError> {
        let Some(row) = rows::get(&self.storage, alert).await? else { return Ok(None) };
        let opened = self.open(&row).await?;
        Ok(Some((opened.frame(), row.patient_id)))
    }

    pub(super) fn storage(&self) -> &Storage {
        &self.storage
    }

    pub(super) fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    pub(super) fn pusher(&self) -> &Pusher {
        &self.pusher
    }

    pub(super) fn auditor(&self) -> &crate::auditor::Auditor {
        self.gate.auditor()
    }

    pub(super) fn accounts(&self) -> &Accounts {
        &self.accounts
    }

    pub(super) fn settings(&self) -> &AlertSettings {
        &self.settings
    }

    pub(super) fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    fn seal(&self, alert: Uuid, column: &'static str, body: &Body) -> Result<(i64, Vec<u8>), AlertError> {
        let plain = zeroize::Zeroizing::new(serde_json::to_vec(body).map_err(|_| StorageError::Encode)?);
        let sealer = self.keyring.sealer();
        Ok((i64::from(sealer.key_id()), sealer.seal(field(&alert.to_string(), column), &plain)))
    }

    async fn open(&self, row: &StoredAlert) -> Result<Opened, AlertError> {
        let id = row.alert_id.to_string();
        let plain = self.keyring.open_value(field(&id, "body"), &row.body).await?;
        let body: Body = serde_json::from_slice(&plain).map_err(|_| CryptoError::Integrity)?;
        let follow_up = match &row.follow_up {
            Some(sealed) => {
                let plain = self.keyring.open_value(field(&id, "follow_up"), sealed).await?;
                let text = std::str::from_utf8(&plain).map_err(|_| CryptoError::Integrity)?;
                Some(FollowUpNote::new(text).ok_or(CryptoError::Integrity)?)
            }
            None => None,
        };
        Ok(Opened { row: row.clone(), body, follow_up })
    }

    async fn open_all(&self, rows: Vec<StoredAlert>) -> Result<Vec<Opened>, AlertError> {
        let mut opened = Vec::with_capacity(rows.len());
        for row in &rows {
            opened.push(self.open(row).await?);
        }
        Ok(opened)
    }
}

/// A sealed column of the alert whose id is `row_id` (the id is in the AAD).
fn field<'a>(row_id: &'a str, column: &'static str) -> Field<'a> {
    Field { table: ALERTS.name, column, row_id }
}
