//! Staff notices in `reminders` (kind `staff_notice`, origin `alert`): queued in the caller's
//! transaction, at most one per alert, escalation step and recipient (a unique index), and
//! listed per alert. Once queued they are claimed and finished like every row, in
//! [`super::outbox`].

use confidant_actors::ids::UserId;
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::outbox::{ReminderState, required_id, required_step};
use crate::storage::{Storage, StorageError, parse_id};

/// A staff notice to queue: `recipient` is told that an urgent item is waiting, for escalation
/// `step` of `alert_id`. It is due at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaffNotice {
    /// The alert (never named in the message).
    pub alert_id: Uuid,
    /// The escalation step that added the recipient (0: when the alert was raised).
    pub step: u32,
    /// The staff account to tell.
    pub recipient: UserId,
    /// Now (UTC ms).
    pub now_ms: i64,
}

/// A staff notice and where it stands: ids, times, states and reason codes, no content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffNoticeView {
    /// Its id.
    pub id: Uuid,
    /// The alert.
    pub alert_id: Uuid,
    /// The staff account it goes to.
    pub recipient: UserId,
    /// The escalation step that added the recipient.
    pub step: u32,
    /// Where it stands.
    pub state: ReminderState,
    /// When it is (was) due (UTC ms).
    pub due_at_ms: i64,
    /// Attempts so far.
    pub attempts: i64,
    /// Why the last attempt failed, or why it was withdrawn (a code).
    pub reason: Option<String>,
    /// When it was sent, failed or withdrawn (UTC ms).
    pub finished_at_ms: Option<i64>,
}

/// Queues `notice` in `tx`; `false` when that alert, step and recipient already has one.
pub async fn insert(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    notice: &StaffNotice,
) -> Result<bool, StorageError> {
    let id = Uuid::new_v4();
    let done = sqlx::query(
        "INSERT INTO reminders (reminder_id, alert_id, recipient_user_id, escalation_step, kind, origin, state, \
         due_at_ms, next_attempt_at_ms, attempts, message_id, encrypted, created_at_ms) \
         VALUES ($1, $2, $3, $4, 'staff_notice', 'alert', 'queued', $5, $5, 0, $6, 0, $5) \
         ON CONFLICT (alert_id, escalation_step, recipient_user_id) DO NOTHING",
    )
    .bind(id.to_string())
    .bind(notice.alert_id.to_string())
    .bind(notice.recipient.to_string())
    .bind(i64::from(notice.step))
    .bind(notice.now_ms)
    .bind(format!("staff-notice-{id}"))
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Withdraws `alert_id`'s notices still queued (`alert_acknowledged`), in `tx`; how many.
pub async fn withdraw_queued(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    alert_id: Uuid,
    now_ms: i64,
) -> Result<u64, StorageError> {
    let done = sqlx::query(
        "UPDATE reminders SET state = 'withdrawn', failure_reason = 'alert_acknowledged', finished_at_ms = $2 \
         WHERE alert_id = $1 AND kind = 'staff_notice' AND state = 'queued'",
    )
    .bind(alert_id.to_string())
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected())
}

/// `alert_id`'s notices, by step, then oldest first.
pub async fn of_alert(storage: &Storage, alert_id: Uuid) -> Result<Vec<StaffNoticeView>, StorageError> {
    let rows = sqlx::query(
        "SELECT reminder_id, alert_id, recipient_user_id, escalation_step, state, due_at_ms, attempts, failure_reason, \
         finished_at_ms FROM reminders WHERE alert_id = $1 AND kind = 'staff_notice' \
         ORDER BY escalation_step, created_at_ms, reminder_id",
    )
    .bind(alert_id.to_string())
    .fetch_all(storage.pool())
    .await?;
    rows.iter().map(view).collect()
}

fn view(row: &AnyRow) -> Result<StaffNoticeView, StorageError> {
    let state: String = row.try_get(4)?;
    Ok(StaffNoticeView {
        id: parse_id(&row.try_get::<String, _>(0)?, "reminder_id")?,
        alert_id: required_id(row, 1, "alert_id")?,
        recipient: required_id(row, 2, "recipient_user_id")?,
        step: required_step(row, 3)?,
        state: ReminderState::parse(&state).ok_or(StorageError::Corrupt { column: "state" })?,
        due_at_ms: row.try_get(5)?,
        attempts: row.try_get(6)?,
        reason: row.try_get(7)?,
        finished_at_ms: row.try_get(8)?,
    })
}
