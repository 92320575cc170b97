//! How far each account of a conversation has got (`conversation_reads`, and the devices'
//! `acked_seq` in `conversation_devices`): what a sender sees as delivered and read.

use confidant_actors::ids::{ConversationId, DeviceId, UserId};
use sqlx::Row;

use super::{to_i64, to_u64};
use crate::storage::{Storage, StorageError, parse_id};

/// One account's progress in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Receipt {
    /// The account.
    pub user: UserId,
    /// The newest seq one of its member devices took in (acknowledged).
    pub delivered_seq: u64,
    /// The newest seq the person read (0: none).
    pub read_seq: u64,
}

/// Raises `user`'s read mark in `conversation` to `seq`, never lowering it and never past the
/// conversation's newest seq; whether it moved.
pub async fn mark_read(
    storage: &Storage,
    conversation: ConversationId,
    user: UserId,
    seq: u64,
) -> Result<bool, StorageError> {
    let done = sqlx::query(
        "INSERT INTO conversation_reads (conversation_id, user_id, read_seq) \
         SELECT $1, $2, $3 WHERE $3 <= (SELECT last_seq FROM conversations WHERE conversation_id = $1) \
         ON CONFLICT (conversation_id, user_id) DO UPDATE SET read_seq = excluded.read_seq \
         WHERE conversation_reads.read_seq < excluded.read_seq",
    )
    .bind(conversation.to_string())
    .bind(user.to_string())
    .bind(to_i64(seq))
    .execute(storage.pool())
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Each account with a device in `conversation` now, and how far it got, in account order.
pub async fn of_conversation(storage: &Storage, conversation: ConversationId) -> Result<Vec<Receipt>, StorageError> {
    let rows = sqlx::query(
        "SELECT d.user_id, MAX(cd.acked_seq), COALESCE(MAX(r.read_seq), 0) FROM conversation_devices cd \
         JOIN devices d ON d.device_id = cd.device_id \
         LEFT JOIN conversation_reads r ON r.conversation_id = cd.conversation_id AND r.user_id = d.user_id \
         WHERE cd.conversation_id = $1 GROUP BY d.user_id ORDER BY d.user_id",
    )
    .bind(conversation.to_string())
    .fetch_all(storage.pool())
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Receipt {
                user: parse_id(&row.try_get::<String, _>(0)?, "user_id")?,
                delivered_seq: to_u64(row.try_get(1)?),
                read_seq: to_u64(row.try_get(2)?),
            })
        })
        .collect()
}

/// The device that sent the message at `seq` of `conversation`, while it is kept.
pub async fn sender_of(
    storage: &Storage,
    conversation: ConversationId,
    seq: u64,
) -> Result<Option<DeviceId>, StorageError> {
    let row = sqlx::query("SELECT sender_device FROM conversation_messages WHERE conversation_id = $1 AND seq = $2")
        .bind(conversation.to_string())
        .bind(to_i64(seq))
        .fetch_optional(storage.pool())
        .await?;
    row.map(|row| parse_id(&row.try_get::<String, _>(0)?, "sender_device")).transpose()
}
