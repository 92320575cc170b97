//! What a device does against its server, driving the MLS core: registering, attaching over the
//! socket, starting and changing conversations, sending, and the loop that takes in what the
//! server pushes and acknowledges it.
//!
//! Acknowledgements are cumulative and coalesced: one `mls.ack` per conversation, carrying the
//! seq through which everything was processed, once no further message is ready (or mid-burst
//! after [`AckPolicy::every`] messages or [`AckPolicy::within`]). A device with a state file
//! saves it before it acknowledges, so a crash never loses a message the server stopped
//! keeping for it.

use std::time::Duration;

use confidant_protocol::ClientFrame;
use openmls::prelude::SignatureScheme;
use openmls_basic_credential::SignatureKeyPair;
use uuid::Uuid;

use crate::ClientError;
use crate::acks::AckPolicy;
use crate::api::Api;
use crate::attachment::{open_attachment, seal_attachment};
use crate::connection::Connection;
use crate::conversation::{NewMember, StagedCommit};
use crate::device::{ConversationKind, Device, KEY_PACKAGE_BATCH, b64, mls};
use crate::payload::{AttachmentRef, Payload};
use crate::receive::Event;

impl Device {
    /// Registers a new device of `api`'s account: a fresh Ed25519 key, its credential as the
    /// server names it, and a first batch of KeyPackages (plus a last-resort one).
    pub async fn register(api: &Api) -> Result<Self, ClientError> {
        let signer = SignatureKeyPair::new(SignatureScheme::ED25519).map_err(mls("signature key"))?;
        let device_id = api.register_device(&b64(signer.public())).await?;
        let user_id = api.user_id().await?;
        let device = Device::new(signer, device_id, user_id)?;
        device.upload_key_packages(api, KEY_PACKAGE_BATCH, true).await?;
        Ok(device)
    }

    /// Removes this device at the server (lost or retired): it is sent nothing more and can
    /// no longer attach; the other members then commit its removal from each conversation.
    pub async fn unregister(&self, api: &Api) -> Result<(), ClientError> {
        api.remove_device(self.device_id).await
    }

    /// Uploads `count` one-time KeyPackages (and a new last-resort one when asked).
    pub async fn upload_key_packages(&self, api: &Api, count: usize, last_resort: bool) -> Result<u64, ClientError> {
        let packages: Vec<String> = self.key_packages(count, last_resort)?.iter().map(|p| b64(p)).collect();
        api.upload_key_packages(self.device_id, &packages).await
    }

    /// Opens the socket and attaches this device: its Welcomes and missed messages follow.
    pub async fn connect(&self, api: &Api) -> Result<Connection, ClientError> {
        let mut connection = Connection::open(api).await?;
        connection.request(|id| ClientFrame::mls_attach(id, self.device_id)).await?;
        Ok(connection)
    }

    /// Starts a conversation of `kind` (a patient's id for one about that patient, or
    /// [`ConversationKind::Staff`]) with every device of `users` (and this account's other
    /// devices). Returns its id.
    pub async fn create_conversation(
        &mut self,
        api: &Api,
        connection: &mut Connection,
        kind: impl Into<ConversationKind>,
        users: &[Uuid],
    ) -> Result<Uuid, ClientError> {
        let kind = kind.into();
        let new = self.start_conversation()?;
        api.create_conversation(self.device_id, kind, &b64(&new.group_info), &b64(&new.ratchet_tree)).await?;
        self.conversation_registered(new.id);
        self.add_users(api, connection, new.id, kind, users).await?;
        Ok(new.id)
    }

    /// Adds every active device of `users` (this account's other devices included) to
    /// `conversation`, which is of `kind` (the server lets a KeyPackage be claimed only for an
    /// account that may be in it), claiming one KeyPackage per device.
    pub async fn add_users(
        &mut self,
        api: &Api,
        connection: &mut Connection,
        conversation: Uuid,
        kind: impl Into<ConversationKind>,
        users: &[Uuid],
    ) -> Result<u64, ClientError> {
        let kind = kind.into();
        // Not a member: nothing is claimed (a claim uses the KeyPackage up).
        let epoch = self.epoch(conversation)?;
        let mut wanted: Vec<Uuid> = users.to_vec();
        wanted.push(self.user_id);
        wanted.dedup();
        let mut members = Vec::new();
        for user in wanted {
            for claimed in api.claim_key_packages(user, kind).await? {
                members.push(NewMember { user, device: claimed.device_id, key_package: claimed.key_package });
            }
        }
        match self.stage_add(conversation, &members)? {
            Some(staged) => self.send_commit(connection, conversation, staged).await,
            None => Ok(epoch),
        }
    }

    /// Removes `device` (of any account) from `conversation`: after this commit it cannot read
    /// what is sent.
    pub async fn remove_device(
        &mut self,
        connection: &mut Connection,
        conversation: Uuid,
        user: Uuid,
        device: Uuid,
    ) -> Result<u64, ClientError> {
        let staged = self.stage_removal(conversation, user, device)?;
        self.send_commit(connection, conversation, staged).await
    }

    /// Sends a staged commit (see [`Device::stage_self_update`]); merges it when accepted, or
    /// clears it when another won the epoch.
    pub async fn send_commit(
        &mut self,
        connection: &mut Connection,
        conversation: Uuid,
        staged: StagedCommit,
    ) -> Result<u64, ClientError> {
        let answer =
            connection.request(|id| ClientFrame::mls_commit(id, conversation, staged.commit, staged.welcome)).await;
        self.settle_commit(conversation, answer)
    }

    /// Encrypts and sends `text`; returns its seq.
    pub async fn send(
        &mut self,
        connection: &mut Connection,
        conversation: Uuid,
        text: &[u8],
    ) -> Result<u64, ClientError> {
        let message = self.encrypt(conversation, text)?;
        let answer = connection.request(|id| ClientFrame::mls_send(id, conversation, b64(&message))).await?;
        self.settle_message(conversation, answer)
    }

    /// Sends `text` with the file `file` attached: encrypts the file under a fresh key, uploads
    /// the ciphertext, and sends an MLS message carrying its key, digests, size, media type and
    /// `name`, naming the upload so the server keeps it as long as the message. Returns the
    /// message's seq and the reference it carried.
    #[allow(clippy::too_many_arguments)]
    pub async fn send_attachment(
        &mut self,
        api: &Api,
        connection: &mut Connection,
        conversation: Uuid,
        text: &str,
        file: &[u8],
        name: &str,
        media_type: &str,
    ) -> Result<(u64, AttachmentRef), ClientError> {
        let sealed = seal_attachment(file)?;
        let uploaded = api.upload_attachment(conversation, sealed.ciphertext.clone()).await?;
        let reference = sealed.reference(uploaded.attachment_id, name, media_type);
        let payload = Payload { text: text.as_bytes().to_vec(), attachments: vec![reference.clone()] };
        let message = self.encrypt(conversation, &payload.encode())?;
        let ids = vec![uploaded.attachment_id];
        let answer = connection.request(|id| ClientFrame::mls_send_with(id, conversation, b64(&message), ids)).await?;
        let seq = self.settle_message(conversation, answer)?;
        Ok((seq, reference))
    }

    /// Downloads the file `reference` (from a received message) names and opens it: the bytes
    /// must have the digest the message carries and decrypt under its key to a file of its size
    /// and digest, or [`ClientError::Attachment`] says which check failed and nothing is
    /// returned. The conversation is untouched either way.
    pub async fn download_attachment(
        &self,
        api: &Api,
        reference: &AttachmentRef,
    ) -> Result<zeroize::Zeroizing<Vec<u8>>, ClientError> {
        let ciphertext = api.download_attachment(reference.id).await?;
        Ok(open_attachment(reference, &ciphertext)?)
    }

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
            let Some(received) = self.receive(&frame)? else { continue };
            self.acks.owe(received.conversation);
            if let Some(event) = received.event {
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
            connection.notify(|id| ClientFrame::mls_ack(id, conversation, seq)).await?;
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
}
