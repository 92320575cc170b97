//! Uploading and downloading encrypted attachments. Only an account with an active device in the
//! conversation's membership may do either: anyone else hears that there is no such thing (and
//! the attempt is on record as denied). Then the permission module decides as for the
//! conversation's messages, and each upload and download is on record, with the conversation's
//! patient, before it is done (fail closed).

use confidant_actors::audit::{Action, Outcome, ResourceType};
use confidant_actors::ids::{AttachmentId, ConversationId};

use super::{MessagingService, MessagingServiceError};
use crate::access::{Operation, Requester};
use crate::auditor::About;
use crate::messaging::Conversation;

/// A stored upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    /// Its id: the message that carries it names it.
    pub id: AttachmentId,
    /// Its size, in bytes of ciphertext.
    pub size: u64,
    /// SHA-256 of the ciphertext, as the server received it.
    pub sha256: [u8; 32],
}

/// A downloaded attachment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloaded {
    /// SHA-256 of the ciphertext, as the server received it.
    pub sha256: Vec<u8>,
    /// The ciphertext.
    pub ciphertext: Vec<u8>,
}

impl MessagingService {
    /// Stores `ciphertext` as an attachment of `conversation`, uploaded by the requester (who must
    /// have an active device in it). It lives until a message names it (then as long as that
    /// message) or a day.
    pub async fn upload_attachment(
        &self,
        who: &Requester,
        conversation: ConversationId,
        ciphertext: &[u8],
    ) -> Result<Uploaded, MessagingServiceError> {
        let limit = self.attachments.max_ciphertext_bytes();
        if ciphertext.len() > limit {
            return Err(MessagingServiceError::AttachmentTooLarge { limit });
        }
        if ciphertext.len() < confidant_protocol::attachments::CIPHERTEXT_OVERHEAD {
            return Err(MessagingServiceError::AttachmentTooShort);
        }
        let id = AttachmentId::generate();
        let conversation = self.attachment_member(who, conversation, id, Action::Create, Operation::Create).await?;
        let about = About::new(Action::Create, ResourceType::Attachment, Some(*id.as_uuid()))
            .for_patient_if(conversation.kind.patient());
        self.auditor().record(self.gate.event(who, about, Outcome::Success, "attachment_uploaded")).await?;
        let now = self.clock.now_ms();
        let sha256 = self.attachments.store(conversation.id, who.principal.user_id, id, ciphertext, now).await?;
        Ok(Uploaded { id, size: ciphertext.len() as u64, sha256 })
    }

    /// The ciphertext of attachment `id`, for a requester with an active device in its
    /// conversation; `NotFound` for anyone else, and once it is deleted.
    pub async fn download_attachment(
        &self,
        who: &Requester,
        id: AttachmentId,
    ) -> Result<Downloaded, MessagingServiceError> {
        let info = self.attachments.info(id).await?.ok_or(MessagingServiceError::NotFound)?;
        let conversation = self.attachment_member(who, info.conversation_id, id, Action::Read, Operation::Read).await?;
        let about = About::new(Action::Read, ResourceType::Attachment, Some(*id.as_uuid()))
            .for_patient_if(conversation.kind.patient());
        self.auditor().record(self.gate.event(who, about, Outcome::Success, "attachment_read")).await?;
        let ciphertext = self.attachments.ciphertext(id).await?.ok_or(MessagingServiceError::NotFound)?;
        Ok(Downloaded { sha256: info.sha256, ciphertext })
    }

    /// `conversation`, if the requester has an active device in it and the permission module lets
    /// them `operation` its messages. A requester with no device in it is told it does not exist
    /// (their attempt on record as denied, reason `not_a_member`); a refusal of the permission
    /// module is recorded by the gate.
    async fn attachment_member(
        &self,
        who: &Requester,
        conversation: ConversationId,
        attachment: AttachmentId,
        action: Action,
        operation: Operation,
    ) -> Result<Conversation, MessagingServiceError> {
        let conversation = self.conversations.get(conversation).await?.ok_or(MessagingServiceError::NotFound)?;
        let about = About::new(action, ResourceType::Attachment, Some(*attachment.as_uuid()))
            .for_patient_if(conversation.kind.patient());
        if !self.attachments.has_member_device(conversation.id, who.principal.user_id).await? {
            self.auditor().record(self.gate.event(who, about, Outcome::Denied, "not_a_member")).await?;
            return Err(MessagingServiceError::NotFound);
        }
        let kind = conversation.kind;
        self.gate.authorize(who, kind.resource(), operation, kind.target(), about).await?;
        Ok(conversation)
    }
}
