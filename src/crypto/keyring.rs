//! The data keys: stored wrapped in `data_keys`, unwrapped once into memory, and used to seal
//! and open field values and to compute blind indexes. One field key is active (it seals new
//! values); older ones stay to open what they still protect until re-encryption moves those
//! values on and the key is retired (its wrapped material deleted).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use sqlx::Row;
use zeroize::Zeroizing;

use super::envelope::{DataKey, Field, key_id_of};
use super::master::MasterKey;
pub use super::master::Purpose;
use super::secret::KeyBytes;
use super::{CryptoError, KeyError};
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

/// A row of `data_keys`.
#[derive(Debug, Clone)]
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
pub(super) async fn insert_key(
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

/// The unwrapped keys in memory.
struct Loaded {
    active: Arc<DataKey>,
    fields: HashMap<u32, Arc<DataKey>>,
    index: Arc<KeyBytes>,
}

/// The keyring of one process: the master key and the unwrapped data keys.
pub struct Keyring {
    storage: Storage,
    master: MasterKey,
    loaded: RwLock<Loaded>,
}

/// Seals the values of one row, all under the same key (the active one when it was taken), so
/// the row's `key_id` column names the key of every value in it.
#[derive(Clone)]
pub struct Sealer(Arc<DataKey>);

impl Sealer {
    /// The key id to store in the row's `key_id` column.
    pub fn key_id(&self) -> u32 {
        self.0.key_id()
    }

    /// Encrypts `plaintext` for `field`.
    pub fn seal(&self, field: Field<'_>, plaintext: &[u8]) -> Vec<u8> {
        self.0.seal(field, plaintext)
    }
}

impl Keyring {
    /// Loads the keyring, creating the first field and index keys on a new database. Fails
    /// with [`KeyError::WrongMasterKey`] when `master` did not wrap the stored keys.
    pub async fn open(storage: Storage, master: MasterKey) -> Result<Self, KeyError> {
        ensure_active_keys(&storage, &master).await?;
        let loaded = load(&storage, &master, None).await?;
        Ok(Self { storage, master, loaded: RwLock::new(loaded) })
    }

    /// A sealer under the active field key.
    pub fn sealer(&self) -> Sealer {
        Sealer(self.read().active.clone())
    }

    /// Decrypts a stored value of `field`. A key id this process does not know yet (a key
    /// made by another node) reloads the key list once.
    pub async fn open_value(&self, field: Field<'_>, stored: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let key_id = key_id_of(stored)?;
        let known = self.read().fields.get(&key_id).cloned();
        let key = match known {
            Some(key) => key,
            None => {
                self.refresh().await.map_err(|e| CryptoError::Keys(Box::new(e)))?;
                self.read().fields.get(&key_id).cloned().ok_or(CryptoError::UnknownKey { key_id })?
            }
        };
        key.open(field, stored)
    }

    /// The blind index of `value` in `table.column`: HMAC-SHA-256 under the index key over a
    /// label, the table, the column and the value (normalized by the caller).
    pub fn blind_index(&self, table: &'static str, column: &'static str, value: &str) -> Vec<u8> {
        let index = self.read().index.clone();
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(index.expose()) else {
            unreachable!("HMAC takes keys of any length")
        };
        mac.update(b"confidant-blind-index-v1");
        for part in [table.as_bytes(), column.as_bytes()] {
            mac.update(&u16::try_from(part.len()).unwrap_or(u16::MAX).to_be_bytes());
            mac.update(part);
        }
        mac.update(value.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }

    /// Reloads the key list: picks up a rotation made by another process and forgets retired
    /// keys. Keys already unwrapped are kept, not unwrapped again.
    pub async fn refresh(&self) -> Result<(), KeyError> {
        let known = self.read().fields.clone();
        let loaded = load(&self.storage, &self.master, Some(&known)).await?;
        *self.loaded.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = loaded;
        Ok(())
    }

    /// The master key.
    pub fn master(&self) -> &MasterKey {
        &self.master
    }

    /// The database the keys (and the values they protect) live in.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Loaded> {
        // A panic while holding the lock cannot leave `Loaded` half-written: it is replaced whole.
        self.loaded.read().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Creates an active key for each purpose that has none. Two nodes starting at once may both
/// try; the unique index on active keys lets one win and the other simply loads its key.
async fn ensure_active_keys(storage: &Storage, master: &MasterKey) -> Result<(), KeyError> {
    for purpose in [Purpose::Field, Purpose::Index] {
        if active_keys(storage, purpose).await? > 0 {
            continue;
        }
        match create_first_key(storage, master, purpose, uuid::Uuid::now_v7()).await? {
            Ok(key) => {
                tracing::info!(key_id = key.key_id, purpose = purpose.as_str(), "created the first data key");
            }
            Err(error) => {
                tracing::debug!(%error, "another node created the first data key");
            }
        }
    }
    Ok(())
}

/// Unwraps the stored keys (reusing `known` ones) into a [`Loaded`].
async fn load(
    storage: &Storage,
    master: &MasterKey,
    known: Option<&HashMap<u32, Arc<DataKey>>>,
) -> Result<Loaded, KeyError> {
    let mut fields = HashMap::new();
    let mut active = None;
    let mut index = None;
    for key in stored_keys(storage).await? {
        let Some(wrapped) = key.wrapped.as_deref().filter(|_| key.state != KeyState::Retired) else { continue };
        let reused = known.and_then(|k| k.get(&key.key_id)).filter(|_| key.purpose == Purpose::Field).cloned();
        let data_key = match reused {
            Some(data_key) => data_key,
            None => {
                let material = unwrap_stored(master, &key, wrapped)?;
                if key.purpose == Purpose::Index {
                    if key.state == KeyState::Active {
                        index = Some(Arc::new(material));
                    }
                    continue;
                }
                Arc::new(DataKey::new(key.key_id, &material))
            }
        };
        if key.state == KeyState::Active {
            active = Some(data_key.clone());
        }
        fields.insert(key.key_id, data_key);
    }
    let active = active.ok_or(KeyError::Corrupt { key_id: 0, what: "no active field key" })?;
    let index = index.ok_or(KeyError::Corrupt { key_id: 0, what: "no active index key" })?;
    Ok(Loaded { active, fields, index })
}

/// Unwraps a stored key's material (`wrapped`) with `master`, or says which master key it needs.
pub(super) fn unwrap_stored(master: &MasterKey, key: &StoredKey, wrapped: &[u8]) -> Result<KeyBytes, KeyError> {
    master.unwrap(key.key_id, key.purpose, wrapped).ok_or_else(|| KeyError::WrongMasterKey {
        key_id: key.key_id,
        configured: master.fingerprint().to_owned(),
        wrapped_by: key.master_key_id.clone(),
    })
}

/// How many active keys of `purpose` there are.
async fn active_keys(storage: &Storage, purpose: Purpose) -> Result<i64, KeyError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM data_keys WHERE purpose = $1 AND state = 'active'")
        .bind(purpose.as_str())
        .fetch_one(storage.pool())
        .await?)
}

/// Stores a first active key of `purpose` in a transaction of its own. The inner error is the
/// insert's: another node's key won the race (the unique index on active keys), or the database
/// failed then.
async fn create_first_key(
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
