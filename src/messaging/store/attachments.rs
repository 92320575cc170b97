//! `attachments`: encrypted files of a conversation, as ciphertext with its SHA-256, linked to the
//! message that carries them once it is stored, and deleted with it (or a day after an upload no
//! message named).

use confidant_actors::ids::{AttachmentId, ConversationId, UserId};
use sqlx::Row;

use super::{to_i64, to_u64};
use crate::storage::{Storage, StorageError, parse_id};

/// An attachment to store.
pub struct NewAttachment<'a> {
    pub id: AttachmentId,
    pub conversation: ConversationId,
    pub uploaded_by: UserId,
    /// SHA-256 of `ciphertext`.
    pub sha256: [u8; 32],
    pub ciphertext: &'a [u8],
    pub at_ms: i64,
}

/// What is known of a stored attachment without reading its ciphertext.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentInfo {
    pub id: AttachmentId,
    pub conversation_id: ConversationId,
    pub size: u64,
    pub sha256: Vec<u8>,
    /// The message that carries it, once stored.
    pub message_seq: Option<u64>,
}

/// Whether `user` has an active (not removed) device that is a member of `conversation` now.
pub async fn has_member_device(
    storage: &Storage,
    conversation: ConversationId,
    user: UserId,
) -> Result<bool, StorageError> {
    let found = sqlx::query(
        "SELECT 1 FROM conversation_devices m JOIN devices d ON d.device_id = m.device_id \
         WHERE m.conversation_id = $1 AND d.user_id = $2 AND d.removed_at_ms IS NULL LIMIT 1",
    )
    .bind(conversation.to_string())
    .bind(user.to_string())
    .fetch_optional(storage.pool())
    .await?;
    Ok(found.is_some())
}

/// Stores a new attachment, not yet linked to any message.
pub async fn insert(storage: &Storage, new: &NewAttachment<'_>) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO attachments (attachment_id, conversation_id, uploaded_by, size_bytes, sha256, ciphertext, \
         uploaded_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(new.id.to_string())
    .bind(new.conversation.to_string())
    .bind(new.uploaded_by.to_string())
    .bind(to_i64(new.ciphertext.len() as u64))
    .bind(new.sha256.to_vec())
    .bind(new.ciphertext.to_vec())
    .bind(new.at_ms)
    .execute(storage.pool())
    .await?;
    Ok(())
}

/// The attachment `id`, without its ciphertext.
pub async fn info(storage: &Storage, id: AttachmentId) -> Result<Option<AttachmentInfo>, StorageError> {
    let row = sqlx::query(
        "SELECT attachment_id, conversation_id, size_bytes, sha256, message_seq FROM attachments \
         WHERE attachment_id = $1",
    )
    .bind(id.to_string())
    .fetch_optional(storage.pool())
    .await?;
    row.map(|row| {
        Ok(AttachmentInfo {
            id: parse_id(&row.try_get::<String, _>(0)?, "attachment_id")?,
            conversation_id: parse_id(&row.try_get::<String, _>(1)?, "conversation_id")?,
            size: to_u64(row.try_get(2)?),
            sha256: row.try_get(3)?,
            message_seq: row.try_get::<Option<i64>, _>(4)?.map(to_u64),
        })
    })
    .transpose()
}

/// The ciphertext of `id` (`None` if it was deleted meanwhile).
pub async fn ciphertext(storage: &Storage, id: AttachmentId) -> Result<Option<Vec<u8>>, StorageError> {
    let row = sqlx::query("SELECT ciphertext FROM attachments WHERE attachment_id = $1")
        .bind(id.to_string())
        .fetch_optional(storage.pool())
        .await?;
    Ok(row.map(|row| row.try_get(0)).transpose()?)
}

/// `$first, $first+1, ...` for `n` values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ")
}

/// How many of `ids` are attachments of `conversation` uploaded by `user` that no message carries
/// yet (`ids` holds no duplicates).
pub async fn linkable(
    storage: &Storage,
    conversation: ConversationId,
    user: UserId,
    ids: &[AttachmentId],
) -> Result<usize, StorageError> {
    let sql = format!(
        "SELECT COUNT(*) FROM attachments WHERE conversation_id = $1 AND uploaded_by = $2 AND message_seq IS NULL \
         AND attachment_id IN ({})",
        placeholders(3, ids.len())
    );
    let mut query =
        sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql)).bind(conversation.to_string()).bind(user.to_string());
    for id in ids {
        query = query.bind(id.to_string());
    }
    Ok(usize::try_from(query.fetch_one(storage.pool()).await?).unwrap_or(0))
}

/// Links `ids` (of `conversation`, uploaded by `user`, not linked yet) to the message at `seq`:
/// from now on they live as long as it does. Returns how many were linked.
pub async fn link(
    storage: &Storage,
    conversation: ConversationId,
    user: UserId,
    ids: &[AttachmentId],
    seq: u64,
) -> Result<u64, StorageError> {
    let sql = format!(
        "UPDATE attachments SET message_seq = $1 WHERE conversation_id = $2 AND uploaded_by = $3 \
         AND message_seq IS NULL AND attachment_id IN ({})",
        placeholders(4, ids.len())
    );
    let mut query =
        sqlx::query(sqlx::AssertSqlSafe(sql)).bind(to_i64(seq)).bind(conversation.to_string()).bind(user.to_string());
    for id in ids {
        query = query.bind(id.to_string());
    }
    Ok(query.execute(storage.pool()).await?.rows_affected())
}

/// Deletes the attachments whose message is gone (the retention purge deleted it) and those no
/// message named that were uploaded before `unlinked_before_ms`; returns how many.
pub async fn purge(storage: &Storage, unlinked_before_ms: i64) -> Result<u64, StorageError> {
    let done = sqlx::query(
        "DELETE FROM attachments WHERE (message_seq IS NULL AND uploaded_at_ms < $1) \
         OR (message_seq IS NOT NULL AND NOT EXISTS (SELECT 1 FROM conversation_messages m \
             WHERE m.conversation_id = attachments.conversation_id AND m.seq = attachments.message_seq))",
    )
    .bind(unlinked_before_ms)
    .execute(storage.pool())
    .await?;
    Ok(done.rows_affected())
}
