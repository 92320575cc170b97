//! One device: its signature key, its MLS groups (one per conversation) and how far it has
//! processed each. With `conversation.rs` (starting conversations, staging commits, sending) and
//! `receive.rs` (taking in what the server pushes), this is the device's MLS core: it does no
//! I/O, so it builds for wasm32. `online.rs` drives it against a server.

use std::cell::RefCell;
use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use tls_codec::Serialize as _;
use uuid::Uuid;

use crate::ClientError;
#[cfg(feature = "native")]
use crate::acks::Acks;
use crate::cursors::Cursors;
#[cfg(feature = "native")]
use crate::sealed::SealedFile;

/// The ciphersuite the server accepts.
pub const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;
/// One-time KeyPackages uploaded at registration and on each refill.
pub const KEY_PACKAGE_BATCH: usize = 20;

/// What a conversation is: about one patient (the patient and the clinicians on their care
/// team may be in it) or among staff (any staff account, never a patient). The server decides
/// from it who may be added; a patient's id converts into [`ConversationKind::Care`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConversationKind {
    /// About this patient (their record's id).
    Care(Uuid),
    /// Among staff, about no patient.
    Staff,
}

impl From<Uuid> for ConversationKind {
    fn from(patient: Uuid) -> Self {
        ConversationKind::Care(patient)
    }
}

/// A registered device and its MLS state.
pub struct Device {
    pub(crate) provider: OpenMlsRustCrypto,
    /// The groups loaded from storage, kept for the next operation. openmls writes each change
    /// through to storage as it makes it, so a kept group is what storage holds; loading one
    /// anew for every message re-read (and the memory storage re-parsed from JSON) the whole
    /// ratchet tree and epoch secrets, the largest part of a message's cost in the browser.
    pub(crate) groups: RefCell<HashMap<Uuid, MlsGroup>>,
    pub(crate) signer: SignatureKeyPair,
    /// The device's id.
    pub device_id: Uuid,
    /// Its account.
    pub user_id: Uuid,
    /// Per conversation, what has been processed.
    pub(crate) cursors: Cursors,
    /// What is owed to the server in acknowledgements.
    #[cfg(feature = "native")]
    pub(crate) acks: Acks,
    /// Where the state is kept, when it is: saved before anything is acknowledged.
    #[cfg(feature = "native")]
    pub(crate) state_file: Option<SealedFile>,
}

/// Maps an openmls error to [`ClientError::Mls`], saying what failed.
pub(crate) fn mls<E: std::fmt::Debug>(what: &'static str) -> impl FnOnce(E) -> ClientError {
    move |error| ClientError::Mls(format!("{what}: {error:?}"))
}

/// Base64 of `bytes` (MLS messages travel base64 in frames and REST bodies).
pub(crate) fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

/// Bytes of base64 `text`.
pub(crate) fn unb64(text: &str) -> Result<Vec<u8>, ClientError> {
    B64.decode(text).map_err(|_| ClientError::Protocol("not base64"))
}

impl Device {
    /// The device that the server registered as `device_id` of `user_id` with `signer`'s public
    /// key. The key pair is kept with the MLS state, so a state file holds it (sealed) and
    /// nothing else does.
    pub fn new(signer: SignatureKeyPair, device_id: Uuid, user_id: Uuid) -> Result<Self, ClientError> {
        let provider = OpenMlsRustCrypto::default();
        signer.store(provider.storage()).map_err(mls("store signature key"))?;
        Ok(Self::assemble(provider, signer, device_id, user_id, Cursors::default()))
    }

    /// A device of these parts, keeping its state nowhere yet.
    pub(crate) fn assemble(
        provider: OpenMlsRustCrypto,
        signer: SignatureKeyPair,
        device_id: Uuid,
        user_id: Uuid,
        cursors: Cursors,
    ) -> Self {
        Self {
            provider,
            groups: RefCell::default(),
            signer,
            device_id,
            user_id,
            cursors,
            #[cfg(feature = "native")]
            acks: Acks::default(),
            #[cfg(feature = "native")]
            state_file: None,
        }
    }

    /// The identity bytes of this device's credential.
    pub fn identity(&self) -> Vec<u8> {
        format!("confidant/{}/{}", self.user_id, self.device_id).into_bytes()
    }

    pub(crate) fn credential(&self) -> CredentialWithKey {
        CredentialWithKey {
            credential: BasicCredential::new(self.identity()).into(),
            signature_key: self.signer.public().into(),
        }
    }

    /// A fresh one-time KeyPackage of this device, TLS-encoded (its private keys stay in the
    /// device's storage).
    pub fn key_package_bytes(&self) -> Result<Vec<u8>, ClientError> {
        self.new_key_package(false)
    }

    /// `count` fresh one-time KeyPackages, and a last-resort one after them when asked,
    /// TLS-encoded.
    pub fn key_packages(&self, count: usize, last_resort: bool) -> Result<Vec<Vec<u8>>, ClientError> {
        (0..count + usize::from(last_resort)).map(|i| self.new_key_package(i == count)).collect()
    }

    fn new_key_package(&self, last_resort: bool) -> Result<Vec<u8>, ClientError> {
        // Every leaf states it understands the last-resort extension, which its KeyPackages
        // may carry.
        let capabilities = Capabilities::builder().extensions(vec![ExtensionType::LastResort]).build();
        let mut builder = KeyPackage::builder().leaf_node_capabilities(capabilities);
        if last_resort {
            builder = builder.mark_as_last_resort();
        }
        let bundle =
            builder.build(CIPHERSUITE, &self.provider, &self.signer, self.credential()).map_err(mls("key package"))?;
        bundle.key_package().tls_serialize_detached().map_err(mls("encode"))
    }

    pub(crate) fn group_config() -> MlsGroupCreateConfig {
        MlsGroupCreateConfig::builder()
            .ciphersuite(CIPHERSUITE)
            // Commits in the clear for the server to validate; application messages are always
            // encrypted.
            .wire_format_policy(MIXED_PLAINTEXT_WIRE_FORMAT_POLICY)
            .use_ratchet_tree_extension(false)
            .max_past_epochs(8)
            .build()
    }

    /// The group of `conversation`, taken out of memory (or loaded from storage) for one
    /// operation; [`Device::keep_group`] puts it back when the operation succeeded. A group an
    /// operation failed on is not put back: openmls may have changed it in memory and not in
    /// storage, so the next operation starts again from storage.
    pub(crate) fn take_group(&self, conversation: Uuid) -> Result<MlsGroup, ClientError> {
        if let Some(group) = self.groups.borrow_mut().remove(&conversation) {
            return Ok(group);
        }
        MlsGroup::load(self.provider.storage(), &GroupId::from_slice(conversation.as_bytes()))
            .map_err(mls("load group"))?
            .ok_or(ClientError::Protocol("not a member of this conversation"))
    }

    /// Keeps `group` of `conversation` in memory for the next operation.
    pub(crate) fn keep_group(&self, conversation: Uuid, group: MlsGroup) {
        self.groups.borrow_mut().insert(conversation, group);
    }

    /// Runs `op` on the group of `conversation`, keeping the group only when `op` succeeds.
    pub(crate) fn with_group<T>(
        &self,
        conversation: Uuid,
        op: impl FnOnce(&mut MlsGroup) -> Result<T, ClientError>,
    ) -> Result<T, ClientError> {
        let mut group = self.take_group(conversation)?;
        let done = op(&mut group)?;
        self.keep_group(conversation, group);
        Ok(done)
    }

    /// The conversations this device is in.
    pub fn conversations(&self) -> Vec<Uuid> {
        self.cursors.conversations()
    }

    /// The seq through which this device has processed everything of `conversation` (what it
    /// may acknowledge), if it is in it.
    pub fn cursor(&self, conversation: Uuid) -> Option<u64> {
        self.cursors.through(conversation)
    }

    /// Who can read what is sent in `conversation`, as this device's own group says: each member
    /// device as (account, device), from the credential the server checked when it was added.
    /// A leaf whose credential is not `confidant/<user>/<device>` is left out (none can join).
    pub fn members(&self, conversation: Uuid) -> Result<Vec<(Uuid, Uuid)>, ClientError> {
        self.with_group(conversation, |group| {
            Ok(group
                .members()
                .filter_map(|member| {
                    let basic = BasicCredential::try_from(member.credential).ok()?;
                    let text = std::str::from_utf8(basic.identity()).ok()?;
                    let (user, device) = text.strip_prefix("confidant/")?.split_once('/')?;
                    Some((Uuid::parse_str(user).ok()?, Uuid::parse_str(device).ok()?))
                })
                .collect())
        })
    }

    /// The epoch of this device's group of `conversation`.
    pub fn epoch(&self, conversation: Uuid) -> Result<u64, ClientError> {
        self.with_group(conversation, |group| Ok(group.epoch().as_u64()))
    }

    /// The group's ratchet tree (TLS-encoded, public), which a joiner needs beside its Welcome.
    /// The server keeps its own copy and sends it with each Welcome; a device hands out its own
    /// only where no server stands between two devices (the benchmarks pair two in one process,
    /// natively and in the browser, to time MLS alone).
    pub fn ratchet_tree(&self, conversation: Uuid) -> Result<Vec<u8>, ClientError> {
        self.with_group(conversation, |group| {
            group.export_ratchet_tree().tls_serialize_detached().map_err(mls("encode"))
        })
    }
}
