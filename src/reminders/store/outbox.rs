//! `reminders`, the outbox: each reminder's ids, times, state, lease and attempts (never a message
//! or an address). Every state change is a conditional update on the state (and claimant) it
//! expects. A row is an appointment reminder, a staff notice (kind `staff_notice`) or an audit
//! head email (kind `audit_head`); claiming, hand-over, finishing and recovery are the same for
//! all, and are here. Queuing and listing staff notices is in [`super::staff_notices`], audit
//! head emails in [`super::audit_heads`].

use std::str::FromStr;

use confidant_actors::ids::{NodeId, PatientId, UserId};
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use crate::reminders::content::Kind;
use crate::storage::{Storage, StorageError, parse_id};

/// Where a reminder stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReminderState {
    /// Waiting for its time (or its next attempt).
    Queued,
    /// Claimed by a node, under a lease.
    Sending,
    /// Accepted by the SMTP server.
    Sent,
    /// Given up, with a reason code.
    Failed,
    /// No longer wanted: the appointment moved or was cancelled, reminders were turned off, or
    /// (a staff notice) the recipient's account is no longer active.
    Withdrawn,
}

impl ReminderState {
    /// Stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            ReminderState::Queued => "queued",
            ReminderState::Sending => "sending",
            ReminderState::Sent => "sent",
            ReminderState::Failed => "failed",
            ReminderState::Withdrawn => "withdrawn",
        }
    }

    pub(super) fn parse(text: &str) -> Option<Self> {
        [Self::Queued, Self::Sending, Self::Sent, Self::Failed, Self::Withdrawn]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// An appointment reminder as staff see it: ids, times, states and reason codes, no content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReminderView {
    /// Its id.
    pub id: Uuid,
    /// The appointment.
    pub appointment_id: Uuid,
    /// The patient.
    pub patient_id: PatientId,
    /// Upcoming appointment or cancellation.
    pub kind: Kind,
    /// `schedule` (a lead time) or `staff` (sent on request).
    pub origin: String,
    /// For a lead-time reminder, how long before the start.
    pub lead_minutes: Option<i64>,
    /// Where it stands.
    pub state: ReminderState,
    /// When it is (was) due (UTC ms).
    pub due_at_ms: i64,
    /// Attempts so far.
    pub attempts: i64,
    /// Whether it went OpenPGP-encrypted.
    pub encrypted: bool,
    /// Why it failed or was withdrawn (a code).
    pub reason: Option<String>,
    /// When it was sent, failed or withdrawn (UTC ms).
    pub finished_at_ms: Option<i64>,
}

/// What a row of the outbox asks to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// A reminder of an appointment, to its patient.
    Reminder {
        /// The appointment.
        appointment_id: Uuid,
        /// The patient.
        patient_id: PatientId,
        /// Upcoming appointment or cancellation.
        kind: Kind,
    },
    /// A notice to one staff account that an urgent item is waiting (no PHI).
    StaffNotice {
        /// The alert it is about (never named in the message).
        alert_id: Uuid,
        /// The staff account it goes to.
        recipient: UserId,
        /// The escalation step that added the recipient (0: when the alert was raised).
        step: u32,
    },
    /// A node's signed audit heads for one period, to one owner (no PHI).
    AuditHead {
        /// The node whose report it carries.
        node_id: NodeId,
        /// The report's period.
        period: i64,
        /// The owner it goes to.
        recipient: UserId,
    },
}

impl Job {
    /// The patient whose address the message goes to: a reminder's; a staff notice and an
    /// audit head email have none.
    pub fn patient(&self) -> Option<PatientId> {
        match self {
            Job::Reminder { patient_id, .. } => Some(*patient_id),
            Job::StaffNotice { .. } | Job::AuditHead { .. } => None,
        }
    }
}

/// A row this node claimed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// Its id.
    pub id: Uuid,
    /// What to send.
    pub job: Job,
    /// The stable local part of its Message-ID.
    pub message_id: String,
    /// Attempts including this one.
    pub attempts: u32,
}

/// How a claimed reminder ended (or did not, yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish {
    /// The SMTP server accepted it.
    Sent {
        /// Whether it was OpenPGP-encrypted.
        encrypted: bool,
    },
    /// Try again at this time.
    Retry {
        /// Next attempt (UTC ms).
        at_ms: i64,
        /// Why this attempt failed.
        reason: &'static str,
    },
    /// Give up.
    Failed {
        /// Why.
        reason: &'static str,
    },
    /// No longer wanted.
    Withdrawn {
        /// Why.
        reason: &'static str,
    },
}

const COLUMNS: &str = "reminder_id, appointment_id, patient_id, kind, origin, lead_minutes, state, due_at_ms, attempts, \
                       encrypted, failure_reason, finished_at_ms";

/// A reminder to queue.
pub struct NewReminder {
    pub appointment: Uuid,
    pub patient: PatientId,
    /// `schedule` (a lead time) or `staff` (sent on request).
    pub origin: &'static str,
    /// Who asked for it (staff).
    pub by: Option<UserId>,
    pub now_ms: i64,
}

impl NewReminder {
    /// Queues it in `tx`, due at `due_at_ms`; returns its id.
    pub async fn insert(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        kind: Kind,
        lead_minutes: Option<u32>,
        due_at_ms: i64,
    ) -> Result<Uuid, StorageError> {
        let id = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO reminders (reminder_id, appointment_id, patient_id, kind, origin, lead_minutes, state, \
             due_at_ms, next_attempt_at_ms, attempts, message_id, encrypted, created_by, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $7, 0, $8, 0, $9, $10)",
        )
        .bind(id.to_string())
        .bind(self.appointment.to_string())
        .bind(self.patient.to_string())
        .bind(kind.as_str())
        .bind(self.origin)
        .bind(lead_minutes.map(i64::from))
        .bind(due_at_ms)
        .bind(format!("reminder-{id}"))
        .bind(self.by.map(|u| u.to_string()))
        .bind(self.now_ms)
        .execute(&mut **tx)
        .await?;
        Ok(id)
    }
}

/// Withdraws `appointment`'s queued reminders at `now_ms` (the appointment changed).
pub async fn withdraw_queued(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    appointment: Uuid,
    now_ms: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE reminders SET state = 'withdrawn', failure_reason = 'appointment_changed', finished_at_ms = $2 \
         WHERE appointment_id = $1 AND state = 'queued'",
    )
    .bind(appointment.to_string())
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A transaction that waits for, and holds off, schedule changes (see `Backend::lock_schedule_sql`).
pub async fn begin_after_schedule_writes(
    storage: &Storage,
) -> Result<sqlx::Transaction<'static, sqlx::Any>, StorageError> {
    let backend = storage.backend();
    let mut tx = storage.pool().begin_with(backend.begin_serialized_sql()).await?;
    if let Some(lock) = backend.lock_schedule_sql() {
        sqlx::query(lock).execute(&mut *tx).await?;
    }
    Ok(tx)
}

/// The patient, start and status of `appointment`, read in `tx`.
pub async fn appointment_state(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    appointment: Uuid,
) -> Result<Option<(PatientId, i64, String)>, StorageError> {
    let row = sqlx::query("SELECT patient_id, starts_at_ms, status FROM appointments WHERE appointment_id = $1")
        .bind(appointment.to_string())
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some((parse_id(&row.try_get::<String, _>(0)?, "patient_id")?, row.try_get(1)?, row.try_get(2)?)))
}

/// One appointment reminder (`None` for a staff notice).
pub async fn get(storage: &Storage, id: Uuid) -> Result<Option<ReminderView>, StorageError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM reminders WHERE reminder_id = $1 AND kind IN ('upcoming', 'cancelled')"
    )))
    .bind(id.to_string())
    .fetch_optional(storage.pool())
    .await?;
    row.as_ref().map(view).transpose()
}

/// An appointment's reminders, oldest first.
pub async fn of_appointment(storage: &Storage, appointment: Uuid) -> Result<Vec<ReminderView>, StorageError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM reminders WHERE appointment_id = $1 ORDER BY created_at_ms, due_at_ms, reminder_id"
    )))
    .bind(appointment.to_string())
    .fetch_all(storage.pool())
    .await?;
    rows.iter().map(view).collect()
}

/// Requeues expired claims never handed over (certainly never offered to the SMTP server).
pub async fn requeue_expired(storage: &Storage, now_ms: i64) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE reminders SET state = 'queued', lease_owner = NULL, lease_until_ms = NULL \
         WHERE state = 'sending' AND lease_until_ms < $1 AND handed_over_at_ms IS NULL",
    )
    .bind(now_ms)
    .execute(storage.pool())
    .await?;
    Ok(())
}

/// Expired claims that were handed over (perhaps accepted): id and patient (none for a staff
/// notice).
pub async fn expired_handed_over(
    storage: &Storage,
    now_ms: i64,
) -> Result<Vec<(Uuid, Option<PatientId>)>, StorageError> {
    let rows = sqlx::query(
        "SELECT reminder_id, patient_id FROM reminders WHERE state = 'sending' AND lease_until_ms < $1 \
         AND handed_over_at_ms IS NOT NULL",
    )
    .bind(now_ms)
    .fetch_all(storage.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let id = parse_id(&row.try_get::<String, _>(0)?, "reminder_id")?;
            let patient = row.try_get::<Option<String>, _>(1)?.map(|p| parse_id(&p, "patient_id")).transpose()?;
            Ok((id, patient))
        })
        .collect()
}

/// Fails an expired, handed-over claim as `outcome_unknown` in `tx`; `false` when another node
/// settled it first.
pub async fn fail_unknown(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: Uuid,
    now_ms: i64,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE reminders SET state = 'failed', failure_reason = 'outcome_unknown', finished_at_ms = $2, \
         lease_owner = NULL, lease_until_ms = NULL WHERE reminder_id = $1 AND state = 'sending' \
         AND lease_until_ms < $2 AND handed_over_at_ms IS NOT NULL",
    )
    .bind(id.to_string())
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Claims up to `batch` due reminders for `owner` until `now_ms + lease_ms`, each by a
/// compare-and-set on its state.
pub async fn claim(
    storage: &Storage,
    owner: &str,
    now_ms: i64,
    lease_ms: i64,
    batch: u32,
) -> Result<Vec<Claimed>, StorageError> {
    let candidates: Vec<String> = sqlx::query_scalar(
        "SELECT reminder_id FROM reminders WHERE state = 'queued' AND next_attempt_at_ms <= $1 \
         ORDER BY next_attempt_at_ms, reminder_id LIMIT $2",
    )
    .bind(now_ms)
    .bind(i64::from(batch))
    .fetch_all(storage.pool())
    .await?;
    let mut claimed = Vec::new();
    for id in candidates {
        let row = sqlx::query(
            "UPDATE reminders SET state = 'sending', lease_owner = $2, lease_until_ms = $3, attempts = attempts + 1, \
             handed_over_at_ms = NULL WHERE reminder_id = $1 AND state = 'queued' AND next_attempt_at_ms <= $4 \
             RETURNING reminder_id, message_id, attempts, kind, appointment_id, patient_id, alert_id, \
             recipient_user_id, escalation_step, audit_node_id, audit_period",
        )
        .bind(&id)
        .bind(owner)
        .bind(now_ms.saturating_add(lease_ms))
        .bind(now_ms)
        .fetch_optional(storage.pool())
        .await?;
        if let Some(row) = row {
            claimed.push(claimed_row(&row)?);
        }
    }
    Ok(claimed)
}

/// Marks `owner`'s live claim handed over at `now_ms`; `false` when it is not theirs or not live.
pub async fn hand_over(storage: &Storage, id: Uuid, owner: &str, now_ms: i64) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE reminders SET handed_over_at_ms = $3 WHERE reminder_id = $1 AND lease_owner = $2 \
         AND state = 'sending' AND lease_until_ms > $3 AND handed_over_at_ms IS NULL",
    )
    .bind(id.to_string())
    .bind(owner)
    .bind(now_ms)
    .execute(storage.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends `owner`'s claim as `finish` says; `false` when it was no longer theirs.
pub async fn finish(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    id: Uuid,
    owner: &str,
    finish: Finish,
    now_ms: i64,
) -> Result<bool, StorageError> {
    let query = match finish {
        Finish::Sent { encrypted } => sqlx::query(
            "UPDATE reminders SET state = 'sent', encrypted = $3, finished_at_ms = $4, failure_reason = NULL, \
             lease_owner = NULL, lease_until_ms = NULL WHERE reminder_id = $1 AND lease_owner = $2 AND state = 'sending'",
        )
        .bind(id.to_string())
        .bind(owner)
        .bind(i64::from(encrypted))
        .bind(now_ms),
        Finish::Retry { at_ms, reason } => sqlx::query(
            "UPDATE reminders SET state = 'queued', next_attempt_at_ms = $3, failure_reason = $4, \
             handed_over_at_ms = NULL, lease_owner = NULL, lease_until_ms = NULL \
             WHERE reminder_id = $1 AND lease_owner = $2 AND state = 'sending'",
        )
        .bind(id.to_string())
        .bind(owner)
        .bind(at_ms)
        .bind(reason),
        Finish::Failed { reason } | Finish::Withdrawn { reason } => {
            let state = if matches!(finish, Finish::Failed { .. }) { "failed" } else { "withdrawn" };
            sqlx::query(
                "UPDATE reminders SET state = $3, failure_reason = $4, finished_at_ms = $5, lease_owner = NULL, \
                 lease_until_ms = NULL WHERE reminder_id = $1 AND lease_owner = $2 AND state = 'sending'",
            )
            .bind(id.to_string())
            .bind(owner)
            .bind(state)
            .bind(reason)
            .bind(now_ms)
        }
    };
    Ok(query.execute(&mut **tx).await?.rows_affected() == 1)
}

fn claimed_row(row: &AnyRow) -> Result<Claimed, StorageError> {
    let attempts: i64 = row.try_get(2)?;
    Ok(Claimed {
        id: parse_id(&row.try_get::<String, _>(0)?, "reminder_id")?,
        message_id: row.try_get(1)?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        job: job(row, 3)?,
    })
}

/// The job of a row whose columns from `at` on are `kind, appointment_id, patient_id, alert_id,
/// recipient_user_id, escalation_step, audit_node_id, audit_period`.
fn job(row: &AnyRow, at: usize) -> Result<Job, StorageError> {
    let kind: String = row.try_get(at)?;
    if kind == "staff_notice" {
        return Ok(Job::StaffNotice {
            alert_id: required_id(row, at + 3, "alert_id")?,
            recipient: required_id(row, at + 4, "recipient_user_id")?,
            step: required_step(row, at + 5)?,
        });
    }
    if kind == "audit_head" {
        let period: Option<i64> = row.try_get(at + 7)?;
        return Ok(Job::AuditHead {
            node_id: required_id(row, at + 6, "audit_node_id")?,
            period: period.ok_or(StorageError::Corrupt { column: "audit_period" })?,
            recipient: required_id(row, at + 4, "recipient_user_id")?,
        });
    }
    Ok(Job::Reminder {
        appointment_id: required_id(row, at + 1, "appointment_id")?,
        patient_id: required_id(row, at + 2, "patient_id")?,
        kind: Kind::parse(&kind).ok_or(StorageError::Corrupt { column: "kind" })?,
    })
}

/// The escalation step of a staff notice's row.
pub(super) fn required_step(row: &AnyRow, at: usize) -> Result<u32, StorageError> {
    let step: Option<i64> = row.try_get(at)?;
    step.and_then(|s| u32::try_from(s).ok()).ok_or(StorageError::Corrupt { column: "escalation_step" })
}

/// The id in a nullable column that this kind of row must have set.
pub(super) fn required_id<T: FromStr>(row: &AnyRow, at: usize, column: &'static str) -> Result<T, StorageError> {
    let text: Option<String> = row.try_get(at)?;
    parse_id(&text.ok_or(StorageError::Corrupt { column })?, column)
}

fn view(row: &AnyRow) -> Result<ReminderView, StorageError> {
    let kind: String = row.try_get(3)?;
    let state: String = row.try_get(6)?;
    let encrypted: i64 = row.try_get(9)?;
    Ok(ReminderView {
        id: parse_id(&row.try_get::<String, _>(0)?, "reminder_id")?,
        appointment_id: required_id(row, 1, "appointment_id")?,
        patient_id: required_id(row, 2, "patient_id")?,
        kind: Kind::parse(&kind).ok_or(StorageError::Corrupt { column: "kind" })?,
        origin: row.try_get(4)?,
        lead_minutes: row.try_get(5)?,
        state: ReminderState::parse(&state).ok_or(StorageError::Corrupt { column: "state" })?,
        due_at_ms: row.try_get(7)?,
        attempts: row.try_get(8)?,
        encrypted: encrypted == 1,
        reason: row.try_get(10)?,
        finished_at_ms: row.try_get(11)?,
    })
}
