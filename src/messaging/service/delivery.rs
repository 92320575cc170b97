//! The operations of a device attached to a socket: attach and its catch-up, send an
//! application message, accept a commit, acknowledge. Each message and commit is on record before
//! it is stored, and what is stored is pushed to the member devices' topics.

use confidant_actors::audit::{Action, AuditActor, AuditEvent, Outcome, ResourceType};
use confidant_actors::hub::Topic;
use confidant_actors::ids::{AttachmentId, ConversationId, DeviceId};
use confidant_protocol::ServerFrame;

use super::{MessagingService, MessagingServiceError};
use crate::access::Requester;
use crate::auditor::{About, reason_or};
use crate::messaging::devices::LOW_KEY_PACKAGES;
use crate::messaging::frames::{message_frame, welcome_frame};
use crate::messaging::mls::MlsError;
use crate::messaging::{Committed, Conversation, Device, MessagingError, PendingWelcome, Sent, Stored};

/// An `mls.receipt` of the requester's account.
fn receipt(
    conversation: ConversationId,
    who: &Requester,
    delivered_seq: Option<u64>,
    read_seq: Option<u64>,
) -> ServerFrame {
    ServerFrame::MlsReceipt {
        v: confidant_protocol::VERSION,
        conversation_id: *conversation.as_uuid(),
        user_id: *who.principal.user_id.as_uuid(),
        delivered_seq,
        read_seq,
    }
}

/// What became of a message or commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submitted {
    /// Stored at `seq`, the conversation being at `epoch`, and pushed to its devices.
    Accepted {
        /// Its place in the conversation's stream.
        seq: u64,
        /// The conversation's epoch with it.
        epoch: u64,
    },
    /// Made in an epoch that is over: nothing stored; the conversation is at `epoch`.
    Stale {
        /// The conversation's current epoch.
        epoch: u64,
    },
}

/// What an attaching device has not acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missed {
    /// Its Welcomes.
    pub welcomes: Vec<PendingWelcome>,
    /// Per conversation, the messages after its cursor, in order.
    pub messages: Vec<Stored>,
    /// The one-time KeyPackages it has left, when that is fewer than it should keep.
    pub key_packages_low: Option<u64>,
}

impl MessagingService {
    /// The topic the requester's session follows for `device`: an active device of the
    /// requester's own account (`NotFound` otherwise).
    pub async fn attach(&self, who: &Requester, device: DeviceId) -> Result<Topic, MessagingServiceError> {
        self.own_device(who, device).await.map(|_| Topic::Device(device))
    }

    /// What `device` has not acknowledged, for its catch-up as it attaches (it was checked by
    /// [`Self::attach`]): its Welcomes, then per conversation what follows its cursor, and
    /// whether it is low on KeyPackages. Each care conversation replayed is a read of its
    /// patient's PHI, on record (durable, in one group) before anything is sent.
    pub async fn missed(&self, who: &Requester, device: DeviceId) -> Result<Missed, MessagingServiceError> {
        let (welcomes, messages) = self.conversations.missed(device).await?;
        let replayed: std::collections::BTreeSet<ConversationId> =
            welcomes.iter().map(|w| w.conversation_id).chain(messages.iter().map(|m| m.conversation_id)).collect();
        if !replayed.is_empty() {
            let kinds = self.conversations.of_device(device).await?;
            let replayed = kinds.iter().filter(|c| replayed.contains(&c.id)).map(|c| (c.id, c.kind));
            let reads = self.care_reads(who, replayed, "device_replay");
            if !reads.is_empty() {
                self.gate.record_all(reads).await?;
            }
        }
        // The stock is a hint: if it cannot be read, the device is told next time.
        let key_packages_low = self.devices.stock(device).await.ok().filter(|left| *left < LOW_KEY_PACKAGES);
        Ok(Missed { welcomes, messages, key_packages_low })
    }

    /// Sends an application message from `device`, the requester's attached device, to
    /// `conversation`: on record with its batch before it is stored, then pushed to the
    /// conversation's other devices. This is the hot path: the membership read (usually this
    /// node's copy) is its one read, and it is also the fan-out. A message that carries
    /// `attachments` (uploaded to this conversation by the requester, carried by no message yet)
    /// costs one more read before and one write after it is stored, which ties them to it.
    pub async fn send(
        &self,
        who: &Requester,
        device: DeviceId,
        conversation: ConversationId,
        message: &[u8],
        attachments: &[AttachmentId],
    ) -> Result<Submitted, MessagingServiceError> {
        // The attached device was checked at attach; a device removed since is no longer in any
        // conversation's membership, which is read here once and is also the fan-out.
        let found = self.conversations.for_sending(conversation, device).await?;
        let (conversation, members) = found.ok_or(MessagingServiceError::NotFound)?;
        if !members.contains(&device) {
            return Err(MessagingServiceError::NotFound);
        }
        let attachments: Vec<AttachmentId> =
            attachments.iter().copied().collect::<std::collections::BTreeSet<_>>().into_iter().collect();
        if attachments.len() > confidant_protocol::attachments::MAX_PER_MESSAGE
            || (!attachments.is_empty()
                && !self.attachments.all_linkable(conversation.id, who.principal.user_id, &attachments).await?)
        {
            return Err(MessagingServiceError::NotFound);
        }
        // Stored only once its audit record is durable: if the audit trail cannot take it, nothing
        // is stored or delivered and the sender hears `unavailable`. The ingest records it with
        // the other messages of its batch.
        let event = self.submission(who, &conversation, "mls_application", message.len(), Outcome::Success);
        let now = self.clock.now_ms();
        let sent = self.conversations.send(device, &conversation, members, message, now, event).await?;
        let (stored, epoch, recipients) = match sent {
            Sent::Accepted { stored, epoch, recipients } => (stored, epoch, recipients),
            Sent::Stale { epoch } => {
                self.record_stale(who, &conversation, "mls_application").await;
                return Ok(Submitted::Stale { epoch });
            }
        };
        if !attachments.is_empty() {
            // The message is stored: its sender must not send it again. If the link is lost, the
            // attachments are deleted a day after their upload instead of with the message.
            let linked = self.attachments.link(conversation.id, who.principal.user_id, &attachments, stored.seq).await;
            if let Err(error) = linked {
                tracing::warn!(%error, "could not tie attachments to their message");
            }
        }
        self.deliver(recipients, &message_frame(&stored)).await;
        Ok(Submitted::Accepted { seq: stored.seq, epoch })
    }

    /// Accepts a commit from `device`, the requester's attached device, to `conversation` (with
    /// the Welcome of the devices it adds): on record before it can change anything, checked
    /// against the server's copy of the group and the membership rule, stored if it is the
    /// first of its epoch, then pushed to the members and each added device.
    pub async fn commit(
        &self,
        who: &Requester,
        device: DeviceId,
        conversation: ConversationId,
        commit: &[u8],
        welcome: Option<&[u8]>,
    ) -> Result<Submitted, MessagingServiceError> {
        let (device, conversation) = self.member(who, device, conversation).await?;
        // As for application messages, the submission is on record before it can change anything.
        let event = self.submission(who, &conversation, "mls_commit", commit.len(), Outcome::Success);
        self.auditor().record(event).await?;
        let now = self.clock.now_ms();
        let outcome = self.conversations.commit(&device, &conversation, commit, welcome, &self.policy, now).await;
        let committed = match outcome {
            Ok(committed) => committed,
            Err(error) => {
                if matches!(error, MessagingError::NotAllowed | MessagingError::Invalid(MlsError::Credential)) {
                    let refused = self.submission(who, &conversation, "mls_commit", commit.len(), Outcome::Denied);
                    self.auditor().record_follow_up(refused, "mls_commit_refused").await;
                }
                return Err(error.into());
            }
        };
        let (stored, epoch, recipients, welcomed) = match committed {
            Committed::Accepted { stored, epoch, recipients, welcomed } => (stored, epoch, recipients, welcomed),
            Committed::Stale { epoch } => {
                self.record_stale(who, &conversation, "mls_commit").await;
                return Ok(Submitted::Stale { epoch });
            }
        };
        if !welcomed.is_empty() {
            // The commit itself is on record (above) and stored; only this summary can be missing.
            let about =
                About::new(Action::PermissionChange, ResourceType::Conversation, Some(*conversation.id.as_uuid()))
                    .for_patient_if(conversation.kind.patient());
            let added = self.gate.event(who, about, Outcome::Success, "conversation_members_added");
            self.auditor().record_follow_up(added, "conversation_members_added").await;
        }
        self.deliver(recipients, &message_frame(&stored)).await;
        for (device, welcome) in &welcomed {
            self.deliver([*device], &welcome_frame(welcome)).await;
        }
        Ok(Submitted::Accepted { seq: stored.seq, epoch })
    }

    /// `device` (attached, so checked at attach) processed `conversation` up to `seq`: its
    /// cursor moves forward, never back (docs/MESSAGING.md, "Delivery"). When it moved, the
    /// device that sent the message at `seq` hears that the requester's account has it: one
    /// receipt per acknowledgement, to one device, so a group's traffic grows with its size, not
    /// its square. The sender's other devices and the other members learn it from the list.
    pub async fn ack(
        &self,
        who: &Requester,
        device: DeviceId,
        conversation: ConversationId,
        seq: u64,
    ) -> Result<(), MessagingServiceError> {
        if !self.conversations.ack(device, conversation, seq).await? {
            return Ok(());
        }
        // The cursor moved, which is what the device asked: a receipt that cannot be sent does
        // not undo it (the sender sees the same from the list).
        let sender = match self.conversations.sender_of(conversation, seq).await {
            Ok(sender) => sender,
            Err(error) => {
                tracing::warn!(%error, "could not find whom to tell of a delivery");
                None
            }
        };
        if let Some(sender) = sender
            && sender != device
        {
            let receipt = receipt(conversation, who, Some(seq), None);
            self.pusher.push([Topic::Device(sender)], (None, None), &receipt, "conversation_receipt").await;
        }
        Ok(())
    }

    /// The requester read `conversation` through `seq` on `device`, their attached device (a
    /// member): their mark rises, and every member device hears it, the requester's other
    /// devices included (they stop counting those messages unread). A person reads at human
    /// pace, so this fan-out is rare. Reading marks carry no PHI and are not audited: the
    /// messages themselves were on record when they were sent and replayed.
    pub async fn read(
        &self,
        who: &Requester,
        device: DeviceId,
        conversation: ConversationId,
        seq: u64,
    ) -> Result<(), MessagingServiceError> {
        let (_, conversation) = self.member(who, device, conversation).await?;
        if seq > conversation.last_seq {
            return Err(MessagingServiceError::NotFound);
        }
        if self.conversations.mark_read(conversation.id, who.principal.user_id, seq).await? {
            let members = self.conversations.members(conversation.id).await?;
            let receipt = receipt(conversation.id, who, None, Some(seq));
            self.pusher
                .push(members.into_iter().map(Topic::Device), (None, None), &receipt, "conversation_receipt")
                .await;
        }
        Ok(())
    }

    /// The attached device, still registered and active, and the conversation it names, of which
    /// it must be a member.
    async fn member(
        &self,
        who: &Requester,
        device: DeviceId,
        conversation: ConversationId,
    ) -> Result<(Device, Conversation), MessagingServiceError> {
        let device = self.own_device(who, device).await.map_err(|error| match error {
            MessagingServiceError::NotFound => MessagingServiceError::NoDevice,
            other => other,
        })?;
        let found = self.conversations.get(conversation).await?;
        let conversation = found.ok_or(MessagingServiceError::NotFound)?;
        if !self.conversations.is_member(conversation.id, device.id).await? {
            return Err(MessagingServiceError::NotFound);
        }
        Ok((device, conversation))
    }

    /// Pushes `frame` to each device's topic (every node's sessions of those devices get it).
    async fn deliver(&self, devices: impl IntoIterator<Item = DeviceId>, frame: &ServerFrame) {
        // A device that misses the push catches up from its cursor when it next attaches.
        self.pusher.push(devices.into_iter().map(Topic::Device), (None, None), frame, "conversation_message").await;
    }

    /// The audit record of a message or commit: who sent what kind, how large, to which
    /// conversation, and the patient it is about (none for a staff conversation). Never content.
    /// Built here rather than by `Gate::event`, whose reason is a literal: the size is part of
    /// the reason code, and a message's record costs no second one.
    fn submission(
        &self,
        who: &Requester,
        conversation: &Conversation,
        what: &str,
        bytes: usize,
        outcome: Outcome,
    ) -> AuditEvent {
        let actor = AuditActor::User { id: who.principal.user_id, role: who.principal.role };
        let mut event = AuditEvent::new(self.auditor().node_id(), actor, Action::Create, outcome)
            .on(ResourceType::Message, Some(*conversation.id.as_uuid()))
            .in_session(who.principal.session_id)
            .because(reason_or(&format!("{what}_{bytes}_bytes"), "mls_message"));
        event.patient_id = conversation.kind.patient();
        event.source_ip = who.origin.source_ip;
        event
    }

    /// Records that a submission already on record as made lost its epoch: it took no seq and
    /// changed nothing, and its sender is told the current epoch. Without it the trail would show a
    /// message or commit as made that nobody received. The answer does not depend on it.
    async fn record_stale(&self, who: &Requester, conversation: &Conversation, what: &str) {
        let code = reason_or(&format!("{what}_stale_epoch"), "mls_stale_epoch");
        let event = self.submission(who, conversation, what, 0, Outcome::Error).because(code);
        self.auditor().record_follow_up(event, "mls_stale_epoch").await;
    }
}
