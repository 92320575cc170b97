//! The `ReminderScheduler` actor: every `reminders.poll_interval_ms` it settles expired claims,
//! claims the due rows (a lease in the database, so several nodes never work on the same one),
//! writes each (an appointment reminder to its patient, a staff notice to a staff account, or
//! an audit head email to an owner) and hands it to the [`Mailer`], then records how it ended: sent, retried after an
//! exponential backoff, failed for good with a reason code, or withdrawn. Each send is audited
//! (ids and codes only) before the message leaves; if the audit trail cannot take the event,
//! nothing is sent.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use confidant_actors::audit::{Action, AuditEvent, Outcome, ResourceType, Role};
use confidant_actors::clock::Clock;
use confidant_actors::ids::{NodeId, PatientId, UserId};
use confidant_actors::lifecycle::Shutdown;
use confidant_protocol::AlertKind;
use lettre::Message;
use lettre::message::Mailbox;
use uuid::Uuid;

/// The "Clinician:" of a reminder with details when the clinician has no display name yet.
const UNNAMED_CLINICIAN: &str = "your clinician";

use super::ReminderError;
use super::content::{Details, Kind, Letter, Templates};
use super::mailer::{Deliver, DeliveryError, Mailer, Probe};
use super::outbox::{Claimed, Finish, Job, Outbox};
use super::preferences::PreferenceStore;
use crate::access::{Operation, Resource, matrix};
use crate::alerts::{AlertError, AlertService, NewAlert, Recipients};
use crate::audit::signed_head::SignedHead;
use crate::auditor::{Auditor, reason};
use crate::identity::AuthError;
use crate::identity::accounts::{Account, AccountStatus, Accounts};
use crate::patients::{PatientError, Patients};
use crate::schedule::Schedule;
use crate::settings::ReminderSettings;

/// What the scheduler works with.
#[derive(Clone)]
pub struct SchedulerDeps {
    /// The outbox.
    pub outbox: Outbox,
    /// Patients' choices and keys.
    pub preferences: PreferenceStore,
    /// Appointments (read when the reminder is written, so it shows the current state).
    pub schedule: Schedule,
    /// Patient records (the recipient's address).
    pub patients: Patients,
    /// Accounts (how the clinician is named; a staff notice's recipient).
    pub accounts: Accounts,
    /// The practice's templates.
    pub templates: Arc<Templates>,
    /// The SMTP client.
    pub mailer: Addr<Mailer>,
    /// Records each send and its outcome (the node's audit chain).
    pub auditor: Auditor,
    /// Raises `reminder_failed` when a reminder fails for good.
    pub alerts: AlertService,
    /// Time, injectable for tests.
    pub clock: Arc<dyn Clock>,
    /// Polling, leases, retries.
    pub settings: ReminderSettings,
}

/// Runs one pass now: settle expired claims, claim what is due, send it. Passes never overlap.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<Report, ReminderError>")]
pub struct RunDue;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    /// Accepted by the SMTP server.
    pub sent: usize,
    /// Put back for a later attempt.
    pub retried: usize,
    /// Failed for good (including claims found expired after hand-over: outcome unknown).
    pub failed: usize,
    /// No longer wanted.
    pub withdrawn: usize,
}

/// The scheduler of this node.
pub struct ReminderScheduler {
    deps: Arc<SchedulerDeps>,
    pass: Arc<tokio::sync::Mutex<()>>,
    stopping: bool,
}

impl ReminderScheduler {
    /// A scheduler over `deps`.
    pub fn new(deps: SchedulerDeps) -> Self {
        Self { deps: Arc::new(deps), pass: Arc::new(tokio::sync::Mutex::new(())), stopping: false }
    }
}

impl Actor for ReminderScheduler {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let every = Duration::from_millis(self.deps.settings.poll_interval_ms);
        ctx.run_interval(every, |actor, ctx| {
            // A pass still running (a slow SMTP server) makes this tick a no-op.
            if !actor.stopping && actor.pass.try_lock().is_ok() {
                ctx.notify(RunDue);
            }
        });
    }
}

impl Handler<RunDue> for ReminderScheduler {
    type Result = ResponseFuture<Result<Report, ReminderError>>;

    fn handle(&mut self, _msg: RunDue, _ctx: &mut Self::Context) -> Self::Result {
        let (deps, pass) = (self.deps.clone(), self.pass.clone());
        Box::pin(async move {
            let _running = pass.lock().await;
            let report = run_pass(&deps).await;
            if let Err(error) = &report {
                tracing::error!(%error, "reminder pass failed; the next one retries");
            }
            report
        })
    }
}

impl Handler<Shutdown> for ReminderScheduler {
    type Result = ResponseFuture<()>;

    /// Takes no new pass and waits for the one in flight (each send is bounded by the SMTP
    /// timeouts; a claim cut short by the deadline is settled by recovery).
    fn handle(&mut self, _msg: Shutdown, _ctx: &mut Self::Context) -> Self::Result {
        self.stopping = true;
        let pass = self.pass.clone();
        Box::pin(async move {
            let _ = pass.lock().await;
        })
    }
}

async fn run_pass(d: &SchedulerDeps) -> Result<Report, ReminderError> {
    let mut report = Report::default();
    let now = d.clock.now_ms();
    for (id, patient) in d.outbox.recover(now).await? {
        if !settle(d, id, patient, Ending::OutcomeUnknown { at_ms: now }).await? {
            continue;
        }
        tracing::warn!(reminder_id = %id, "a reminder's claim expired after it was handed to SMTP: failed as outcome_unknown, not resent");
        audit_outcome(d, id, patient, Outcome::Error, "outcome_unknown").await;
        report.failed += 1;
    }
    let owner = d.auditor.node_id().to_string();
    let claimed = d.outbox.claim(&owner, now, d.settings.lease_ms(), d.settings.batch).await?;
    for reminder in claimed {
        let finish = match process(d, &reminder, &owner).await {
            Ok(Some(finish)) => finish,
            Ok(None) => continue,
            Err(error) => {
                tracing::error!(reminder_id = %reminder.id, %error, "could not prepare a reminder");
                retry_or_fail(d, &reminder, "internal_error")
            }
        };
        let ending = Ending::Claim { owner: &owner, finish, at_ms: d.clock.now_ms() };
        if !settle(d, reminder.id, reminder.job.patient(), ending).await? {
            tracing::warn!(reminder_id = %reminder.id, "the claim on a reminder was lost before its outcome was recorded");
            continue;
        }
        let (outcome, code) = match finish {
            Finish::Sent { encrypted } => {
                report.sent += 1;
                (Outcome::Success, AuditCodes::of(&reminder.job, encrypted).sent)
            }
            Finish::Retry { reason, .. } => {
                report.retried += 1;
                (Outcome::Error, reason)
            }
            Finish::Failed { reason } => {
                report.failed += 1;
                tracing::warn!(reminder_id = %reminder.id, reason, "a reminder failed for good");
                (Outcome::Error, reason)
            }
            Finish::Withdrawn { reason } => {
                report.withdrawn += 1;
                (Outcome::Success, reason)
            }
        };
        tracing::info!(reminder_id = %reminder.id, outcome = outcome.as_str(), reason = code, "reminder attempt recorded");
        audit_outcome(d, reminder.id, reminder.job.patient(), outcome, code).await;
    }
    Ok(report)
}

/// How a claimed row ends.
#[derive(Clone, Copy)]
enum Ending<'a> {
    /// The claimant records `finish`.
    Claim { owner: &'a str, finish: Finish, at_ms: i64 },
    /// Recovery fails an expired, handed-over claim as `outcome_unknown`.
    OutcomeUnknown { at_ms: i64 },
}

impl Ending<'_> {
    /// Whether the row fails for good.
    fn fails(self) -> bool {
        matches!(self, Ending::OutcomeUnknown { .. } | Ending::Claim { finish: Finish::Failed { .. }, .. })
    }
}

/// Records how row `id` ended (conditional on the claim: `false` when it was lost). An
/// appointment reminder that fails for good raises a `reminder_failed` alert to front desk and
/// owners in the same transaction, so nobody assumes a patient was reminded when they were not.
async fn settle(
    d: &SchedulerDeps,
    id: Uuid,
    patient: Option<PatientId>,
    ending: Ending<'_>,
) -> Result<bool, ReminderError> {
    let alert = match patient.filter(|_| ending.fails()) {
        Some(patient) => {
            let to = Recipients::Roles(&[Role::FrontDesk, Role::PracticeOwner]);
            let new = NewAlert { reminder: Some(id), ..NewAlert::new(AlertKind::ReminderFailed, patient, to) };
            Some(d.alerts.prepare(&[new]).await.map_err(alert_error)?)
        }
        None => None,
    };
    let mut tx = d.outbox.begin().await?;
    let changed = match ending {
        Ending::Claim { owner, finish, at_ms } => d.outbox.finish_in(&mut tx, id, owner, finish, at_ms).await?,
        Ending::OutcomeUnknown { at_ms } => d.outbox.fail_unknown_in(&mut tx, id, at_ms).await?,
    };
    if !changed {
        return Ok(false);
    }
    if let Some(alert) = &alert {
        alert.store_in(&mut tx).await?;
    }
    tx.commit().await.map_err(crate::storage::StorageError::from)?;
    if let Some(alert) = alert {
        d.alerts.publish(alert).await;
    }
    Ok(true)
}

/// An alert failure as the scheduler reports it (a pass that fails is retried by the next).
fn alert_error(error: AlertError) -> ReminderError {
    match error {
        AlertError::Storage(e) => ReminderError::Storage(e),
        AlertError::Crypto(e) => ReminderError::Crypto(e),
        AlertError::Outbox(e) => e,
        _ => ReminderError::AuditUnavailable,
    }
}

/// What writing a claimed row came to.
enum Written {
    /// A message to send.
    Ready(Outgoing),
    /// Nothing to send: how the row ends.
    Settled(Finish),
}

/// A message written for a claimed row.
struct Outgoing {
    /// The message (its To header is the recipient's address).
    message: Message,
    /// Whether its body is OpenPGP-encrypted.
    encrypted: bool,
}

/// The audit reason codes of a send (recorded before the message leaves) and of its success.
struct AuditCodes {
    send: &'static str,
    sent: &'static str,
}

impl AuditCodes {
    fn of(job: &Job, encrypted: bool) -> Self {
        let (send, sent) = match (job, encrypted) {
            (Job::Reminder { .. }, false) => ("reminder_send", "reminder_sent"),
            (Job::Reminder { .. }, true) => ("reminder_send_encrypted", "reminder_sent_encrypted"),
            (Job::StaffNotice { .. }, _) => ("staff_notice_send", "staff_notice_sent"),
            (Job::AuditHead { .. }, _) => ("audit_head_send", "audit_head_sent"),
        };
        Self { send, sent }
    }
}

/// Writes and sends one claimed row; `None` when the claim was lost before hand-over (another
/// node owns it now, so this one records nothing).
async fn process(d: &SchedulerDeps, c: &Claimed, owner: &str) -> Result<Option<Finish>, ReminderError> {
    let written = match c.job {
        Job::Reminder { appointment_id, patient_id, kind } => {
            write_reminder(d, c, appointment_id, patient_id, kind).await?
        }
        Job::StaffNotice { recipient, .. } => write_staff_notice(d, c, recipient).await?,
        Job::AuditHead { node_id, period, recipient } => write_audit_heads(d, c, node_id, period, recipient).await?,
    };
    match written {
        Written::Ready(outgoing) => send(d, c, owner, outgoing).await,
        Written::Settled(finish) => Ok(Some(finish)),
    }
}

/// An appointment reminder to its patient, as the appointment and the patient's choices stand
/// now: withdrawn if it no longer applies, encrypted when the patient has a usable key.
async fn write_reminder(
    d: &SchedulerDeps,
    c: &Claimed,
    appointment_id: Uuid,
    patient_id: PatientId,
    kind: Kind,
) -> Result<Written, ReminderError> {
    let now = d.clock.now_ms();
    let Some(appointment) = d.schedule.get(appointment_id).await.map_err(schedule_error)? else {
        return Ok(Written::Settled(Finish::Failed { reason: "appointment_missing" }));
    };
    if kind == Kind::Upcoming && (appointment.status != "booked" || appointment.starts_at_ms <= now) {
        return Ok(Written::Settled(Finish::Withdrawn { reason: "appointment_changed" }));
    }
    let preferences = d.preferences.get(patient_id).await?;
    if !preferences.email_enabled {
        return Ok(Written::Settled(Finish::Withdrawn { reason: "reminders_off" }));
    }
    let patient = d.patients.get(patient_id).await.map_err(patient_error)?;
    let Some(email) = patient.and_then(|p| p.record.email) else {
        return Ok(Written::Settled(Finish::Failed { reason: "no_email" }));
    };
    let Ok(to) = email.expose().parse::<Mailbox>() else {
        return Ok(Written::Settled(Finish::Failed { reason: "bad_address" }));
    };
    // "Dr. Ana Ruiz, PsyD"; a clinician not named yet is not named (a patient is never shown
    // a member of staff's email, as in the staff directory).
    let clinician = match d.accounts.get(UserId::from_uuid(appointment.clinician_id)).await {
        Ok(Some(Account { name: Some(name), .. })) => name.shown(),
        _ => UNNAMED_CLINICIAN.to_owned(),
    };
    let details = Details { starts_at_ms: appointment.starts_at_ms, ends_at_ms: appointment.ends_at_ms, clinician };
    // A key that expired or was revoked since it was registered: the reminder goes without
    // details (which is always safe) rather than not at all.
    let key = preferences.pgp_key.as_ref().filter(|key| key.is_usable());
    if preferences.pgp_key.is_some() && key.is_none() {
        tracing::warn!(reminder_id = %c.id, "the patient's OpenPGP key is no longer usable; sending without details");
    }
    let letter = Letter { kind, to, message_id: message_id(d, c), details: &details, key };
    Ok(Written::Ready(Outgoing { message: d.templates.write(&letter)?, encrypted: key.is_some() }))
}

/// A staff notice to `recipient`'s address, plain (never encrypted: it carries nothing to
/// hide); withdrawn when the account is gone, not active, or not a staff account.
async fn write_staff_notice(d: &SchedulerDeps, c: &Claimed, recipient: UserId) -> Result<Written, ReminderError> {
    let account = d.accounts.get(recipient).await.map_err(account_error)?;
    let Some(account) = account.filter(|a| a.status == AccountStatus::Active) else {
        return Ok(Written::Settled(Finish::Withdrawn { reason: "recipient_inactive" }));
    };
    if account.role == Role::Patient {
        return Ok(Written::Settled(Finish::Withdrawn { reason: "recipient_not_staff" }));
    }
    let email = d.accounts.email(recipient).await.map_err(account_error)?;
    let Ok(to) = email.expose().parse::<Mailbox>() else {
        return Ok(Written::Settled(Finish::Failed { reason: "bad_address" }));
    };
    let message = d.templates.write_staff_notice(to, &message_id(d, c))?;
    Ok(Written::Ready(Outgoing { message, encrypted: false }))
}

/// An audit head email to `recipient`: `node_id`'s signed heads for `period`, plain (nothing in
/// it is PHI or secret). Withdrawn when the account is gone, not active, or no longer one the
/// matrix lets read the audit log (an owner).
async fn write_audit_heads(
    d: &SchedulerDeps,
    c: &Claimed,
    node_id: NodeId,
    period: i64,
    recipient: UserId,
) -> Result<Written, ReminderError> {
    let account = d.accounts.get(recipient).await.map_err(account_error)?;
    let Some(account) = account.filter(|a| a.status == AccountStatus::Active) else {
        return Ok(Written::Settled(Finish::Withdrawn { reason: "recipient_inactive" }));
    };
    if !matrix::roles_allowed(Resource::AuditLog, Operation::Read).contains(&account.role) {
        return Ok(Written::Settled(Finish::Withdrawn { reason: "recipient_not_owner" }));
    }
    let Some(lines) = d.outbox.audit_heads(node_id, period).await? else {
        return Ok(Written::Settled(Finish::Failed { reason: "report_missing" }));
    };
    let Ok(heads) = lines.iter().map(|line| SignedHead::parse(line)).collect::<Result<Vec<_>, _>>() else {
        return Ok(Written::Settled(Finish::Failed { reason: "report_unreadable" }));
    };
    let email = d.accounts.email(recipient).await.map_err(account_error)?;
    let Ok(to) = email.expose().parse::<Mailbox>() else {
        return Ok(Written::Settled(Finish::Failed { reason: "bad_address" }));
    };
    let message = d.templates.write_audit_heads(to, &message_id(d, c), &node_id.to_string(), &heads)?;
    Ok(Written::Ready(Outgoing { message, encrypted: false }))
}

/// The row's stable Message-ID (without angle brackets), in the sender's domain.
fn message_id(d: &SchedulerDeps, c: &Claimed) -> String {
    format!("{}@{}", c.message_id, d.templates.from().email.domain())
}

/// Audits the send, checks the SMTP server answers, records the hand-over and offers the
/// message; `None` when the claim was lost before hand-over.
async fn send(
    d: &SchedulerDeps,
    c: &Claimed,
    owner: &str,
    outgoing: Outgoing,
) -> Result<Option<Finish>, ReminderError> {
    // The recipient's address leaves with the message: audited first, or not sent.
    let codes = AuditCodes::of(&c.job, outgoing.encrypted);
    if d.auditor.record(event(d, c.id, c.job.patient(), Outcome::Success, codes.send)).await.is_err() {
        return Ok(Some(retry_or_fail(d, c, "audit_unavailable")));
    }
    // Connect, TLS and AUTH before hand-over: an unreachable server or a failed handshake is
    // then certainly "not sent" and simply retried.
    match d.mailer.send(Probe).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => return Ok(Some(delivery_failed(d, c, error))),
        Err(_) => return Ok(Some(retry_or_fail(d, c, "mailer_stopped"))),
    }
    if !d.outbox.hand_over(c.id, owner, d.clock.now_ms()).await? {
        return Ok(None);
    }
    Ok(Some(match d.mailer.send(Deliver { message: outgoing.message }).await {
        Ok(Ok(())) => Finish::Sent { encrypted: outgoing.encrypted },
        // A reply code means the server did not take the message.
        Ok(Err(error)) if error.is_reply() => delivery_failed(d, c, error),
        // Cut off mid-transaction: the server may have taken it. Never resend (at most once).
        Ok(Err(_)) | Err(_) => Finish::Failed { reason: "outcome_unknown" },
    }))
}

fn delivery_failed(d: &SchedulerDeps, c: &Claimed, error: DeliveryError) -> Finish {
    if error.is_permanent() { Finish::Failed { reason: error.reason() } } else { retry_or_fail(d, c, error.reason()) }
}

/// Another attempt after `retry_base_secs * 2^(attempts - 1)`, at most `retry_max_secs`; or,
/// after `max_attempts`, failed for good with `reason`.
fn retry_or_fail(d: &SchedulerDeps, c: &Claimed, reason: &'static str) -> Finish {
    let s = &d.settings;
    if c.attempts >= s.max_attempts {
        return Finish::Failed { reason };
    }
    let doubling = 1u64.checked_shl(c.attempts.saturating_sub(1)).unwrap_or(u64::MAX);
    let wait_secs = s.retry_base_secs.saturating_mul(doubling).min(s.retry_max_secs);
    let wait_ms = i64::try_from(wait_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    Finish::Retry { at_ms: d.clock.now_ms().saturating_add(wait_ms), reason }
}

/// A system export of reminder (or staff notice) `id`, naming the patient when there is one.
fn event(d: &SchedulerDeps, id: Uuid, patient: Option<PatientId>, outcome: Outcome, code: &'static str) -> AuditEvent {
    let event = d.auditor.system(Action::Export, outcome).on(ResourceType::Reminder, Some(id)).because(reason(code));
    match patient {
        Some(patient) => event.for_patient(patient),
        None => event,
    }
}

/// The outcome, audited; a failure to audit it is logged (the send itself was audited before).
async fn audit_outcome(d: &SchedulerDeps, id: Uuid, patient: Option<PatientId>, outcome: Outcome, code: &'static str) {
    if d.auditor.record(event(d, id, patient, outcome, code)).await.is_err() {
        tracing::error!(reminder_id = %id, "could not audit a reminder's outcome");
    }
}

fn schedule_error(error: crate::schedule::ScheduleError) -> ReminderError {
    match error {
        crate::schedule::ScheduleError::Storage(e) => ReminderError::Storage(e),
        crate::schedule::ScheduleError::Reminders(e) => e,
        _ => ReminderError::NotFound,
    }
}

fn account_error(error: AuthError) -> ReminderError {
    match error {
        AuthError::Storage(e) => ReminderError::Storage(e),
        AuthError::Crypto(e) => ReminderError::Crypto(e),
        _ => ReminderError::NotFound,
    }
}

fn patient_error(error: PatientError) -> ReminderError {
    match error {
        PatientError::Storage(e) => ReminderError::Storage(e),
        PatientError::Crypto(e) => ReminderError::Crypto(e),
        PatientError::Invalid(_) => ReminderError::Build,
    }
}
