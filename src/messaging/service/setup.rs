//! The operations a device uses besides its socket: register and remove devices, upload and
//! claim KeyPackages, start and list conversations. Each passes the gate (a refusal is
//! recorded) and is on record before it changes anything.

use confidant_actors::audit::{Action, AuditEvent, Outcome, ResourceType};
use confidant_actors::ids::{ConversationId, DeviceId, UserId};

use super::{MessagingService, MessagingServiceError};
use crate::access::{ConversationKind, Operation, Requester, Resource, Target};
use crate::auditor::{About, AuditUnavailable};
use crate::messaging::{ClaimedPackage, Conversation, Device, Membership};

impl MessagingService {
    /// Registers a device of the requester's account with its Ed25519 `signature_key`: its MLS
    /// credential must name `confidant/<user>/<device>` with this key, and nothing else is
    /// accepted for it.
    pub async fn register(&self, who: &Requester, signature_key: &[u8]) -> Result<Device, MessagingServiceError> {
        let about = About::new(Action::Create, ResourceType::Device, None);
        self.devices_allowed(who, Operation::Create, about).await?;
        if signature_key.len() != 32 {
            return Err(MessagingServiceError::SignatureKey);
        }
        self.record(who, about, "device_registered").await?;
        let now = self.clock.now_ms();
        Ok(self.devices.register(who.principal.user_id, signature_key, now).await?)
    }

    /// The requester's active devices.
    pub async fn devices(&self, who: &Requester) -> Result<Vec<Device>, MessagingServiceError> {
        self.devices_allowed(who, Operation::Read, About::new(Action::Read, ResourceType::Device, None)).await?;
        Ok(self.devices.of_user(who.principal.user_id).await?)
    }

    /// Removes one of the requester's devices: it is sent nothing more, cannot attach or be
    /// added, and its KeyPackages are gone. The other members then commit its removal.
    pub async fn remove_device(&self, who: &Requester, id: DeviceId) -> Result<(), MessagingServiceError> {
        let about = About::new(Action::Delete, ResourceType::Device, Some(*id.as_uuid()));
        self.devices_allowed(who, Operation::Delete, about).await?;
        self.own_device(who, id).await?;
        self.record(who, about, "device_removed").await?;
        let now = self.clock.now_ms();
        self.devices.remove(who.principal.user_id, id, now).await?;
        self.conversations.forget_device(id).await?;
        Ok(())
    }

    /// Stores KeyPackages of one of the requester's devices (each must validate and carry that
    /// device's credential): the one-time packages it now has.
    pub async fn upload(
        &self,
        who: &Requester,
        id: DeviceId,
        packages: &[Vec<u8>],
    ) -> Result<u64, MessagingServiceError> {
        let about = About::new(Action::Create, ResourceType::KeyPackage, Some(*id.as_uuid()));
        self.devices_allowed(who, Operation::Create, about).await?;
        let device = self.own_device(who, id).await?;
        self.record(who, about, "key_packages_uploaded").await?;
        let now = self.clock.now_ms();
        Ok(self.devices.upload(&device, packages, now).await?)
    }

    /// Claims one KeyPackage per active device of `user`, for a conversation of `kind` that
    /// both the requester and `user` may be in (RFC 9420 section 16.8), within the requester's
    /// claim budget. One-time packages are consumed by the claim.
    pub async fn claim(
        &self,
        who: &Requester,
        user: UserId,
        kind: ConversationKind,
    ) -> Result<Vec<ClaimedPackage>, MessagingServiceError> {
        let about =
            About::new(Action::Read, ResourceType::KeyPackage, Some(*user.as_uuid())).for_patient_if(kind.patient());
        self.gate.authorize(who, kind.resource(), Operation::Create, kind.target(), about).await?;
        if !self.policy.may_hold(user, kind).await? {
            self.auditor().record(self.gate.event(who, about, Outcome::Denied, "may_not_converse")).await?;
            return Err(MessagingServiceError::NotAllowed);
        }
        let now = self.clock.now_ms();
        let taken = self.claims.take(who.principal.user_id, now);
        taken.map_err(|retry_after_secs| MessagingServiceError::TooManyClaims { retry_after_secs })?;
        self.record(who, about, "key_packages_claimed").await?;
        Ok(self.devices.claim(user).await?)
    }

    /// Starts a conversation of `kind` from the new MLS group of `device`, one of the
    /// requester's (its GroupInfo and ratchet tree; the group holds only that device, the
    /// others are added by commits).
    pub async fn create(
        &self,
        who: &Requester,
        device: DeviceId,
        kind: ConversationKind,
        group_info: &[u8],
        ratchet_tree: &[u8],
    ) -> Result<Conversation, MessagingServiceError> {
        let about = About::new(Action::Create, ResourceType::Conversation, None).for_patient_if(kind.patient());
        self.gate.authorize(who, kind.resource(), Operation::Create, kind.target(), about).await?;
        let device = self.own_device(who, device).await?;
        if let ConversationKind::Care(patient) = kind
            && !self.patients.exists(patient).await?
        {
            return Err(MessagingServiceError::NotFound);
        }
        let code = match kind {
            ConversationKind::Care(_) => "conversation_created",
            ConversationKind::Staff => "staff_conversation_created",
        };
        self.record(who, about, code).await?;
        let now = self.clock.now_ms();
        Ok(self.conversations.create(&device, kind, group_info, ratchet_tree, &self.policy, now).await?)
    }

    /// The conversations one of the requester's devices is a member of. The list names the
    /// patient of each care conversation, so each is a read of that patient's PHI, on record
    /// (durable) before the list is answered.
    pub async fn conversations(
        &self,
        who: &Requester,
        device: DeviceId,
    ) -> Result<Vec<Conversation>, MessagingServiceError> {
        let about = About::new(Action::Read, ResourceType::Conversation, None);
        self.devices_allowed(who, Operation::Read, about).await?;
        self.own_device(who, device).await?;
        let mut list = self.conversations.of_device(device).await?;
        self.conversations.name_departed(&mut list, &self.policy).await?;
        self.conversations.add_receipts(&mut list).await?;
        let reads = self.care_reads(who, list.iter().map(|c| (c.id, c.kind)), "device_conversations");
        if !reads.is_empty() {
            self.gate.record_all(reads).await?;
        }
        Ok(list)
    }

    /// One `read` of each care conversation among `conversations` (with its patient), for
    /// reason `why`; staff conversations carry no PHI.
    pub(super) fn care_reads(
        &self,
        who: &Requester,
        conversations: impl IntoIterator<Item = (ConversationId, ConversationKind)>,
        why: &'static str,
    ) -> Vec<AuditEvent> {
        conversations
            .into_iter()
            .filter_map(|(id, kind)| match kind {
                ConversationKind::Care(patient) => {
                    let about = About::new(Action::Read, ResourceType::Conversation, Some(*id.as_uuid()));
                    Some(self.gate.event(who, about.for_patient(patient), Outcome::Success, why))
                }
                ConversationKind::Staff => None,
            })
            .collect()
    }

    /// The requester may hold messaging devices (the matrix's device row: every role that may
    /// be in some conversation); a refusal is recorded by the gate.
    async fn devices_allowed(
        &self,
        who: &Requester,
        operation: Operation,
        about: About,
    ) -> Result<(), MessagingServiceError> {
        self.gate.authorize(who, Resource::Device, operation, Target::Any, about).await?;
        Ok(())
    }

    /// Records that the requester does `about` (reason `why`), durable before it is done.
    async fn record(&self, who: &Requester, about: About, why: &'static str) -> Result<(), AuditUnavailable> {
        self.auditor().record(self.gate.event(who, about, Outcome::Success, why)).await
    }
}
