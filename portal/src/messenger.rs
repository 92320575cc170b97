//! This browser as an MLS device of the signed-in person: end-to-end encrypted conversations.
//!
//! After sign-in the MLS module is fetched (`mls.rs`) and the device is opened from the vault
//! (`vault.rs`) or, on first use in this browser, registered: a fresh signature key, `POST
//! /api/v1/devices`, a batch of KeyPackages. Once the socket is welcomed the device attaches
//! (`mls.attach`); the server then sends its Welcomes and everything it missed, then live
//! messages. Frames are taken in one at a time, in arrival order, by one task: each received
//! message is kept sealed in the vault together with the device's new state, in one
//! transaction, and only then acknowledged (`mls.ack`), so what the server stops keeping is
//! never lost here. A message that cannot be decrypted is shown as such, alone.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};

use confidant_protocol::device::{DeviceEvent, FileRef, Joiner, NewGroup, Staged, Taken};
use confidant_protocol::frames::{ClientFrame, ServerFrame};
use leptos::prelude::*;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::{self, Failure};
use crate::live;
use crate::mls::{self, MlsDevice, Module};
use crate::receipts::{self, ReceiptRow};
use crate::vault::Vault;

/// How many KeyPackages a device uploads at once.
const KEY_PACKAGE_BATCH: u32 = 20;
/// How many messages a conversation shows when opened (older ones on request).
pub const PAGE: u32 = 50;

/// Where this browser's device stands.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceStatus {
    /// Not started (signed out) or loading.
    Starting,
    /// Ready: conversations can be read and written.
    Ready,
    /// This browser's device was revoked (from another device's list): its state is gone here.
    Revoked,
    /// Messaging could not start here (what failed, without content).
    Failed(String),
}

/// A conversation as the list shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct ConversationItem {
    pub id: Uuid,
    /// The patient it is about; none for a staff conversation.
    pub patient_id: Option<Uuid>,
    /// Messages not yet seen.
    pub unread: u32,
    /// Newest message's seq.
    pub last_seq: u64,
}

/// A message as the vault keeps it and the screen shows it. `Debug` never shows the text.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Kept {
    pub seq: u64,
    /// Sent from this account (this device or another of the person's).
    pub mine: bool,
    pub sender_user: Option<Uuid>,
    pub sender_device: Uuid,
    /// None: could not be decrypted here.
    pub text: Option<String>,
    /// When this browser received or sent it (ms).
    pub at_ms: f64,
    /// A device joined or left (a commit), shown as a line of its own.
    #[serde(default)]
    pub membership: bool,
    /// The files it carries (their keys kept sealed with the message, to open them again).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<FileRef>,
}

/// A file to send: as the person chose it.
pub struct Outgoing {
    pub name: String,
    pub media_type: String,
    pub bytes: Vec<u8>,
}

impl Kept {
    /// A line with no sender or text of its own: a membership change (`membership`), or a
    /// message this device could not decrypt.
    fn without_text(seq: u64, at_ms: f64, membership: bool) -> Self {
        Self {
            seq,
            mine: false,
            sender_user: None,
            sender_device: Uuid::nil(),
            text: None,
            at_ms,
            membership,
            attachments: Vec::new(),
        }
    }
}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kept").field("seq", &self.seq).field("mine", &self.mine).finish_non_exhaustive()
    }
}

/// What the screens read.
#[derive(Clone, Copy)]
pub struct Messenger {
    pub status: RwSignal<DeviceStatus>,
    pub device_id: RwSignal<Option<Uuid>>,
    pub conversations: RwSignal<BTreeMap<Uuid, ConversationItem>>,
    /// The open conversation and its newest messages (oldest first).
    pub open: RwSignal<Option<Uuid>>,
    pub messages: RwSignal<Vec<Kept>>,
    /// How many messages the open conversation has in this browser.
    pub total: RwSignal<u32>,
    /// Members of the open conversation as its group says: (account, device).
    pub members: RwSignal<Vec<(Uuid, Uuid)>>,
    /// Bumped whenever something was taken in (tests and benchmarks wait on it).
    pub version: RwSignal<u64>,
}

/// The portal's own bookkeeping, sealed with the MLS state.
#[derive(Default, Serialize, Deserialize)]
struct Record {
    /// The MLS module's state (base64 inside the JSON would double it; bytes as an array).
    mls: Vec<u8>,
    /// Per conversation, the seq through which the person has seen it.
    #[serde(default)]
    seen: BTreeMap<Uuid, u64>,
    /// Per conversation, messages not yet seen.
    #[serde(default)]
    unread: BTreeMap<Uuid, u32>,
}

struct Tab {
    module: Module,
    device: MlsDevice,
    vault: Vault,
    account: Uuid,
    keep: bool,
    seen: BTreeMap<Uuid, u64>,
    unread: BTreeMap<Uuid, u32>,
}

thread_local! {
    static MESSENGER: Messenger = Messenger {
        status: RwSignal::new(DeviceStatus::Starting),
        device_id: RwSignal::new(None),
        conversations: RwSignal::new(BTreeMap::new()),
        open: RwSignal::new(None),
        messages: RwSignal::new(Vec::new()),
        total: RwSignal::new(0),
        members: RwSignal::new(Vec::new()),
        version: RwSignal::new(0),
    };
    static TAB: RefCell<Option<Tab>> = const { RefCell::new(None) };
    static INBOX: RefCell<VecDeque<ServerFrame>> = const { RefCell::new(VecDeque::new()) };
    static DRAINING: RefCell<bool> = const { RefCell::new(false) };
    /// A change of a group (a commit staged, or a message encrypted) is under way.
    static TURN: RefCell<bool> = const { RefCell::new(false) };
    /// Set at sign-in: whether to keep this device after sign-out.
    static KEEP: RefCell<bool> = const { RefCell::new(true) };
}

/// One group change at a time, from staging to the server's answer: openmls keeps one pending
/// commit per group, and a second one staged meanwhile would be merged on the first's answer.
struct Turn;

impl Drop for Turn {
    fn drop(&mut self) {
        TURN.with(|t| *t.borrow_mut() = false);
    }
}

async fn turn() -> Turn {
    loop {
        if TURN.with(|t| !std::mem::replace(&mut *t.borrow_mut(), true)) {
            return Turn;
        }
        api::sleep(20).await;
    }
}

/// The messenger's signals.
pub fn messenger() -> Messenger {
    MESSENGER.with(|m| *m)
}

/// The sign-in screen's "don't keep this device" choice, for the device opened next.
pub fn keep_device(keep: bool) {
    KEEP.with(|k| *k.borrow_mut() = keep);
}

fn tab<T>(f: impl FnOnce(&mut Tab) -> T) -> Option<T> {
    TAB.with(|t| t.borrow_mut().as_mut().map(f))
}

/// Starts messaging for `account` (after sign-in, once the socket is asked for).
pub fn start(account: Uuid) {
    live::on_mls(incoming, attach);
    receipts::on_visible(read_open);
    let m = messenger();
    m.status.set(DeviceStatus::Starting);
    leptos::task::spawn_local(async move {
        match open_device(account).await {
            Ok(()) => {
                m.status.set(DeviceStatus::Ready);
                if live::live().connected.get_untracked() {
                    attach();
                }
            }
            Err(why) => m.status.set(why),
        }
    });
}

async fn open_device(account: Uuid) -> Result<(), DeviceStatus> {
    let failed = |what: &str| DeviceStatus::Failed(what.to_owned());
    let module = mls::load().await.map_err(|e| DeviceStatus::Failed(e.0))?;
    let vault = Vault::open(account).await.map_err(|e| failed(e.0))?;
    let keep_now = KEEP.with(|k| *k.borrow());
    let (device, keep, record) = match vault.load().await.map_err(|e| failed(e.0))? {
        Some(stored) => {
            let record: Record = serde_json::from_slice(&stored.state).map_err(|_| failed("the device's state"))?;
            let device = module.import(&record.mls).map_err(|e| DeviceStatus::Failed(e.0))?;
            let id = device.device_id().map_err(|e| DeviceStatus::Failed(e.0))?;
            // Revoked from another device (a lost phone's list): this state is of no use, and
            // must not linger.
            let active: Vec<DeviceRow> = api::get("/api/v1/devices").await.map_err(|f| failed(&f.message))?;
            if !active.iter().any(|d| d.device_id.to_string() == id) {
                let _ = vault.destroy().await;
                return Err(DeviceStatus::Revoked);
            }
            (device, stored.keep && keep_now, record)
        }
        None => {
            let key = module.new_key().map_err(|e| DeviceStatus::Failed(e.0))?;
            let body = serde_json::json!({ "signature_key": key.public_key().map_err(|e| DeviceStatus::Failed(e.0))? });
            let registered: DeviceRow =
                api::call("POST", "/api/v1/devices", &body).await.map_err(|f| failed(&f.message))?;
            let device = key
                .registered(&registered.device_id.to_string(), &account.to_string())
                .map_err(|e| DeviceStatus::Failed(e.0))?;
            upload_key_packages(&device, registered.device_id, KEY_PACKAGE_BATCH, true)
                .await
                .map_err(|f| failed(&f.message))?;
            (device, keep_now, Record::default())
        }
    };
    let id = device.device_id().ok().and_then(|d| Uuid::parse_str(&d).ok());
    TAB.with(|t| {
        *t.borrow_mut() = Some(Tab { module, device, vault, account, keep, seen: record.seen, unread: record.unread });
    });
    save(Vec::new()).await.map_err(|_| failed("the vault"))?;
    messenger().device_id.set(id);
    Ok(())
}

/// A device as `GET /api/v1/devices` lists it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DeviceRow {
    pub device_id: Uuid,
    pub registered_at_ms: i64,
}

async fn upload_key_packages(device: &MlsDevice, id: Uuid, count: u32, last_resort: bool) -> api::Result<()> {
    let packages = device.key_packages(count, last_resort).map_err(|e| Failure::on_field("device", &e.0))?;
    let body = serde_json::json!({ "key_packages": packages });
    api::call_empty("POST", &format!("/api/v1/devices/{id}/key-packages"), &body).await
}

/// Keeps the device's state and `messages` sealed in the vault, in one transaction.
async fn save(messages: Vec<(Uuid, u64, Vec<u8>)>) -> Result<(), String> {
    let Some((vault, state, keep)) = tab(|t| {
        let mls = t.device.export_state().map_err(|e| e.0)?;
        let record = Record { mls, seen: t.seen.clone(), unread: t.unread.clone() };
        Ok::<_, String>((t.vault.clone(), serde_json::to_vec(&record).map_err(|_| "encode".to_owned())?, t.keep))
    })
    .transpose()?
    else {
        return Err("no device".into());
    };
    vault.save(&state, keep, &messages).await.map_err(|e| e.0.to_owned())
}

/// The socket was welcomed: attach the device (its Welcomes and missed messages follow).
fn attach() {
    let Some(device) = messenger().device_id.get_untracked() else { return };
    let id = live::request_id();
    // Once attached, the list is refreshed and the group changes it calls for (devices gone,
    // the person's new ones) are committed: commits need the socket.
    live::request(id.clone(), &ClientFrame::mls_attach(id, device), |_| {
        leptos::task::spawn_local(refresh_conversations());
    });
}

/// A frame for the device: queued, and taken in by the one task that drains the queue.
fn incoming(frame: ServerFrame) {
    if let Some((conversation, user, read)) = receipts::take(&frame) {
        // The person read on another device: what was read there is not unread here.
        if let Some(read) = read
            && tab(|t| t.account) == Some(user)
        {
            read_elsewhere(conversation, read);
        }
        return;
    }
    if let ServerFrame::MlsKeyPackagesLow { device_id, .. } = frame {
        if let Some(device) = tab(|t| t.device.clone()) {
            leptos::task::spawn_local(async move {
                let _ = upload_key_packages(&device, device_id, KEY_PACKAGE_BATCH, false).await;
            });
        }
        return;
    }
    INBOX.with(|q| q.borrow_mut().push_back(frame));
    if DRAINING.with(|d| std::mem::replace(&mut *d.borrow_mut(), true)) {
        return;
    }
    leptos::task::spawn_local(drain());
}

/// Takes in every queued frame; when the queue is empty, keeps what came sealed with the new
/// state, then acknowledges.
async fn drain() {
    let m = messenger();
    let mut kept: Vec<(Uuid, u64, Vec<u8>)> = Vec::new();
    let mut owed: BTreeMap<Uuid, u64> = BTreeMap::new();
    loop {
        let Some(frame) = INBOX.with(|q| q.borrow_mut().pop_front()) else {
            if !owed.is_empty() || !kept.is_empty() {
                if save(std::mem::take(&mut kept)).await.is_err() {
                    // Not kept: acknowledge nothing, so the server keeps it all for this device,
                    // and say so rather than show messages this browser could lose.
                    owed.clear();
                    m.status.set(DeviceStatus::Failed(crate::text::VAULT_REFUSED.into()));
                }
                for (conversation, seq) in std::mem::take(&mut owed) {
                    let id = live::request_id();
                    live::send(&ClientFrame::mls_ack(id, conversation, seq));
                }
                m.version.update(|v| *v += 1);
            }
            // Frames may have arrived while saving.
            if INBOX.with(|q| q.borrow().is_empty()) {
                DRAINING.with(|d| *d.borrow_mut() = false);
                return;
            }
            continue;
        };
        let Ok(json) = serde_json::to_string(&frame) else { continue };
        let Some(Ok(Some(taken))) = tab(|t| t.device.receive(&json)) else { continue };
        let Ok(taken) = serde_json::from_str::<Taken>(&taken) else { continue };
        if let Some(through) = taken.through {
            owed.insert(taken.conversation, through);
        }
        if let Some(shown) = take_event(taken.conversation, taken.event) {
            if let Ok(bytes) = serde_json::to_vec(&shown) {
                kept.push((taken.conversation, shown.seq, bytes));
            }
            show(taken.conversation, shown);
        }
    }
}

/// What an event changes on screen; the message to keep, if any.
fn take_event(conversation: Uuid, event: Option<DeviceEvent>) -> Option<Kept> {
    let m = messenger();
    let now = js_sys::Date::now();
    let me = tab(|t| t.account);
    match event? {
        DeviceEvent::Joined => {
            leptos::task::spawn_local(refresh_conversations());
            None
        }
        DeviceEvent::Message { seq, sender_device, sender_user, text, attachments } => Some(Kept {
            seq,
            mine: sender_user.is_some() && sender_user == me,
            sender_user,
            sender_device,
            text: Some(text),
            at_ms: now,
            membership: false,
            attachments,
        }),
        DeviceEvent::Changed { seq, .. } => {
            if m.open.get_untracked() == Some(conversation) {
                load_members(conversation);
            }
            Some(Kept::without_text(seq, now, true))
        }
        DeviceEvent::Removed => {
            m.conversations.update(|c| {
                c.remove(&conversation);
            });
            None
        }
        DeviceEvent::Failed { seq } => Some(Kept::without_text(seq, now, false)),
    }
}

/// Puts a message on screen: in the open conversation, or counted unread in the list.
fn show(conversation: Uuid, kept: Kept) {
    let m = messenger();
    let counts = !kept.mine && !kept.membership;
    let seq = kept.seq;
    if m.open.get_untracked() == Some(conversation) {
        m.messages.update(|list| {
            if list.iter().all(|k| k.seq != seq) {
                list.push(kept);
                list.sort_by_key(|k| k.seq);
            }
        });
        m.total.update(|t| *t += 1);
        tab(|t| t.seen.insert(conversation, seq));
        if counts {
            receipts::seen(conversation, seq);
        }
    } else if counts {
        tab(|t| *t.unread.entry(conversation).or_default() += 1);
    }
    m.conversations.update(|c| {
        let item = c.entry(conversation).or_insert(ConversationItem {
            id: conversation,
            patient_id: None,
            unread: 0,
            last_seq: 0,
        });
        item.last_seq = item.last_seq.max(seq);
        item.unread = tab(|t| t.unread.get(&conversation).copied().unwrap_or(0)).unwrap_or(0);
    });
}

/// The person read `conversation` through `seq` on another of their devices.
fn read_elsewhere(conversation: Uuid, seq: u64) {
    let m = messenger();
    let Some(last) = m.conversations.with_untracked(|c| c.get(&conversation).map(|c| c.last_seq)) else { return };
    if seq < last {
        return;
    }
    tab(|t| {
        t.unread.remove(&conversation);
        t.seen.insert(conversation, seq);
    });
    m.conversations.update(|c| {
        if let Some(item) = c.get_mut(&conversation) {
            item.unread = 0;
        }
    });
}

/// The open conversation's newest message is on screen (the page came back into view).
fn read_open() {
    let m = messenger();
    if let (Some(conversation), Some(last)) =
        (m.open.get_untracked(), m.messages.with_untracked(|l| l.last().map(|k| k.seq)))
    {
        receipts::seen(conversation, last);
    }
}

/// A conversation as `GET /api/v1/devices/{id}/conversations` lists it.
#[derive(Debug, Clone, Deserialize)]
struct ConversationRow {
    conversation_id: Uuid,
    patient_id: Option<Uuid>,
    last_seq: u64,
    #[serde(default)]
    removed_devices: Vec<RemovedDevice>,
    #[serde(default)]
    receipts: Vec<ReceiptRow>,
}

/// A device removed at the server that is still in a conversation's group.
#[derive(Debug, Clone, Deserialize)]
struct RemovedDevice {
    user_id: Uuid,
    device_id: Uuid,
}

/// Reloads the list of the device's conversations from the server.
pub async fn refresh_conversations() {
    let m = messenger();
    let Some(device) = m.device_id.get_untracked() else { return };
    let Ok(rows) = api::get::<Vec<ConversationRow>>(&format!("/api/v1/devices/{device}/conversations")).await else {
        return;
    };
    let unread = tab(|t| t.unread.clone()).unwrap_or_default();
    let removals: Vec<(Uuid, RemovedDevice)> =
        rows.iter().flat_map(|r| r.removed_devices.iter().map(|d| (r.conversation_id, d.clone()))).collect();
    let kinds: Vec<(Uuid, Option<Uuid>)> = rows.iter().map(|r| (r.conversation_id, r.patient_id)).collect();
    for row in &rows {
        receipts::listed(row.conversation_id, &row.receipts);
    }
    m.conversations.set(
        rows.into_iter()
            .map(|r| {
                let item = ConversationItem {
                    id: r.conversation_id,
                    patient_id: r.patient_id,
                    unread: unread.get(&r.conversation_id).copied().unwrap_or(0),
                    last_seq: r.last_seq,
                };
                (r.conversation_id, item)
            })
            .collect(),
    );
    // A revoked device (a lost phone) is committed out by whichever member sees it first; if
    // another member's commit wins the epoch, the next refresh finds nothing left to do.
    for (conversation, gone) in removals {
        let _turn = turn().await;
        let staged = tab(|t| {
            t.device.stage_removal(&conversation.to_string(), &gone.user_id.to_string(), &gone.device_id.to_string())
        });
        if let Some(Ok(staged)) = staged {
            let _ = commit(conversation, staged).await;
        }
    }
    // The person's own devices registered since (a new phone) are committed in by this one.
    let Some(account) = tab(|t| t.account) else { return };
    let Ok(own) = api::get::<Vec<DeviceRow>>("/api/v1/devices").await else { return };
    for (conversation, patient) in kinds {
        let members = tab(|t| t.device.members(&conversation.to_string()).unwrap_or_default()).unwrap_or_default();
        if own.iter().any(|d| members.iter().all(|(_, m)| *m != d.device_id)) {
            let _ = add_people(conversation, patient, vec![account]).await;
        }
    }
}

/// Opens `conversation`: its newest messages from the vault, its members, and it counts as
/// seen.
pub fn open(conversation: Uuid) {
    let m = messenger();
    m.open.set(Some(conversation));
    m.messages.set(Vec::new());
    load_members(conversation);
    let Some(vault) = tab(|t| {
        t.unread.remove(&conversation);
        t.vault.clone()
    }) else {
        return;
    };
    m.conversations.update(|c| {
        if let Some(item) = c.get_mut(&conversation) {
            item.unread = 0;
        }
    });
    leptos::task::spawn_local(async move {
        if let Ok((records, total)) = vault.newest(conversation, PAGE).await {
            let mut list: Vec<Kept> = records.iter().filter_map(|r| serde_json::from_slice(r).ok()).collect();
            if m.open.get_untracked() != Some(conversation) {
                return;
            }
            // Anything shown live meanwhile stays.
            m.messages.update(|shown| {
                for k in shown.drain(..) {
                    if list.iter().all(|x| x.seq != k.seq) {
                        list.push(k);
                    }
                }
                list.sort_by_key(|k| k.seq);
                *shown = list;
            });
            m.total.set(total);
            if let Some(last) = m.messages.with_untracked(|l| l.last().map(|k| k.seq)) {
                tab(|t| t.seen.insert(conversation, last));
                receipts::seen(conversation, last);
            }
            let _ = save(Vec::new()).await;
            m.version.update(|v| *v += 1);
        }
    });
}

fn load_members(conversation: Uuid) {
    let members = tab(|t| t.device.members(&conversation.to_string()).unwrap_or_default()).unwrap_or_default();
    messenger().members.set(members);
}

/// Closes the open conversation (back to the list).
pub fn close() {
    let m = messenger();
    m.open.set(None);
    m.messages.set(Vec::new());
}

/// Encrypts and sends `text` with `files` in `conversation`; keeps it sealed as the person's own.
/// Each file is encrypted here under a fresh key and uploaded as ciphertext first; its key and
/// digests travel inside the MLS message, which names the uploads so the server keeps them as
/// long as the message.
pub async fn send(conversation: Uuid, text: String, files: Vec<Outgoing>) -> Result<(), String> {
    let Some(module) = tab(|t| t.module.clone()) else { return Err("messaging is not ready".into()) };
    let mut references = Vec::new();
    let mut shown = Vec::new();
    let mut ids = Vec::new();
    for file in files {
        let sealed = module.seal_file(&file.bytes).map_err(|e| e.0)?;
        let ciphertext = sealed.ciphertext().map_err(|e| e.0)?;
        #[derive(Deserialize)]
        struct Uploaded {
            attachment_id: Uuid,
        }
        let uploaded: Uploaded =
            api::post_bytes(&format!("/api/v1/conversations/{conversation}/attachments"), ciphertext)
                .await
                .map_err(|f| f.describe())?;
        let reference =
            sealed.reference(&uploaded.attachment_id.to_string(), &file.name, &file.media_type).map_err(|e| e.0)?;
        shown.push(FileRef {
            id: uploaded.attachment_id,
            name: file.name,
            media_type: file.media_type,
            size: file.bytes.len() as u64,
            reference: reference.clone(),
        });
        references.push(reference);
        ids.push(uploaded.attachment_id);
    }
    let references = serde_json::to_string(&references).map_err(|_| "encode".to_owned())?;
    for _ in 0..4 {
        let turn = turn().await;
        let Some((device, account, id)) = tab(|t| (t.device.clone(), t.account, t.device.device_id())) else {
            return Err("messaging is not ready".into());
        };
        let sender_device = id.ok().and_then(|d| Uuid::parse_str(&d).ok()).unwrap_or_default();
        let ciphertext = device.encrypt_message(&conversation.to_string(), &text, &references).map_err(|e| e.0)?;
        let request = live::request_id();
        let frame = ClientFrame::mls_send_with(request.clone(), conversation, ciphertext, ids.clone());
        let answer = request_frame(request, frame).await?;
        match device.settle_message(&conversation.to_string(), &answer) {
            Ok(seq) => {
                let kept = Kept {
                    seq,
                    mine: true,
                    sender_user: Some(account),
                    sender_device,
                    text: Some(text),
                    at_ms: js_sys::Date::now(),
                    membership: false,
                    attachments: shown,
                };
                let bytes = serde_json::to_vec(&kept).map_err(|_| "encode".to_owned())?;
                show(conversation, kept);
                save(vec![(conversation, seq, bytes)]).await?;
                messenger().version.update(|v| *v += 1);
                return Ok(());
            }
            // The conversation moved on (a device joined): take in the commit, then again.
            Err(e) if e.is_stale() => {
                drop(turn);
                api::sleep(300).await;
            }
            Err(e) => return Err(e.0),
        }
    }
    Err("the conversation kept changing; try again".into())
}

/// Downloads the file `file` names, checks it against its message's digests and decrypts it.
pub async fn open_file(file: &FileRef) -> Result<Vec<u8>, String> {
    let Some(module) = tab(|t| t.module.clone()) else { return Err("messaging is not ready".into()) };
    let ciphertext = api::get_bytes(&format!("/api/v1/attachments/{}", file.id)).await.map_err(|f| f.describe())?;
    module.open_file(&file.reference, &ciphertext).map_err(|e| e.0)
}

/// Sends `frame` (whose request id is `id`) and waits for its answer, as JSON.
async fn request_frame(id: String, frame: ClientFrame) -> Result<String, String> {
    let (tx, rx) = futures_channel::oneshot::channel::<ServerFrame>();
    if !live::request(id, &frame, move |answer| {
        let _ = tx.send(answer);
    }) {
        return Err(crate::text::MESSAGING_OFFLINE.into());
    }
    let answer = rx.await.map_err(|_| crate::text::MESSAGING_OFFLINE.to_owned())?;
    if let ServerFrame::Error { code, .. } = &answer {
        return Err(format!("{code:?}"));
    }
    serde_json::to_string(&answer).map_err(|_| "encode".into())
}

/// Starts a conversation about `patient` (or among staff when `None`) with every device of
/// `people` and the person's own other devices; opens it.
pub async fn start_conversation(patient: Option<Uuid>, people: Vec<Uuid>) -> Result<Uuid, String> {
    let Some((device, account)) = tab(|t| (t.device.clone(), t.account)) else {
        return Err("messaging is not ready".into());
    };
    let device_id = messenger().device_id.get_untracked().ok_or("messaging is not ready")?;
    // The KeyPackages first: a claim the server refuses (its limit per minute) leaves no group
    // here and no conversation there.
    let mut wanted = people;
    wanted.push(account);
    wanted.sort();
    wanted.dedup();
    let joiners = claim(patient, wanted, &[(account, device_id)]).await?;
    let new: NewGroup =
        serde_json::from_str(&device.start_conversation().map_err(|e| e.0)?).map_err(|_| "decode".to_owned())?;
    let kind = match patient {
        Some(p) => serde_json::json!({ "patient_id": p }),
        None => serde_json::json!({ "kind": "staff" }),
    };
    let mut body = serde_json::json!({
        "device_id": device_id, "group_info": new.group_info, "ratchet_tree": new.ratchet_tree,
    });
    if let (Some(body), Some(kind)) = (body.as_object_mut(), kind.as_object()) {
        body.extend(kind.clone());
    }
    api::call_empty("POST", "/api/v1/conversations", &body).await.map_err(|f| f.describe())?;
    let conversation = new.conversation_id;
    device.conversation_registered(&conversation.to_string()).map_err(|e| e.0)?;
    save(Vec::new()).await?;
    add_joiners(conversation, joiners).await?;
    refresh_conversations().await;
    open(conversation);
    Ok(conversation)
}

/// Adds every active device of `people` not yet in `conversation`, claiming a KeyPackage each.
pub async fn add_people(conversation: Uuid, patient: Option<Uuid>, people: Vec<Uuid>) -> Result<(), String> {
    let Some(device) = tab(|t| t.device.clone()) else { return Err("messaging is not ready".into()) };
    let members = device.members(&conversation.to_string()).map_err(|e| e.0)?;
    let joiners = claim(patient, people, &members).await?;
    add_joiners(conversation, joiners).await
}

/// One KeyPackage of each active device of `people` (in a conversation about `patient`, or a
/// staff one), leaving out the devices among `members`.
async fn claim(patient: Option<Uuid>, people: Vec<Uuid>, members: &[(Uuid, Uuid)]) -> Result<Vec<Joiner>, String> {
    let mut joiners = Vec::new();
    for user in people {
        let mut claim = serde_json::json!({ "user_id": user });
        if let Some(object) = claim.as_object_mut() {
            match patient {
                Some(p) => object.insert("patient_id".into(), serde_json::json!(p)),
                None => object.insert("kind".into(), serde_json::json!("staff")),
            };
        }
        #[derive(Deserialize)]
        struct Claimed {
            device_id: Uuid,
            key_package: String,
        }
        let claimed: Vec<Claimed> =
            api::call("POST", "/api/v1/key-packages/claim", &claim).await.map_err(|f| f.describe())?;
        for c in claimed {
            if members.iter().all(|(_, d)| *d != c.device_id) {
                joiners.push(Joiner { user_id: user, device_id: c.device_id, key_package: c.key_package });
            }
        }
    }
    Ok(joiners)
}

/// Commits `joiners` into `conversation` (nothing when there is none).
async fn add_joiners(conversation: Uuid, joiners: Vec<Joiner>) -> Result<(), String> {
    let Some(device) = tab(|t| t.device.clone()) else { return Err("messaging is not ready".into()) };
    if joiners.is_empty() {
        return Ok(());
    }
    let joiners = serde_json::to_string(&joiners).map_err(|_| "encode".to_owned())?;
    let _turn = turn().await;
    let Some(staged) = device.stage_add(&conversation.to_string(), &joiners).map_err(|e| e.0)? else {
        return Ok(());
    };
    commit(conversation, staged).await
}

async fn commit(conversation: Uuid, staged: String) -> Result<(), String> {
    let Some(device) = tab(|t| t.device.clone()) else { return Err("messaging is not ready".into()) };
    let staged: Staged = serde_json::from_str(&staged).map_err(|_| "decode".to_owned())?;
    let id = live::request_id();
    let answer = request_frame(id.clone(), ClientFrame::mls_commit(id, conversation, staged.commit, staged.welcome))
        .await
        .unwrap_or_default();
    let settled = device.settle_commit(&conversation.to_string(), &answer);
    save(Vec::new()).await?;
    if messenger().open.get_untracked() == Some(conversation) {
        load_members(conversation);
    }
    settled.map(|_| ()).map_err(|e| e.0)
}

/// Signing out: a device the person chose not to keep is removed at the server and destroyed
/// here; a kept one stays sealed for the next sign-in. Either way the tab forgets it.
pub async fn sign_out() {
    let m = messenger();
    if let Some((vault, keep, device)) = tab(|t| (t.vault.clone(), t.keep, m.device_id.get_untracked()))
        && !keep
    {
        if let Some(device) = device {
            let _ = api::send_delete(&format!("/api/v1/devices/{device}")).await;
        }
        let _ = vault.destroy().await;
    }
    forget();
}

/// The session ended (idle, expired, revoked or signed out): a device the person chose not to
/// keep is destroyed here (the server removes nothing without a session; its state is gone, so
/// nothing sent to it can be read), and the tab forgets the device.
pub async fn ended() {
    if let Some((vault, keep)) = tab(|t| (t.vault.clone(), t.keep))
        && !keep
    {
        let _ = vault.destroy().await;
    }
    forget();
}

/// Forgets the device in this tab.
fn forget() {
    TAB.with(|t| t.borrow_mut().take());
    INBOX.with(|q| q.borrow_mut().clear());
    let m = messenger();
    m.status.set(DeviceStatus::Starting);
    m.device_id.set(None);
    m.conversations.set(BTreeMap::new());
    m.open.set(None);
    m.messages.set(Vec::new());
    m.members.set(Vec::new());
    receipts::clear();
}

/// Removes one of the person's devices (a lost phone): the server sends it nothing more; each
/// conversation's remaining members commit it out.
pub async fn revoke(device: Uuid) -> api::Result<()> {
    api::send_delete(&format!("/api/v1/devices/{device}")).await?;
    refresh_conversations().await;
    Ok(())
}

/// Whether this tab's device is `device`.
pub fn is_this_device(device: Uuid) -> bool {
    messenger().device_id.get_untracked() == Some(device)
}
