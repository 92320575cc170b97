//! Errors of the encryption layer. None carries plaintext, ciphertext or key material, so any
//! of them may be logged; none is ever shown to a client beyond "internal error".

use crate::storage::StorageError;

/// Why a value could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// The ciphertext is malformed, was altered, or belongs to another row or column (its AAD
    /// does not match): the value is not returned.
    #[error("an encrypted value failed its integrity check")]
    Integrity,
    /// The ciphertext names a data key this database does not hold (or no longer holds).
    #[error("an encrypted value names unknown data key {key_id}")]
    UnknownKey {
        /// The key id in the ciphertext header.
        key_id: u32,
    },
    /// Reloading the key list failed.
    #[error(transparent)]
    Keys(#[from] Box<KeyError>),
}

/// Why the keyring cannot be loaded or changed.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// PostgreSQL is configured but no master key is.
    #[error(
        "no master key: with PostgreSQL, set CONFIDANT_MASTER_KEY (base64 of 32 bytes; `confidant keys generate-master` makes one), CONFIDANT_MASTER_KEY_FILE or keys.master_key_file"
    )]
    MasterKeyRequired,
    /// The configured master key is not base64 of exactly 32 bytes.
    #[error("the master key from {source_name} is not base64 of exactly 32 bytes")]
    MasterKeyMalformed {
        /// Where it came from (a variable or file name, never the value).
        source_name: String,
    },
    /// The master key file cannot be read or written.
    #[error("cannot use the master key file {}", path.display())]
    MasterKeyFile {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The configured master key does not unwrap the stored data keys: it is not the one they
    /// were wrapped with.
    #[error(
        "the configured master key ({configured}) cannot unwrap data key {key_id}, which was wrapped by master key {wrapped_by}: start with the master key this database was encrypted with"
    )]
    WrongMasterKey {
        /// The data key that failed.
        key_id: u32,
        /// Fingerprint of the configured master key.
        configured: String,
        /// Fingerprint of the master key recorded with the data key.
        wrapped_by: String,
    },
    /// A stored data key row is not usable (an unknown state or purpose: a newer schema).
    #[error("data key {key_id} is not usable: {what}")]
    Corrupt {
        /// The key.
        key_id: u32,
        /// What is wrong.
        what: &'static str,
    },
    /// No data key with that id.
    #[error("there is no data key {key_id}")]
    NoSuchKey {
        /// The id asked for.
        key_id: u32,
    },
    /// A key cannot be retired yet.
    #[error("data key {key_id} cannot be retired: {why}")]
    NotRetirable {
        /// The key.
        key_id: u32,
        /// Why not.
        why: String,
    },
    /// The audit trail did not record a re-encryption, so it was not done (fail closed).
    #[error("the audit trail is unavailable")]
    AuditUnavailable,
    /// Values could not be opened while re-encrypting.
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl KeyError {
    /// True when the operator must fix the configuration (exit code 2).
    pub fn is_configuration(&self) -> bool {
        matches!(
            self,
            KeyError::MasterKeyRequired
                | KeyError::MasterKeyMalformed { .. }
                | KeyError::MasterKeyFile { .. }
                | KeyError::WrongMasterKey { .. }
        )
    }
}

impl From<sqlx::Error> for KeyError {
    fn from(error: sqlx::Error) -> Self {
        KeyError::Storage(StorageError::Query(error))
    }
}
