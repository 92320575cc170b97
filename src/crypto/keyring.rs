//! The data keys: stored wrapped in `data_keys`, unwrapped once into memory, and used to seal
//! and open field values and to compute blind indexes. One field key is active (it seals new
//! values); older ones stay to open what they still protect until re-encryption moves those
//! values on and the key is retired (its wrapped material deleted). The statements on
//! `data_keys` are in `store/data_keys.rs`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use super::envelope::{DataKey, Field, key_id_of};
use super::master::MasterKey;
pub use super::master::Purpose;
use super::secret::KeyBytes;
use super::store::data_keys::{active_keys, create_first_key};
use super::{CryptoError, KeyError};
use crate::storage::Storage;

pub use super::store::data_keys::{KeyState, StoredKey, stored_keys};

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
