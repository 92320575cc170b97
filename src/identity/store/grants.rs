//! `sign_in_flows` and `authorization_codes`: sign-ins waiting for a second factor and one-time
//! authorization codes, each stored by the hash of its token with the request it answers.

use confidant_actors::ids::{SessionId, UserId};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::storage::{Storage, StorageError, parse_id};

/// What a sign-in flow or a code stores of its request: whose, for which client and redirect
/// URI, and the PKCE challenge.
pub struct StoredRequest {
    pub user_id: UserId,
    pub client_id: String,
    pub redirect_uri: String,
    pub code_challenge: String,
}

/// An authorization code as stored.
pub struct StoredCode {
    pub request: StoredRequest,
    pub mfa_at_ms: Option<i64>,
    pub expires_at_ms: i64,
    /// The session it started, once redeemed.
    pub session_id: Option<SessionId>,
}

/// Stores a sign-in flow (`flow_hash`) waiting for its second factor.
pub async fn insert_flow(
    storage: &Storage,
    flow_hash: &[u8],
    request: &StoredRequest,
    now_ms: i64,
    expires_at_ms: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO sign_in_flows (flow_hash, user_id, client_id, redirect_uri, code_challenge, created_at_ms, \
         expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(flow_hash.to_vec())
    .bind(request.user_id.to_string())
    .bind(request.client_id.clone())
    .bind(request.redirect_uri.clone())
    .bind(request.code_challenge.clone())
    .bind(now_ms)
    .bind(expires_at_ms)
    .execute(storage.pool())
    .await?;
    Ok(())
}

/// The flow `flow_hash` if it is live at `now_ms`.
pub async fn flow(storage: &Storage, flow_hash: &[u8], now_ms: i64) -> Result<Option<StoredRequest>, StorageError> {
    let row = sqlx::query(
        "SELECT user_id, client_id, redirect_uri, code_challenge FROM sign_in_flows WHERE flow_hash = $1 \
         AND expires_at_ms > $2",
    )
    .bind(flow_hash.to_vec())
    .bind(now_ms)
    .fetch_optional(storage.pool())
    .await?;
    row.as_ref().map(stored_request).transpose()
}

/// Deletes a flow; `false` when it was gone.
pub async fn delete_flow(storage: &Storage, flow_hash: &[u8]) -> Result<bool, StorageError> {
    let done = sqlx::query("DELETE FROM sign_in_flows WHERE flow_hash = $1")
        .bind(flow_hash.to_vec())
        .execute(storage.pool())
        .await?;
    Ok(done.rows_affected() == 1)
}

/// Stores an authorization code (`code_hash`).
pub async fn insert_code(
    storage: &Storage,
    code_hash: &[u8],
    request: &StoredRequest,
    mfa_at_ms: Option<i64>,
    now_ms: i64,
    expires_at_ms: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO authorization_codes (code_hash, user_id, client_id, redirect_uri, code_challenge, mfa_at_ms, \
         created_at_ms, expires_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(code_hash.to_vec())
    .bind(request.user_id.to_string())
    .bind(request.client_id.clone())
    .bind(request.redirect_uri.clone())
    .bind(request.code_challenge.clone())
    .bind(mfa_at_ms)
    .bind(now_ms)
    .bind(expires_at_ms)
    .execute(storage.pool())
    .await?;
    Ok(())
}

/// The code `code_hash`, live or not, redeemed or not.
pub async fn code_by_hash(storage: &Storage, code_hash: &[u8]) -> Result<Option<StoredCode>, StorageError> {
    let row = sqlx::query(
        "SELECT user_id, client_id, redirect_uri, code_challenge, mfa_at_ms, expires_at_ms, session_id \
         FROM authorization_codes WHERE code_hash = $1",
    )
    .bind(code_hash.to_vec())
    .fetch_optional(storage.pool())
    .await?;
    let Some(row) = row else { return Ok(None) };
    let session: Option<String> = row.try_get(6)?;
    Ok(Some(StoredCode {
        request: stored_request(&row)?,
        mfa_at_ms: row.try_get(4)?,
        expires_at_ms: row.try_get(5)?,
        session_id: session.as_deref().map(|s| parse_id(s, "session_id")).transpose()?,
    }))
}

/// Deletes the code `code_hash` unless it was redeemed.
pub async fn delete_unclaimed_code(storage: &Storage, code_hash: &[u8]) -> Result<(), StorageError> {
    sqlx::query("DELETE FROM authorization_codes WHERE code_hash = $1 AND session_id IS NULL")
        .bind(code_hash.to_vec())
        .execute(storage.pool())
        .await?;
    Ok(())
}

/// Redeems the code `code_hash` for `session`; `false` when it was redeemed already.
pub async fn claim_code(storage: &Storage, code_hash: &[u8], session: SessionId) -> Result<bool, StorageError> {
    let claimed =
        sqlx::query("UPDATE authorization_codes SET session_id = $2 WHERE code_hash = $1 AND session_id IS NULL")
            .bind(code_hash.to_vec())
            .bind(session.to_string())
            .execute(storage.pool())
            .await?;
    Ok(claimed.rows_affected() == 1)
}

/// Reads `user_id, client_id, redirect_uri, code_challenge` from the start of `row`.
fn stored_request(row: &AnyRow) -> Result<StoredRequest, StorageError> {
    Ok(StoredRequest {
        user_id: parse_id(&row.try_get::<String, _>(0)?, "user_id")?,
        client_id: row.try_get(1)?,
        redirect_uri: row.try_get(2)?,
        code_challenge: row.try_get(3)?,
    })
}
