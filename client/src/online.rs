//! What a device does against its server: registering, attaching over the socket, starting and
//! changing conversations, sending, and the loop that takes in what the server pushes and
//! acknowledges it.

use std::time::Duration;

use confidant_protocol::{ClientFrame, ServerFrame};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use serde_json::json;
use tls_codec::{Deserialize as _, Serialize as _};
use uuid::Uuid;

use crate::ClientError;
use crate::acks::AckPolicy;
use crate::api::{Api, b64, unb64};
use crate::connection::Connection;
use crate::cursors::Cursors;
use crate::device::{CIPHERSUITE, ConversationKind, Device, KEY_PACKAGE_BATCH, StagedCommit, mls, uuid_of};
use crate::receive::Event;

impl Device {
    /// Registers a new device of `api`'s account: a fresh Ed25519 key, its credential as the
    /// server names it, and a first batch of KeyPackages (plus a last-resort one).
    pub async fn register(api: &Api) -> Result<Self, ClientError> {
        let signer = SignatureKeyPair::new(SignatureScheme::ED25519).map_err(mls("signature key"))?;
        let registered = api.post("/api/v1/devices", &json!({ "signature_key": b64(signer.public()) })).await?;
        let device_id = uuid_of(&registered["device_id"])?;
        let user_id = api.user_id().await?;
        let provider = OpenMlsRustCrypto::default();
        // Kept with the MLS state, so the state file holds it (sealed) and nothing else does.
        signer.store(provider.storage()).map_err(mls("store signature key"))?;
        let device = Self::assemble(provider, signer, device_id, user_id, Cursors::default());
        device.upload_key_packages(api, KEY_PACKAGE_BATCH, true).await?;
        Ok(device)
    }

    /// Removes this device at the server (lost or retired): it is sent nothing more and can
    /// no longer attach; the other members then commit its removal from each conversation.
    pub async fn unregister(&self, api: &Api) -> Result<(), ClientError> {
        api.delete(&format!("/api/v1/devices/{}", self.device_id)).await
    }

    /// Uploads `count` one-time KeyPackages (and a new last-resort one when asked).
    pub async fn upload_key_packages(&self, api: &Api, count: usize, last_resort: bool) -> Result<u64, ClientError> {
        let mut packages = Vec::with_capacity(count + 1);
        for i in 0..count + usize::from(last_resort) {
            packages.push(b64(&self.new_key_package(i == count)?));
        }
        let path = format!("/api/v1/devices/{}/key-packages", self.device_id);
        let stock = api.post(&path, &json!({ "key_packages": packages })).await?;
        Ok(stock["remaining"].as_u64().unwrap_or(0))
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
        let id = Uuid::new_v4();
        let group = MlsGroup::builder()
            .with_group_id(GroupId::from_slice(id.as_bytes()))
            .ciphersuite(CIPHERSUITE)
            .with_wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
            .use_ratchet_tree_extension(false)
            .max_past_epochs(8)
            .build(&self.provider, &self.signer, self.credential())
            .map_err(mls("create group"))?;
        let info = group.export_group_info(self.provider.crypto(), &self.signer, false).map_err(mls("group info"))?;
        let mut body = json!({
            "device_id": self.device_id,
            "group_info": b64(&info.tls_serialize_detached().map_err(mls("encode"))?),
            "ratchet_tree": b64(&group.export_ratchet_tree().tls_serialize_detached().map_err(mls("encode"))?),
        });
        kind.name_in(&mut body);
        api.post("/api/v1/conversations", &body).await?;
        self.cursors.start(id, 0);
        self.add_users(api, connection, id, kind, users).await?;
        Ok(id)
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
        let mut packages = Vec::new();
        let mut wanted: Vec<Uuid> = users.to_vec();
        wanted.push(self.user_id);
        wanted.dedup();
        let group = self.group(conversation)?;
        let present: Vec<Vec<u8>> = group
            .members()
            .filter_map(|m| BasicCredential::try_from(m.credential).ok().map(|c| c.identity().to_vec()))
            .collect();
        for user in wanted {
            let mut claim = json!({ "user_id": user });
            kind.name_in(&mut claim);
            let claimed = api.post("/api/v1/key-packages/claim", &claim).await?;
            for entry in claimed.as_array().into_iter().flatten() {
                let device = uuid_of(&entry["device_id"])?;
                if present.contains(&format!("confidant/{user}/{device}").into_bytes()) {
                    continue;
                }
                let bytes = unb64(entry["key_package"].as_str().unwrap_or(""))?;
                let package = KeyPackageIn::tls_deserialize_exact(&bytes)
                    .map_err(mls("key package"))?
                    .validate(self.provider.crypto(), ProtocolVersion::Mls10)
                    .map_err(mls("key package"))?;
                packages.push(package);
            }
        }
        if packages.is_empty() {
            return Ok(group.epoch().as_u64());
        }
        let mut group = group;
        let (commit, welcome, _) =
            group.add_members(&self.provider, &self.signer, &packages).map_err(mls("add members"))?;
        let staged = StagedCommit {
            commit: b64(&commit.tls_serialize_detached().map_err(mls("encode"))?),
            welcome: Some(b64(&welcome.tls_serialize_detached().map_err(mls("encode"))?)),
        };
        self.finish_commit(connection, conversation, group, staged).await
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
        let mut group = self.group(conversation)?;
        let identity = format!("confidant/{user}/{device}").into_bytes();
        let leaf = group
            .members()
            .find(|m| {
                BasicCredential::try_from(m.credential.clone()).is_ok_and(|c| c.identity() == identity.as_slice())
            })
            .map(|m| m.index)
            .ok_or(ClientError::Protocol("no such member"))?;
        let (commit, _, _) = group.remove_members(&self.provider, &self.signer, &[leaf]).map_err(mls("remove"))?;
        let staged =
            StagedCommit { commit: b64(&commit.tls_serialize_detached().map_err(mls("encode"))?), welcome: None };
        self.finish_commit(connection, conversation, group, staged).await
    }

    /// Sends a commit; merges it when accepted, or clears it when another won the epoch.
    async fn finish_commit(
        &mut self,
        connection: &mut Connection,
        conversation: Uuid,
        mut group: MlsGroup,
        staged: StagedCommit,
    ) -> Result<u64, ClientError> {
        let answer =
            connection.request(|id| ClientFrame::mls_commit(id, conversation, staged.commit, staged.welcome)).await;
        let refused = match answer {
            Ok(ServerFrame::MlsAccepted { seq, .. }) => {
                group.merge_pending_commit(&self.provider).map_err(mls("merge commit"))?;
                self.cursors.mark(conversation, seq);
                return Ok(group.epoch().as_u64());
            }
            Ok(ServerFrame::MlsStaleEpoch { epoch, .. }) => ClientError::Stale(epoch),
            Ok(_) => ClientError::Protocol("a commit was answered with neither mls.accepted nor mls.stale_epoch"),
            Err(error) => error,
        };
        group.clear_pending_commit(self.provider.storage()).map_err(mls("clear commit"))?;
        Err(refused)
    }

    /// Sends a staged commit (see [`Device::stage_self_update`]).
    pub async fn send_commit(
        &mut self,
        connection: &mut Connection,
        conversation: Uuid,
        staged: StagedCommit,
    ) -> Result<u64, ClientError> {
        let group = self.group(conversation)?;
        self.finish_commit(connection, conversation, group, staged).await
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
        match answer {
            ServerFrame::MlsAccepted { seq, .. } => {
                // The device's own message needs no processing; messages before it may still be
                // on their way (another sender's), so the processed prefix moves only up to a hole.
                self.cursors.mark(conversation, seq);
                Ok(seq)
            }
            ServerFrame::MlsStaleEpoch { epoch, .. } => Err(ClientError::Stale(epoch)),
            _ => Err(ClientError::Protocol("a message was answered with neither mls.accepted nor mls.stale_epoch")),
        }
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
            let processed = match frame {
                ServerFrame::MlsWelcome { conversation_id, seq, welcome, ratchet_tree, .. } => {
                    self.join(conversation_id, seq, &welcome, &ratchet_tree)?
                }
                ServerFrame::MlsMessage { conversation_id, seq, kind, sender_device, message, .. } => {
                    self.process(conversation_id, seq, kind, sender_device, &message)?
                }
                // Not about the device's conversations.
                ServerFrame::Welcome { .. }
                | ServerFrame::Ack { .. }
                | ServerFrame::Error { .. }
                | ServerFrame::ScheduleSnapshot { .. }
                | ServerFrame::ScheduleChanged { .. }
                | ServerFrame::IntakeForm { .. }
                | ServerFrame::IntakeSubmitted { .. }
                | ServerFrame::Alert { .. }
                | ServerFrame::MlsAccepted { .. }
                | ServerFrame::MlsStaleEpoch { .. }
                | ServerFrame::MlsKeyPackagesLow { .. } => None,
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
