//! `MessagingError`: why a messaging store or MLS check failed, beneath the service's own
//! `MessagingServiceError`.

use super::mls;
use crate::storage::StorageError;

/// Why a messaging operation failed.
#[derive(Debug, thiserror::Error)]
pub enum MessagingError {
    /// The MLS structure was refused.
    #[error(transparent)]
    Invalid(#[from] mls::MlsError),
    /// The permission module does not allow the account in this conversation.
    #[error("the account may not be in this conversation")]
    NotAllowed,
    /// Already exists (a signature key, a conversation id).
    #[error("already exists")]
    Conflict,
    /// A service it depends on (accounts, permissions) failed.
    #[error("a dependency failed")]
    Unavailable,
    /// More than a device may keep.
    #[error("too many KeyPackages")]
    TooMany,
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl From<sqlx::Error> for MessagingError {
    fn from(error: sqlx::Error) -> Self {
        MessagingError::Storage(StorageError::Query(error))
    }
}
