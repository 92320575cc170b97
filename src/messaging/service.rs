//! [`MessagingService`]: every messaging operation, once, for both transports. The socket
//! (`ws/messaging.rs`) and the REST routes (`http/messaging.rs`) parse, call one method and map
//! its answer; the checks, the audit records and the live pushes are here. The operations of a
//! device attached to a socket are in `service/delivery.rs`, the others (devices, KeyPackages,
//! starting conversations) in `service/setup.rs`, encrypted attachments in
//! `service/attachments.rs`.

use std::sync::Arc;

use confidant_actors::clock::Clock;
use confidant_actors::ids::DeviceId;

use super::mls::MlsError;
use super::{Attachments, ClaimLimiter, ConversationPolicy, Conversations, Device, Devices, MessagingError};
use crate::access::{AccessError, Denial, Gate, Requester};
use crate::auditor::{AuditUnavailable, Auditor};
use crate::patients::{PatientError, Patients};
use crate::push::Pusher;
use crate::storage::StorageError;

mod attachments;
mod delivery;
mod setup;

pub use attachments::{Downloaded, Uploaded};
pub use delivery::{Missed, Submitted};

/// Why a messaging operation was refused or failed. Each variant is one kind of the error
/// taxonomy (docs/ARCHITECTURE.md); the transports map it to a status or an error code.
#[derive(Debug, thiserror::Error)]
pub enum MessagingServiceError {
    /// An MLS structure does not validate for this device or conversation (bad input).
    #[error(transparent)]
    InvalidMls(MlsError),
    /// An attachment's ciphertext is larger than `messaging.attachment_max_bytes` allows (bad
    /// input).
    #[error("the attachment is larger than {limit} bytes")]
    AttachmentTooLarge {
        /// The largest ciphertext accepted.
        limit: usize,
    },
    /// An attachment's ciphertext is too short to hold a nonce and a tag (bad input).
    #[error("the attachment is not ciphertext")]
    AttachmentTooShort,
    /// The signature key is not a 32-byte Ed25519 public key (bad input).
    #[error("the signature key is not a 32-byte Ed25519 public key")]
    SignatureKey,
    /// A signature key or a conversation id that is already registered (bad input).
    #[error("already exists")]
    Conflict,
    /// More KeyPackages than a device may keep (bad input).
    #[error("too many KeyPackages")]
    TooManyKeyPackages,
    /// The permission check refused; the gate recorded the refusal (not allowed).
    #[error(transparent)]
    Denied(Denial),
    /// An account the conversation's kind does not admit (not allowed).
    #[error("the account may not be in this conversation")]
    NotAllowed,
    /// More KeyPackage claims than an account may make this minute on this node (not allowed).
    #[error("too many KeyPackage claims")]
    TooManyClaims {
        /// Seconds until the next minute's budget.
        retry_after_secs: u64,
    },
    /// The session's device is not an active device of its account (any more) (not allowed).
    #[error("no active device attached")]
    NoDevice,
    /// No such device or conversation, or none the requester may know of (not found).
    #[error("not found")]
    NotFound,
    /// The audit trail could not record the operation, so nothing was done (dependency down).
    #[error(transparent)]
    AuditUnavailable(#[from] AuditUnavailable),
    /// A service it depends on (accounts, permissions, the message ingest) failed (dependency
    /// down).
    #[error("a dependency failed")]
    Unavailable,
    /// The database failed (dependency down), or holds what it must not (our bug):
    /// [`StorageError::is_unavailable`] tells them apart.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A dependency answered what it never does for this call (our bug): logged where found.
    #[error("internal error")]
    Internal,
}

impl From<MessagingError> for MessagingServiceError {
    fn from(error: MessagingError) -> Self {
        match error {
            MessagingError::Invalid(reason) => MessagingServiceError::InvalidMls(reason),
            MessagingError::NotAllowed => MessagingServiceError::NotAllowed,
            MessagingError::Conflict => MessagingServiceError::Conflict,
            MessagingError::TooMany => MessagingServiceError::TooManyKeyPackages,
            MessagingError::Unavailable => MessagingServiceError::Unavailable,
            MessagingError::Storage(e) => MessagingServiceError::Storage(e),
        }
    }
}

impl From<AccessError> for MessagingServiceError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Denied(denial) => MessagingServiceError::Denied(denial),
            AccessError::Storage(e) => MessagingServiceError::Storage(e),
            AccessError::AuditUnavailable => MessagingServiceError::AuditUnavailable(AuditUnavailable),
        }
    }
}

impl From<PatientError> for MessagingServiceError {
    fn from(error: PatientError) -> Self {
        match error {
            PatientError::Storage(e) => MessagingServiceError::Storage(e),
            // Whether a patient exists reads no field and opens nothing: neither can happen.
            PatientError::Invalid(_) | PatientError::Crypto(_) => {
                tracing::error!(error = %error, "patient lookup failed");
                MessagingServiceError::Internal
            }
        }
    }
}

/// The messaging domain's operations, over its stores, the gate, the pusher and the clock.
#[derive(Clone)]
pub struct MessagingService {
    devices: Devices,
    conversations: Conversations,
    attachments: Attachments,
    policy: ConversationPolicy,
    /// Whether the patient a care conversation is about exists.
    patients: Patients,
    /// KeyPackage claims per account, on this node.
    claims: Arc<ClaimLimiter>,
    gate: Gate,
    pusher: Pusher,
    clock: Arc<dyn Clock>,
}

impl MessagingService {
    /// The service over `devices`, `conversations` and `attachments` (the node's one each: the
    /// conversations hold the message ingest and the membership cache), admitting members by `policy`,
    /// finding patients in `patients`, checking and recording through `gate`, pushing through
    /// `pusher`, timed by `clock`. It keeps the node's KeyPackage claim limit.
    #[allow(clippy::too_many_arguments)] // each is one of the node's components, built once in `services.rs`
    pub fn new(
        devices: Devices,
        conversations: Conversations,
        attachments: Attachments,
        policy: ConversationPolicy,
        patients: Patients,
        gate: Gate,
        pusher: Pusher,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let claims = Arc::new(ClaimLimiter::default());
        Self { devices, conversations, attachments, policy, patients, claims, gate, pusher, clock }
    }

    fn auditor(&self) -> &Auditor {
        self.gate.auditor()
    }

    /// `id`, if it is an active device of the requester's own account.
    async fn own_device(&self, who: &Requester, id: DeviceId) -> Result<Device, MessagingServiceError> {
        let device = self.devices.get(id).await?;
        device
            .filter(|d| d.user_id == who.principal.user_id && d.removed_at_ms.is_none())
            .ok_or(MessagingServiceError::NotFound)
    }
}
