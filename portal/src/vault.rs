//! The messaging device's vault in this browser: IndexedDB, every value sealed with AES-GCM
//! under a WebCrypto key generated non-extractable (`extractable: false`), so no script, this
//! one included, can ever read the key's bytes; the key object itself is kept in IndexedDB (a
//! `CryptoKey` is stored as such, never as bytes). Nothing is in localStorage or
//! sessionStorage.
//!
//! Per account (the key is the account's id): its key, its device's state (the MLS state with
//! the signature key and group secrets, and the portal's own bookkeeping: read markers) and
//! the messages it received or sent, one sealed record each under `[account, conversation,
//! seq]`, so a conversation's newest messages are found by key alone. MLS gives each message
//! to a device once (a sender cannot even decrypt its own), so this is the conversation's only
//! copy in this browser.
//!
//! A device kept with "don't keep this device" is destroyed here at sign-out (`destroy`).

use js_sys::{Array, Object, Promise, Reflect, Uint8Array};
use uuid::Uuid;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, IdbDatabase, IdbKeyRange, IdbObjectStore, IdbRequest, IdbTransaction, IdbTransactionMode};

const DATABASE: &str = "confidant-device";
const VERSION: u32 = 1;
const KEYS: &str = "keys";
const STATE: &str = "state";
const MESSAGES: &str = "messages";

/// Why the vault could not do something (the browser refused IndexedDB or WebCrypto, or a
/// record did not open under the key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VaultError(pub &'static str);

type Result<T> = std::result::Result<T, VaultError>;

/// An account's vault in this browser.
#[derive(Clone)]
pub struct Vault {
    db: IdbDatabase,
    key: CryptoKey,
    account: String,
}

/// A device state as the vault returns it.
pub struct Stored {
    /// The state, opened.
    pub state: Vec<u8>,
    /// Whether the person chose to keep this device (false: destroy it at sign-out).
    pub keep: bool,
}

impl Vault {
    /// Opens `account`'s vault, creating its key on first use.
    pub async fn open(account: Uuid) -> Result<Self> {
        let db = open_database().await?;
        let account = account.to_string();
        let key = match get(&db, KEYS, &JsValue::from_str(&account)).await? {
            found if found.is_instance_of::<CryptoKey>() => found.unchecked_into::<CryptoKey>(),
            _ => {
                let key = new_key().await?;
                let tx = transaction(&db, &[KEYS])?;
                request(store(&tx, KEYS)?.put_with_key(&key, &JsValue::from_str(&account)))?;
                committed(&tx).await?;
                key
            }
        };
        Ok(Self { db, key, account })
    }

    /// The device state kept for this account, if any.
    pub async fn load(&self) -> Result<Option<Stored>> {
        let record = get(&self.db, STATE, &JsValue::from_str(&self.account)).await?;
        if record.is_undefined() || record.is_null() {
            return Ok(None);
        }
        let keep = Reflect::get(&record, &"keep".into()).ok().and_then(|k| k.as_bool()).unwrap_or(true);
        Ok(Some(Stored { state: self.open_sealed(&record).await?, keep }))
    }

    /// Keeps `state` and the `messages` (conversation, seq, plaintext) in one transaction: all
    /// or none.
    pub async fn save(&self, state: &[u8], keep: bool, messages: &[(Uuid, u64, Vec<u8>)]) -> Result<()> {
        let sealed_state = self.seal(state).await?;
        set(&sealed_state, "keep", &JsValue::from_bool(keep))?;
        let mut sealed = Vec::with_capacity(messages.len());
        for (conversation, seq, plain) in messages {
            sealed.push((self.message_key(*conversation, *seq), self.seal(plain).await?));
        }
        let tx = transaction(&self.db, &[STATE, MESSAGES])?;
        request(store(&tx, STATE)?.put_with_key(&sealed_state, &JsValue::from_str(&self.account)))?;
        let messages_store = store(&tx, MESSAGES)?;
        for (key, value) in &sealed {
            request(messages_store.put_with_key(value, key))?;
        }
        committed(&tx).await
    }

    /// The newest `limit` messages of `conversation` (and how many it has), oldest first.
    pub async fn newest(&self, conversation: Uuid, limit: u32) -> Result<(Vec<Vec<u8>>, u32)> {
        let range = self.conversation_range(conversation)?;
        let keys: Array = {
            let tx = self.db.transaction_with_str(MESSAGES).map_err(|_| VaultError("transaction"))?;
            done(&request(store(&tx, MESSAGES)?.get_all_keys_with_key(&range))?).await?.unchecked_into()
        };
        let total = keys.length();
        if total == 0 {
            return Ok((Vec::new(), 0));
        }
        let first = keys.get(total.saturating_sub(limit));
        let last = keys.get(total - 1);
        let window = IdbKeyRange::bound(&first, &last).map_err(|_| VaultError("range"))?;
        let values: Array = {
            let tx = self.db.transaction_with_str(MESSAGES).map_err(|_| VaultError("transaction"))?;
            done(&request(store(&tx, MESSAGES)?.get_all_with_key(&window))?).await?.unchecked_into()
        };
        let mut opened = Vec::with_capacity(values.length() as usize);
        for value in values.iter() {
            opened.push(self.open_sealed(&value).await?);
        }
        Ok((opened, total))
    }

    /// Destroys this account's device in this browser: its key, its state and every message.
    /// Without the key nothing sealed could be opened again, even from a copy of the disk.
    pub async fn destroy(&self) -> Result<()> {
        let tx = transaction(&self.db, &[KEYS, STATE, MESSAGES])?;
        let account = JsValue::from_str(&self.account);
        request(store(&tx, KEYS)?.delete(&account))?;
        request(store(&tx, STATE)?.delete(&account))?;
        let everything = IdbKeyRange::bound(
            &Array::of1(&account).into(),
            &Array::of2(&account, &JsValue::from_str("\u{10FFFF}")).into(),
        )
        .map_err(|_| VaultError("range"))?;
        request(store(&tx, MESSAGES)?.delete(&everything))?;
        committed(&tx).await
    }

    fn message_key(&self, conversation: Uuid, seq: u64) -> JsValue {
        Array::of3(
            &JsValue::from_str(&self.account),
            &JsValue::from_str(&conversation.to_string()),
            &JsValue::from_f64(seq as f64),
        )
        .into()
    }

    fn conversation_range(&self, conversation: Uuid) -> Result<IdbKeyRange> {
        let account = JsValue::from_str(&self.account);
        let conversation = JsValue::from_str(&conversation.to_string());
        IdbKeyRange::bound(
            &Array::of3(&account, &conversation, &JsValue::from_f64(0.0)).into(),
            &Array::of3(&account, &conversation, &JsValue::from_f64(f64::MAX)).into(),
        )
        .map_err(|_| VaultError("range"))
    }

    /// `{iv, data}`: AES-GCM with a fresh 96-bit nonce.
    async fn seal(&self, plain: &[u8]) -> Result<Object> {
        let crypto = web_sys::window().and_then(|w| w.crypto().ok()).ok_or(VaultError("no WebCrypto"))?;
        let mut nonce = [0u8; 12];
        crypto.get_random_values_with_u8_array(&mut nonce).map_err(|_| VaultError("random"))?;
        let iv = Uint8Array::from(&nonce[..]);
        let params = web_sys::AesGcmParams::new("AES-GCM", &iv);
        let promise = crypto
            .subtle()
            .encrypt_with_object_and_u8_array(&params, &self.key, plain)
            .map_err(|_| VaultError("seal"))?;
        let data = JsFuture::from(promise).await.map_err(|_| VaultError("seal"))?;
        let record = Object::new();
        set(&record, "iv", &iv)?;
        set(&record, "data", &Uint8Array::new(&data))?;
        Ok(record)
    }

    async fn open_sealed(&self, record: &JsValue) -> Result<Vec<u8>> {
        let crypto = web_sys::window().and_then(|w| w.crypto().ok()).ok_or(VaultError("no WebCrypto"))?;
        let field = |name: &str| -> Result<Uint8Array> {
            Reflect::get(record, &name.into())
                .ok()
                .and_then(|v| v.dyn_into::<Uint8Array>().ok())
                .ok_or(VaultError("not a sealed record"))
        };
        let (iv, data) = (field("iv")?, field("data")?);
        let params = web_sys::AesGcmParams::new("AES-GCM", &iv);
        let promise = crypto
            .subtle()
            .decrypt_with_object_and_u8_array(&params, &self.key, &data.to_vec())
            .map_err(|_| VaultError("open"))?;
        let plain = JsFuture::from(promise).await.map_err(|_| VaultError("a record did not open under the key"))?;
        Ok(Uint8Array::new(&plain).to_vec())
    }
}

fn set(object: &Object, name: &str, value: &JsValue) -> Result<()> {
    Reflect::set(object, &name.into(), value).map(|_| ()).map_err(|_| VaultError("record"))
}

/// A new AES-256-GCM key that can seal and open but never be exported.
async fn new_key() -> Result<CryptoKey> {
    let crypto = web_sys::window().and_then(|w| w.crypto().ok()).ok_or(VaultError("no WebCrypto"))?;
    let params = web_sys::AesKeyGenParams::new("AES-GCM", 256);
    let usages = Array::of2(&"encrypt".into(), &"decrypt".into());
    let promise = crypto.subtle().generate_key_with_object(&params, false, &usages).map_err(|_| VaultError("key"))?;
    Ok(JsFuture::from(promise).await.map_err(|_| VaultError("key"))?.unchecked_into())
}

async fn open_database() -> Result<IdbDatabase> {
    let factory = web_sys::window()
        .and_then(|w| w.indexed_db().ok().flatten())
        .ok_or(VaultError("IndexedDB is not available (a private window may refuse it)"))?;
    let opening = factory.open_with_u32(DATABASE, VERSION).map_err(|_| VaultError("open"))?;
    let upgrading = opening.clone();
    let on_upgrade = Closure::once_into_js(move || {
        if let Ok(db) = upgrading.result().and_then(|d| d.dyn_into::<IdbDatabase>()) {
            for name in [KEYS, STATE, MESSAGES] {
                let _ = db.create_object_store(name);
            }
        }
    });
    opening.set_onupgradeneeded(Some(on_upgrade.unchecked_ref()));
    Ok(done(&opening).await?.unchecked_into())
}

async fn get(db: &IdbDatabase, store_name: &str, key: &JsValue) -> Result<JsValue> {
    let tx = db.transaction_with_str(store_name).map_err(|_| VaultError("transaction"))?;
    done(&request(store(&tx, store_name)?.get(key))?).await
}

fn transaction(db: &IdbDatabase, stores: &[&str]) -> Result<IdbTransaction> {
    let names: Array = stores.iter().map(|s| JsValue::from_str(s)).collect();
    db.transaction_with_str_sequence_and_mode(&names, IdbTransactionMode::Readwrite)
        .map_err(|_| VaultError("transaction"))
}

fn store(tx: &IdbTransaction, name: &str) -> Result<IdbObjectStore> {
    tx.object_store(name).map_err(|_| VaultError("store"))
}

fn request(made: std::result::Result<IdbRequest, JsValue>) -> Result<IdbRequest> {
    made.map_err(|_| VaultError("request"))
}

/// The request's result once it succeeds.
async fn done(request: &IdbRequest) -> Result<JsValue> {
    let req = request.clone();
    let promise = Promise::new(&mut |resolve, reject| {
        let ok = req.clone();
        let on_success = Closure::once_into_js(move || {
            let _ = resolve.call1(&JsValue::NULL, &ok.result().unwrap_or(JsValue::UNDEFINED));
        });
        let on_error = Closure::once_into_js(move || {
            let _ = reject.call0(&JsValue::NULL);
        });
        req.set_onsuccess(Some(on_success.unchecked_ref()));
        req.set_onerror(Some(on_error.unchecked_ref()));
    });
    JsFuture::from(promise).await.map_err(|_| VaultError("IndexedDB refused a request"))
}

/// Once the transaction is committed (durable as IndexedDB makes it).
async fn committed(tx: &IdbTransaction) -> Result<()> {
    let t = tx.clone();
    let promise = Promise::new(&mut |resolve, reject| {
        let on_complete = Closure::once_into_js(move || {
            let _ = resolve.call0(&JsValue::NULL);
        });
        let abort = reject.clone();
        let on_abort = Closure::once_into_js(move || {
            let _ = abort.call0(&JsValue::NULL);
        });
        let on_error = Closure::once_into_js(move || {
            let _ = reject.call0(&JsValue::NULL);
        });
        t.set_oncomplete(Some(on_complete.unchecked_ref()));
        t.set_onabort(Some(on_abort.unchecked_ref()));
        t.set_onerror(Some(on_error.unchecked_ref()));
    });
    JsFuture::from(promise).await.map(|_| ()).map_err(|_| VaultError("IndexedDB did not commit"))
}
