//! `data_keys`: each data key wrapped by the master key, with its purpose and state.

use std::fmt;

use sqlx::Row;

use crate::crypto::KeyError;
use crate::crypto::master::{MasterKey, Purpose};
use crate::crypto::secret::KeyBytes;
use crate::storage::{Storage, StorageError};
use confidant_actors::clock::now_ms;

/// Where a data key is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyState {
    /// Seals new values (one per purpose).
    Active,
    /// Opens the values it still protects; seals nothing new.
    DecryptOnly,
    /// Protects nothing; its wrapped material is deleted.
    Retired,
}

impl KeyState {
    /// The stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyState::Active => "active",
            KeyState::DecryptOnly => "decrypt_only",
            KeyState::Retired => "retired",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [KeyState::Active, KeyState::DecryptOnly, KeyState::Retired].into_iter().find(|s| s.as_str() == text)
    }
}

/// A row of `data_keys`. `Debug` shows whether the wrapped key is there, never its bytes.
#[derive(Clone)]
pub struct StoredKey {
    /// The id in every ciphertext it seals.
    pub key_id: u32,
    /// Names the key in the audit trail.
    pub audit_id: uuid::Uuid,
    /// Field or index key.
    pub purpose: Purpose,
    /// Its state.
    pub state: KeyState,
    /// The key wrapped by the master key; `None` once retired.
    pub wrapped: Option<Vec<u8>>,
    /// Fingerprint of the master key that wrapped it.
    pub master_key_id: String,
    /// When it was made.
    pub created_at_ms: i64,
    /// When it stopped being active.
    pub deactivated_at_ms: Option<i64>,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("key_id", &self.key_id)
            .field("audit_id", &self.audit_id)
            .field("purpose", &self.purpose)
            .field("state", &self.state)
            .field("wrapped", &self.wrapped.as_ref().map(|_| ".."))
            .field("master_key_id", &self.master_key_id)
            .field("created_at_ms", &self.created_at_ms)
            .field("deactivated_at_ms", &self.deactivated_at_ms)
            .finish()
    }
}

/// Every data key row, oldest first.
pub async fn stored_keys(storage: &Storage) -> Result<Vec<StoredKey>, KeyError> {
    let rows = sqlx::query(
        "SELECT key_id, audit_id, purpose, state, wrapped, master_key_id, created_at_ms, deactivated_at_ms \
         FROM data_keys ORDER BY key_id",
    )
    .fetch_all(storage.pool())
    .await?;
    rows.iter()
        .map(|row| {
            let id: i64 = row.try_get(0)?;
            let key_id = u32::try_from(id).map_err(|_| KeyError::Corrupt { key_id: 0, what: "key id out of range" })?;
            let corrupt = |what| KeyError::Corrupt { key_id, what };
            let audit_id: String = row.try_get(1)?;
            let purpose: String = row.try_get(2)?;
            let state: String = row.try_get(3)?;
            Ok(StoredKey {
                key_id,
                audit_id: audit_id.parse().map_err(|_| corrupt("audit id is not a UUID"))?,
                purpose: Purpose::parse(&purpose).ok_or_else(|| corrupt("unknown purpose"))?,
                state: KeyState::parse(&state).ok_or_else(|| corrupt("unknown state"))?,
                wrapped: row.try_get(4)?,
                master_key_id: row.try_get(5)?,
                created_at_ms: row.try_get(6)?,
                deactivated_at_ms: row.try_get(7)?,
            })
        })
        .collect()
}

/// Stores a new active key of `purpose`, wrapped by `master`, in the caller's transaction.
async fn insert_key(
    tx: &mut sqlx::AnyConnection,
    master: &MasterKey,
    purpose: Purpose,
    audit_id: uuid::Uuid,
) -> Result<StoredKey, KeyError> {
    let next: i64 =
        sqlx::query_scalar("SELECT COALESCE(MAX(key_id), 0) + 1 FROM data_keys").fetch_one(&mut *tx).await?;
    let key_id = u32::try_from(next).map_err(|_| KeyError::Corrupt { key_id: u32::MAX, what: "key ids exhausted" })?;
    let wrapped = master.wrap(key_id, purpose, &KeyBytes::random());
    let key = StoredKey {
        key_id,
        audit_id,
        purpose,
        state: KeyState::Active,
        wrapped: Some(wrapped),
        master_key_id: master.fingerprint().to_owned(),
        created_at_ms: now_ms(),
        deactivated_at_ms: None,
    };
    sqlx::query(
        "INSERT INTO data_keys (key_id, audit_id, purpose, state, wrapped, master_key_id, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(next)
    .bind(key.audit_id.to_string())
    .bind(purpose.as_str())
    .bind(KeyState::Active.as_str())
    .bind(key.wrapped.clone())
    .bind(key.master_key_id.clone())
    .bind(key.created_at_ms)
    .execute(&mut *tx)
    .await?;
    Ok(key)
}

/// How many active keys of `purpose` there are.
pub async fn active_keys(storage: &Storage, purpose: Purpose) -> Result<i64, KeyError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM data_keys WHERE purpose = $1 AND state = 'active'")
        .bind(purpose.as_str())
        .fetch_one(storage.pool())
        .await?)
}

/// Stores a first active key of `purpose` in a transaction of its own. The inner error is the
/// insert's: another node's key won the race (the unique index on active keys), or the database
/// failed then.
pub async fn create_first_key(
    storage: &Storage,
    master: &MasterKey,
    purpose: Purpose,
    audit_id: uuid::Uuid,
) -> Result<Result<StoredKey, StorageError>, KeyError> {
    let mut tx = storage.pool().begin().await?;
    match insert_key(&mut tx, master, purpose, audit_id).await {
        Ok(key) => {
            tx.commit().await?;
            Ok(Ok(key))
        }
        Err(KeyError::Storage(error)) => Ok(Err(error)),
        Err(other) => Err(other),
    }
}

/// Makes a new active field key, wrapped by `master`, in one transaction with turning the
/// active one decrypt-only.
pub async fn rotate_field_key(
    storage: &Storage,
    master: &MasterKey,
    audit_id: uuid::Uuid,
) -> Result<StoredKey, KeyError> {
    let mut tx = storage.pool().begin().await?;
    sqlx::query(
        "UPDATE data_keys SET state = 'decrypt_only', deactivated_at_ms = $1 WHERE purpose = 'field' AND state = 'active'",
    )
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    let key = insert_key(&mut tx, master, Purpose::Field, audit_id).await?;
    tx.commit().await?;
    Ok(key)
}

/// Retires decrypt-only field key `key_id` at `now_ms`, deleting its wrapped material; `false`
/// when it is not (no longer) a decrypt-only field key.
pub async fn retire_key(storage: &Storage, key_id: u32, now_ms: i64) -> Result<bool, KeyError> {
    let retired = sqlx::query(
        "UPDATE data_keys SET state = 'retired', wrapped = NULL, retired_at_ms = $1 \
         WHERE key_id = $2 AND state = 'decrypt_only' AND purpose = 'field'",
    )
    .bind(now_ms)
    .bind(i64::from(key_id))
    .execute(storage.pool())
    .await?;
    Ok(retired.rows_affected() == 1)
}

/// Replaces the wrapped material of each `(key_id, wrapped)`, wrapped by the master key
/// `master_key_id`, in one transaction.
pub async fn store_rewrapped(
    storage: &Storage,
    rewrapped: &[(u32, Vec<u8>)],
    master_key_id: &str,
) -> Result<(), KeyError> {
    let mut tx = storage.pool().begin().await?;
    for (key_id, wrapped) in rewrapped {
        sqlx::query("UPDATE data_keys SET wrapped = $1, master_key_id = $2 WHERE key_id = $3")
            .bind(wrapped.clone())
            .bind(master_key_id.to_owned())
            .bind(i64::from(*key_id))
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}
