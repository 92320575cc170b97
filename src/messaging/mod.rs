//! End-to-end encrypted messaging: the server as MLS Delivery Service and Authentication
//! Service (docs/MESSAGING.md). Devices hold the keys; the server registers devices, hands out
//! their KeyPackages, validates and orders every commit against its copy of each group's public
//! state, and stores and delivers ciphertext it cannot read.

pub mod attachments;
pub mod cache;
pub mod claims;
pub mod conversations;
pub mod devices;
mod error;
pub mod frames;
pub mod ingest;
pub mod mls;
pub mod policy;
pub mod service;
mod store;

use crate::storage::Storage;
pub use attachments::Attachments;
pub use claims::ClaimLimiter;
pub use conversations::{Committed, Conversation, Conversations, Membership, PendingWelcome, Sent, Stored};
pub use devices::{ClaimedPackage, Device, Devices};
pub use error::MessagingError;
pub use policy::ConversationPolicy;

pub use service::{Downloaded, MessagingService, MessagingServiceError, Missed, Submitted, Uploaded};

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

/// What one run of the retention purge deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Delivered messages past retention.
    pub messages: u64,
    /// Attachments of those messages, and those no message named for a day.
    pub attachments: u64,
}

/// One run of the retention purge at `now_ms`, over the main store `storage`: deletes the
/// ciphertext every member device acknowledged that is older than `retention_ms`, then the
/// attachments of the messages it deleted and those no message named for
/// [`attachments::UNLINKED_TTL_MS`]. Idempotent, and safe on every node at once.
pub async fn purge(storage: &Storage, now_ms: i64, retention_ms: i64) -> Result<Purged, MessagingError> {
    let messages = store::messages::purge_delivered(storage, now_ms.saturating_sub(retention_ms)).await?;
    let attachments = store::attachments::purge(storage, now_ms.saturating_sub(attachments::UNLINKED_TTL_MS)).await?;
    Ok(Purged { messages, attachments })
}

/// Runs [`purge`] every [`PURGE_EVERY`], with the retention `retention`. Runs on every node; the
/// deletes are idempotent.
pub fn start_purge(
    storage: Storage,
    retention: std::time::Duration,
    clock: std::sync::Arc<dyn confidant_actors::clock::Clock>,
) {
    actix::spawn(async move {
        let retention_ms = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
        loop {
            tokio::time::sleep(PURGE_EVERY).await;
            match purge(&storage, clock.now_ms(), retention_ms).await {
                Ok(Purged { messages: 0, attachments: 0 }) => {}
                Ok(Purged { messages, attachments }) => {
                    tracing::info!(messages, attachments, "deleted delivered messages and attachments past retention");
                }
                Err(error) => tracing::warn!(%error, "could not purge delivered messages"),
            }
        }
    });
}
