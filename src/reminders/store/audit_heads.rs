//! Audit head emails: `audit_head_reports` (what one node reports for one period: its chains'
//! signed head lines, no PHI) and their rows in `reminders` (kind `audit_head`, origin `audit`,
//! one per report and owner, a unique index). Queued in the caller's transaction; claimed and
//! finished like every row, in [`super::outbox`].

use confidant_actors::ids::{NodeId, UserId};
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use super::outbox::{ReminderState, required_id};
use crate::storage::{Storage, StorageError, parse_id};

/// A node's report for one period, to be emailed to each of `recipients`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHeadReport {
    /// The reporting node.
    pub node_id: NodeId,
    /// The period (now divided by the period's length).
    pub period: i64,
    /// The signed head lines, one per chain (no PHI).
    pub heads: Vec<String>,
    /// Now (UTC ms).
    pub now_ms: i64,
}

/// An audit head email and where it stands: ids, times, states and reason codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditHeadEmailView {
    /// Its id.
    pub id: Uuid,
    /// The owner it goes to.
    pub recipient: UserId,
    /// Where it stands.
    pub state: ReminderState,
    /// Attempts so far.
    pub attempts: i64,
    /// Why the last attempt failed or it was withdrawn (a code).
    pub reason: Option<String>,
}

/// Stores `report` and queues its email to each of `recipients`, due at once, in `tx`; `false`
/// (and nothing queued) when the node reported that period already.
pub async fn insert(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    report: &AuditHeadReport,
    recipients: &[UserId],
) -> Result<bool, StorageError> {
    let stored = sqlx::query(
        "INSERT INTO audit_head_reports (node_id, period, heads, created_at_ms) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (node_id, period) DO NOTHING",
    )
    .bind(report.node_id.to_string())
    .bind(report.period)
    .bind(report.heads.join("\n"))
    .bind(report.now_ms)
    .execute(&mut **tx)
    .await?;
    if stored.rows_affected() == 0 {
        return Ok(false);
    }
    for recipient in recipients {
        let id = Uuid::new_v4();
        sqlx::query(
            "INSERT INTO reminders (reminder_id, audit_node_id, audit_period, recipient_user_id, kind, origin, state, \
             due_at_ms, next_attempt_at_ms, attempts, message_id, encrypted, created_at_ms) \
             VALUES ($1, $2, $3, $4, 'audit_head', 'audit', 'queued', $5, $5, 0, $6, 0, $5) \
             ON CONFLICT (audit_node_id, audit_period, recipient_user_id) DO NOTHING",
        )
        .bind(id.to_string())
        .bind(report.node_id.to_string())
        .bind(report.period)
        .bind(recipient.to_string())
        .bind(report.now_ms)
        .bind(format!("audit-head-{id}"))
        .execute(&mut **tx)
        .await?;
    }
    Ok(true)
}

/// Whether `node` reported `period` already.
pub async fn reported(storage: &Storage, node: NodeId, period: i64) -> Result<bool, StorageError> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM audit_head_reports WHERE node_id = $1 AND period = $2")
        .bind(node.to_string())
        .bind(period)
        .fetch_optional(storage.pool())
        .await?;
    Ok(found.is_some())
}

/// The signed head lines `node` reported for `period`.
pub async fn heads(storage: &Storage, node: NodeId, period: i64) -> Result<Option<Vec<String>>, StorageError> {
    let heads: Option<String> =
        sqlx::query_scalar("SELECT heads FROM audit_head_reports WHERE node_id = $1 AND period = $2")
            .bind(node.to_string())
            .bind(period)
            .fetch_optional(storage.pool())
            .await?;
    Ok(heads.map(|h| h.lines().map(str::to_owned).collect()))
}

/// The emails of `node`'s report for `period`, by recipient.
pub async fn of_report(storage: &Storage, node: NodeId, period: i64) -> Result<Vec<AuditHeadEmailView>, StorageError> {
    let rows = sqlx::query(
        "SELECT reminder_id, recipient_user_id, state, attempts, failure_reason FROM reminders \
         WHERE audit_node_id = $1 AND audit_period = $2 AND kind = 'audit_head' ORDER BY recipient_user_id",
    )
    .bind(node.to_string())
    .bind(period)
    .fetch_all(storage.pool())
    .await?;
    rows.iter().map(view).collect()
}

fn view(row: &AnyRow) -> Result<AuditHeadEmailView, StorageError> {
    let state: String = row.try_get(2)?;
    Ok(AuditHeadEmailView {
        id: parse_id(&row.try_get::<String, _>(0)?, "reminder_id")?,
        recipient: required_id(row, 1, "recipient_user_id")?,
        state: ReminderState::parse(&state).ok_or(StorageError::Corrupt { column: "state" })?,
        attempts: row.try_get(3)?,
        reason: row.try_get(4)?,
    })
}
