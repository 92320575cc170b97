//! Escalation: an urgent alert nobody acknowledged by its deadline goes to the practice's
//! on-call list, live and by a staff notice email that carries no PHI ("An urgent item is
//! waiting in Confidant", with the portal link), queued in the reminder outbox and sent by its
//! mailer. Then again every `repeat_after_secs`, up to `max_escalations` steps.
//!
//! Exactly once per step, across nodes: a step is taken by a conditional update on the steps
//! taken so far, in the transaction that also adds the on-call recipients and queues their
//! notices (one per step and person, unique in the outbox). The node whose update lost does
//! nothing. The [`Escalator`] of each node looks for due steps every `poll_interval_ms`; its
//! clock is the services' one, so tests move time instead of sleeping.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use confidant_actors::audit::{Action, Role};
use confidant_actors::hub::Topic;
use confidant_actors::ids::UserId;
use confidant_actors::lifecycle::Shutdown;
use confidant_protocol::ServerFrame;
use uuid::Uuid;

use super::store as rows;
use super::{AlertError, AlertService};
use crate::identity::{AccountStatus, Email};
use crate::reminders::outbox::{StaffNotice, queue_staff_notice};

/// At most this many alerts escalated per pass.
const BATCH: i64 = 100;

/// Runs one pass now: takes every escalation step that is due. Passes never overlap.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "Result<usize, AlertError>")]
pub struct EscalateDue;

/// The escalation worker of this node.
pub struct Escalator {
    alerts: AlertService,
    pass: Arc<tokio::sync::Mutex<()>>,
    stopping: bool,
}

impl Escalator {
    /// A worker over `alerts`.
    pub fn new(alerts: AlertService) -> Self {
        Self { alerts, pass: Arc::new(tokio::sync::Mutex::new(())), stopping: false }
    }
}

impl Actor for Escalator {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        let every = Duration::from_millis(self.alerts.settings().poll_interval_ms);
        ctx.run_interval(every, |actor, ctx| {
            if !actor.stopping && actor.pass.try_lock().is_ok() {
                ctx.notify(EscalateDue);
            }
        });
    }
}

impl Handler<EscalateDue> for Escalator {
    type Result = ResponseFuture<Result<usize, AlertError>>;

    fn handle(&mut self, _msg: EscalateDue, _ctx: &mut Self::Context) -> Self::Result {
        let (alerts, pass) = (self.alerts.clone(), self.pass.clone());
        Box::pin(async move {
            let _running = pass.lock().await;
            let taken = escalate_due(&alerts).await;
            if let Err(error) = &taken {
                tracing::error!(%error, "alert escalation pass failed; the next one retries");
            }
            taken
        })
    }
}

impl Handler<Shutdown> for Escalator {
    type Result = ResponseFuture<()>;

    /// Takes no new pass and waits for the one in flight.
    fn handle(&mut self, _msg: Shutdown, _ctx: &mut Self::Context) -> Self::Result {
        self.stopping = true;
        let pass = self.pass.clone();
        Box::pin(async move {
            let _ = pass.lock().await;
        })
    }
}

/// Takes every due escalation step; returns how many this node took.
pub async fn escalate_due(alerts: &AlertService) -> Result<usize, AlertError> {
    let now = alerts.clock().now_ms();
    let due = rows::due(alerts.storage(), now, BATCH).await?;
    if due.is_empty() {
        return Ok(0);
    }
    let on_call = on_call(alerts).await?;
    if on_call.is_empty() {
        tracing::error!("an urgent alert is due to escalate, but the on-call list names no active owner or clinician");
        return Ok(0);
    }
    let mut taken = 0;
    for (alert, step) in due {
        if take_step(alerts, alert, step, &on_call, now).await? {
            taken += 1;
        }
    }
    Ok(taken)
}

/// Takes step `step + 1` of `alert` for `on_call`: the step (a conditional update), the
/// recipients and the notices in one transaction, which commits only once the step's audit
/// record is durable (fail closed; the node that lost the update records nothing); then the
/// live push to every recipient.
async fn take_step(
    alerts: &AlertService,
    alert: Uuid,
    step: i64,
    on_call: &[UserId],
    now: i64,
) -> Result<bool, AlertError> {
    let Some((frame, patient)) = alerts.frame_of(alert).await? else { return Ok(false) };
    let settings = alerts.settings();
    let next_step = step + 1;
    let next_at =
        (next_step < i64::from(settings.max_escalations)).then(|| now.saturating_add(settings.repeat_after_ms()));
    let mut tx = alerts.begin().await?;
    if !rows::take_step(&mut tx, alert, step, next_at).await? {
        return Ok(false);
    }
    rows::add_recipients(&mut tx, alert, on_call, next_step, now).await?;
    let step_number = u32::try_from(next_step).unwrap_or(u32::MAX);
    for &recipient in on_call {
        let notice = StaffNotice { alert_id: alert, step: step_number, recipient, now_ms: now };
        queue_staff_notice(&mut tx, &notice).await?;
    }
    let event = alerts.system_event(Action::Update, alert, patient, "alert_escalated");
    alerts.auditor().record(event).await.map_err(|_| AlertError::AuditUnavailable)?;
    tx.commit().await?;
    tracing::warn!(alert_id = %alert, step = next_step, on_call = on_call.len(), "an urgent alert escalated to the on-call list");
    let recipients = rows::recipients(alerts.storage(), alert).await?;
    let frame = with_step(frame, step_number);
    alerts.pusher().push(recipients.into_iter().map(Topic::Alerts), (None, patient), &frame, "alert_escalated").await;
    Ok(true)
}

/// `frame` (an `alert`) as of escalation step `step`.
fn with_step(frame: ServerFrame, step: u32) -> ServerFrame {
    match frame {
        ServerFrame::Alert {
            escalation_step: _,
            v,
            alert_id,
            kind,
            urgent,
            patient_id,
            assignment_id,
            clinician_id,
            reminder_id,
            sign_in_attack,
            at_ms,
        } => ServerFrame::Alert {
            v,
            alert_id,
            kind,
            urgent,
            patient_id,
            assignment_id,
            clinician_id,
            reminder_id,
            sign_in_attack,
            escalation_step: step,
            at_ms,
        },
        other => other,
    }
}

/// The on-call list: the active owners and clinicians named in `alerts.on_call`, or every
/// active owner when it names none.
async fn on_call(alerts: &AlertService) -> Result<Vec<UserId>, AlertError> {
    let mut users = Vec::new();
    for text in &alerts.settings().on_call {
        let Some(email) = Email::parse(text) else { continue };
        let found = alerts.accounts().credentials(&email).await?;
        match found.map(|c| c.account) {
            Some(a) if a.status == AccountStatus::Active && matches!(a.role, Role::PracticeOwner | Role::Clinician) => {
                users.push(a.user_id);
            }
            _ => tracing::warn!("an alerts.on_call entry names no active owner or clinician account; skipped"),
        }
    }
    if users.is_empty() {
        users = alerts.accounts().active_of_roles(&[Role::PracticeOwner]).await?;
    }
    users.sort();
    users.dedup();
    Ok(users)
}
