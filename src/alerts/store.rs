//! `alerts` and `alert_recipients`: the statements. An alert's content is sealed by the caller
//! (`body`, `follow_up`); here are ids, times, states and ciphertext. Every state change is a
//! conditional update on the state it expects, so two nodes (or two devices) racing to
//! acknowledge or escalate the same alert change it once. An alert raised at most once per
//! occasion (a sign-in attack per pattern, source and window) carries a `dedup_key`, unique,
//! so two nodes raising it together store it once.

use confidant_actors::ids::{PatientId, UserId};
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use crate::storage::{Storage, StorageError, parse_id};

/// A stored alert, its content still sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAlert {
    pub alert_id: Uuid,
    pub key_id: i64,
    /// The patient it is about; none for an alert about no patient (a sign-in attack).
    pub patient_id: Option<PatientId>,
    pub subject_id: Option<Uuid>,
    pub body: Vec<u8>,
    pub urgent: bool,
    pub raised_at_ms: i64,
    pub acknowledged_by: Option<UserId>,
    pub acknowledged_at_ms: Option<i64>,
    pub follow_up: Option<Vec<u8>>,
    pub followed_up_by: Option<UserId>,
    pub followed_up_at_ms: Option<i64>,
    pub escalation_step: i64,
    pub escalate_at_ms: Option<i64>,
    /// What makes it one of a kind (an HMAC), for alerts raised at most once per occasion.
    pub dedup_key: Option<Vec<u8>>,
}

const COLUMNS: &str = "a.alert_id, a.key_id, a.patient_id, a.subject_id, a.body, a.urgent, a.raised_at_ms, \
                       a.acknowledged_by, a.acknowledged_at_ms, a.follow_up, a.followed_up_by, a.followed_up_at_ms, \
                       a.escalation_step, a.escalate_at_ms";

/// Not yet done: unacknowledged, or urgent and awaiting its follow-up.
const UNRESOLVED: &str = "(a.acknowledged_at_ms IS NULL OR (a.urgent = 1 AND a.followed_up_at_ms IS NULL))";

/// Stores `alert` and its `recipients` (step 0) in `tx`; `false` (and nothing stored) when an
/// alert with the same `dedup_key` is stored already.
pub async fn insert(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    alert: &StoredAlert,
    recipients: &[UserId],
) -> Result<bool, StorageError> {
    let stored = sqlx::query(
        "INSERT INTO alerts (alert_id, key_id, patient_id, subject_id, body, urgent, raised_at_ms, escalation_step, \
         escalate_at_ms, dedup_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (dedup_key) DO NOTHING",
    )
    .bind(alert.alert_id.to_string())
    .bind(alert.key_id)
    .bind(alert.patient_id.map(|p| p.to_string()))
    .bind(alert.subject_id.map(|s| s.to_string()))
    .bind(alert.body.clone())
    .bind(i64::from(alert.urgent))
    .bind(alert.raised_at_ms)
    .bind(alert.escalation_step)
    .bind(alert.escalate_at_ms)
    .bind(alert.dedup_key.clone())
    .execute(&mut **tx)
    .await?;
    if stored.rows_affected() == 0 {
        return Ok(false);
    }
    add_recipients(tx, alert.alert_id, recipients, 0, alert.raised_at_ms).await?;
    Ok(true)
}

/// Whether an alert with `dedup_key` is stored.
pub async fn is_raised(storage: &Storage, dedup_key: &[u8]) -> Result<bool, StorageError> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM alerts WHERE dedup_key = $1")
        .bind(dedup_key.to_vec())
        .fetch_optional(storage.pool())
        .await?;
    Ok(found.is_some())
}

/// Adds `users` to `alert`'s recipients (those already there stay as they were).
pub async fn add_recipients(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    alert: Uuid,
    users: &[UserId],
    step: i64,
    at_ms: i64,
) -> Result<(), StorageError> {
    for user in users {
        sqlx::query(
            "INSERT INTO alert_recipients (alert_id, user_id, step, added_at_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (alert_id, user_id) DO NOTHING",
        )
        .bind(alert.to_string())
        .bind(user.to_string())
        .bind(step)
        .bind(at_ms)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// One alert.
pub async fn get(storage: &Storage, alert: Uuid) -> Result<Option<StoredAlert>, StorageError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {COLUMNS} FROM alerts a WHERE a.alert_id = $1")))
        .bind(alert.to_string())
        .fetch_optional(storage.pool())
        .await?;
    row.as_ref().map(stored).transpose()
}

/// Who receives `alert`.
pub async fn recipients(storage: &Storage, alert: Uuid) -> Result<Vec<UserId>, StorageError> {
    let ids: Vec<String> =
        sqlx::query_scalar("SELECT user_id FROM alert_recipients WHERE alert_id = $1 ORDER BY step, user_id")
            .bind(alert.to_string())
            .fetch_all(storage.pool())
            .await?;
    ids.iter().map(|id| parse_id(id, "user_id")).collect()
}

/// `user`'s unacknowledged alerts, urgent ones first, then oldest first, at most `limit` (so a
/// backlog of routine alerts never crowds out an urgent one).
pub async fn pending_for(storage: &Storage, user: UserId, limit: i64) -> Result<Vec<StoredAlert>, StorageError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM alerts a JOIN alert_recipients r ON r.alert_id = a.alert_id \
         WHERE r.user_id = $1 AND a.acknowledged_at_ms IS NULL ORDER BY a.urgent DESC, a.raised_at_ms, a.alert_id \
         LIMIT $2"
    )))
    .bind(user.to_string())
    .bind(limit)
    .fetch_all(storage.pool())
    .await?;
    rows.iter().map(stored).collect()
}

/// `user`'s alerts that are unresolved or were raised since `since_ms`, newest first, at most
/// `limit`.
pub async fn listed_for(
    storage: &Storage,
    user: UserId,
    since_ms: i64,
    limit: i64,
) -> Result<Vec<StoredAlert>, StorageError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM alerts a JOIN alert_recipients r ON r.alert_id = a.alert_id \
         WHERE r.user_id = $1 AND ({UNRESOLVED} OR a.raised_at_ms >= $2) \
         ORDER BY a.raised_at_ms DESC, a.alert_id LIMIT $3"
    )))
    .bind(user.to_string())
    .bind(since_ms)
    .bind(limit)
    .fetch_all(storage.pool())
    .await?;
    rows.iter().map(stored).collect()
}

/// `patient`'s urgent alerts that are unresolved or were raised since `since_ms`, newest first.
pub async fn urgent_of_patient(
    storage: &Storage,
    patient: PatientId,
    since_ms: i64,
) -> Result<Vec<StoredAlert>, StorageError> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM alerts a WHERE a.patient_id = $1 AND a.urgent = 1 \
         AND (a.followed_up_at_ms IS NULL OR a.raised_at_ms >= $2) ORDER BY a.raised_at_ms DESC, a.alert_id"
    )))
    .bind(patient.to_string())
    .bind(since_ms)
    .fetch_all(storage.pool())
    .await?;
    rows.iter().map(stored).collect()
}

/// The subjects (intake assignments) of `patient`'s urgent alerts still awaiting follow-up.
pub async fn flagged_subjects(storage: &Storage, patient: PatientId) -> Result<Vec<Uuid>, StorageError> {
    let ids: Vec<Option<String>> = sqlx::query_scalar(
        "SELECT DISTINCT subject_id FROM alerts WHERE patient_id = $1 AND urgent = 1 AND followed_up_at_ms IS NULL",
    )
    .bind(patient.to_string())
    .fetch_all(storage.pool())
    .await?;
    ids.iter().flatten().map(|id| parse_id(id, "subject_id")).collect()
}

/// Marks `alert` acknowledged by `by` at `at_ms` and stops its escalation; `false` when it was
/// already acknowledged.
pub async fn acknowledge(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    alert: Uuid,
    by: UserId,
    at_ms: i64,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE alerts SET acknowledged_by = $2, acknowledged_at_ms = $3, escalate_at_ms = NULL \
         WHERE alert_id = $1 AND acknowledged_at_ms IS NULL",
    )
    .bind(alert.to_string())
    .bind(by.to_string())
    .bind(at_ms)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The follow-up of an urgent alert, sealed, with the body sealed again under the same key.
pub struct FollowUp<'a> {
    pub key_id: i64,
    pub body: &'a [u8],
    pub note: &'a [u8],
    pub by: UserId,
    pub at_ms: i64,
}

/// Records `follow_up` on `alert` (acknowledging it too, if nobody had); `false` when its
/// follow-up was already documented.
pub async fn follow_up(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    alert: Uuid,
    follow_up: &FollowUp<'_>,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE alerts SET key_id = $2, body = $3, follow_up = $4, followed_up_by = $5, followed_up_at_ms = $6, \
         acknowledged_by = COALESCE(acknowledged_by, $5), acknowledged_at_ms = COALESCE(acknowledged_at_ms, $6), \
         escalate_at_ms = NULL WHERE alert_id = $1 AND followed_up_at_ms IS NULL",
    )
    .bind(alert.to_string())
    .bind(follow_up.key_id)
    .bind(follow_up.body.to_vec())
    .bind(follow_up.note.to_vec())
    .bind(follow_up.by.to_string())
    .bind(follow_up.at_ms)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Unacknowledged alerts whose next escalation step is due at `now_ms`: (id, steps taken).
pub async fn due(storage: &Storage, now_ms: i64, limit: i64) -> Result<Vec<(Uuid, i64)>, StorageError> {
    let rows = sqlx::query(
        "SELECT alert_id, escalation_step FROM alerts WHERE escalate_at_ms <= $1 AND acknowledged_at_ms IS NULL \
         ORDER BY escalate_at_ms, alert_id LIMIT $2",
    )
    .bind(now_ms)
    .bind(limit)
    .fetch_all(storage.pool())
    .await?;
    rows.iter().map(|row| Ok((parse_id(&row.try_get::<String, _>(0)?, "alert_id")?, row.try_get(1)?))).collect()
}

/// Takes escalation step `from_step + 1` of `alert` in `tx`, the next one due at `next_at_ms`
/// (`None`: it was the last); `false` when another node took it first or someone acknowledged.
pub async fn take_step(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    alert: Uuid,
    from_step: i64,
    next_at_ms: Option<i64>,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE alerts SET escalation_step = $3, escalate_at_ms = $4 \
         WHERE alert_id = $1 AND escalation_step = $2 AND acknowledged_at_ms IS NULL",
    )
    .bind(alert.to_string())
    .bind(from_step)
    .bind(from_step + 1)
    .bind(next_at_ms)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

fn stored(row: &AnyRow) -> Result<StoredAlert, StorageError> {
    let patient: Option<String> = row.try_get(2)?;
    let subject: Option<String> = row.try_get(3)?;
    let acknowledged_by: Option<String> = row.try_get(7)?;
    let followed_up_by: Option<String> = row.try_get(10)?;
    let urgent: i64 = row.try_get(5)?;
    Ok(StoredAlert {
        alert_id: parse_id(&row.try_get::<String, _>(0)?, "alert_id")?,
        key_id: row.try_get(1)?,
        patient_id: patient.map(|p| parse_id(&p, "patient_id")).transpose()?,
        subject_id: subject.map(|s| parse_id(&s, "subject_id")).transpose()?,
        body: row.try_get(4)?,
        urgent: urgent == 1,
        raised_at_ms: row.try_get(6)?,
        acknowledged_by: acknowledged_by.map(|s| parse_id(&s, "acknowledged_by")).transpose()?,
        acknowledged_at_ms: row.try_get(8)?,
        follow_up: row.try_get(9)?,
        followed_up_by: followed_up_by.map(|s| parse_id(&s, "followed_up_by")).transpose()?,
        followed_up_at_ms: row.try_get(11)?,
        escalation_step: row.try_get(12)?,
        escalate_at_ms: row.try_get(13)?,
        // Only read to raise; never needed once stored.
        dedup_key: None,
    })
}
