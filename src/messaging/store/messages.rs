//! `conversation_messages`: each conversation's ordered stream of ciphertext, written one commit
//! at a time or a batch of application messages at a time (`Backend::message_batch_sql`).

use std::collections::HashMap;

use confidant_actors::ids::{ConversationId, DeviceId};
use confidant_protocol::MlsKind;
use sqlx::Row;

use super::{to_i64, to_u64};
use crate::storage::{Backend, MessageBatchSql, Storage, StorageError, json_rows, parse_id};

/// One stored message of a conversation's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// Its place.
    pub seq: u64,
    /// Commit or application message.
    pub kind: MlsKind,
    /// Who sent it.
    pub sender: DeviceId,
    /// The TLS-encoded `MlsMessageOut`.
    pub message: Vec<u8>,
}

/// Reads a row selected as `conversation_id, seq, kind, sender_device, message`.
pub fn stored(row: &sqlx::any::AnyRow) -> Result<Stored, StorageError> {
    let kind = match row.try_get::<String, _>(2)?.as_str() {
        "commit" => MlsKind::Commit,
        _ => MlsKind::Application,
    };
    Ok(Stored {
        conversation_id: parse_id(&row.try_get::<String, _>(0)?, "conversation_id")?,
        seq: to_u64(row.try_get(1)?),
        kind,
        sender: parse_id(&row.try_get::<String, _>(3)?, "sender_device")?,
        message: row.try_get(4)?,
    })
}

/// Stores `stored`, a message of `epoch`, in `tx`.
pub async fn insert_message(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    stored: &Stored,
    epoch: u64,
    now_ms: i64,
) -> Result<(), StorageError> {
    sqlx::query(
        "INSERT INTO conversation_messages (conversation_id, seq, kind, epoch, sender_device, message, at_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(stored.conversation_id.to_string())
    .bind(to_i64(stored.seq))
    .bind(stored.kind.as_str())
    .bind(to_i64(epoch))
    .bind(stored.sender.to_string())
    .bind(stored.message.clone())
    .bind(now_ms)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
/// Deletes messages older than `before_ms` that every member device has acknowledged; returns
/// how many.
pub async fn purge_delivered(storage: &Storage, before_ms: i64) -> Result<u64, StorageError> {
    let done = sqlx::query(
        "DELETE FROM conversation_messages WHERE at_ms < $1 AND seq <= \
         (SELECT COALESCE(MIN(d.acked_seq), 0) FROM conversation_devices d \
          WHERE d.conversation_id = conversation_messages.conversation_id)",
    )
    .bind(before_ms)
    .execute(storage.pool())
    .await?;
    Ok(done.rows_affected())
}

/// An application message to append.
pub struct NewMessage {
    pub conversation: ConversationId,
    /// The epoch it was encrypted in.
    pub epoch: u64,
    pub sender: DeviceId,
    /// The TLS-encoded `MlsMessageOut`.
    pub ciphertext: Vec<u8>,
    pub at_ms: i64,
}

/// Moves each conversation's `last_seq` on by its messages (only while it is in their epoch)
/// and inserts the messages (`Backend::message_batch_sql`): the seq of each message, in order
/// (`None`: its epoch is over).
pub async fn append(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    backend: Backend,
    messages: &[NewMessage],
) -> Result<Vec<Option<u64>>, StorageError> {
    use std::fmt::Write as _;
    // Runs of one conversation and epoch, in order of first arrival (a batch may hold a
    // thousand conversations: found by key, not by scanning).
    let mut groups: Vec<((ConversationId, u64), Vec<usize>)> = Vec::new();
    let mut by_key: HashMap<(ConversationId, u64), usize> = HashMap::new();
    for (i, message) in messages.iter().enumerate() {
        let group = *by_key.entry((message.conversation, message.epoch)).or_insert_with(|| {
            groups.push(((message.conversation, message.epoch), Vec::new()));
            groups.len() - 1
        });
        groups[group].1.push(i);
    }
    // A group of `count` messages takes the seqs up to its conversation's new `last_seq`, in
    // arrival order: the n-th (from 0) is `count - 1 - n` before it.
    let (mut added, mut rows) = (String::from("["), String::from("["));
    for ((conversation, epoch), members) in &groups {
        if added.len() > 1 {
            added.push(',');
        }
        let _ = write!(added, "[\"{conversation}\",{epoch},{}]", members.len());
        for (n, &i) in members.iter().enumerate() {
            if rows.len() > 1 {
                rows.push(',');
            }
            push_row(&mut rows, &messages[i], members.len() - 1 - n);
        }
    }
    added.push(']');
    rows.push(']');
    let moved = match backend.message_batch_sql() {
        MessageBatchSql::Combined(sql) => sqlx::query(sql).bind(added).bind(rows).fetch_all(&mut **tx).await?,
        MessageBatchSql::Separate { advance, append } => {
            let moved = sqlx::query(advance).bind(added).fetch_all(&mut **tx).await?;
            if !moved.is_empty() {
                sqlx::query(append).bind(rows).execute(&mut **tx).await?;
            }
            moved
        }
    };
    let mut seqs = vec![None; messages.len()];
    for row in moved {
        let conversation = parse_id(&row.try_get::<String, _>(0)?, "conversation_id")?;
        let epoch: i64 = row.try_get(1)?;
        let last: i64 = row.try_get(2)?;
        let Some(&group) = by_key.get(&(conversation, u64::try_from(epoch).unwrap_or(0))) else { continue };
        let members = &groups[group].1;
        for (n, &i) in members.iter().enumerate() {
            let offset = i64::try_from(members.len() - 1 - n).unwrap_or(i64::MAX);
            seqs[i] = u64::try_from(last - offset).ok();
        }
    }
    Ok(seqs)
}

/// One message as a JSON row of `Backend::message_batch_sql`, `offset` seqs before its
/// conversation's new `last_seq`: ids are UUID text and the ciphertext hex, so nothing needs
/// escaping.
fn push_row(out: &mut String, message: &NewMessage, offset: usize) {
    use std::fmt::Write as _;
    let _ = write!(
        out,
        "[\"{}\",{},{offset},\"{}\",{},\"",
        message.conversation, message.epoch, message.sender, message.at_ms
    );
    json_rows::push_hex(out, &message.ciphertext);
    out.push_str("\"]");
}
