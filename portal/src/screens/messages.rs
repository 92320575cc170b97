//! Messages: the person's end-to-end encrypted conversations (`messenger.rs` holds the device).
//! The list with unread counts, a conversation with who can read it (people and how many of
//! their devices, as the conversation's own MLS group says), the newest messages and the
//! composer; starting a conversation; and the person's devices, where a lost one is removed.
//! No title, URL or history entry names anyone: the open conversation lives in a signal.

use std::collections::BTreeMap;

use leptos::prelude::*;
use serde::Deserialize;
use uuid::Uuid;

use super::widgets::{ErrorNote, at};
use crate::api::{self, Failure, PatientRecord, StaffMember};
use confidant_protocol::device::FileRef;
use wasm_bindgen::JsCast;

use crate::messenger::{self, DeviceRow, DeviceStatus, Kept, Outgoing, messenger};
use crate::{receipts, session, text, time};

/// Who is who, for names on screen: staff from the directory, patients from their records (a
/// clinician's own patients only).
#[derive(Clone, Copy)]
struct Names {
    staff: RwSignal<Vec<StaffMember>>,
    patients: RwSignal<BTreeMap<Uuid, String>>,
}

impl Names {
    fn load() -> Self {
        let names = Self { staff: RwSignal::new(Vec::new()), patients: RwSignal::new(BTreeMap::new()) };
        leptos::task::spawn_local(async move {
            if let Ok(list) = api::get::<Vec<StaffMember>>("/api/v1/staff").await {
                names.staff.set(list);
            }
        });
        names
    }

    /// How `account` appears in a conversation about `patient`: "You", a member of staff by
    /// name, or (the one account that is neither) the patient, by name to their clinicians.
    fn person(&self, account: Uuid, patient: Option<Uuid>) -> String {
        if session::portal().me.with_untracked(|m| m.as_ref().map(|m| m.user_id)) == Some(account) {
            return text::YOU.to_owned();
        }
        if let Some(name) = self.staff.with(|s| s.iter().find(|m| m.user_id == account).map(StaffMember::label)) {
            return name;
        }
        match patient {
            Some(patient) => self.patient(patient),
            None => text::PATIENT.to_owned(),
        }
    }

    fn patient(&self, patient: Uuid) -> String {
        if session::portal().me.with_untracked(|m| m.as_ref().is_some_and(|m| m.role == "patient")) {
            return text::PATIENT.to_owned();
        }
        if let Some(name) = self.patients.with(|p| p.get(&patient).cloned()) {
            return name;
        }
        let patients = self.patients;
        // Asked once: the placeholder stands until the record arrives (each read is on record).
        patients.update_untracked(|p| {
            p.insert(patient, text::PATIENT.to_owned());
        });
        leptos::task::spawn_local(async move {
            if let Ok(record) = api::get::<PatientRecord>(&format!("/api/v1/patients/{patient}")).await {
                patients.update(|p| {
                    p.insert(patient, record.name());
                });
            }
        });
        text::PATIENT.to_owned()
    }
}

/// The messages screen.
#[component]
pub fn MessagesScreen() -> impl IntoView {
    let m = messenger();
    let names = Names::load();
    // Coming here is when a person expects the list current (and their new devices let in).
    if m.status.get_untracked() == DeviceStatus::Ready && crate::live::live().connected.get_untracked() {
        leptos::task::spawn_local(messenger::refresh_conversations());
    }
    view! {
        <h1>{text::MESSAGES_TITLE}</h1>
        {move || match m.status.get() {
            DeviceStatus::Starting => view! { <p class="muted" role="status">{text::MESSAGING_STARTING}</p> }.into_any(),
            DeviceStatus::Failed(why) => view! {
                <p class="error-note" role="alert">{format!("{}: {why}.", text::MESSAGING_FAILED)}</p>
            }.into_any(),
            DeviceStatus::Revoked => view! { <p class="notice" role="alert">{text::MESSAGING_REVOKED}</p> }.into_any(),
            DeviceStatus::Ready => match m.open.get() {
                Some(conversation) => view! { <Conversation conversation=conversation names=names/> }.into_any(),
                None => view! {
                    <p class="muted">{text::MESSAGES_INTRO}</p>
                    <ConversationList names=names/>
                    <NewConversation/>
                    <Devices/>
                }.into_any(),
            },
        }}
    }
}

fn title(names: Names, patient: Option<Uuid>) -> String {
    let me = session::portal().me.get_untracked();
    match (patient, me.as_ref().map(|m| m.role.as_str())) {
        (Some(_), Some("patient")) => text::YOUR_CARE_TEAM.to_owned(),
        (Some(patient), _) => names.patient(patient),
        (None, _) => text::STAFF_CONVERSATION.to_owned(),
    }
}

#[component]
fn ConversationList(names: Names) -> impl IntoView {
    let m = messenger();
    let items = move || {
        let mut list: Vec<_> = m.conversations.with(|c| c.values().cloned().collect());
        list.sort_by_key(|c| std::cmp::Reverse(c.last_seq));
        list
    };
    view! {
        <section class="card" aria-labelledby="conversations-title">
            <h2 id="conversations-title">{text::CONVERSATIONS}</h2>
            {move || {
                let list = items();
                if list.is_empty() {
                    return view! { <p class="muted">{text::NO_CONVERSATIONS}</p> }.into_any();
                }
                view! {
                    <ul class="rows">
                        {list.into_iter().map(|c| {
                            let id = c.id;
                            let label = title(names, c.patient_id);
                            view! {
                                <li class="row" data-conversation=id.to_string()>
                                    <button type="button" class="link" on:click=move |_| messenger::open(id)>{label}</button>
                                    {(c.unread > 0).then(|| view! {
                                        <span class="badge unread" data-unread=c.unread.to_string()>{format!("{} {}", c.unread, text::UNREAD)}</span>
                                    })}
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </section>
    }
}

/// Who can read: each account with how many of its devices are in the group.
fn readers(names: Names, patient: Option<Uuid>, members: &[(Uuid, Uuid)]) -> String {
    let mut per_account: BTreeMap<Uuid, usize> = BTreeMap::new();
    for (account, _) in members {
        *per_account.entry(*account).or_default() += 1;
    }
    per_account
        .into_iter()
        .map(|(account, n)| {
            let unit = if n == 1 { text::DEVICE_ONE } else { text::DEVICES_MANY };
            format!("{} ({n} {unit})", names.person(account, patient))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the file picker offers (a computed attribute: an element of literals alone would be
/// inserted through `innerHTML`, which Trusted Types refuses).
const ACCEPTED_FILES: &str = "image/*,application/pdf";

/// The largest file the portal offers to send (the server's default limit, which it enforces).
const MAX_FILE_BYTES: f64 = 10.0 * 1024.0 * 1024.0;

/// The file chosen in the composer, read: or why it cannot be sent.
async fn chosen_file() -> Result<Option<Outgoing>, &'static str> {
    let Some(input) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id("attachment"))
        .and_then(|e| e.dyn_into::<web_sys::HtmlInputElement>().ok())
    else {
        return Ok(None);
    };
    let Some(file) = input.files().and_then(|f| f.get(0)) else { return Ok(None) };
    if file.size() > MAX_FILE_BYTES {
        return Err(text::ATTACHMENT_TOO_LARGE);
    }
    let media_type = file.type_();
    if !(media_type.starts_with("image/") || media_type == "application/pdf") {
        return Err(text::ATTACHMENT_KIND);
    }
    let buffer = wasm_bindgen_futures::JsFuture::from(file.array_buffer()).await.map_err(|_| text::ATTACHMENT_KIND)?;
    let bytes = js_sys::Uint8Array::new(&buffer).to_vec();
    input.set_value("");
    Ok(Some(Outgoing { name: file.name(), media_type, bytes }))
}

/// The files of the open conversation opened so far: a `blob:` URL, or why it could not be
/// opened. Kept by the conversation, not by each file's view: the list of messages is drawn anew
/// whenever a message or a receipt arrives, and an opened file must stay open.
type Opened = RwSignal<BTreeMap<Uuid, Result<String, String>>>;

/// A file of a message: its name and size; opened on request (downloaded, checked, decrypted
/// here), an image previewed from a `blob:` URL, anything else offered to save.
#[component]
fn Attachment(file: FileRef, opened: Opened) -> impl IntoView {
    let busy = RwSignal::new(false);
    let image = file.media_type.starts_with("image/");
    let (name, media_type, id) = (file.name.clone(), file.media_type.clone(), file.id);
    let size = format!("{} {}", file.size.div_ceil(1024), text::KB);
    let open = move |_: leptos::ev::MouseEvent| {
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        let file = file.clone();
        leptos::task::spawn_local(async move {
            let result = match messenger::open_file(&file).await {
                Ok(bytes) => blob_url(&bytes, &file.media_type).ok_or_else(|| text::FILE_UNREADABLE.to_owned()),
                Err(_) => Err(text::FILE_UNREADABLE.to_owned()),
            };
            opened.update(|o| {
                o.insert(file.id, result);
            });
            busy.set(false);
        });
    };
    view! {
        <div class="attachment" data-attachment=id.to_string() data-media-type=media_type>
            <span class="name">{name.clone()}</span>" "<span class="muted small">{size}</span>" "
            {move || match opened.with(|o| o.get(&id).cloned()) {
                None => view! { <button type="button" disabled=move || busy.get() on:click=open.clone()>{text::OPEN_FILE}</button> }.into_any(),
                Some(Err(why)) => view! { <p class="error" data-unreadable="true">{why}</p> }.into_any(),
                Some(Ok(url)) if image => view! { <img class="preview" src=url alt=name.clone()/> }.into_any(),
                Some(Ok(url)) => view! { <a href=url download=name.clone()>{text::SAVE_FILE}</a> }.into_any(),
            }}
        </div>
    }
}

/// A `blob:` URL of `bytes` (this page's own memory: no request leaves the browser).
fn blob_url(bytes: &[u8], media_type: &str) -> Option<String> {
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(media_type);
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options).ok()?;
    web_sys::Url::create_object_url_with_blob(&blob).ok()
}

#[component]
fn Conversation(conversation: Uuid, names: Names) -> impl IntoView {
    let m = messenger();
    let draft = RwSignal::new(String::new());
    let failure = RwSignal::new(None::<Failure>);
    let busy = RwSignal::new(false);
    let opened: Opened = RwSignal::new(BTreeMap::new());
    // Whom the conversation is about, as the list says. A conversation opened before the list
    // loaded (a live message put it there first) learns it when the list arrives; one this
    // browser left keeps what it was.
    let patient = Memo::new(move |before: Option<&Option<Uuid>>| {
        m.conversations.with(|c| c.get(&conversation).and_then(|c| c.patient_id)).or(before.copied().flatten())
    });
    // A commit took this browser's device out of the conversation: what it received stays on
    // screen, and nothing more can be sent or received in it here.
    let left = move || m.conversations.with(|c| !c.contains_key(&conversation));
    let send = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = draft.get_untracked();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        failure.set(None);
        leptos::task::spawn_local(async move {
            let files = match chosen_file().await {
                Ok(file) => file.into_iter().collect::<Vec<_>>(),
                Err(why) => {
                    failure.set(Some(Failure::on_field("attachment", why)));
                    busy.set(false);
                    return;
                }
            };
            if body.trim().is_empty() && files.is_empty() {
                failure.set(Some(Failure::on_field("message", text::EMPTY_MESSAGE)));
                busy.set(false);
                return;
            }
            let attaching = !files.is_empty();
            match messenger::send(conversation, body, files).await {
                Ok(()) => draft.set(String::new()),
                Err(why) => {
                    failure.set(Some(Failure::on_field(if attaching { "attachment" } else { "message" }, &why)))
                }
            }
            busy.set(false);
        });
    };
    // The other people in the conversation, as its group says: whose receipts a sender waits on.
    let others = move || {
        let me = session::portal().me.get_untracked().map(|m| m.user_id);
        let accounts: std::collections::BTreeSet<Uuid> =
            m.members.with(|list| list.iter().map(|(account, _)| *account).filter(|a| Some(*a) != me).collect());
        accounts.into_iter().collect::<Vec<_>>()
    };
    let line = move |k: Kept, others: &[Uuid]| {
        let receipt = (k.mine && !k.membership).then(|| receipts::state(conversation, k.seq, others)).flatten();
        let class = if k.membership {
            "message membership"
        } else if k.mine {
            "message mine"
        } else {
            "message"
        };
        let who = if k.mine {
            text::YOU.to_owned()
        } else {
            k.sender_user.map(|u| names.person(u, patient.get())).unwrap_or_else(|| text::SOMEONE.to_owned())
        };
        let body = match (&k.text, k.membership) {
            (_, true) => text::MEMBERSHIP_CHANGED.to_owned(),
            (Some(t), false) => t.clone(),
            (None, false) => text::UNDECRYPTABLE.to_owned(),
        };
        let failed = k.text.is_none() && !k.membership;
        view! {
            <li class=class data-seq=k.seq.to_string() data-failed=failed.then_some("true")>
                {(!k.membership).then(|| view! {
                    <p class="meta"><strong>{who}</strong>" "<span class="muted">{time::date_time(k.at_ms as i64)}</span>
                        {receipt.map(|r| view! { " " <span class="receipt" data-receipt=r.name()>{r.label()}</span> })}
                    </p>
                })}
                {(!body.is_empty()).then(|| view! { <p class="body">{body}</p> })}
                {k.attachments.into_iter().map(|file| view! { <Attachment file=file opened=opened/> }).collect_view()}
            </li>
        }
    };
    view! {
        <button type="button" class="link" on:click=|_| messenger::close()>{text::BACK_TO_CONVERSATIONS}</button>
        <section class="card conversation" aria-labelledby="conversation-title">
            <h2 id="conversation-title">{move || title(names, patient.get())}</h2>
            // Once this browser left, the group it holds no longer says who reads what follows.
            <p class="muted small" data-readers="" hidden=left>
                <strong>{text::WHO_CAN_READ}": "</strong>
                {move || m.members.with(|list| readers(names, patient.get(), list))}
            </p>
            {move || {
                let (shown, total) = (m.messages.with(Vec::len), m.total.get() as usize);
                (total > shown).then(|| view! { <p class="muted small">{format!("{} {total}", text::SHOWING_NEWEST)}</p> })
            }}
            <ol class="messages" aria-live="polite">
                {move || {
                    let others = others();
                    m.messages.get().into_iter().map(|k| line(k, &others)).collect_view()
                }}
            </ol>
            {move || left().then(|| view! { <p class="notice" role="status">{text::LEFT_CONVERSATION}</p> })}
            <form on:submit=send novalidate hidden=left>
                <div class="field">
                    <label for="message">{text::MESSAGE_LABEL}</label>
                    <textarea id="message" rows="3" aria-describedby="message-error"
                        prop:value=move || draft.get() on:input=move |ev| draft.set(event_target_value(&ev))></textarea>
                    <p class="error" id="message-error">{move || at(failure, "message").get()}</p>
                </div>
                <div class="field">
                    <label for="attachment">{text::ATTACH_FILE}</label>
                    <input id="attachment" type="file" accept=ACCEPTED_FILES aria-describedby="attachment-error"/>
                    <p class="error" id="attachment-error">{move || at(failure, "attachment").get()}</p>
                </div>
                <button type="submit" class="primary" disabled=move || busy.get()>{text::SEND}</button>
            </form>
        </section>
    }
}

/// Someone who may be in a conversation about a patient.
#[derive(Debug, Clone, Deserialize)]
struct Participant {
    user_id: Uuid,
}

async fn participants(patient: Uuid) -> api::Result<Vec<Uuid>> {
    let people: Vec<Participant> = api::get(&format!("/api/v1/patients/{patient}/participants")).await?;
    Ok(people.into_iter().map(|p| p.user_id).collect())
}

#[component]
fn NewConversation() -> impl IntoView {
    let me = session::portal().me.get_untracked();
    let role = me.as_ref().map(|m| m.role.clone()).unwrap_or_default();
    let failure = RwSignal::new(None::<Failure>);
    let busy = RwSignal::new(false);
    let start = move |patient: Option<Uuid>, people: Option<Vec<Uuid>>| {
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        failure.set(None);
        leptos::task::spawn_local(async move {
            let people = match (people, patient) {
                (Some(p), _) => Ok(p),
                (None, Some(patient)) => participants(patient).await,
                (None, None) => Ok(Vec::new()),
            };
            let result = match people {
                Ok(people) => messenger::start_conversation(patient, people).await.map(|_| ()),
                Err(f) => Err(f.describe()),
            };
            if let Err(why) = result {
                failure.set(Some(Failure::on_field("conversation", &why)));
            }
            busy.set(false);
        });
    };
    let patients = RwSignal::new(Vec::<PatientRecord>::new());
    let staff = RwSignal::new(Vec::<StaffMember>::new());
    let chosen_patient = RwSignal::new(String::new());
    let chosen_staff = RwSignal::new(String::new());
    if role == "clinician" {
        leptos::task::spawn_local(async move {
            if let Ok(list) = api::get::<Vec<PatientRecord>>("/api/v1/patients").await {
                patients.set(list);
            }
        });
    }
    if role != "patient" {
        leptos::task::spawn_local(async move {
            if let Ok(list) = api::get::<Vec<StaffMember>>("/api/v1/staff").await {
                let me = session::portal().me.get_untracked().map(|m| m.user_id);
                staff.set(list.into_iter().filter(|s| Some(s.user_id) != me).collect());
            }
        });
    }
    let own_patient = me.as_ref().and_then(|m| m.patient_id);
    view! {
        <section class="card" aria-labelledby="new-conversation-title">
            <h2 id="new-conversation-title">{text::NEW_CONVERSATION}</h2>
            {own_patient.map(|p| view! {
                <button type="button" class="primary" disabled=move || busy.get() on:click=move |_| start(Some(p), None)>
                    {text::MESSAGE_CARE_TEAM}
                </button>
            })}
            {(role == "clinician").then(|| view! {
                <form class="inline" on:submit=move |ev: leptos::ev::SubmitEvent| {
                    ev.prevent_default();
                    if let Ok(p) = Uuid::parse_str(&chosen_patient.get_untracked()) { start(Some(p), None) }
                }>
                    <label for="message-patient">{text::MESSAGE_PATIENT}</label>
                    <select id="message-patient" on:change=move |ev| chosen_patient.set(event_target_value(&ev))>
                        <option value="">{text::CHOOSE}</option>
                        {move || patients.get().into_iter().filter_map(|p| {
                            let id = p.id?;
                            Some(view! { <option value=id.to_string()>{p.name()}</option> })
                        }).collect_view()}
                    </select>
                    <button type="submit" disabled=move || busy.get()>{text::START}</button>
                </form>
            })}
            {(role != "patient").then(|| view! {
                <form class="inline" on:submit=move |ev: leptos::ev::SubmitEvent| {
                    ev.prevent_default();
                    if let Ok(u) = Uuid::parse_str(&chosen_staff.get_untracked()) { start(None, Some(vec![u])) }
                }>
                    <label for="message-staff">{text::MESSAGE_STAFF}</label>
                    <select id="message-staff" on:change=move |ev| chosen_staff.set(event_target_value(&ev))>
                        <option value="">{text::CHOOSE}</option>
                        {move || staff.get().into_iter().map(|s| {
                            view! { <option value=s.user_id.to_string()>{s.label()}</option> }
                        }).collect_view()}
                    </select>
                    <button type="submit" disabled=move || busy.get()>{text::START}</button>
                </form>
            })}
            <p class="error" role="alert">{move || at(failure, "conversation").get()}</p>
        </section>
    }
}

#[component]
fn Devices() -> impl IntoView {
    let devices = RwSignal::new(Vec::<DeviceRow>::new());
    let failure = RwSignal::new(None::<Failure>);
    let reload = move || {
        leptos::task::spawn_local(async move {
            match api::get::<Vec<DeviceRow>>("/api/v1/devices").await {
                Ok(list) => devices.set(list),
                Err(f) => failure.set(Some(f)),
            }
        });
    };
    reload();
    view! {
        <section class="card" aria-labelledby="devices-title">
            <h2 id="devices-title">{text::YOUR_DEVICES}</h2>
            <p class="muted small">{text::REVOKE_NOTE}</p>
            <ErrorNote failure=failure/>
            <ul class="rows">
                {move || devices.get().into_iter().map(|d| {
                    let id = d.device_id;
                    let this = messenger::is_this_device(id);
                    let label = if this { text::THIS_BROWSER.to_owned() } else { format!("{} {}", text::REGISTERED, time::date_time(d.registered_at_ms)) };
                    view! {
                        <li class="row" data-device=id.to_string()>
                            <span>{label}</span>
                            {(!this).then(|| view! {
                                <button type="button" on:click=move |_| {
                                    leptos::task::spawn_local(async move {
                                        match messenger::revoke(id).await {
                                            Ok(()) => reload(),
                                            Err(f) => failure.set(Some(f)),
                                        }
                                    });
                                }>{text::REVOKE}</button>
                            })}
                        </li>
                    }
                }).collect_view()}
            </ul>
        </section>
    }
}
