//! The Delivery Service half: conversations (one MLS group each), their ordered message
//! streams, Welcomes and each member device's acknowledged cursor.
//!
//! Ordering: a conversation's `epoch` and `last_seq` move only by conditional updates inside
//! the transaction that stores the message, so the first valid commit of an epoch wins (a later
//! one gets the current epoch back) and every message gets the next seq exactly once.
//! Membership, for fan-out and fetching, is the server's public group after the last accepted
//! commit (`conversation_devices`), never a list a sender supplies. The statements are in
//! `store/conversations.rs` and `store/messages.rs`.

use confidant_actors::audit::{AuditEvent, AuditWriter};
use confidant_actors::ids::{ConversationId, DeviceId, UserId};
use confidant_protocol::MlsKind;
use uuid::Uuid;

use super::cache::MembershipCache;
use super::devices::{Device, Devices};
use super::error::MessagingError;
use super::ingest::Ingest;
use super::mls::{self, MlsError, ServerGroup};
use super::store::conversations::{self as rows, CommitWrite};
use super::store::receipts;
use crate::access::ConversationKind;
use crate::storage::Storage;

pub use super::store::conversations::{Conversation, PendingWelcome};
pub use super::store::messages::Stored;
pub use super::store::receipts::Receipt;

/// A device is sent at most this many missed messages per conversation when it attaches; it
/// acknowledges them and attaches again (or reads on as new ones arrive) for the rest.
pub const MAX_REPLAY: i64 = 1000;

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
            removed_devices: Vec::new(),
            receipts: Vec::new(),
        };
        let devices: Vec<DeviceId> = members.iter().map(|m| m.device).collect();
        if !rows::insert(&self.storage, &conversation, state, &devices, now_ms).await? {
            return Err(MessagingError::Conflict);
        }
        Ok(conversation)
    }

    /// A conversation by id.
    pub async fn get(&self, id: ConversationId) -> Result<Option<Conversation>, MessagingError> {
        Ok(rows::get(&self.storage, id).await?)
    }

    /// The conversations `device` is a member of.
    /// The conversations `device` is a member of.
    pub async fn of_device(&self, device: DeviceId) -> Result<Vec<Conversation>, MessagingError> {
        Ok(rows::of_device(&self.storage, device).await?)
    }

    /// Names, in each of `list`, the devices still in its group that must go: removed at the
    /// server (revoked, or their account disabled), or of an account `policy` no longer lets
    /// in (a clinician taken off the patient's care team). Delivery to a removed device stopped
    /// at once; their leaves go with the next member's commit, which needs to know them. Read
    /// from the server's copy of each group, the one record of who is in it once delivery has
    /// forgotten a device.
    pub async fn name_departed(
        &self,
        list: &mut [Conversation],
        policy: &impl Membership,
    ) -> Result<(), MessagingError> {
        for conversation in list.iter_mut() {
            let state = rows::public_group(&self.storage, conversation.id).await?;
            let group = ServerGroup::from_bytes(conversation.id.as_uuid().as_bytes(), &state)?;
            for member in group.members()? {
                let gone = match self.devices.get(member.device).await? {
                    Some(found) => {
                        found.removed_at_ms.is_some() || !policy.may_hold(member.user, conversation.kind).await?
                    }
                    None => true,
                };
                if gone {
                    conversation.removed_devices.push((member.user, member.device));
                }
            }
        }
        Ok(())
    }

    /// Fills in each of `list` how far each account in it has got.
    pub async fn add_receipts(&self, list: &mut [Conversation]) -> Result<(), MessagingError> {
        for conversation in list.iter_mut() {
            conversation.receipts = receipts::of_conversation(&self.storage, conversation.id).await?;
        }
        Ok(())
    }

    /// `user` read `conversation` through `seq`: their mark rises (never falls, never past the
    /// newest seq). Whether it moved.
    pub async fn mark_read(
        &self,
        conversation: ConversationId,
        user: UserId,
        seq: u64,
    ) -> Result<bool, MessagingError> {
        Ok(receipts::mark_read(&self.storage, conversation, user, seq).await?)
    }

    /// The device that sent the message at `seq`, while it is kept.
    pub async fn sender_of(&self, conversation: ConversationId, seq: u64) -> Result<Option<DeviceId>, MessagingError> {
        Ok(receipts::sender_of(&self.storage, conversation, seq).await?)
    }

    /// Whether `device` is a member of `conversation` now.
    pub async fn is_member(&self, conversation: ConversationId, device: DeviceId) -> Result<bool, MessagingError> {
        Ok(rows::is_member(&self.storage, conversation, device).await?)
    }

    /// The member devices of `conversation`.
    pub async fn members(&self, conversation: ConversationId) -> Result<Vec<DeviceId>, MessagingError> {
        Ok(rows::members(&self.storage, conversation).await?)
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
        let state = rows::public_group(&self.storage, conversation.id).await?;
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
        let Some(stored) = rows::apply_commit(&self.storage, &write).await? else {
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
        Ok(rows::missed(&self.storage, device, MAX_REPLAY).await?)
    }

    /// `device` processed `conversation` up to `seq`: its cursor moves forward (never back,
    /// never past the stream), and a Welcome it has used is dropped.
    pub async fn ack(&self, device: DeviceId, conversation: ConversationId, seq: u64) -> Result<bool, MessagingError> {
        Ok(rows::ack(&self.storage, device, conversation, seq).await?)
    }

    /// Takes `device` out of every conversation's membership (its account was disabled or
    /// the device removed): it is sent nothing more. The members still have to commit its
    /// removal from the MLS group, which the server then validates like any commit.
    pub async fn forget_device(&self, device: DeviceId) -> Result<Vec<ConversationId>, MessagingError> {
        let forgotten = rows::forget_device(&self.storage, device).await;
        self.cache.clear();
        Ok(forgotten?)
    }
}
