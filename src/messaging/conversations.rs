//! The Delivery Service half: conversations (one MLS group each), their ordered message
//! streams, Welcomes and each member device's acknowledged cursor.
//!
//! Ordering: a conversation's `epoch` and `last_seq` move only by conditional updates inside
//! the transaction that stores the message, so the first valid commit of an epoch wins (a later
//! one gets the current epoch back) and every message gets the next seq exactly once.
//! Membership, for fan-out and fetching, is the server's public group after the last accepted
//! commit (`conversation_devices`), never a list a sender supplies.

use confidant_actors::audit::{AuditEvent, AuditWriter};
use confidant_actors::ids::{ConversationId, DeviceId, UserId};
use confidant_protocol::MlsKind;
use sqlx::Row;
use uuid::Uuid;

use super::MessagingError;
use super::cache::MembershipCache;
use super::devices::{Device, Devices};
use super::ingest::Ingest;
use super::mls::{self, MlsError, ServerGroup};
use crate::access::ConversationKind;
use crate::storage::{Storage, StorageError, parse_id};

/// A device is sent at most this many missed messages per conversation when it attaches; it
/// acknowledges them and attaches again (or reads on as new ones arrive) for the rest.
pub const MAX_REPLAY: i64 = 1000;

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
}

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

/// What became of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Committed {
    /// Accepted as `stored`, moving the group to `epoch`. `recipients` are the devices that
    /// must process it (the members before it, but the sender: removed devices learn of their
    /// removal); `welcomed` the devices it added, each with its Welcome.
    Accepted { stored: Stored, epoch: u64, recipients: Vec<DeviceId>, welcomed: Vec<(DeviceId, PendingWelcome)> },
    /// Another commit won this epoch; the conversation is at `epoch` now.
    Stale { epoch: u64 },
}

/// What became of an application message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    /// Stored as `stored`, for `recipients` (every member device but the sender).
    Accepted { stored: Stored, epoch: u64, recipients: Vec<DeviceId> },
    /// It was encrypted in an epoch that is over: process the conversation up to `epoch`.
    Stale { epoch: u64 },
}

/// Decides whether an account may be in a conversation of a kind (the caller wires the
/// permission module in; see `Access::may_converse`).
pub trait Membership: Sync {
    /// Whether `user` may be a member of a conversation of `kind`.
    fn may_hold(
        &self,
        user: UserId,
        kind: ConversationKind,
    ) -> impl Future<Output = Result<bool, MessagingError>> + Send;
}

/// The conversation store; it vouches for devices through the registry.
#[derive(Clone)]
pub struct Conversations {
    storage: Storage,
    devices: Devices,
    ingest: Ingest,
    cache: std::sync::Arc<MembershipCache>,
}

impl Conversations {
    /// The conversations in `storage`, checking credentials against `devices`.
    pub fn new(storage: Storage, devices: Devices, audit: actix::Addr<AuditWriter>) -> Self {
        Self { ingest: Ingest::new(storage.clone(), audit), storage, devices, cache: Default::default() }
    }

    /// Starts a conversation of `kind` from `creator`'s new group (its GroupInfo and
    /// ratchet tree). The group id must be a fresh UUID, and every member of the new group a
    /// vouched-for device of an account `policy` allows (in practice: the creator alone).
    pub async fn create(
        &self,
        creator: &Device,
        kind: ConversationKind,
        group_info: &[u8],
        ratchet_tree: &[u8],
        policy: &impl Membership,
        now_ms: i64,
    ) -> Result<Conversation, MessagingError> {
        let (group, members) = ServerGroup::create(group_info, ratchet_tree)?;
        let id = Uuid::from_slice(group.group_id()).map_err(|_| MessagingError::Invalid(MlsError::Invalid))?;
        if !members.iter().any(|m| m.device == creator.id) {
            return Err(MessagingError::Invalid(MlsError::Credential));
        }
        for member in &members {
            self.devices.vouch(member).await?;
            if !policy.may_hold(member.user, kind).await? {
                return Err(MessagingError::NotAllowed);
            }
        }
        let state = group.to_bytes()?;
        let conversation = Conversation {
            id: ConversationId::from_uuid(id),
            kind,
            created_by: creator.user_id,
            epoch: group.epoch(),
            last_seq: 0,
        };
        let devices: Vec<DeviceId> = members.iter().map(|m| m.device).collect();
        if !insert(&self.storage, &conversation, state, &devices, now_ms).await? {
            return Err(MessagingError::Conflict);
        }
        Ok(conversation)
    }

    /// A conversation by id.
    pub async fn get(&self, id: ConversationId) -> Result<Option<Conversation>, MessagingError> {
        Ok(get(&self.storage, id).await?)
    }

    /// The conversations `device` is a member of.
    pub async fn of_device(&self, device: DeviceId) -> Result<Vec<Conversation>, MessagingError> {
        Ok(of_device(&self.storage, device).await?)
    }

    /// Whether `device` is a member of `conversation` now.
    pub async fn is_member(&self, conversation: ConversationId, device: DeviceId) -> Result<bool, MessagingError> {
        Ok(is_member(&self.storage, conversation, device).await?)
    }

    /// The member devices of `conversation`.
    pub async fn members(&self, conversation: ConversationId) -> Result<Vec<DeviceId>, MessagingError> {
        Ok(members(&self.storage, conversation).await?)
    }

    /// The conversation and its member devices for a message from `sender`: from this node's
    /// short-lived copy when `sender` is in it, else read now (see `cache`). `None` when there
    /// is no such conversation.
    pub async fn for_sending(
        &self,
        id: ConversationId,
        sender: DeviceId,
    ) -> Result<Option<(Conversation, Vec<DeviceId>)>, MessagingError> {
        let cached = || self.cache.get(id).filter(|(_, members)| members.contains(&sender));
        if let Some(hit) = cached() {
            return Ok(Some(hit));
        }
        let _reading = self.cache.reading(id).await;
        if let Some(hit) = cached() {
            return Ok(Some(hit));
        }
        let Some(conversation) = self.get(id).await? else { return Ok(None) };
        let members = self.members(id).await?;
        self.cache.put(conversation.clone(), members.clone());
        Ok(Some((conversation, members)))
    }

    /// Validates `commit` from `sender` against the conversation's public group, checks every
    /// device it adds (a registered, active device of an account `policy` allows), and
    /// stores it as the conversation's next message if it is the first for its epoch. A
    /// commit that adds devices must bring their Welcome, released only with the commit.
    pub async fn commit(
        &self,
        sender: &Device,
        conversation: &Conversation,
        commit: &[u8],
        welcome: Option<&[u8]>,
        policy: &impl Membership,
        now_ms: i64,
    ) -> Result<Committed, MessagingError> {
        let state = public_group(&self.storage, conversation.id).await?;
        let mut group = ServerGroup::from_bytes(conversation.id.as_uuid().as_bytes(), &state)?;
        let current = group.epoch();
        let checked = match group.check_commit(commit) {
            Ok(checked) => checked,
            Err(MlsError::Epoch) => return Ok(Committed::Stale { epoch: current }),
            Err(error) => return Err(error.into()),
        };
        if checked.sender.device != sender.id {
            return Err(MessagingError::Invalid(MlsError::Credential));
        }
        self.devices.vouch(&checked.sender).await?;
        for added in &checked.added {
            self.devices.vouch(added).await?;
            if !policy.may_hold(added.user, conversation.kind).await? {
                return Err(MessagingError::NotAllowed);
            }
        }
        match (checked.added.is_empty(), welcome) {
            (true, None) => {}
            (false, Some(welcome)) => mls::check_welcome(welcome)?,
            _ => return Err(MessagingError::Invalid(MlsError::Malformed)),
        }
        let added: Vec<DeviceId> = checked.added.iter().map(|c| c.device).collect();
        let before = self.members(conversation.id).await?;
        group.merge(checked)?;
        let epoch = group.epoch();
        let after: Vec<DeviceId> = group.members()?.into_iter().map(|m| m.device).collect();
        let tree = group.ratchet_tree()?;
        let state = group.to_bytes()?;

        // Membership follows the group: devices it removed leave, devices it added join after
        // this commit (they start from its Welcome); the others keep their cursors. A device
        // the server stopped serving (`forget_device`) is not let back in by a later commit.
        let leaving: Vec<DeviceId> = before.iter().filter(|d| !after.contains(d)).copied().collect();
        let joining: Vec<DeviceId> =
            added.iter().filter(|d| after.contains(d) && !before.contains(d)).copied().collect();
        let write = CommitWrite {
            conversation: conversation.id,
            from_epoch: current,
            to_epoch: epoch,
            public_group: state,
            sender: sender.id,
            commit,
            leaving: &leaving,
            joining: &joining,
            welcome: welcome.map(|welcome| (welcome, tree.as_slice())),
            at_ms: now_ms,
        };
        let Some(stored) = apply_commit(&self.storage, &write).await? else {
            let now = self.get(conversation.id).await?.map_or(current, |c| c.epoch);
            return Ok(Committed::Stale { epoch: now });
        };
        let welcomed = match welcome {
            Some(welcome) => joining
                .iter()
                .map(|device| {
                    let pending = PendingWelcome {
                        conversation_id: conversation.id,
                        seq: stored.seq,
                        welcome: welcome.to_vec(),
                        ratchet_tree: tree.clone(),
                    };
                    (*device, pending)
                })
                .collect(),
            None => Vec::new(),
        };
        self.cache.forget(conversation.id);
        let recipients = before.into_iter().filter(|d| *d != sender.id).collect();
        Ok(Committed::Accepted { stored, epoch, recipients, welcomed })
    }

    /// Stores an application message from member `sender`: the conversation's next seq, if
    /// it was encrypted in the current epoch. Messages arriving together share one
    /// transaction (`ingest`), which commits only once their audit records (`event` for this
    /// one) are durable (`Unavailable` otherwise, nothing stored). A message refused before
    /// that (its framing, its sender) is not recorded.
    /// `members` is the conversation's membership as the caller just read it
    /// ([`Conversations::members`]): it is checked and becomes the fan-out.
    pub async fn send(
        &self,
        sender: DeviceId,
        conversation: &Conversation,
        members: Vec<DeviceId>,
        message: &[u8],
        now_ms: i64,
        event: AuditEvent,
    ) -> Result<Sent, MessagingError> {
        let framing = mls::application_framing(conversation.id.as_uuid().as_bytes(), message)?;
        if !members.contains(&sender) {
            return Err(MessagingError::NotAllowed);
        }
        let appended =
            self.ingest.append(conversation.id, framing.epoch, sender, message.to_vec(), now_ms, event).await?;
        let Some(seq) = appended else {
            let now = self.get(conversation.id).await?.map_or(conversation.epoch, |c| c.epoch);
            return Ok(Sent::Stale { epoch: now });
        };
        let stored = Stored {
            conversation_id: conversation.id,
            seq,
            kind: MlsKind::Application,
            sender,
            message: message.to_vec(),
        };
        let recipients = members.into_iter().filter(|d| *d != sender).collect();
        Ok(Sent::Accepted { stored, epoch: framing.epoch, recipients })
    }

    /// What `device` has not acknowledged: its Welcomes, then per conversation the messages
    /// after its cursor (at most [`MAX_REPLAY`] each), in order.
    pub async fn missed(&self, device: DeviceId) -> Result<(Vec<PendingWelcome>, Vec<Stored>), MessagingError> {
        Ok(missed(&self.storage, device, MAX_REPLAY).await?)
    }

    /// `device` processed `conversation` up to `seq`: its cursor moves forward (never back,
    /// never past the stream), and a Welcome it has used is dropped.
    pub async fn ack(&self, device: DeviceId, conversation: ConversationId, seq: u64) -> Result<bool, MessagingError> {
        Ok(ack(&self.storage, device, conversation, seq).await?)
    }

    /// Deletes ciphertext every member device has acknowledged, once it is older than
    /// `before_ms`. Returns how many messages went.
    pub async fn purge_delivered(&self, before_ms: i64) -> Result<u64, MessagingError> {
        Ok(purge_delivered(&self.storage, before_ms).await?)
    }

    /// Takes `device` out of every conversation's membership (its account was disabled or
    /// the device removed): it is sent nothing more. The members still have to commit its
    /// removal from the MLS group, which the server then validates like any commit.
    pub async fn forget_device(&self, device: DeviceId) -> Result<Vec<ConversationId>, MessagingError> {
        let forgotten = forget_device(&self.storage, device).await;
        self.cache.clear();
        Ok(forgotten?)
    }
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A commit to store, and what it does to the conversation's membership.
struct CommitWrite<'a> {
    conversation: ConversationId,
    /// The epoch it was made in: it is stored only if the conversation is still there.
    from_epoch: u64,
    /// The epoch it moves the conversation to.
    to_epoch: u64,
    /// The server's copy of the group after it.
    public_group: Vec<u8>,
    sender: DeviceId,
    /// The TLS-encoded commit.
    commit: &'a [u8],
    /// Devices that leave the conversation.
    leaving: &'a [DeviceId],
    /// Devices that join it after this commit.
    joining: &'a [DeviceId],
    /// The Welcome of the joining devices and the ratchet tree after the commit.
    welcome: Option<(&'a [u8], &'a [u8])>,
    at_ms: i64,
}

/// Stores a new conversation with its first `members`, in one transaction; `false` when its id
/// is taken.
async fn insert(
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
async fn get(storage: &Storage, id: ConversationId) -> Result<Option<Conversation>, StorageError> {
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
async fn of_device(storage: &Storage, device: DeviceId) -> Result<Vec<Conversation>, StorageError> {
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
async fn is_member(storage: &Storage, conversation: ConversationId, device: DeviceId) -> Result<bool, StorageError> {
    let n: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM conversation_devices WHERE conversation_id = $1 AND device_id = $2")
            .bind(conversation.to_string())
            .bind(device.to_string())
            .fetch_one(storage.pool())
            .await?;
    Ok(n == 1)
}

/// The member devices of `conversation`, in id order.
async fn members(storage: &Storage, conversation: ConversationId) -> Result<Vec<DeviceId>, StorageError> {
    let rows = sqlx::query("SELECT device_id FROM conversation_devices WHERE conversation_id = $1 ORDER BY device_id")
        .bind(conversation.to_string())
        .fetch_all(storage.pool())
        .await?;
    rows.iter().map(|row| parse_id(&row.try_get::<String, _>(0)?, "device_id")).collect()
}

/// The server's copy of `conversation`'s group.
async fn public_group(storage: &Storage, conversation: ConversationId) -> Result<Vec<u8>, StorageError> {
    Ok(sqlx::query_scalar("SELECT public_group FROM conversations WHERE conversation_id = $1")
        .bind(conversation.to_string())
        .fetch_one(storage.pool())
        .await?)
}

/// Stores `write` as its conversation's next message, moving the conversation to its epoch, and
/// applies its membership, in one transaction; `None` when the conversation has left the
/// commit's epoch (another commit won it).
async fn apply_commit(storage: &Storage, write: &CommitWrite<'_>) -> Result<Option<Stored>, StorageError> {
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
async fn missed(
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
async fn ack(
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

/// Deletes messages older than `before_ms` that every member device has acknowledged; returns
/// how many.
async fn purge_delivered(storage: &Storage, before_ms: i64) -> Result<u64, StorageError> {
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

/// Takes `device` out of every conversation and drops its Welcomes, in one transaction; returns
/// the conversations it was in.
async fn forget_device(storage: &Storage, device: DeviceId) -> Result<Vec<ConversationId>, StorageError> {
    let mut tx = storage.pool().begin().await?;
    let rows = sqlx::query("SELECT conversation_id FROM conversation_devices WHERE device_id = $1")
        .bind(device.to_string())
        .fetch_all(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM conversation_devices WHERE device_id = $1")
        .bind(device.to_string())
        .execute(&mut *tx)
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
    })
}

fn stored(row: &sqlx::any::AnyRow) -> Result<Stored, StorageError> {
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

async fn insert_message(
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
