//! `conversations`, `conversation_devices` and `welcomes`: each conversation with its epoch,
//! newest seq and the server's copy of its group; its member devices and their cursors; the
//! Welcomes waiting for their devices.

use confidant_actors::ids::{ConversationId, DeviceId, UserId};
use confidant_protocol::MlsKind;
use sqlx::Row;

use super::messages::{Stored, insert_message, stored};
use super::receipts::Receipt;
use super::{to_i64, to_u64};
use crate::access::ConversationKind;
use crate::storage::{Storage, StorageError, parse_id};

/// A conversation, without its messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// Its id (the MLS group id).
    pub id: ConversationId,
    /// What it is: about one patient, or among staff. Decides who may be added to it.
    pub kind: ConversationKind,
    /// Who created it.
    pub created_by: UserId,
    /// Its current epoch.
    pub epoch: u64,
    /// Its newest seq.
    pub last_seq: u64,
    /// Devices removed at the server (revoked, or their account disabled) that are still in its
    /// group: a member must commit their removal. Filled by `Conversations::name_departed` only.
    pub removed_devices: Vec<(UserId, DeviceId)>,
    /// How far each account in it has got (delivered and read). Filled by
    /// `Conversations::add_receipts` only.
    pub receipts: Vec<Receipt>,
}

/// A Welcome waiting for its device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingWelcome {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// The seq of the commit that added the device.
    pub seq: u64,
    /// The TLS-encoded Welcome `MlsMessageOut`.
    pub welcome: Vec<u8>,
    /// The TLS-encoded ratchet tree after that commit.
    pub ratchet_tree: Vec<u8>,
}

/// A commit to store, and what it does to the conversation's membership.
pub struct CommitWrite<'a> {
    pub conversation: ConversationId,
    /// The epoch it was made in: it is stored only if the conversation is still there.
    pub from_epoch: u64,
    /// The epoch it moves the conversation to.
    pub to_epoch: u64,
    /// The server's copy of the group after it.
    pub public_group: Vec<u8>,
    pub sender: DeviceId,
    /// The TLS-encoded commit.
    pub commit: &'a [u8],
    /// Devices that leave the conversation.
    pub leaving: &'a [DeviceId],
    /// Devices that join it after this commit.
    pub joining: &'a [DeviceId],
    /// The Welcome of the joining devices and the ratchet tree after the commit.
    pub welcome: Option<(&'a [u8], &'a [u8])>,
    pub at_ms: i64,
}

/// Stores a new conversation with its first `members`, in one transaction; `false` when its id
/// is taken.
pub async fn insert(
    storage: &Storage,
    conversation: &Conversation,
    public_group: Vec<u8>,
    members: &[DeviceId],
    now_ms: i64,
) -> Result<bool, StorageError> {
    let mut tx = storage.pool().begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO conversations (conversation_id, kind, patient_id, created_by, created_at_ms, epoch, last_seq, \
         public_group) VALUES ($1, $2, $3, $4, $5, $6, 0, $7) ON CONFLICT (conversation_id) DO NOTHING",
    )
    .bind(conversation.id.to_string())
    .bind(conversation.kind.name())
    .bind(conversation.kind.patient().map(|p| p.to_string()))
    .bind(conversation.created_by.to_string())
    .bind(now_ms)
    .bind(to_i64(conversation.epoch))
    .bind(public_group)
    .execute(&mut *tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(false);
    }
    for member in members {
        sqlx::query(
            "INSERT INTO conversation_devices (conversation_id, device_id, joined_seq, acked_seq) VALUES ($1, $2, 0, 0)",
        )
        .bind(conversation.id.to_string())
        .bind(member.to_string())
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(true)
}

/// A conversation by id.
pub async fn get(storage: &Storage, id: ConversationId) -> Result<Option<Conversation>, StorageError> {
    let row = sqlx::query(
        "SELECT conversation_id, kind, patient_id, created_by, epoch, last_seq FROM conversations \
         WHERE conversation_id = $1",
    )
    .bind(id.to_string())
    .fetch_optional(storage.pool())
    .await?;
    row.as_ref().map(conversation).transpose()
}

/// The conversations `device` is a member of, oldest first.
pub async fn of_device(storage: &Storage, device: DeviceId) -> Result<Vec<Conversation>, StorageError> {
    let rows = sqlx::query(
        "SELECT c.conversation_id, c.kind, c.patient_id, c.created_by, c.epoch, c.last_seq FROM conversations c \
         JOIN conversation_devices d ON d.conversation_id = c.conversation_id WHERE d.device_id = $1 \
         ORDER BY c.created_at_ms, c.conversation_id",
    )
    .bind(device.to_string())
    .fetch_all(storage.pool())
    .await?;
    rows.iter().map(conversation).collect()
}

/// Whether `device` is a member of `conversation`.
pub async fn is_member(
    storage: &Storage,
    conversation: ConversationId,
    device: DeviceId,
) -> Result<bool, StorageError> {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM conversation_devices WHERE conversation_id = $1 AND device_id = $2")
            .bind(conversation.to_string())
            .bind(device.to_string())
            .fetch_one(storage.pool())
            .await?;
    Ok(n == 1)
}

/// The member devices of `conversation`, in id order.
pub async fn members(storage: &Storage, conversation: ConversationId) -> Result<Vec<DeviceId>, StorageError> {
    let rows = sqlx::query("SELECT device_id FROM conversation_devices WHERE conversation_id = $1 ORDER BY device_id")
        .bind(conversation.to_string())
        .fetch_all(storage.pool())
        .await?;
    rows.iter().map(|row| parse_id(&row.try_get::<String, _>(0)?, "device_id")).collect()
}

/// The server's copy of `conversation`'s group.
pub async fn public_group(storage: &Storage, conversation: ConversationId) -> Result<Vec<u8>, StorageError> {
    Ok(sqlx::query_scalar("SELECT public_group FROM conversations WHERE conversation_id = $1")
        .bind(conversation.to_string())
        .fetch_one(storage.pool())
        .await?)
}

/// Stores `write` as its conversation's next message, moving the conversation to its epoch, and
/// applies its membership, in one transaction; `None` when the conversation has left the
/// commit's epoch (another commit won it).
pub async fn apply_commit(storage: &Storage, write: &CommitWrite<'_>) -> Result<Option<Stored>, StorageError> {
    let mut tx = storage.pool().begin().await?;
    let moved = sqlx::query(
        "UPDATE conversations SET epoch = $1, last_seq = last_seq + 1, public_group = $2 \
         WHERE conversation_id = $3 AND epoch = $4 RETURNING last_seq",
    )
    .bind(to_i64(write.to_epoch))
    .bind(write.public_group.clone())
    .bind(write.conversation.to_string())
    .bind(to_i64(write.from_epoch))
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = moved else { return Ok(None) };
    let seq = to_u64(row.try_get(0)?);
    let stored = Stored {
        conversation_id: write.conversation,
        seq,
        kind: MlsKind::Commit,
        sender: write.sender,
        message: write.commit.to_vec(),
    };
    insert_message(&mut tx, &stored, write.from_epoch, write.at_ms).await?;
    for device in write.leaving {
        sqlx::query("DELETE FROM conversation_devices WHERE conversation_id = $1 AND device_id = $2")
            .bind(write.conversation.to_string())
            .bind(device.to_string())
            .execute(&mut *tx)
            .await?;
    }
    for device in write.joining {
        sqlx::query(
            "INSERT INTO conversation_devices (conversation_id, device_id, joined_seq, acked_seq) \
             VALUES ($1, $2, $3, $3)",
        )
        .bind(write.conversation.to_string())
        .bind(device.to_string())
        .bind(to_i64(seq))
        .execute(&mut *tx)
        .await?;
        if let Some((welcome, ratchet_tree)) = write.welcome {
            sqlx::query(
                "INSERT INTO welcomes (conversation_id, device_id, seq, welcome, ratchet_tree) VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(write.conversation.to_string())
            .bind(device.to_string())
            .bind(to_i64(seq))
            .bind(welcome.to_vec())
            .bind(ratchet_tree.to_vec())
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(Some(stored))
}

/// `device`'s Welcomes, then per conversation up to `limit` messages after its cursor, in order.
pub async fn missed(
    storage: &Storage,
    device: DeviceId,
    limit: i64,
) -> Result<(Vec<PendingWelcome>, Vec<Stored>), StorageError> {
    let rows = sqlx::query(
        "SELECT conversation_id, seq, welcome, ratchet_tree FROM welcomes WHERE device_id = $1 ORDER BY conversation_id, seq",
    )
    .bind(device.to_string())
    .fetch_all(storage.pool())
    .await?;
    let welcomes = rows
        .iter()
        .map(|row| {
            Ok(PendingWelcome {
                conversation_id: parse_id(&row.try_get::<String, _>(0)?, "conversation_id")?,
                seq: to_u64(row.try_get(1)?),
                welcome: row.try_get(2)?,
                ratchet_tree: row.try_get(3)?,
            })
        })
        .collect::<Result<Vec<_>, StorageError>>()?;
    let cursors = sqlx::query("SELECT conversation_id, acked_seq FROM conversation_devices WHERE device_id = $1")
        .bind(device.to_string())
        .fetch_all(storage.pool())
        .await?;
    let mut messages = Vec::new();
    for cursor in &cursors {
        let conversation: String = cursor.try_get(0)?;
        let after: i64 = cursor.try_get(1)?;
        let rows = sqlx::query(
            "SELECT conversation_id, seq, kind, sender_device, message FROM conversation_messages \
             WHERE conversation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        )
        .bind(conversation)
        .bind(after)
        .bind(limit)
        .fetch_all(storage.pool())
        .await?;
        for row in &rows {
            messages.push(stored(row)?);
        }
    }
    Ok((welcomes, messages))
}

/// Moves `device`'s cursor in `conversation` forward to `seq` (never back, never past the
/// stream) and drops the Welcomes it has used, in one transaction; `false` when the cursor did
/// not move.
pub async fn ack(
    storage: &Storage,
    device: DeviceId,
    conversation: ConversationId,
    seq: u64,
) -> Result<bool, StorageError> {
    let mut tx = storage.pool().begin().await?;
    let moved = sqlx::query(
        "UPDATE conversation_devices SET acked_seq = $1 WHERE conversation_id = $2 AND device_id = $3 \
         AND acked_seq < $1 AND $1 <= (SELECT last_seq FROM conversations WHERE conversation_id = $2)",
    )
    .bind(to_i64(seq))
    .bind(conversation.to_string())
    .bind(device.to_string())
    .execute(&mut *tx)
    .await?;
    sqlx::query("DELETE FROM welcomes WHERE conversation_id = $1 AND device_id = $2 AND seq <= $3")
        .bind(conversation.to_string())
        .bind(device.to_string())
        .bind(to_i64(seq))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(moved.rows_affected() == 1)
}

/// Takes `device` out of every conversation and drops its Welcomes, in one transaction; returns
/// the conversations it was in.
pub async fn forget_device(storage: &Storage, device: DeviceId) -> Result<Vec<ConversationId>, StorageError> {
    let mut tx = storage.pool().begin().await?;
    // A write first: a deferred SQLite transaction that reads before it writes fails at the
    // write (SQLITE_BUSY, no waiting) when another writer committed in between, which answered a
    // device's removal 500 under concurrent requests.
    let rows = sqlx::query("DELETE FROM conversation_devices WHERE device_id = $1 RETURNING conversation_id")
        .bind(device.to_string())
        .fetch_all(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM welcomes WHERE device_id = $1").bind(device.to_string()).execute(&mut *tx).await?;
    tx.commit().await?;
    rows.iter().map(|row| parse_id(&row.try_get::<String, _>(0)?, "conversation_id")).collect()
}

fn conversation(row: &sqlx::any::AnyRow) -> Result<Conversation, StorageError> {
    let patient: Option<String> = row.try_get(2)?;
    let kind = match (row.try_get::<String, _>(1)?.as_str(), patient) {
        ("care", Some(patient)) => ConversationKind::Care(parse_id(&patient, "patient_id")?),
        ("staff", None) => ConversationKind::Staff,
        // The table's CHECK rules this out; refuse rather than guess who may be in it.
        _ => return Err(StorageError::Corrupt { column: "kind" }),
    };
    Ok(Conversation {
        id: parse_id(&row.try_get::<String, _>(0)?, "conversation_id")?,
        kind,
        created_by: parse_id(&row.try_get::<String, _>(3)?, "created_by")?,
        epoch: to_u64(row.try_get(4)?),
        last_seq: to_u64(row.try_get(5)?),
        removed_devices: Vec::new(),
        receipts: Vec::new(),
    })
}
