//! `reminders`, the durable outbox. Rows are queued in the transaction of the change that causes
//! them ([`on_change`] for appointment reminders, [`queue_staff_notice`] for alert escalation's
//! staff notices, [`queue_audit_heads`] for the email witness's signed heads), claimed with a lease so that only one node works on a row at a time
//! ([`Outbox::claim`]), marked just before the message is offered to the SMTP server
//! ([`Outbox::hand_over`]) and finished once ([`Outbox::finish`]). Every state change is a
//! conditional update on the claimant and the state it expects, so a node whose lease ran out
//! can no longer change a row another node took over. The statements are in `store/outbox.rs`
//! and `store/staff_notices.rs`.

use confidant_actors::ids::{NodeId, PatientId, UserId};
use confidant_protocol::{Appointment, ScheduleChange};
use uuid::Uuid;

use super::ReminderError;
use super::content::Kind;
use super::preferences::plan_in;
use super::store::audit_heads;
use super::store::outbox::{self as rows, NewReminder};
use super::store::staff_notices as notices;
use crate::storage::Storage;

pub use super::store::audit_heads::{AuditHeadEmailView, AuditHeadReport};
pub use super::store::outbox::{Claimed, Finish, Job, ReminderState, ReminderView};
pub use super::store::staff_notices::{StaffNotice, StaffNoticeView};

/// Queues, withdraws and reports reminders.
#[derive(Clone)]
pub struct Outbox {
    storage: Storage,
}

/// What a schedule change (`change`, leaving `appointment` as it is now) means for reminders,
/// inside the change's transaction: a booking queues one reminder per lead time still ahead; a
/// reschedule withdraws those not yet sent and queues the new ones; a cancellation withdraws
/// them and queues a cancellation notice.
pub async fn on_change(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    change: ScheduleChange,
    appointment: &Appointment,
    defaults: &[u32],
    now_ms: i64,
) -> Result<(), ReminderError> {
    if change != ScheduleChange::Created {
        rows::withdraw_queued(tx, appointment.id, now_ms).await?;
    }
    let patient = PatientId::from_uuid(appointment.patient_id);
    let plan = plan_in(tx, patient, defaults).await?;
    if !plan.email_enabled || appointment.starts_at_ms <= now_ms {
        return Ok(());
    }
    let new = NewReminder { appointment: appointment.id, patient, origin: "schedule", by: None, now_ms };
    match change {
        ScheduleChange::Created | ScheduleChange::Rescheduled => {
            for &lead in &plan.lead_minutes {
                let due = appointment.starts_at_ms - i64::from(lead) * 60_000;
                if due > now_ms {
                    new.insert(tx, Kind::Upcoming, Some(lead), due).await?;
                }
            }
        }
        ScheduleChange::Cancelled => {
            new.insert(tx, Kind::Cancelled, None, now_ms).await?;
        }
    }
    Ok(())
}

/// Queues `notice` inside the caller's transaction `tx` (alert escalation's), due at once: an
/// email to the recipient's account saying only that an urgent item is waiting in Confidant.
/// `false` when that alert, step and recipient was already queued (then nothing changes), so
/// taking an escalation step twice sends nothing twice.
pub async fn queue_staff_notice(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    notice: &StaffNotice,
) -> Result<bool, ReminderError> {
    Ok(notices::insert(tx, notice).await?)
}

/// Stores `report` and queues its email to each of `recipients` (due at once) inside the
/// caller's transaction `tx`; `false` (nothing queued) when its node already reported that
/// period, so a node that checks twice, or restarts, sends each period's email once.
pub async fn queue_audit_heads(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    report: &AuditHeadReport,
    recipients: &[UserId],
) -> Result<bool, ReminderError> {
    Ok(audit_heads::insert(tx, report, recipients).await?)
}

/// Withdraws `alert_id`'s staff notices not yet claimed (reason `alert_acknowledged`), inside
/// the caller's transaction `tx`; returns how many. One being sent at that moment still goes.
pub async fn withdraw_staff_notices(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    alert_id: Uuid,
    now_ms: i64,
) -> Result<u64, ReminderError> {
    Ok(notices::withdraw_queued(tx, alert_id, now_ms).await?)
}

impl Outbox {
    /// The outbox of `storage`.
    pub fn new(storage: Storage) -> Self {
        Self { storage }
    }

    /// Queues a reminder due now, asked for by staff, in a transaction serialized with schedule
    /// changes (so it cannot slip past a cancellation committing at the same time).
    pub async fn send_now(
        &self,
        appointment: Uuid,
        by: UserId,
        defaults: &[u32],
        now_ms: i64,
    ) -> Result<ReminderView, ReminderError> {
        let mut tx = rows::begin_after_schedule_writes(&self.storage).await?;
        let (patient, starts_at_ms, status) =
            rows::appointment_state(&mut tx, appointment).await?.ok_or(ReminderError::NotFound)?;
        if status != "booked" || starts_at_ms <= now_ms {
            return Err(ReminderError::NotRemindable);
        }
        if !plan_in(&mut tx, patient, defaults).await?.email_enabled {
            return Err(ReminderError::Disabled);
        }
        let new = NewReminder { appointment, patient, origin: "staff", by: Some(by), now_ms };
        let id = new.insert(&mut tx, Kind::Upcoming, None, now_ms).await?;
        tx.commit().await?;
        self.get(id).await?.ok_or(ReminderError::NotFound)
    }

    /// One appointment reminder (`None` for a staff notice: see [`Self::staff_notices_of`]).
    pub async fn get(&self, id: Uuid) -> Result<Option<ReminderView>, ReminderError> {
        Ok(rows::get(&self.storage, id).await?)
    }

    /// An appointment's reminders, oldest first.
    pub async fn of_appointment(&self, appointment: Uuid) -> Result<Vec<ReminderView>, ReminderError> {
        Ok(rows::of_appointment(&self.storage, appointment).await?)
    }

    /// An alert's staff notices and where each stands, by escalation step, then oldest first.
    pub async fn staff_notices_of(&self, alert_id: Uuid) -> Result<Vec<StaffNoticeView>, ReminderError> {
        Ok(notices::of_alert(&self.storage, alert_id).await?)
    }

    /// Whether `node` reported `period`'s audit heads already.
    pub async fn audit_heads_reported(&self, node: NodeId, period: i64) -> Result<bool, ReminderError> {
        Ok(audit_heads::reported(&self.storage, node, period).await?)
    }

    /// The signed head lines `node` reported for `period`.
    pub async fn audit_heads(&self, node: NodeId, period: i64) -> Result<Option<Vec<String>>, ReminderError> {
        Ok(audit_heads::heads(&self.storage, node, period).await?)
    }

    /// The emails of `node`'s report for `period` and where each stands.
    pub async fn audit_head_emails(&self, node: NodeId, period: i64) -> Result<Vec<AuditHeadEmailView>, ReminderError> {
        Ok(audit_heads::of_report(&self.storage, node, period).await?)
    }

    /// A transaction on the outbox's store, for settling a row together with what its ending
    /// raises (the alert of a reminder failed for good).
    pub async fn begin(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, ReminderError> {
        Ok(self.storage.begin().await?)
    }

    /// Recovery, first half: claims whose lease ran out (their node crashed or stalled) and that
    /// were never offered to the SMTP server go back to the queue. Returns those that were
    /// offered and may have been accepted, each with its patient (a staff notice has none), for
    /// [`Self::fail_unknown_in`]: they are never sent again (at most once; staff see them and may
    /// send another on purpose).
    pub async fn recover(&self, now_ms: i64) -> Result<Vec<(Uuid, Option<PatientId>)>, ReminderError> {
        rows::requeue_expired(&self.storage, now_ms).await?;
        Ok(rows::expired_handed_over(&self.storage, now_ms).await?)
    }

    /// Recovery, second half: fails one of those as `outcome_unknown` in `tx`; `false` when
    /// another node settled it first.
    pub async fn fail_unknown_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        id: Uuid,
        now_ms: i64,
    ) -> Result<bool, ReminderError> {
        Ok(rows::fail_unknown(tx, id, now_ms).await?)
    }

    /// Claims up to `batch` due rows (reminders and staff notices) for `owner` until `now_ms + lease_ms`. Each claim is a
    /// compare-and-set on the row (`state = 'queued'`), so of two nodes racing for a row exactly
    /// one gets it, on either backend.
    pub async fn claim(
        &self,
        owner: &str,
        now_ms: i64,
        lease_ms: i64,
        batch: u32,
    ) -> Result<Vec<Claimed>, ReminderError> {
        Ok(rows::claim(&self.storage, owner, now_ms, lease_ms, batch).await?)
    }

    /// Records that `owner` is about to offer the message to the SMTP server; `false` when the
    /// claim is no longer `owner`'s or its lease ran out (then it must not be sent).
    pub async fn hand_over(&self, id: Uuid, owner: &str, now_ms: i64) -> Result<bool, ReminderError> {
        Ok(rows::hand_over(&self.storage, id, owner, now_ms).await?)
    }

    /// Ends `owner`'s claim in `tx`; `false` when it was no longer theirs.
    pub async fn finish_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        id: Uuid,
        owner: &str,
        finish: Finish,
        now_ms: i64,
    ) -> Result<bool, ReminderError> {
        Ok(rows::finish(tx, id, owner, finish, now_ms).await?)
    }
}
