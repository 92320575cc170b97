//! One device: its signature key, its MLS groups (one per conversation) and how far it has
//! processed each; creating conversations, adding and removing members, sending. Receiving
//! (turning the server's frames into [`Event`]s and acknowledging them) is in `receive.rs`.

use confidant_protocol::{ClientFrame, ServerFrame};
use openmls::prelude::*;
use openmls_basic_credential::SignatureKeyPair;
use openmls_rust_crypto::OpenMlsRustCrypto;
use serde_json::{Value, json};
use tls_codec::{Deserialize as _, Serialize as _};
use uuid::Uuid;

use crate::ClientError;
use crate::acks::Acks;
use crate::api::{Api, b64, unb64};
use crate::connection::Connection;
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
    fn name_in(self, body: &mut Value) {
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

    /// Removes this device at the server (lost or retired): it is sent nothing more and can
    /// no longer attach; the other members then commit its removal from each conversation.
    pub async fn unregister(&self, api: &Api) -> Result<(), ClientError> {
        api.delete(&format!("/api/v1/devices/{}", self.device_id)).await
    }

    /// The identity bytes of this device's credential.
    pub fn identity(&self) -> Vec<u8> {
        format!("confidant/{}/{}", self.user_id, self.device_id).into_bytes()
    }

    fn credential(&self) -> CredentialWithKey {
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

    /// Prepares a commit without sending it (tests use it to race two commits).
    pub fn stage_self_update(&mut self, conversation: Uuid) -> Result<StagedCommit, ClientError> {
        let mut group = self.group(conversation)?;
        let bundle = group
            .self_update(&self.provider, &self.signer, LeafNodeParameters::default())
            .map_err(mls("self update"))?;
        let commit = bundle.into_commit();
        Ok(StagedCommit { commit: b64(&commit.tls_serialize_detached().map_err(mls("encode"))?), welcome: None })
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
