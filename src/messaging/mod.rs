//! End-to-end encrypted messaging: the server as MLS Delivery Service and Authentication
//! Service (docs/MESSAGING.md). Devices hold the keys; the server registers devices, hands out
//! their KeyPackages, validates and orders every commit against its copy of each group's public
//! state, and stores and delivers ciphertext it cannot read.

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

pub use claims::ClaimLimiter;
pub use conversations::{Committed, Conversation, Conversations, Membership, PendingWelcome, Sent, Stored};
pub use devices::{ClaimedPackage, Device, Devices};
pub use error::MessagingError;
pub use policy::ConversationPolicy;
pub use service::{MessagingService, MessagingServiceError, Missed, Submitted};

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
