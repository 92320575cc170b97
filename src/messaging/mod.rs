//! End-to-end encrypted messaging: the server as MLS Delivery Service and Authentication
//! Service (docs/MESSAGING.md). Devices hold the keys; the server registers devices, hands out
//! their KeyPackages, validates and orders every commit against its copy of each group's public
//! state, and stores and delivers ciphertext it cannot read.

pub mod cache;
pub mod claims;
pub mod conversations;
pub mod devices;
pub mod frames;
pub mod ingest;
pub mod mls;
pub mod policy;
pub mod service;
mod store;

pub use claims::ClaimLimiter;
pub use conversations::{Committed, Conversation, Conversations, Membership, PendingWelcome, Sent, Stored};
pub use devices::{ClaimedPackage, Device, Devices};
pub use policy::ConversationPolicy;
pub use service::{MessagingService, MessagingServiceError, Missed, Submitted};

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

/// Takes every device of a disabled account out of its conversations' delivery: nothing more is
/// delivered to them and, the account being disabled, no commit can add them back.
pub async fn retire_devices(
    devices: &Devices,
    conversations: &Conversations,
    user: confidant_actors::ids::UserId,
) -> Result<(), MessagingError> {
    for device in devices.of_user(user).await? {
        conversations.forget_device(device.id).await?;
    }
    Ok(())
}

/// How often a node deletes delivered ciphertext past the retention window.
pub const PURGE_EVERY: std::time::Duration = std::time::Duration::from_secs(600);

/// Deletes, every [`PURGE_EVERY`], ciphertext every member device acknowledged that is older
/// than `retention`. Runs on every node; the deletes are idempotent.
pub fn start_purge(
    conversations: Conversations,
    retention: std::time::Duration,
    clock: std::sync::Arc<dyn confidant_actors::clock::Clock>,
) {
    actix::spawn(async move {
        let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        loop {
            tokio::time::sleep(PURGE_EVERY).await;
            match conversations.purge_delivered(clock.now_ms().saturating_sub(retention_ms)).await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "deleted delivered messages past retention"),
                Err(error) => tracing::warn!(%error, "could not purge delivered messages"),
            }
        }
    });
}
