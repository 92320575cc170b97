//! How a device takes in what the server pushes: Welcomes are joined, commits merged,
//! application messages decrypted, each turned into an [`Event`]; and how it acknowledges them.
//!
//! Acknowledgements are cumulative and coalesced: one `mls.ack` per conversation, carrying the
//! seq through which everything was processed, once no further message is ready (or mid-burst
//! after [`AckPolicy::every`] messages or [`AckPolicy::within`]). A device with a state file
//! saves it before it acknowledges, so a crash never loses a message the server stopped
//! keeping for it.

use std::fmt;
use std::time::Duration;

use openmls::prelude::*;
use serde_json::{Value, json};
use tls_codec::Deserialize as _;
use uuid::Uuid;

use crate::ClientError;
use crate::api::unb64;
use crate::connection::Connection;
use crate::cursors::AckPolicy;
use crate::device::{Device, mls, uuid_of};

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
        /// The plaintext.
        text: Vec<u8>,
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

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Joined { conversation } => f.debug_struct("Joined").field("conversation", conversation).finish(),
            Event::Message { conversation, seq, sender_device, text: _ } => f
                .debug_struct("Message")
                .field("conversation", conversation)
                .field("seq", seq)
                .field("sender_device", sender_device)
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

/// What processing one frame came to: the conversation it moved (to acknowledge) and the
/// event to report, if any.
type Processed = Option<(Uuid, Option<Event>)>;

impl Device {
    /// The next event, within `wait`: Welcomes are joined, commits merged, application
    /// messages decrypted. What was processed is acknowledged when nothing more is ready (at
    /// the latest as the [`AckPolicy`] says), after the state file is saved when there is one.
    /// `None` when nothing came.
    pub async fn next_event(
        &mut self,
        connection: &mut Connection,
        wait: Duration,
    ) -> Result<Option<Event>, ClientError> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Acknowledgements go out here, before the next frame is taken, never between
            // processing a message and returning its event: a caller that drops this future
            // (a `select!`) loses at most an acknowledgement, which the next call sends.
            if self.acks.due() {
                self.flush_acks(connection).await?;
            }
            let mut frame = None;
            if self.acks.owed() {
                frame = connection.next(Duration::ZERO).await?;
                if frame.is_none() {
                    self.flush_acks(connection).await?; // the burst is over
                }
            }
            let frame = match frame {
                Some(frame) => frame,
                None => {
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    let Some(frame) = connection.next(left).await? else { return Ok(None) };
                    frame
                }
            };
            let processed = match frame["type"].as_str() {
                Some("mls.welcome") => self.join(&frame)?,
                Some("mls.message") => self.process(&frame)?,
                _ => None,
            };
            let Some((conversation, event)) = processed else { continue };
            self.acks.owe(conversation);
            if let Some(event) = event {
                return Ok(Some(event));
            }
        }
    }

    /// Sends what is owed now: per conversation, one `mls.ack` through the seq up to which
    /// everything was processed. With a state file, the state is saved first.
    pub async fn flush_acks(&mut self, connection: &mut Connection) -> Result<(), ClientError> {
        let acks = self.acks.to_send(&self.cursors);
        if !acks.is_empty()
            && let Some(file) = &self.state_file
        {
            self.save(&file.path, &file.key).await?;
        }
        for (conversation, seq) in acks {
            connection.notify(json!({ "type": "mls.ack", "conversation_id": conversation, "seq": seq })).await?;
            self.acks.sent(conversation, seq);
        }
        self.acks.settled();
        Ok(())
    }

    /// How many `mls.ack` frames this device has sent since it was registered or loaded.
    pub fn acks_sent(&self) -> u64 {
        self.acks.sent
    }

    /// Changes when acknowledgements go out mid-burst.
    pub fn set_ack_policy(&mut self, policy: AckPolicy) {
        self.acks.policy = policy;
    }

    fn join(&mut self, frame: &Value) -> Result<Processed, ClientError> {
        let conversation = uuid_of(&frame["conversation_id"])?;
        let seq = frame["seq"].as_u64().unwrap_or(0);
        if self.cursors.contains(conversation) {
            // Already joined: the server kept the Welcome because its acknowledgement has not
            // arrived yet; acknowledging again lets it go.
            return Ok(Some((conversation, None)));
        }
        let welcome = MlsMessageIn::tls_deserialize_exact(unb64(frame["welcome"].as_str().unwrap_or(""))?)
            .map_err(mls("welcome"))?;
        let MlsMessageBodyIn::Welcome(welcome) = welcome.extract() else {
            return Err(ClientError::Protocol("not a Welcome"));
        };
        let tree = RatchetTreeIn::tls_deserialize_exact(unb64(frame["ratchet_tree"].as_str().unwrap_or(""))?)
            .map_err(mls("ratchet tree"))?;
        StagedWelcome::new_from_welcome(&self.provider, Self::group_config().join_config(), welcome, Some(tree))
            .map_err(mls("welcome"))?
            .into_group(&self.provider)
            .map_err(mls("join"))?;
        self.cursors.start(conversation, seq);
        Ok(Some((conversation, Some(Event::Joined { conversation }))))
    }

    fn process(&mut self, frame: &Value) -> Result<Processed, ClientError> {
        let conversation = uuid_of(&frame["conversation_id"])?;
        let seq = frame["seq"].as_u64().unwrap_or(0);
        if !self.cursors.contains(conversation) {
            return Ok(None);
        }
        if self.cursors.seen(conversation, seq) {
            // A replay overlapping a live push; acknowledging what was processed lets the
            // server's cursor catch up if an earlier acknowledgement was lost.
            return Ok(Some((conversation, None)));
        }
        let sender_device = uuid_of(&frame["sender_device"])?;
        let mut group = self.group(conversation)?;
        if sender_device == self.device_id {
            // Our own, accepted while we were not listening for the answer: a commit is merged;
            // an application message we wrote ourselves (MLS does not let its sender decrypt it).
            if frame["kind"] == "commit" && group.pending_commit().is_some() {
                group.merge_pending_commit(&self.provider).map_err(mls("merge commit"))?;
            }
            self.cursors.mark(conversation, seq);
            return Ok(Some((conversation, None)));
        }
        let bytes = unb64(frame["message"].as_str().unwrap_or(""))?;
        let processed = MlsMessageIn::tls_deserialize_exact(&bytes)
            .map_err(mls("decode"))
            .and_then(|m| m.try_into_protocol_message().map_err(mls("decode")))
            .and_then(|p| group.process_message(&self.provider, p).map_err(mls("process")));
        self.cursors.mark(conversation, seq);
        let event = match processed {
            Err(error) => Event::Failed { conversation, seq, reason: error.to_string() },
            Ok(processed) => match processed.into_content() {
                ProcessedMessageContent::ApplicationMessage(app) => {
                    Event::Message { conversation, seq, sender_device, text: app.into_bytes() }
                }
                ProcessedMessageContent::StagedCommitMessage(staged) => {
                    group.merge_staged_commit(&self.provider, *staged).map_err(mls("merge"))?;
                    if group.is_active() {
                        Event::Changed { conversation, epoch: group.epoch().as_u64() }
                    } else {
                        self.cursors.remove(conversation);
                        Event::Removed { conversation }
                    }
                }
                _ => Event::Failed { conversation, seq, reason: "unexpected message".into() },
            },
        };
        Ok(Some((conversation, Some(event))))
    }
}
