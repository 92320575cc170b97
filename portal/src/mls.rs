//! The portal's side of its MLS module (`portal/mls`): loading it after sign-in (boot.js's
//! `confidantLoadMls`, a dynamic import of the hashed module) and calling it. The module's
//! exports are reached by name through the module object, so the portal's own WebAssembly does
//! not contain MLS; values cross as strings and bytes (`confidant_protocol::device` JSON).

use js_sys::{Array, Function, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// Why a call into the MLS module failed: its error's message (no message content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MlsError(pub String);

impl MlsError {
    /// Another commit won the epoch, or the conversation moved on: process, then try again.
    pub fn is_stale(&self) -> bool {
        self.0 == "stale"
    }
}

type Result<T> = std::result::Result<T, MlsError>;

fn error(value: JsValue) -> MlsError {
    let message = Reflect::get(&value, &"message".into()).ok().and_then(|m| m.as_string());
    MlsError(message.unwrap_or_else(|| "the MLS module failed".into()))
}

/// The loaded module.
#[derive(Clone)]
pub struct Module(JsValue);

/// Fetches and starts the module (once per page; later calls get the same one).
pub async fn load() -> Result<Module> {
    let global = js_sys::global();
    let loader = Reflect::get(&global, &"confidantLoadMls".into()).map_err(error)?;
    let loader: Function = loader.dyn_into().map_err(|_| MlsError("the MLS module's loader is missing".into()))?;
    let promise: js_sys::Promise =
        loader.call0(&JsValue::NULL).map_err(error)?.dyn_into().map_err(|_| MlsError("not a promise".into()))?;
    Ok(Module(JsFuture::from(promise).await.map_err(error)?))
}

fn call(target: &JsValue, method: &str, args: &[JsValue]) -> Result<JsValue> {
    let function: Function = Reflect::get(target, &method.into())
        .map_err(error)?
        .dyn_into()
        .map_err(|_| MlsError(format!("the MLS module has no {method}")))?;
    let args: Array = args.iter().collect();
    function.apply(target, &args).map_err(error)
}

fn string(value: JsValue) -> Result<String> {
    value.as_string().ok_or_else(|| MlsError("expected text".into()))
}

fn bytes(value: JsValue) -> Result<Vec<u8>> {
    value.dyn_into::<Uint8Array>().map(|b| b.to_vec()).map_err(|_| MlsError("expected bytes".into()))
}

fn optional_string(value: JsValue) -> Result<Option<String>> {
    if value.is_undefined() || value.is_null() { Ok(None) } else { string(value).map(Some) }
}

/// A new device's key, before the server registers it.
pub struct DeviceKey(JsValue);

impl Module {
    /// A fresh signature key pair.
    pub fn new_key(&self) -> Result<DeviceKey> {
        let class: Function = Reflect::get(&self.0, &"DeviceKey".into())
            .map_err(error)?
            .dyn_into()
            .map_err(|_| MlsError("the MLS module has no DeviceKey".into()))?;
        Ok(DeviceKey(Reflect::construct(&class, &Array::new()).map_err(error)?))
    }

    /// `file` encrypted under a fresh key.
    pub fn seal_file(&self, file: &[u8]) -> Result<SealedFile> {
        let class = Reflect::get(&self.0, &"SealedFile".into()).map_err(error)?;
        Ok(SealedFile(call(&class, "seal", &[Uint8Array::from(file).into()])?))
    }

    /// The file a downloaded `ciphertext` holds, checked against its message's `reference`.
    pub fn open_file(&self, reference: &str, ciphertext: &[u8]) -> Result<Vec<u8>> {
        bytes(call(&self.0, "open_file", &[reference.into(), Uint8Array::from(ciphertext).into()])?)
    }

    /// The device whose state the vault kept.
    pub fn import(&self, state: &[u8]) -> Result<MlsDevice> {
        let class = Reflect::get(&self.0, &"MlsDevice".into()).map_err(error)?;
        Ok(MlsDevice(call(&class, "import_state", &[Uint8Array::from(state).into()])?))
    }
}

/// A file sealed for upload (`portal/mls` `SealedFile`).
pub struct SealedFile(JsValue);

impl SealedFile {
    /// What to upload.
    pub fn ciphertext(&self) -> Result<Vec<u8>> {
        bytes(call(&self.0, "ciphertext", &[])?)
    }

    /// The reference (JSON) of the upload the server named `attachment_id`.
    pub fn reference(&self, attachment_id: &str, name: &str, media_type: &str) -> Result<String> {
        string(call(&self.0, "reference", &[attachment_id.into(), name.into(), media_type.into()])?)
    }
}

impl DeviceKey {
    /// Base64 of the public key.
    pub fn public_key(&self) -> Result<String> {
        string(call(&self.0, "public_key", &[])?)
    }

    /// The device the server registered with this key.
    pub fn registered(self, device_id: &str, user_id: &str) -> Result<MlsDevice> {
        Ok(MlsDevice(call(&self.0, "registered", &[device_id.into(), user_id.into()])?))
    }
}

/// A registered device: the calls of `portal/mls/src/lib.rs` `MlsDevice`, typed.
#[derive(Clone)]
pub struct MlsDevice(JsValue);

impl MlsDevice {
    pub fn export_state(&self) -> Result<Vec<u8>> {
        bytes(call(&self.0, "export_state", &[])?)
    }

    pub fn device_id(&self) -> Result<String> {
        string(call(&self.0, "device_id", &[])?)
    }

    /// Base64 KeyPackages.
    pub fn key_packages(&self, count: u32, last_resort: bool) -> Result<Vec<String>> {
        let text = string(call(&self.0, "key_packages", &[count.into(), last_resort.into()])?)?;
        serde_json::from_str(&text).map_err(|_| MlsError("key packages".into()))
    }

    /// JSON `NewGroup`.
    pub fn start_conversation(&self) -> Result<String> {
        string(call(&self.0, "start_conversation", &[])?)
    }

    pub fn conversation_registered(&self, conversation: &str) -> Result<()> {
        call(&self.0, "conversation_registered", &[conversation.into()]).map(|_| ())
    }

    /// JSON `Staged`, or nothing when every device is already a member.
    pub fn stage_add(&self, conversation: &str, joiners_json: &str) -> Result<Option<String>> {
        optional_string(call(&self.0, "stage_add", &[conversation.into(), joiners_json.into()])?)
    }

    /// JSON `Staged`.
    pub fn stage_removal(&self, conversation: &str, user: &str, device: &str) -> Result<String> {
        string(call(&self.0, "stage_removal", &[conversation.into(), user.into(), device.into()])?)
    }

    /// The new epoch.
    pub fn settle_commit(&self, conversation: &str, answer_json: &str) -> Result<u64> {
        Ok(call(&self.0, "settle_commit", &[conversation.into(), answer_json.into()])?.as_f64().unwrap_or(0.0) as u64)
    }

    /// Base64 ciphertext.
    pub fn encrypt(&self, conversation: &str, text: &str) -> Result<String> {
        string(call(&self.0, "encrypt", &[conversation.into(), text.into()])?)
    }

    /// Base64 ciphertext of `text` with the files of `references_json` (a JSON array of
    /// references).
    pub fn encrypt_message(&self, conversation: &str, text: &str, references_json: &str) -> Result<String> {
        string(call(&self.0, "encrypt_message", &[conversation.into(), text.into(), references_json.into()])?)
    }

    /// The message's seq.
    pub fn settle_message(&self, conversation: &str, answer_json: &str) -> Result<u64> {
        Ok(call(&self.0, "settle_message", &[conversation.into(), answer_json.into()])?.as_f64().unwrap_or(0.0) as u64)
    }

    /// JSON `Taken`, or nothing.
    pub fn receive(&self, frame_json: &str) -> Result<Option<String>> {
        optional_string(call(&self.0, "receive", &[frame_json.into()])?)
    }

    /// JSON array of conversation ids.
    pub fn conversations(&self) -> Result<Vec<uuid::Uuid>> {
        let text = string(call(&self.0, "conversations", &[])?)?;
        serde_json::from_str(&text).map_err(|_| MlsError("conversations".into()))
    }

    /// `(account, device)` pairs.
    pub fn members(&self, conversation: &str) -> Result<Vec<(uuid::Uuid, uuid::Uuid)>> {
        let text = string(call(&self.0, "members", &[conversation.into()])?)?;
        serde_json::from_str(&text).map_err(|_| MlsError("members".into()))
    }

    pub fn cursor(&self, conversation: &str) -> Result<Option<u64>> {
        let value = call(&self.0, "cursor", &[conversation.into()])?;
        Ok(value.as_f64().map(|v| v as u64))
    }
}
