//! Encrypted attachments (docs/MESSAGING.md, "Attachments"): files a device encrypted with a key
//! that travels only inside the MLS message carrying them. The server stores the ciphertext in
//! the main store (so every node serves every attachment, and it is backed up and deleted with
//! the conversation's messages), keeps it as long as its message, and never holds a key.
//! The statements are in `store/attachments.rs`; the checks and audit records in
//! `service/attachments.rs`.

use confidant_actors::ids::{AttachmentId, ConversationId, UserId};
use confidant_protocol::attachments::CIPHERTEXT_OVERHEAD;
use sha2::{Digest, Sha256};

use super::error::MessagingError;
use super::store::attachments as rows;
use crate::storage::Storage;

pub use super::store::attachments::AttachmentInfo;

/// An attachment no message named is deleted this long after its upload.
pub const UNLINKED_TTL_MS: i64 = 24 * 60 * 60 * 1000;

/// The attachments of every conversation, with the largest file a device may attach.
#[derive(Clone)]
pub struct Attachments {
    storage: Storage,
    /// `messaging.attachment_max_bytes`: the largest file (its ciphertext is
    /// [`CIPHERTEXT_OVERHEAD`] bytes larger).
    max_file_bytes: usize,
}

impl Attachments {
    /// The attachments in `storage`, files of at most `max_file_bytes`.
    pub fn new(storage: Storage, max_file_bytes: usize) -> Self {
        Self { storage, max_file_bytes }
    }

    /// The largest ciphertext an upload may carry: the largest file, its nonce and its tag.
    pub fn max_ciphertext_bytes(&self) -> usize {
        self.max_file_bytes.saturating_add(CIPHERTEXT_OVERHEAD)
    }

    /// Whether `user` has an active device in `conversation`'s membership now.
    pub async fn has_member_device(&self, conversation: ConversationId, user: UserId) -> Result<bool, MessagingError> {
        Ok(rows::has_member_device(&self.storage, conversation, user).await?)
    }

    /// Stores `ciphertext` as a new attachment of `conversation` uploaded by `user`, unlinked:
    /// its id, size and SHA-256.
    pub async fn store(
        &self,
        conversation: ConversationId,
        user: UserId,
        id: AttachmentId,
        ciphertext: &[u8],
        now_ms: i64,
    ) -> Result<[u8; 32], MessagingError> {
        let sha256: [u8; 32] = Sha256::digest(ciphertext).into();
        let new = rows::NewAttachment { id, conversation, uploaded_by: user, sha256, ciphertext, at_ms: now_ms };
        rows::insert(&self.storage, &new).await?;
        Ok(sha256)
    }

    /// The attachment `id`, without its ciphertext.
    pub async fn info(&self, id: AttachmentId) -> Result<Option<AttachmentInfo>, MessagingError> {
        Ok(rows::info(&self.storage, id).await?)
    }

    /// The ciphertext of `id` (`None` once deleted).
    pub async fn ciphertext(&self, id: AttachmentId) -> Result<Option<Vec<u8>>, MessagingError> {
        Ok(rows::ciphertext(&self.storage, id).await?)
    }

    /// Whether every one of `ids` (no duplicates) is an attachment of `conversation` that `user`
    /// uploaded and no message carries yet.
    pub async fn all_linkable(
        &self,
        conversation: ConversationId,
        user: UserId,
        ids: &[AttachmentId],
    ) -> Result<bool, MessagingError> {
        Ok(rows::linkable(&self.storage, conversation, user, ids).await? == ids.len())
    }

    /// Ties `ids` to the message stored at `seq`: they are deleted with it.
    pub async fn link(
        &self,
        conversation: ConversationId,
        user: UserId,
        ids: &[AttachmentId],
        seq: u64,
    ) -> Result<u64, MessagingError> {
        Ok(rows::link(&self.storage, conversation, user, ids, seq).await?)
    }
}
