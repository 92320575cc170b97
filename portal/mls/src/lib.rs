//! The portal's MLS device: the client SDK's MLS core (`confidant-client` without its native
//! part) behind a small wasm-bindgen facade. It is a second WebAssembly module, fetched only
//! after sign-in (`portal/static/boot.js` `confidantLoadMls`), so the sign-in page's first load
//! stays small; the portal calls it through `portal/src/mls.rs`.
//!
//! It does no I/O: the portal fetches, keeps the state sealed in IndexedDB (`portal/src/vault.rs`)
//! and carries frames over its one socket. Values cross as strings: ids as UUID text, MLS
//! messages as base64, structures as JSON of `confidant_protocol::device`. Errors are thrown as
//! JavaScript errors whose message names what failed, never a message's content.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use confidant_client::{AttachmentRef, ClientError, Device, Event, NewMember, Payload, SealedAttachment};
use confidant_protocol::ServerFrame;
use confidant_protocol::device::{DeviceEvent, FileRef, Joiner, NewGroup, Staged, Taken};
use openmls::prelude::SignatureScheme;
use openmls_basic_credential::SignatureKeyPair;
use uuid::Uuid;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(message: &str);
}

/// Runs when the module is instantiated: a panic says where it happened on the browser's
/// console before the module traps (a trap says only "unreachable"). The place only: a panic's
/// message may quote what it was handling.
#[wasm_bindgen(start)]
pub fn start() {
    std::panic::set_hook(Box::new(|info| {
        let at = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        console_error(&format!("MLS module panicked at {}", at.as_deref().unwrap_or("an unknown place")));
    }));
}

/// Why a call failed, as a JavaScript error (no message content in it).
fn fail(error: impl std::fmt::Display) -> JsError {
    JsError::new(&error.to_string())
}

fn id(text: &str) -> Result<Uuid, JsError> {
    Uuid::parse_str(text).map_err(|_| JsError::new("not a UUID"))
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, JsError> {
    serde_json::to_string(value).map_err(fail)
}

/// A new device's signature key, before the server has registered it.
#[wasm_bindgen]
pub struct DeviceKey {
    pair: SignatureKeyPair,
}

#[wasm_bindgen]
impl DeviceKey {
    /// A fresh Ed25519 key pair (randomness from `crypto.getRandomValues`).
    #[wasm_bindgen(constructor)]
    pub fn new() -> Result<DeviceKey, JsError> {
        Ok(Self { pair: SignatureKeyPair::new(SignatureScheme::ED25519).map_err(|_| JsError::new("signature key"))? })
    }

    /// Base64 of the public key, for `POST /api/v1/devices`.
    pub fn public_key(&self) -> String {
        B64.encode(self.pair.public())
    }

    /// The device the server registered with this key.
    pub fn registered(self, device_id: &str, user_id: &str) -> Result<MlsDevice, JsError> {
        Ok(MlsDevice { device: Device::new(self.pair, id(device_id)?, id(user_id)?).map_err(fail)? })
    }
}

/// A registered device and its MLS state.
#[wasm_bindgen]
pub struct MlsDevice {
    device: Device,
}

#[wasm_bindgen]
impl MlsDevice {
    /// The device whose state `export_state` gave (opened from the vault).
    pub fn import_state(state: &[u8]) -> Result<MlsDevice, JsError> {
        Ok(Self { device: Device::import_state(state).map_err(fail)? })
    }

    /// The whole state, secret keys included: the portal seals it before it is stored.
    pub fn export_state(&self) -> Result<Vec<u8>, JsError> {
        Ok(self.device.export_state().map_err(fail)?.to_vec())
    }

    /// The device's id.
    pub fn device_id(&self) -> String {
        self.device.device_id.to_string()
    }

    /// Its account's id.
    pub fn user_id(&self) -> String {
        self.device.user_id.to_string()
    }

    /// JSON array of base64 KeyPackages: `count` one-time ones, and a last-resort one when asked.
    pub fn key_packages(&self, count: u32, last_resort: bool) -> Result<String, JsError> {
        let packages = self.device.key_packages(count as usize, last_resort).map_err(fail)?;
        json(&packages.iter().map(|p| B64.encode(p)).collect::<Vec<_>>())
    }

    /// Creates a group holding only this device: JSON `NewGroup` to register.
    pub fn start_conversation(&mut self) -> Result<String, JsError> {
        let new = self.device.start_conversation().map_err(fail)?;
        json(&NewGroup {
            conversation_id: new.id,
            group_info: B64.encode(&new.group_info),
            ratchet_tree: B64.encode(&new.ratchet_tree),
        })
    }

    /// The server registered the group: its messages are counted from seq 0.
    pub fn conversation_registered(&mut self, conversation: &str) -> Result<(), JsError> {
        self.device.conversation_registered(id(conversation)?);
        Ok(())
    }

    /// Stages a commit adding the devices of `joiners` (JSON array of `Joiner`) that are not
    /// members yet: JSON `Staged`, or nothing when every one already is.
    pub fn stage_add(&mut self, conversation: &str, joiners: &str) -> Result<Option<String>, JsError> {
        let joiners: Vec<Joiner> = serde_json::from_str(joiners).map_err(fail)?;
        let members: Vec<NewMember> = joiners
            .into_iter()
            .map(|j| NewMember { user: j.user_id, device: j.device_id, key_package: j.key_package })
            .collect();
        let staged = self.device.stage_add(id(conversation)?, &members).map_err(fail)?;
        staged.map(|s| json(&Staged { commit: s.commit, welcome: s.welcome })).transpose()
    }

    /// Stages a commit removing `device` of `user`: JSON `Staged`.
    pub fn stage_removal(&mut self, conversation: &str, user: &str, device: &str) -> Result<String, JsError> {
        let staged = self.device.stage_removal(id(conversation)?, id(user)?, id(device)?).map_err(fail)?;
        json(&Staged { commit: staged.commit, welcome: staged.welcome })
    }

    /// Settles the staged commit with the server's answer (a JSON frame, or empty when the
    /// request failed): merged when accepted (the new epoch), cleared otherwise (an error,
    /// `stale` when another commit won the epoch).
    pub fn settle_commit(&mut self, conversation: &str, answer: &str) -> Result<f64, JsError> {
        let answer = frame(answer);
        match self.device.settle_commit(id(conversation)?, answer) {
            Ok(epoch) => Ok(epoch as f64),
            Err(ClientError::Stale(_)) => Err(JsError::new("stale")),
            Err(error) => Err(fail(error)),
        }
    }

    /// Base64 of `text` encrypted for `conversation`, for `mls.send`.
    pub fn encrypt(&mut self, conversation: &str, text: &str) -> Result<String, JsError> {
        Ok(B64.encode(self.device.encrypt(id(conversation)?, text.as_bytes()).map_err(fail)?))
    }

    /// Base64 of a message carrying `text` and the files of `references` (a JSON array of the
    /// references `SealedFile::reference` gave), encrypted for `conversation`.
    pub fn encrypt_message(&mut self, conversation: &str, text: &str, references: &str) -> Result<String, JsError> {
        let texts: Vec<String> = serde_json::from_str(references).map_err(fail)?;
        let attachments = texts
            .iter()
            .map(|t| serde_json::from_str::<AttachmentRef>(t).map_err(fail))
            .collect::<Result<Vec<_>, _>>()?;
        let payload = Payload { text: text.as_bytes().to_vec(), attachments };
        Ok(B64.encode(self.device.encrypt(id(conversation)?, &payload.encode()).map_err(fail)?))
    }

    /// Settles a sent message with the server's answer (a JSON frame): its seq, or an error,
    /// `stale` when the conversation moved to a later epoch first (process, then send again).
    pub fn settle_message(&mut self, conversation: &str, answer: &str) -> Result<f64, JsError> {
        let answer = frame(answer).map_err(fail)?;
        match self.device.settle_message(id(conversation)?, answer) {
            Ok(seq) => Ok(seq as f64),
            Err(ClientError::Stale(_)) => Err(JsError::new("stale")),
            Err(error) => Err(fail(error)),
        }
    }

    /// Takes in a frame the server pushed (JSON): JSON `Taken`, or nothing for frames about no
    /// conversation of this device. A message that cannot be processed is reported as
    /// `failed` for that seq alone.
    pub fn receive(&mut self, frame_json: &str) -> Result<Option<String>, JsError> {
        let frame: ServerFrame = serde_json::from_str(frame_json).map_err(|_| JsError::new("not a frame"))?;
        let seq = match &frame {
            ServerFrame::MlsMessage { seq, .. } | ServerFrame::MlsWelcome { seq, .. } => Some(*seq),
            _ => None,
        };
        let received = match self.device.receive(&frame) {
            Ok(Some(received)) => received,
            Ok(None) => return Ok(None),
            Err(error) => match (&frame, seq) {
                // A message this device cannot even decode: that one is unreadable here.
                (ServerFrame::MlsMessage { conversation_id, .. }, Some(seq)) => {
                    return json(&Taken {
                        conversation: *conversation_id,
                        through: self.device.cursor(*conversation_id),
                        event: Some(DeviceEvent::Failed { seq }),
                    })
                    .map(Some);
                }
                _ => return Err(fail(error)),
            },
        };
        let conversation = received.conversation;
        let event = received.event.map(|event| match event {
            Event::Joined { .. } => DeviceEvent::Joined,
            Event::Message { seq, sender_device, text, attachments, .. } => DeviceEvent::Message {
                seq,
                sender_device,
                sender_user: self.user_of(conversation, sender_device),
                text: String::from_utf8_lossy(&text).into_owned(),
                attachments: attachments.iter().filter_map(file_ref).collect(),
            },
            Event::Changed { epoch, .. } => DeviceEvent::Changed { seq: seq.unwrap_or_default(), epoch },
            Event::Removed { .. } => DeviceEvent::Removed,
            Event::Failed { seq, .. } => DeviceEvent::Failed { seq },
        });
        json(&Taken { conversation, through: self.device.cursor(conversation), event }).map(Some)
    }

    /// The seq through which everything of `conversation` was processed.
    pub fn cursor(&self, conversation: &str) -> Result<Option<f64>, JsError> {
        Ok(self.device.cursor(id(conversation)?).map(|seq| seq as f64))
    }

    /// JSON array of the conversations this device is in.
    pub fn conversations(&self) -> Result<String, JsError> {
        json(&self.device.conversations())
    }

    /// Base64 of the group's ratchet tree (public), for a joiner's `mls.welcome` where no server
    /// stands between two devices: the messaging benchmark pairs two in one page.
    pub fn ratchet_tree(&self, conversation: &str) -> Result<String, JsError> {
        Ok(B64.encode(self.device.ratchet_tree(id(conversation)?).map_err(fail)?))
    }

    /// JSON array of `[account, device]` pairs: who can read what is sent, as the group says.
    pub fn members(&self, conversation: &str) -> Result<String, JsError> {
        json(&self.device.members(id(conversation)?).map_err(fail)?)
    }
}

/// A file encrypted for upload under a fresh key: its ciphertext, and the reference a message
/// carries once the server has named the upload.
#[wasm_bindgen]
pub struct SealedFile {
    sealed: SealedAttachment,
}

#[wasm_bindgen]
impl SealedFile {
    /// Encrypts `file` (AES-256-GCM, a fresh key and nonce from `crypto.getRandomValues`).
    pub fn seal(file: &[u8]) -> Result<SealedFile, JsError> {
        Ok(Self { sealed: confidant_client::seal_attachment(file).map_err(fail)? })
    }

    /// What to upload.
    pub fn ciphertext(&self) -> Vec<u8> {
        self.sealed.ciphertext.clone()
    }

    /// The reference (JSON, key included) of the upload `attachment_id`.
    pub fn reference(&self, attachment_id: &str, name: &str, media_type: &str) -> Result<String, JsError> {
        json(&self.sealed.reference(id(attachment_id)?, name, media_type))
    }
}

/// Checks a downloaded ciphertext against the reference (JSON) its message carried and opens
/// it: the file, or an error naming the check that failed.
#[wasm_bindgen]
pub fn open_file(reference: &str, ciphertext: &[u8]) -> Result<Vec<u8>, JsError> {
    let reference: AttachmentRef = serde_json::from_str(reference).map_err(fail)?;
    Ok(confidant_client::open_attachment(&reference, ciphertext).map_err(fail)?.to_vec())
}

fn file_ref(reference: &AttachmentRef) -> Option<FileRef> {
    Some(FileRef {
        id: reference.id,
        name: reference.name.clone(),
        media_type: reference.media_type.clone(),
        size: reference.size,
        reference: serde_json::to_string(reference).ok()?,
    })
}

impl MlsDevice {
    fn user_of(&self, conversation: Uuid, device: Uuid) -> Option<Uuid> {
        let members = self.device.members(conversation).ok()?;
        members.into_iter().find(|(_, d)| *d == device).map(|(user, _)| user)
    }
}

/// A server frame from its JSON, or the request's failure when there is none.
fn frame(answer: &str) -> Result<ServerFrame, ClientError> {
    serde_json::from_str(answer).map_err(|_| ClientError::Protocol("no answer"))
}
