//! What the portal and its MLS module (`portal/mls`, a second WebAssembly module the portal loads
//! only after sign-in) hand each other as JSON: the device's reports of what it took in, a new
//! group to register, members to add and a staged commit. The MLS module never touches the
//! network or storage; the portal does both and calls it with the server's frames.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What taking in one server frame came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Taken {
    /// The conversation whose processed prefix the frame moved: its acknowledgement is owed.
    pub conversation: Uuid,
    /// The seq through which everything of it is now processed (what `mls.ack` may carry).
    pub through: Option<u64>,
    /// What to show, if anything.
    pub event: Option<DeviceEvent>,
}

/// Something that happened in a conversation, as the portal shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DeviceEvent {
    /// This device joined the conversation.
    Joined,
    /// A message arrived and decrypted.
    Message {
        /// Its place.
        seq: u64,
        /// The device that sent it.
        sender_device: Uuid,
        /// The account of that device (from its MLS credential, which the server checked).
        sender_user: Option<Uuid>,
        /// Its text (invalid UTF-8 replaced).
        text: String,
        /// The files it carries.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<FileRef>,
    },
    /// Membership changed (a commit was merged).
    Changed {
        /// Its place.
        seq: u64,
        /// The new epoch.
        epoch: u64,
    },
    /// This device was removed from the conversation.
    Removed,
    /// A message could not be decrypted or read; it alone is skipped.
    Failed {
        /// Its place.
        seq: u64,
    },
}

impl std::fmt::Debug for DeviceEvent {
    /// Never shows a message's text.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DeviceEvent::Joined => f.write_str("Joined"),
            DeviceEvent::Message { seq, sender_device, .. } => f
                .debug_struct("Message")
                .field("seq", seq)
                .field("sender_device", sender_device)
                .finish_non_exhaustive(),
            DeviceEvent::Changed { seq, epoch } => {
                f.debug_struct("Changed").field("seq", seq).field("epoch", epoch).finish()
            }
            DeviceEvent::Removed => f.write_str("Removed"),
            DeviceEvent::Failed { seq } => f.debug_struct("Failed").field("seq", seq).finish(),
        }
    }
}

/// A file a message carries, as the portal lists it; `reference` (JSON, with the file's key and
/// digests) goes back to the MLS module to check and open the download.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// The server's id of its ciphertext.
    pub id: Uuid,
    /// The file's name, as the sender had it.
    pub name: String,
    /// Its media type.
    pub media_type: String,
    /// Its size in bytes.
    pub size: u64,
    /// The whole reference, secret key included.
    pub reference: String,
}

impl std::fmt::Debug for FileRef {
    /// Never shows the name or the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileRef").field("id", &self.id).field("size", &self.size).finish_non_exhaustive()
    }
}

/// A group the device just created, to register with `POST /api/v1/conversations`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewGroup {
    /// The conversation's id (the MLS group id).
    pub conversation_id: Uuid,
    /// Base64 of its GroupInfo.
    pub group_info: String,
    /// Base64 of its ratchet tree.
    pub ratchet_tree: String,
}

/// A device to add to a conversation: a KeyPackage claimed from the server for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joiner {
    /// Its account.
    pub user_id: Uuid,
    /// The device.
    pub device_id: Uuid,
    /// Base64 of the claimed KeyPackage.
    pub key_package: String,
}

/// A commit staged by the device, to send as `mls.commit`; merged or cleared by the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Staged {
    /// Base64 of the commit.
    pub commit: String,
    /// Base64 of the Welcome for added devices.
    pub welcome: Option<String>,
}
