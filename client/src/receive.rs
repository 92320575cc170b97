//! How a device takes in what the server pushes: Welcomes are joined, commits merged,
//! application messages decrypted, each turned into an [`Event`], and the conversation named
//! for the caller to acknowledge (`online.rs` paces the acknowledgements). No I/O.

use std::fmt;

use confidant_protocol::{MlsKind, ServerFrame};
use openmls::prelude::*;
use tls_codec::Deserialize as _;
use uuid::Uuid;

use crate::ClientError;
use crate::device::{Device, mls, unb64};
use crate::payload::{AttachmentRef, Payload};

/// Something that happened in a conversation. `Debug` never shows a message's plaintext.
#[derive(Clone, PartialEq, Eq)]
pub enum Event {
    /// This device joined a conversation (from a Welcome).
    Joined {
        /// The conversation.
        conversation: Uuid,
    },
    /// A message arrived and decrypted.
    Message {
        /// The conversation.
        conversation: Uuid,
        /// Its place.
        seq: u64,
        /// The device that sent it.
        sender_device: Uuid,
        /// Its text (for a message from a client without attachments, the bytes it sent).
        text: Vec<u8>,
        /// The files it carries: fetch and open each with `Device::download_attachment` (or
        /// `crate::open_attachment` over bytes fetched otherwise).
        attachments: Vec<AttachmentRef>,
    },
    /// Membership changed (a commit was merged).
    Changed {
        /// The conversation.
        conversation: Uuid,
        /// Its new epoch.
        epoch: u64,
    },
    /// This device was removed from a conversation.
    Removed {
        /// The conversation.
        conversation: Uuid,
    },
    /// A message could not be processed (it is skipped; the message says why).
    Failed {
        /// The conversation.
        conversation: Uuid,
        /// Its place.
        seq: u64,
        /// Why.
        reason: String,
    },
}

/// What taking in a frame came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The conversation whose processed prefix the frame moved (or confirmed, for a repeat): its
    /// acknowledgement is owed.
    pub conversation: Uuid,
    /// What to report, if anything.
    pub event: Option<Event>,
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Joined { conversation } => f.debug_struct("Joined").field("conversation", conversation).finish(),
            Event::Message { conversation, seq, sender_device, text: _, attachments } => f
                .debug_struct("Message")
                .field("conversation", conversation)
                .field("seq", seq)
                .field("sender_device", sender_device)
                .field("attachments", attachments)
                .finish_non_exhaustive(),
            Event::Changed { conversation, epoch } => {
                f.debug_struct("Changed").field("conversation", conversation).field("epoch", epoch).finish()
            }
            Event::Removed { conversation } => f.debug_struct("Removed").field("conversation", conversation).finish(),
            Event::Failed { conversation, seq, reason } => f
                .debug_struct("Failed")
                .field("conversation", conversation)
                .field("seq", seq)
                .field("reason", reason)
                .finish(),
        }
    }
}

impl Device {
    /// Takes in a frame the server pushed: a Welcome is joined, a commit merged, an application
    /// message decrypted, in each conversation's order; a repeat is recognised and only owed its
    /// acknowledgement. `None` for frames about no conversation of this device.
    pub fn receive(&mut self, frame: &ServerFrame) -> Result<Option<Received>, ClientError> {
        match frame {
            ServerFrame::MlsWelcome { conversation_id, seq, welcome, ratchet_tree, .. } => {
                self.join(*conversation_id, *seq, welcome, ratchet_tree)
            }
            ServerFrame::MlsMessage { conversation_id, seq, kind, sender_device, message, .. } => {
                self.process(*conversation_id, *seq, *kind, *sender_device, message)
            }
            // Not about the device's conversations.
            ServerFrame::Welcome { .. }
            | ServerFrame::Ack { .. }
            | ServerFrame::Error { .. }
            | ServerFrame::ScheduleSnapshot { .. }
            | ServerFrame::ScheduleChanged { .. }
            | ServerFrame::IntakeForm { .. }
            | ServerFrame::NoteDraft { .. }
            | ServerFrame::IntakeSubmitted { .. }
            | ServerFrame::Alert { .. }
            | ServerFrame::AlertUpdated { .. }
            | ServerFrame::MlsAccepted { .. }
            | ServerFrame::MlsStaleEpoch { .. }
            | ServerFrame::MlsReceipt { .. }
            | ServerFrame::MlsKeyPackagesLow { .. }
            | ServerFrame::Unknown => Ok(None),
        }
    }

    /// Joins `conversation` from the Welcome of the commit at `seq` (both base64).
    fn join(
        &mut self,
        conversation: Uuid,
        seq: u64,
        welcome: &str,
        ratchet_tree: &str,
    ) -> Result<Option<Received>, ClientError> {
        if self.cursors.contains(conversation) {
            // Already joined: the server kept the Welcome because its acknowledgement has not
            // arrived yet; acknowledging again lets it go.
            return Ok(Some(Received { conversation, event: None }));
        }
        let welcome = MlsMessageIn::tls_deserialize_exact(unb64(welcome)?).map_err(mls("welcome"))?;
        let MlsMessageBodyIn::Welcome(welcome) = welcome.extract() else {
            return Err(ClientError::Protocol("not a Welcome"));
        };
        let tree = RatchetTreeIn::tls_deserialize_exact(unb64(ratchet_tree)?).map_err(mls("ratchet tree"))?;
        StagedWelcome::new_from_welcome(&self.provider, Self::group_config().join_config(), welcome, Some(tree))
            .map_err(mls("welcome"))?
            .into_group(&self.provider)
            .map_err(mls("join"))?;
        self.cursors.start(conversation, seq);
        Ok(Some(Received { conversation, event: Some(Event::Joined { conversation }) }))
    }

    /// Processes the message at `seq` of `conversation` (base64), of `kind`, from `sender_device`.
    fn process(
        &mut self,
        conversation: Uuid,
        seq: u64,
        kind: MlsKind,
        sender_device: Uuid,
        message: &str,
    ) -> Result<Option<Received>, ClientError> {
        if !self.cursors.contains(conversation) {
            return Ok(None);
        }
        if self.cursors.seen(conversation, seq) {
            // A replay overlapping a live push; acknowledging what was processed lets the
            // server's cursor catch up if an earlier acknowledgement was lost.
            return Ok(Some(Received { conversation, event: None }));
        }
        let mut group = self.take_group(conversation)?;
        if sender_device == self.device_id {
            // Our own, accepted while we were not listening for the answer: a commit is merged;
            // an application message we wrote ourselves (MLS does not let its sender decrypt it).
            if kind == MlsKind::Commit && group.pending_commit().is_some() {
                group.merge_pending_commit(&self.provider).map_err(mls("merge commit"))?;
            }
            self.keep_group(conversation, group);
            self.cursors.mark(conversation, seq);
            return Ok(Some(Received { conversation, event: None }));
        }
        let bytes = unb64(message)?;
        let processed = MlsMessageIn::tls_deserialize_exact(&bytes)
            .map_err(mls("decode"))
            .and_then(|m| m.try_into_protocol_message().map_err(mls("decode")))
            .and_then(|p| group.process_message(&self.provider, p).map_err(mls("process")));
        self.cursors.mark(conversation, seq);
        let event = match processed {
            // Not kept: the next message starts again from the group in storage.
            Err(error) => Event::Failed { conversation, seq, reason: error.to_string() },
            Ok(processed) => match processed.into_content() {
                ProcessedMessageContent::ApplicationMessage(app) => {
                    self.keep_group(conversation, group);
                    match Payload::decode(&app.into_bytes()) {
                        Ok(Payload { text, attachments }) => {
                            Event::Message { conversation, seq, sender_device, text, attachments }
                        }
                        // That message alone is unreadable here; the conversation goes on.
                        Err(error) => Event::Failed { conversation, seq, reason: error.to_string() },
                    }
                }
                ProcessedMessageContent::StagedCommitMessage(staged) => {
                    group.merge_staged_commit(&self.provider, *staged).map_err(mls("merge"))?;
                    if group.is_active() {
                        let epoch = group.epoch().as_u64();
                        self.keep_group(conversation, group);
                        Event::Changed { conversation, epoch }
                    } else {
                        self.cursors.remove(conversation);
                        Event::Removed { conversation }
                    }
                }
                _ => Event::Failed { conversation, seq, reason: "unexpected message".into() },
            },
        };
        Ok(Some(Received { conversation, event: Some(event) }))
    }
}
