//! One device: its signature key, its MLS groups (one per conversation) and how far it has
//! processed each; creating conversations, adding and removing members, sending. Receiving
//! (turning the server's frames into [`Event`]s and acknowledging them) is in `receive.rs`.

use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use serde_json::{Value, json};
use tls_codec::{Deserialize as _, Serialize as _};
use uuid::Uuid;

use crate::ClientError;
use crate::acks::Acks;
use crate::api::b64;
use crate::cursors::Cursors;
pub use crate::receive::Event;
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

impl ConversationKind {
    /// Names the conversation in a REST body as the server reads it: `patient_id`, or
    /// `kind: "staff"`.
    pub(crate) fn name_in(self, body: &mut Value) {
        match self {
            ConversationKind::Care(patient) => body["patient_id"] = json!(patient),
            ConversationKind::Staff => body["kind"] = json!("staff"),
        }
    }
}

/// A commit staged in a conversation's group and not yet sent: the server accepts it (the
/// group then merges it) or refuses it (the group clears it).
#[derive(Debug, Clone)]
pub struct StagedCommit {
    /// Base64 of the commit's `MlsMessageOut`.
    pub commit: String,
    /// Base64 of the Welcome's `MlsMessageOut`, when the commit adds members.
    pub welcome: Option<String>,
}

/// A registered device and its MLS state.
pub struct Device {
    pub(crate) provider: OpenMlsRustCrypto,
    pub(crate) signer: SignatureKeyPair,
    /// The device's id.
    pub device_id: Uuid,
    /// Its account.
    pub user_id: Uuid,
    /// Per conversation, what has been processed.
    pub(crate) cursors: Cursors,
    /// What is owed to the server in acknowledgements.
    pub(crate) acks: Acks,
    /// Where the state is kept, when it is: saved before anything is acknowledged.
    pub(crate) state_file: Option<SealedFile>,
}

pub(crate) fn mls<E: std::fmt::Debug>(what: &'static str) -> impl FnOnce(E) -> ClientError {
    move |error| ClientError::Mls(format!("{what}: {error:?}"))
}

pub(crate) fn uuid_of(value: &Value) -> Result<Uuid, ClientError> {
    value.as_str().and_then(|s| s.parse().ok()).ok_or(ClientError::Protocol("missing id"))
}

impl Device {
    /// A device of these parts, keeping its state nowhere yet.
    pub(crate) fn assemble(
        provider: OpenMlsRustCrypto,
        signer: SignatureKeyPair,
        device_id: Uuid,
        user_id: Uuid,
        cursors: Cursors,
    ) -> Self {
        Self { provider, signer, device_id, user_id, cursors, acks: Acks::default(), state_file: None }
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

    pub(crate) fn new_key_package(&self, last_resort: bool) -> Result<Vec<u8>, ClientError> {
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

    pub(crate) fn group(&self, conversation: Uuid) -> Result<MlsGroup, ClientError> {
        MlsGroup::load(self.provider.storage(), &GroupId::from_slice(conversation.as_bytes()))
            .map_err(mls("load group"))?
            .ok_or(ClientError::Protocol("not a member of this conversation"))
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

    /// Prepares a commit without sending it (tests use it to race two commits).
    pub fn stage_self_update(&mut self, conversation: Uuid) -> Result<StagedCommit, ClientError> {
        let mut group = self.group(conversation)?;
        let bundle = group
            .self_update(&self.provider, &self.signer, LeafNodeParameters::default())
            .map_err(mls("self update"))?;
        let commit = bundle.into_commit();
        Ok(StagedCommit { commit: b64(&commit.tls_serialize_detached().map_err(mls("encode"))?), welcome: None })
    }

    /// The ciphertext of `text` in `conversation` (an `MlsMessageOut`, TLS-encoded).
    pub fn encrypt(&mut self, conversation: Uuid, text: &[u8]) -> Result<Vec<u8>, ClientError> {
        let mut group = self.group(conversation)?;
        let message = group.create_message(&self.provider, &self.signer, text).map_err(mls("encrypt"))?;
        message.tls_serialize_detached().map_err(mls("encode"))
    }

    /// Tries to decrypt an application message of `conversation` (what a removed device
    /// would be left doing).
    pub fn decrypt(&mut self, conversation: Uuid, bytes: &[u8]) -> Result<Vec<u8>, ClientError> {
        let mut group = self.group(conversation)?;
        let message = MlsMessageIn::tls_deserialize_exact(bytes).map_err(mls("decode"))?;
        let protocol = message.try_into_protocol_message().map_err(mls("decode"))?;
        let processed = group.process_message(&self.provider, protocol).map_err(mls("decrypt"))?;
        match processed.into_content() {
            ProcessedMessageContent::ApplicationMessage(app) => Ok(app.into_bytes()),
            _ => Err(ClientError::Protocol("not an application message")),
        }
    }
}
