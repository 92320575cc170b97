//! A device in its conversations' MLS groups: starting a group, staging the commits that add or
//! remove devices or refresh this device's keys, encrypting and decrypting application messages,
//! and settling each commit or message with the server's answer (`mls.accepted` or
//! `mls.stale_epoch`). No I/O: the caller carries what is staged to the server and back.

use confidant_protocol::ServerFrame;
use openmls::prelude::*;
use tls_codec::{Deserialize as _, Serialize as _};
use uuid::Uuid;

use crate::ClientError;
use crate::device::{CIPHERSUITE, Device, b64, mls, unb64};

/// A group this device just created, for the server to register (`POST /api/v1/conversations`)
/// before anyone is added.
pub struct NewConversation {
    /// The conversation (its MLS group id).
    pub id: Uuid,
    /// The group's GroupInfo `MlsMessageOut`, TLS-encoded.
    pub group_info: Vec<u8>,
    /// Its ratchet tree, TLS-encoded.
    pub ratchet_tree: Vec<u8>,
}

/// A device to add to a conversation: whose, which, and the KeyPackage claimed for it.
#[derive(Debug, Clone)]
pub struct NewMember {
    /// The account.
    pub user: Uuid,
    /// The device.
    pub device: Uuid,
    /// Base64 of the TLS-encoded KeyPackage, as the claim answered.
    pub key_package: String,
}

/// A commit staged in a conversation's group and not yet sent: the server accepts it (the
/// group then merges it) or refuses it (the group clears it); see [`Device::settle_commit`].
#[derive(Debug, Clone)]
pub struct StagedCommit {
    /// Base64 of the commit's `MlsMessageOut`.
    pub commit: String,
    /// Base64 of the Welcome's `MlsMessageOut`, when the commit adds members.
    pub welcome: Option<String>,
}

impl Device {
    /// Creates the group of a new conversation with this device alone in it. The device counts
    /// itself in it once the server has registered it ([`Device::conversation_registered`]).
    pub fn start_conversation(&mut self) -> Result<NewConversation, ClientError> {
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
        Ok(NewConversation {
            id,
            group_info: info.tls_serialize_detached().map_err(mls("encode"))?,
            ratchet_tree: group.export_ratchet_tree().tls_serialize_detached().map_err(mls("encode"))?,
        })
    }

    /// The server registered the conversation this device started: it is in it from the start.
    pub fn conversation_registered(&mut self, conversation: Uuid) {
        self.cursors.start(conversation, 0);
    }

    /// Stages the commit adding `members` to `conversation`, leaving out the devices already in
    /// it; `None` when none is left to add.
    pub fn stage_add(
        &mut self,
        conversation: Uuid,
        members: &[NewMember],
    ) -> Result<Option<StagedCommit>, ClientError> {
        let mut group = self.take_group(conversation)?;
        let present: Vec<Vec<u8>> = group
            .members()
            .filter_map(|m| BasicCredential::try_from(m.credential).ok().map(|c| c.identity().to_vec()))
            .collect();
        let mut packages = Vec::new();
        for member in members {
            if present.contains(&format!("confidant/{}/{}", member.user, member.device).into_bytes()) {
                continue;
            }
            let package = KeyPackageIn::tls_deserialize_exact(unb64(&member.key_package)?)
                .map_err(mls("key package"))?
                .validate(self.provider.crypto(), ProtocolVersion::Mls10)
                .map_err(mls("key package"))?;
            packages.push(package);
        }
        if packages.is_empty() {
            self.keep_group(conversation, group);
            return Ok(None);
        }
        let (commit, welcome, _) =
            group.add_members(&self.provider, &self.signer, &packages).map_err(mls("add members"))?;
        let staged = StagedCommit {
            commit: b64(&commit.tls_serialize_detached().map_err(mls("encode"))?),
            welcome: Some(b64(&welcome.tls_serialize_detached().map_err(mls("encode"))?)),
        };
        self.keep_group(conversation, group);
        Ok(Some(staged))
    }

    /// Stages the commit removing `device` (of any account) from `conversation`: after it, the
    /// device cannot read what is sent.
    pub fn stage_removal(&mut self, conversation: Uuid, user: Uuid, device: Uuid) -> Result<StagedCommit, ClientError> {
        let identity = format!("confidant/{user}/{device}").into_bytes();
        self.with_group(conversation, |group| {
            let leaf = group
                .members()
                .find(|m| {
                    BasicCredential::try_from(m.credential.clone()).is_ok_and(|c| c.identity() == identity.as_slice())
                })
                .map(|m| m.index)
                .ok_or(ClientError::Protocol("no such member"))?;
            let (commit, _, _) = group.remove_members(&self.provider, &self.signer, &[leaf]).map_err(mls("remove"))?;
            Ok(StagedCommit { commit: b64(&commit.tls_serialize_detached().map_err(mls("encode"))?), welcome: None })
        })
    }

    /// Stages a commit refreshing this device's keys in `conversation` (tests also use it to race
    /// two commits).
    pub fn stage_self_update(&mut self, conversation: Uuid) -> Result<StagedCommit, ClientError> {
        self.with_group(conversation, |group| {
            let bundle = group
                .self_update(&self.provider, &self.signer, LeafNodeParameters::default())
                .map_err(mls("self update"))?;
            let commit = bundle.into_commit();
            Ok(StagedCommit { commit: b64(&commit.tls_serialize_detached().map_err(mls("encode"))?), welcome: None })
        })
    }

    /// Settles the commit staged in `conversation` with the server's answer: accepted, it is
    /// merged and its seq counted as processed, and the new epoch returned; anything else (the
    /// epoch was lost, a refusal, no answer) clears it.
    pub fn settle_commit(
        &mut self,
        conversation: Uuid,
        answer: Result<ServerFrame, ClientError>,
    ) -> Result<u64, ClientError> {
        let mut group = self.take_group(conversation)?;
        let refused = match answer {
            Ok(ServerFrame::MlsAccepted { seq, .. }) => {
                group.merge_pending_commit(&self.provider).map_err(mls("merge commit"))?;
                self.cursors.mark(conversation, seq);
                let epoch = group.epoch().as_u64();
                self.keep_group(conversation, group);
                return Ok(epoch);
            }
            Ok(ServerFrame::MlsStaleEpoch { epoch, .. }) => ClientError::Stale(epoch),
            Ok(_) => ClientError::Protocol("a commit was answered with neither mls.accepted nor mls.stale_epoch"),
            Err(error) => error,
        };
        group.clear_pending_commit(self.provider.storage()).map_err(mls("clear commit"))?;
        self.keep_group(conversation, group);
        Err(refused)
    }

    /// The ciphertext of `text` in `conversation` (an `MlsMessageOut`, TLS-encoded).
    pub fn encrypt(&mut self, conversation: Uuid, text: &[u8]) -> Result<Vec<u8>, ClientError> {
        self.with_group(conversation, |group| {
            let message = group.create_message(&self.provider, &self.signer, text).map_err(mls("encrypt"))?;
            message.tls_serialize_detached().map_err(mls("encode"))
        })
    }

    /// Settles a message this device sent to `conversation` with the server's answer: its seq
    /// when accepted, or [`ClientError::Stale`] when it was encrypted in an epoch that is over.
    pub fn settle_message(&mut self, conversation: Uuid, answer: ServerFrame) -> Result<u64, ClientError> {
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

    /// Tries to decrypt an application message of `conversation` (what a removed device
    /// would be left doing).
    pub fn decrypt(&mut self, conversation: Uuid, bytes: &[u8]) -> Result<Vec<u8>, ClientError> {
        self.with_group(conversation, |group| {
            let message = MlsMessageIn::tls_deserialize_exact(bytes).map_err(mls("decode"))?;
            let protocol = message.try_into_protocol_message().map_err(mls("decode"))?;
            let processed = group.process_message(&self.provider, protocol).map_err(mls("decrypt"))?;
            match processed.into_content() {
                ProcessedMessageContent::ApplicationMessage(app) => Ok(app.into_bytes()),
                _ => Err(ClientError::Protocol("not an application message")),
            }
        })
    }
}
