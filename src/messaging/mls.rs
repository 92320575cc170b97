//! What the Delivery Service checks in MLS structures, through openmls: KeyPackages, group
//! creation (GroupInfo and ratchet tree) and commits, validated against the server's copy of
//! each group's public state ([`PublicGroup`]). Nothing here can read an application message:
//! the server has no group secrets.

use confidant_actors::ids::{DeviceId, UserId};
use openmls::prelude::*;
use openmls_rust_crypto::{MemoryStorage, RustCrypto};
use tls_codec::{Deserialize as _, Serialize as _};

/// The one ciphersuite conversations use (X25519, AES-128-GCM, SHA-256, Ed25519).
pub const CIPHERSUITE: Ciphersuite = Ciphersuite::MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519;

/// Why an MLS structure was refused. Never carries the structure itself.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MlsError {
    /// Not a TLS-encoded structure of the expected kind.
    #[error("not a well-formed MLS structure")]
    Malformed,
    /// Signatures, lifetimes, ciphersuite, epoch or tree do not validate.
    #[error("the MLS structure does not validate")]
    Invalid,
    /// The credential is not `confidant/<user>/<device>` with that device's signature key.
    #[error("the credential is not a registered device's")]
    Credential,
    /// Proposals this service does not accept (external senders, PSKs, re-init, ...).
    #[error("the commit carries proposals this service does not accept")]
    Unsupported,
    /// A commit made in another epoch than the group's current one.
    #[error("the commit is not for the group's current epoch")]
    Epoch,
    /// The server's copy of the group could not be loaded or stored.
    #[error("the group state is unreadable")]
    State,
}

/// The identity bytes of a device's credential.
pub fn identity(user: UserId, device: DeviceId) -> Vec<u8> {
    format!("confidant/{user}/{device}").into_bytes()
}

/// The account and device a credential names, if it is a basic credential of our form.
pub fn parse_identity(credential: &Credential) -> Option<(UserId, DeviceId)> {
    let basic = BasicCredential::try_from(credential.clone()).ok()?;
    let text = std::str::from_utf8(basic.identity()).ok()?;
    let mut parts = text.strip_prefix("confidant/")?.splitn(2, '/');
    let user = parts.next()?.parse().ok()?;
    let device = parts.next()?.parse().ok()?;
    Some((user, device))
}

/// Who a leaf claims to be: account, device and signature key, for the caller to check
/// against the device registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The account the credential names.
    pub user: UserId,
    /// The device it names.
    pub device: DeviceId,
    /// The leaf's signature key.
    pub signature_key: Vec<u8>,
}

fn claimed(leaf: &LeafNode) -> Result<Claimed, MlsError> {
    let (user, device) = parse_identity(leaf.credential()).ok_or(MlsError::Credential)?;
    Ok(Claimed { user, device, signature_key: leaf.signature_key().as_slice().to_vec() })
}

/// A KeyPackage that validated: its reference, whether it is the last-resort one, and who
/// it claims to be.
#[derive(Debug, Clone)]
pub struct ValidKeyPackage {
    /// `KeyPackageRef` bytes: its primary key.
    pub hash_ref: Vec<u8>,
    /// Whether it carries the last-resort extension.
    pub last_resort: bool,
    /// Its credential.
    pub claimed: Claimed,
}

/// Validates a TLS-encoded KeyPackage (signature, ciphersuite, lifetime, distinct keys).
pub fn validate_key_package(bytes: &[u8]) -> Result<ValidKeyPackage, MlsError> {
    let crypto = RustCrypto::default();
    let incoming = KeyPackageIn::tls_deserialize_exact(bytes).map_err(|_| MlsError::Malformed)?;
    let package = incoming.validate(&crypto, ProtocolVersion::Mls10).map_err(|_| MlsError::Invalid)?;
    if package.ciphersuite() != CIPHERSUITE {
        return Err(MlsError::Invalid);
    }
    let hash_ref = package.hash_ref(&crypto).map_err(|_| MlsError::Invalid)?.as_slice().to_vec();
    Ok(ValidKeyPackage { hash_ref, last_resort: package.last_resort(), claimed: claimed(package.leaf_node())? })
}

/// The server's copy of one group: its public state in an openmls storage of its own,
/// stored as one value per conversation (see [`ServerGroup::to_bytes`]).
pub struct ServerGroup {
    storage: MemoryStorage,
    group: PublicGroup,
}

/// A commit that validated against the group, not yet merged.
pub struct CheckedCommit {
    staged: StagedCommit,
    /// The leaf that sent it.
    pub sender: Claimed,
    /// Devices it adds.
    pub added: Vec<Claimed>,
    /// The epoch it was made in.
    pub epoch: u64,
}

impl ServerGroup {
    /// Starts tracking a group from the creator's GroupInfo (an `MlsMessageOut`) and ratchet
    /// tree. Returns the group and its members' claims.
    pub fn create(group_info: &[u8], ratchet_tree: &[u8]) -> Result<(Self, Vec<Claimed>), MlsError> {
        let crypto = RustCrypto::default();
        let message = MlsMessageIn::tls_deserialize_exact(group_info).map_err(|_| MlsError::Malformed)?;
        let MlsMessageBodyIn::GroupInfo(info) = message.extract() else { return Err(MlsError::Malformed) };
        if info.ciphersuite() != CIPHERSUITE {
            return Err(MlsError::Invalid);
        }
        let tree = RatchetTreeIn::tls_deserialize_exact(ratchet_tree).map_err(|_| MlsError::Malformed)?;
        let storage = MemoryStorage::default();
        let (group, _) = PublicGroup::from_external(&crypto, &storage, tree, info, ProposalStore::new())
            .map_err(|_| MlsError::Invalid)?;
        let this = Self { storage, group };
        let members = this.members()?;
        Ok((this, members))
    }

    /// The group id (the conversation id's bytes).
    pub fn group_id(&self) -> &[u8] {
        self.group.group_id().as_slice()
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        self.group.group_context().epoch().as_u64()
    }

    /// Every member's claim.
    pub fn members(&self) -> Result<Vec<Claimed>, MlsError> {
        self.group
            .members()
            .map(|m| {
                let (user, device) = parse_identity(&m.credential).ok_or(MlsError::Credential)?;
                Ok(Claimed { user, device, signature_key: m.signature_key })
            })
            .collect()
    }

    /// The ratchet tree, TLS-encoded (sent with Welcomes).
    pub fn ratchet_tree(&self) -> Result<Vec<u8>, MlsError> {
        self.group.export_ratchet_tree().tls_serialize_detached().map_err(|_| MlsError::State)
    }

    /// Validates a commit (an `MlsMessageOut` holding a `PublicMessage`) against the group:
    /// framing, epoch, the sender's signature and membership, every proposal, the new tree.
    pub fn check_commit(&self, bytes: &[u8]) -> Result<CheckedCommit, MlsError> {
        let crypto = RustCrypto::default();
        let message = MlsMessageIn::tls_deserialize_exact(bytes).map_err(|_| MlsError::Malformed)?;
        let protocol = message.try_into_protocol_message().map_err(|_| MlsError::Malformed)?;
        let ProtocolMessage::PublicMessage(_) = &protocol else { return Err(MlsError::Malformed) };
        if protocol.group_id().as_slice() != self.group_id() {
            return Err(MlsError::Invalid);
        }
        let epoch = protocol.epoch().as_u64();
        if epoch != self.epoch() {
            return Err(MlsError::Epoch);
        }
        let processed = self.group.process_message(&crypto, protocol).map_err(|_| MlsError::Invalid)?;
        let Sender::Member(index) = *processed.sender() else { return Err(MlsError::Unsupported) };
        let sender = claimed(self.group.leaf(index).ok_or(MlsError::Invalid)?)?;
        let ProcessedMessageContent::StagedCommitMessage(staged) = processed.into_content() else {
            return Err(MlsError::Malformed);
        };
        let staged = *staged;
        // Adds, removes and updates only: no pre-shared keys, external inits or re-inits.
        let accepted = staged
            .queued_proposals()
            .all(|p| matches!(p.proposal(), Proposal::Add(_) | Proposal::Remove(_) | Proposal::Update(_)));
        if !accepted {
            return Err(MlsError::Unsupported);
        }
        let added = staged
            .add_proposals()
            .map(|add| claimed(add.add_proposal().key_package().leaf_node()))
            .collect::<Result<Vec<_>, _>>()?;
        if let Some(leaf) = staged.update_path_leaf_node() {
            // A member may refresh its own leaf, never take another identity.
            if claimed(leaf)? != sender {
                return Err(MlsError::Credential);
            }
        }
        Ok(CheckedCommit { staged, sender, added, epoch })
    }

    /// Applies a checked commit: the group moves to the next epoch.
    pub fn merge(&mut self, commit: CheckedCommit) -> Result<(), MlsError> {
        self.group.merge_commit(&self.storage, commit.staged).map_err(|_| MlsError::State)
    }

    /// The state, for the database: the storage's key/value pairs, each as two
    /// length-prefixed byte strings (u32 big-endian lengths).
    pub fn to_bytes(&self) -> Result<Vec<u8>, MlsError> {
        let values = self.storage.values.read().map_err(|_| MlsError::State)?;
        let mut pairs: Vec<_> = values.iter().collect();
        pairs.sort();
        let mut out = Vec::new();
        for (key, value) in pairs {
            for part in [key, value] {
                out.extend_from_slice(&u32::try_from(part.len()).map_err(|_| MlsError::State)?.to_be_bytes());
                out.extend_from_slice(part);
            }
        }
        Ok(out)
    }

    /// Loads the state written by [`Self::to_bytes`] for group `group_id`.
    pub fn from_bytes(group_id: &[u8], mut bytes: &[u8]) -> Result<Self, MlsError> {
        let storage = MemoryStorage::default();
        {
            let mut values = storage.values.write().map_err(|_| MlsError::State)?;
            let take = |bytes: &mut &[u8]| -> Result<Vec<u8>, MlsError> {
                let (len, rest) = bytes.split_first_chunk::<4>().ok_or(MlsError::State)?;
                let len = usize::try_from(u32::from_be_bytes(*len)).map_err(|_| MlsError::State)?;
                let (part, rest) = rest.split_at_checked(len).ok_or(MlsError::State)?;
                *bytes = rest;
                Ok(part.to_vec())
            };
            while !bytes.is_empty() {
                let key = take(&mut bytes)?;
                let value = take(&mut bytes)?;
                values.insert(key, value);
            }
        }
        let group = PublicGroup::load(&storage, &GroupId::from_slice(group_id))
            .map_err(|_| MlsError::State)?
            .ok_or(MlsError::State)?;
        Ok(Self { storage, group })
    }
}

/// What the server reads off an application message's framing (never its content).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    /// The epoch it was encrypted in.
    pub epoch: u64,
}

/// Checks that `bytes` is an `MlsMessageOut` holding a `PrivateMessage` of group `group_id`.
pub fn application_framing(group_id: &[u8], bytes: &[u8]) -> Result<Framing, MlsError> {
    let message = MlsMessageIn::tls_deserialize_exact(bytes).map_err(|_| MlsError::Malformed)?;
    let protocol = message.try_into_protocol_message().map_err(|_| MlsError::Malformed)?;
    let ProtocolMessage::PrivateMessage(_) = &protocol else { return Err(MlsError::Malformed) };
    if protocol.group_id().as_slice() != group_id || protocol.content_type() != ContentType::Application {
        return Err(MlsError::Invalid);
    }
    Ok(Framing { epoch: protocol.epoch().as_u64() })
}

/// Checks that `bytes` is an `MlsMessageOut` holding a Welcome.
pub fn check_welcome(bytes: &[u8]) -> Result<(), MlsError> {
    let message = MlsMessageIn::tls_deserialize_exact(bytes).map_err(|_| MlsError::Malformed)?;
    match message.extract() {
        MlsMessageBodyIn::Welcome(_) => Ok(()),
        _ => Err(MlsError::Malformed),
    }
}
