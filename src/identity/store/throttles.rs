//! `throttles`: failure counts and locks, keyed by an HMAC of what they count (never an email or
//! an address); `sign_in_sources`: where each account last signed in successfully, keyed alike.

use crate::storage::{Storage, StorageError};

/// Until when the subject keyed `key` is locked (UTC ms), if it has failures.
pub async fn locked_until(storage: &Storage, key: Vec<u8>) -> Result<Option<i64>, StorageError> {
    Ok(sqlx::query_scalar("SELECT locked_until_ms FROM throttles WHERE throttle_key = $1")
        .bind(key)
        .fetch_optional(storage.pool())
        .await?)
}

/// Counts a failure of the subject keyed `key` at `now_ms`, starting again from one when its
/// last failure was before `forget_before_ms`; returns its failures.
pub async fn count_failure(
    storage: &Storage,
    key: &[u8],
    now_ms: i64,
    forget_before_ms: i64,
) -> Result<i64, StorageError> {
    Ok(sqlx::query_scalar(
        "INSERT INTO throttles (throttle_key, failures, last_failure_ms, locked_until_ms) VALUES ($1, 1, $2, 0) \
         ON CONFLICT (throttle_key) DO UPDATE SET failures = CASE WHEN throttles.last_failure_ms < $3 THEN 1 \
         ELSE throttles.failures + 1 END, last_failure_ms = $2 RETURNING failures",
    )
    .bind(key.to_vec())
    .bind(now_ms)
    .bind(forget_before_ms)
    .fetch_one(storage.pool())
    .await?)
}

/// Locks the subject keyed `key` until `until_ms`.
pub async fn lock(storage: &Storage, key: &[u8], until_ms: i64) -> Result<(), StorageError> {
    sqlx::query("UPDATE throttles SET locked_until_ms = $2 WHERE throttle_key = $1")
        .bind(key.to_vec())
        .bind(until_ms)
        .execute(storage.pool())
        .await?;
    Ok(())
}

/// Forgets the failures of the subject keyed `key`.
pub async fn forget(storage: &Storage, key: Vec<u8>) -> Result<(), StorageError> {
    sqlx::query("DELETE FROM throttles WHERE throttle_key = $1").bind(key).execute(storage.pool()).await?;
    Ok(())
}

/// Whether the source keyed `key` signed in successfully at or after `since_ms`.
pub async fn known_source(storage: &Storage, key: Vec<u8>, since_ms: i64) -> Result<bool, StorageError> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM sign_in_sources WHERE source_key = $1 AND last_success_ms >= $2")
            .bind(key)
            .bind(since_ms)
            .fetch_optional(storage.pool())
            .await?;
    Ok(found.is_some())
}

/// Records a successful sign-in from the source keyed `key` at `now_ms`.
pub async fn remember_source(storage: &Storage, key: Vec<u8>, now_ms: i64) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO sign_in_sources (source_key, last_success_ms) VALUES ($1, $2) \
         ON CONFLICT (source_key) DO UPDATE SET last_success_ms = excluded.last_success_ms",
    )
    .bind(key)
    .bind(now_ms)
    .execute(storage.pool())
    .await?;
    Ok(())
}
