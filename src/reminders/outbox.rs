//! `reminders`, the durable outbox. Rows are queued in the transaction of the change that causes
//! them ([`on_change`]), claimed with a lease so that only one node works on a row at a time
//! ([`Outbox::claim`]), marked just before the message is offered to the SMTP server
//! ([`Outbox::hand_over`]) and finished once ([`Outbox::finish`]). Every state change is a
//! conditional update on the claimant and the state it expects, so a node whose lease ran out
//! can no longer change a row another node took over. The statements are in `store/outbox.rs`.

use confidant_actors::ids::{PatientId, UserId};
use confidant_protocol::{Appointment, ScheduleChange};
use uuid::Uuid;

use super::ReminderError;
use super::content::Kind;
use super::preferences::plan_in;
use super::store::outbox::{self as rows, NewReminder};
use crate::storage::Storage;

pub use super::store::outbox::{Claimed, Finish, ReminderState, ReminderView};

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

    /// One reminder.
    pub async fn get(&self, id: Uuid) -> Result<Option<ReminderView>, ReminderError> {
        Ok(rows::get(&self.storage, id).await?)
    }

    /// An appointment's reminders, oldest first.
    pub async fn of_appointment(&self, appointment: Uuid) -> Result<Vec<ReminderView>, ReminderError> {
        Ok(rows::of_appointment(&self.storage, appointment).await?)
    }

    /// Settles claims whose lease ran out (their node crashed or stalled). A reminder never
    /// offered to the SMTP server goes back to the queue. One that was offered may have been
    /// accepted: it is failed with `outcome_unknown` and never sent again (at most once; staff
    /// see it and may send another on purpose). Returns the latter, for the audit trail.
    pub async fn recover(&self, now_ms: i64) -> Result<Vec<(Uuid, PatientId)>, ReminderError> {
        Ok(rows::recover(&self.storage, now_ms).await?)
    }

    /// Claims up to `batch` due reminders for `owner` until `now_ms + lease_ms`. Each claim is a
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

    /// Ends `owner`'s claim; `false` when it was no longer theirs.
    pub async fn finish(&self, id: Uuid, owner: &str, finish: Finish, now_ms: i64) -> Result<bool, ReminderError> {
        Ok(rows::finish(&self.storage, id, owner, finish, now_ms).await?)
    }
}
