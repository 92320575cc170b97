//! `idempotency_keys` and `idempotent_answers`: the statements. A key is claimed by one insert
//! that the table's unique `(user_id, key_digest)` lets only one request win, on any node; the
//! answer is written in one transaction with a check that the claim is still there.

use confidant_actors::ids::{PatientId, UserId};
use sqlx::Row;
use uuid::Uuid;

use crate::storage::{Storage, StorageError, parse_id};

/// A claim of a key: which request, with which content, and since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredClaim {
    pub claim_id: Uuid,
    pub request_digest: Vec<u8>,
    pub request_id: String,
    pub claimed_at_ms: i64,
}

/// A kept answer, its body still sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    pub key_id: i64,
    pub patient_id: Option<PatientId>,
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

/// What a key already holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    /// Claimed, no answer kept (yet).
    Claimed(StoredClaim),
    /// Claimed and answered.
    Answered(StoredClaim, StoredAnswer),
    /// Held a moment ago by a claim that is gone now (released or expired): a retry may win it.
    Released,
}

/// A new claim's row.
pub struct NewClaim<'a> {
    pub claim_id: Uuid,
    pub user: UserId,
    pub key_digest: &'a [u8],
    pub request_digest: &'a [u8],
    pub request_id: &'a str,
    pub now_ms: i64,
    pub expires_at_ms: i64,
}

/// Claims the key for this request; `None` if it was won, what the key already holds otherwise.
/// An expired claim of the key is dropped first, so a key may be used again after a day.
pub async fn claim(storage: &Storage, new: &NewClaim<'_>) -> Result<Option<Existing>, StorageError> {
    let mut tx = storage.pool().begin().await?;
    sqlx::query("DELETE FROM idempotency_keys WHERE user_id = $1 AND key_digest = $2 AND expires_at_ms <= $3")
        .bind(new.user.to_string())
        .bind(new.key_digest.to_vec())
        .bind(new.now_ms)
        .execute(&mut *tx)
        .await?;
    let won = sqlx::query(
        "INSERT INTO idempotency_keys (claim_id, user_id, key_digest, request_digest, request_id, claimed_at_ms, \
         expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (user_id, key_digest) DO NOTHING",
    )
    .bind(new.claim_id.to_string())
    .bind(new.user.to_string())
    .bind(new.key_digest.to_vec())
    .bind(new.request_digest.to_vec())
    .bind(new.request_id)
    .bind(new.now_ms)
    .bind(new.expires_at_ms)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    let existing = if won { None } else { Some(existing(&mut tx, new.user, new.key_digest).await?) };
    tx.commit().await?;
    Ok(existing)
}

async fn existing(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    user: UserId,
    key_digest: &[u8],
) -> Result<Existing, StorageError> {
    let row = sqlx::query(
        "SELECT k.claim_id, k.request_digest, k.request_id, k.claimed_at_ms, a.key_id, a.patient_id, a.status, \
         a.content_type, a.body FROM idempotency_keys k LEFT JOIN idempotent_answers a ON a.claim_id = k.claim_id \
         WHERE k.user_id = $1 AND k.key_digest = $2",
    )
    .bind(user.to_string())
    .bind(key_digest.to_vec())
    .fetch_optional(&mut **tx)
    .await?;
    let Some(row) = row else { return Ok(Existing::Released) };
    let claim = StoredClaim {
        claim_id: parse_id(&row.try_get::<String, _>(0)?, "claim_id")?,
        request_digest: row.try_get(1)?,
        request_id: row.try_get(2)?,
        claimed_at_ms: row.try_get(3)?,
    };
    let Some(key_id) = row.try_get::<Option<i64>, _>(4)? else { return Ok(Existing::Claimed(claim)) };
    let patient_id = row.try_get::<Option<String>, _>(5)?.map(|p| parse_id(&p, "patient_id")).transpose()?;
    let status = u16::try_from(row.try_get::<i64, _>(6)?).map_err(|_| StorageError::Corrupt { column: "status" })?;
    let answer = StoredAnswer { key_id, patient_id, status, content_type: row.try_get(7)?, body: row.try_get(8)? };
    Ok(Existing::Answered(claim, answer))
}

/// Keeps `answer` for `claim`; false if the claim is gone (expired and purged meanwhile).
pub async fn keep(storage: &Storage, claim: Uuid, answer: &StoredAnswer, now_ms: i64) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "INSERT INTO idempotent_answers (claim_id, key_id, patient_id, status, content_type, body, kept_at_ms) \
         SELECT claim_id, $2, $3, $4, $5, $6, $7 FROM idempotency_keys WHERE claim_id = $1",
    )
    .bind(claim.to_string())
    .bind(answer.key_id)
    .bind(answer.patient_id.map(|p| p.to_string()))
    .bind(i64::from(answer.status))
    .bind(answer.content_type.clone())
    .bind(answer.body.clone())
    .bind(now_ms)
    .execute(storage.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Drops `claim` if no answer was kept for it: the write failed and changed nothing, so a retry
/// may run it again.
pub async fn release(storage: &Storage, claim: Uuid) -> Result<(), StorageError> {
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE claim_id = $1 \
         AND NOT EXISTS (SELECT 1 FROM idempotent_answers a WHERE a.claim_id = $1)",
    )
    .bind(claim.to_string())
    .execute(storage.pool())
    .await?;
    Ok(())
}

/// Deletes every claim (with its answer) that expired by `now_ms`; returns how many.
pub async fn purge_expired(storage: &Storage, now_ms: i64) -> Result<u64, StorageError> {
    let done = sqlx::query("DELETE FROM idempotency_keys WHERE expires_at_ms <= $1")
        .bind(now_ms)
        .execute(storage.pool())
        .await?;
    Ok(done.rows_affected())
}
