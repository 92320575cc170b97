//! `sessions` and `session_tokens`: sessions with their account, and their tokens stored as
//! hashes.

use confidant_actors::audit::Role;
use confidant_actors::ids::{PatientId, SessionId, UserId};
use sqlx::Row;

use crate::storage::{Storage, StorageError, parse_id};

/// Who a valid access token speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionOwner {
    /// The session.
    pub session_id: SessionId,
    /// Its account.
    pub user_id: UserId,
    /// The account's role.
    pub role: Role,
    /// For a patient account, the patient.
    pub patient_id: Option<PatientId>,
    /// Whether the session proved a second factor.
    pub mfa: bool,
    /// When the session ends at the latest (UTC ms).
    pub expires_at_ms: i64,
}

const OWNER: &str = "s.session_id, s.user_id, u.role, u.patient_id, s.mfa_at_ms, u.status, s.ended_at_ms, \
                     s.last_seen_at_ms, s.expires_at_ms";

/// A session row joined with its account.
pub struct SessionState {
    /// Who it speaks for.
    pub owner: SessionOwner,
    /// Whether the account is active.
    pub active_account: bool,
    /// Whether the session has ended.
    pub ended: bool,
    /// Its last activity (UTC ms).
    pub last_seen_at_ms: i64,
    /// When it ends at the latest (UTC ms).
    pub expires_at_ms: i64,
}

impl SessionState {
    /// Reads a row selected as `OWNER` (and possibly more columns after).
    pub fn read(row: &sqlx::any::AnyRow) -> Result<Self, StorageError> {
        let role: String = row.try_get(2)?;
        let patient: Option<String> = row.try_get(3)?;
        let mfa: Option<i64> = row.try_get(4)?;
        let status: String = row.try_get(5)?;
        let ended: Option<i64> = row.try_get(6)?;
        Ok(Self {
            owner: SessionOwner {
                session_id: parse_id(&row.try_get::<String, _>(0)?, "session_id")?,
                user_id: parse_id(&row.try_get::<String, _>(1)?, "user_id")?,
                role: Role::parse(&role).ok_or(StorageError::Corrupt { column: "role" })?,
                patient_id: patient.as_deref().map(|p| parse_id(p, "patient_id")).transpose()?,
                mfa: mfa.is_some(),
                expires_at_ms: row.try_get(8)?,
            },
            active_account: status == "active",
            ended: ended.is_some(),
            last_seen_at_ms: row.try_get(7)?,
            expires_at_ms: row.try_get(8)?,
        })
    }
}

/// A session to store.
pub struct NewSession<'a> {
    pub session_id: SessionId,
    pub user_id: UserId,
    pub client_id: &'a str,
    pub mfa_at_ms: Option<i64>,
    pub now_ms: i64,
    pub expires_at_ms: i64,
}

/// A token to store (its hash only).
pub struct NewToken {
    pub hash: Vec<u8>,
    pub kind: &'static str,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

/// A refresh token's session, whether the token was used, and the session's client.
pub struct RefreshRow {
    pub state: SessionState,
    pub used_at_ms: Option<i64>,
    pub client_id: String,
}

/// Stores `session` and its first `tokens` in one transaction.
pub async fn insert(storage: &Storage, session: &NewSession<'_>, tokens: &[NewToken]) -> Result<(), StorageError> {
    let mut tx = storage.pool().begin().await?;
    sqlx::query(
        "INSERT INTO sessions (session_id, user_id, client_id, mfa_at_ms, created_at_ms, last_seen_at_ms, \
         expires_at_ms) VALUES ($1, $2, $3, $4, $5, $5, $6)",
    )
    .bind(session.session_id.to_string())
    .bind(session.user_id.to_string())
    .bind(session.client_id)
    .bind(session.mfa_at_ms)
    .bind(session.now_ms)
    .bind(session.expires_at_ms)
    .execute(&mut *tx)
    .await?;
    insert_tokens(&mut tx, session.session_id, tokens).await?;
    tx.commit().await?;
    Ok(())
}

async fn insert_tokens(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    session_id: SessionId,
    tokens: &[NewToken],
) -> Result<(), StorageError> {
    for token in tokens {
        sqlx::query(
            "INSERT INTO session_tokens (token_hash, session_id, kind, created_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token.hash.clone())
        .bind(session_id.to_string())
        .bind(token.kind)
        .bind(token.created_at_ms)
        .bind(token.expires_at_ms)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The session of an access token (`token_hash`) unexpired at `now_ms`, with its account.
pub async fn by_access_token(
    storage: &Storage,
    token_hash: &[u8],
    now_ms: i64,
) -> Result<Option<SessionState>, StorageError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {OWNER} FROM session_tokens t JOIN sessions s ON s.session_id = t.session_id \
         JOIN users u ON u.user_id = s.user_id WHERE t.token_hash = $1 AND t.kind = 'access' AND t.expires_at_ms > $2"
    )))
    .bind(token_hash.to_vec())
    .bind(now_ms)
    .fetch_optional(storage.pool())
    .await?;
    row.as_ref().map(SessionState::read).transpose()
}

/// Moves a live session's last activity to `now_ms` if it was before `before_ms`.
pub async fn seen(storage: &Storage, session: SessionId, now_ms: i64, before_ms: i64) -> Result<(), StorageError> {
    sqlx::query(
        "UPDATE sessions SET last_seen_at_ms = $2 WHERE session_id = $1 AND last_seen_at_ms < $3 \
         AND ended_at_ms IS NULL",
    )
    .bind(session.to_string())
    .bind(now_ms)
    .bind(before_ms)
    .execute(storage.pool())
    .await?;
    Ok(())
}

/// The session of a refresh token (`token_hash`), used or not.
pub async fn by_refresh_token(storage: &Storage, token_hash: &[u8]) -> Result<Option<RefreshRow>, StorageError> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {OWNER}, t.used_at_ms, s.client_id FROM session_tokens t \
         JOIN sessions s ON s.session_id = t.session_id JOIN users u ON u.user_id = s.user_id \
         WHERE t.token_hash = $1 AND t.kind = 'refresh'"
    )))
    .bind(token_hash.to_vec())
    .fetch_optional(storage.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(RefreshRow { state: SessionState::read(&row)?, used_at_ms: row.try_get(9)?, client_id: row.try_get(10)? }))
}

/// Uses up the refresh token `token_hash` and stores `session_id`'s new `tokens`, in one
/// transaction; `false` when the token was used already.
pub async fn rotate(
    storage: &Storage,
    token_hash: &[u8],
    now_ms: i64,
    session_id: SessionId,
    tokens: &[NewToken],
) -> Result<bool, StorageError> {
    let mut tx = storage.pool().begin().await?;
    let marked = sqlx::query("UPDATE session_tokens SET used_at_ms = $2 WHERE token_hash = $1 AND used_at_ms IS NULL")
        .bind(token_hash.to_vec())
        .bind(now_ms)
        .execute(&mut *tx)
        .await?;
    if marked.rows_affected() != 1 {
        return Ok(false);
    }
    insert_tokens(&mut tx, session_id, tokens).await?;
    tx.commit().await?;
    Ok(true)
}

/// Ends a live session at `now_ms` for `reason`; `false` when it had ended.
pub async fn end(storage: &Storage, session: SessionId, now_ms: i64, reason: &str) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE sessions SET ended_at_ms = $2, end_reason = $3 WHERE session_id = $1 AND ended_at_ms IS NULL",
    )
    .bind(session.to_string())
    .bind(now_ms)
    .bind(reason.to_owned())
    .execute(storage.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends a live session last seen at or before `seen_by_ms`; `false` when it had ended or was
/// seen since.
pub async fn end_if_unseen_since(
    storage: &Storage,
    session: SessionId,
    now_ms: i64,
    reason: &str,
    seen_by_ms: i64,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "UPDATE sessions SET ended_at_ms = $2, end_reason = $3 WHERE session_id = $1 AND ended_at_ms IS NULL \
         AND last_seen_at_ms <= $4",
    )
    .bind(session.to_string())
    .bind(now_ms)
    .bind(reason.to_owned())
    .bind(seen_by_ms)
    .execute(storage.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Ends every live session of `user`; returns how many.
pub async fn end_all(storage: &Storage, user: UserId, now_ms: i64, reason: &str) -> Result<u64, StorageError> {
    let done =
        sqlx::query("UPDATE sessions SET ended_at_ms = $2, end_reason = $3 WHERE user_id = $1 AND ended_at_ms IS NULL")
            .bind(user.to_string())
            .bind(now_ms)
            .bind(reason.to_owned())
            .execute(storage.pool())
            .await?;
    Ok(done.rows_affected())
}

/// Moves a live session's last activity to `now_ms`.
pub async fn touch(storage: &Storage, session: SessionId, now_ms: i64) -> Result<(), StorageError> {
    sqlx::query("UPDATE sessions SET last_seen_at_ms = $2 WHERE session_id = $1 AND ended_at_ms IS NULL")
        .bind(session.to_string())
        .bind(now_ms)
        .execute(storage.pool())
        .await?;
    Ok(())
}

/// Sessions that ended at or after `since_ms`, with their accounts.
pub async fn ended_since(storage: &Storage, since_ms: i64) -> Result<Vec<(SessionId, UserId)>, StorageError> {
    let rows = sqlx::query("SELECT session_id, user_id FROM sessions WHERE ended_at_ms >= $1")
        .bind(since_ms)
        .fetch_all(storage.pool())
        .await?;
    rows.iter()
        .map(|row| {
            Ok((
                parse_id(&row.try_get::<String, _>(0)?, "session_id")?,
                parse_id(&row.try_get::<String, _>(1)?, "user_id")?,
            ))
        })
        .collect()
}

/// Records that a session proved a second factor at `now_ms`.
pub async fn mark_mfa(storage: &Storage, session: SessionId, now_ms: i64) -> Result<(), StorageError> {
    sqlx::query("UPDATE sessions SET mfa_at_ms = $2 WHERE session_id = $1")
        .bind(session.to_string())
        .bind(now_ms)
        .execute(storage.pool())
        .await?;
    Ok(())
}

/// The session (and account) of any token (`token_hash`), live or not.
pub async fn session_of(storage: &Storage, token_hash: &[u8]) -> Result<Option<(SessionId, UserId)>, StorageError> {
    let row = sqlx::query(
        "SELECT s.session_id, s.user_id FROM session_tokens t JOIN sessions s ON s.session_id = t.session_id \
         WHERE t.token_hash = $1",
    )
    .bind(token_hash.to_vec())
    .fetch_optional(storage.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some((
        parse_id(&row.try_get::<String, _>(0)?, "session_id")?,
        parse_id(&row.try_get::<String, _>(1)?, "user_id")?,
    )))
}
