//! Delivered and read: how far each person in a conversation has got, as the server says (the
//! conversation list, then `mls.receipt` frames), and this person's own reading, sent as
//! `mls.read` when a conversation's newest messages are on a screen someone can see.

use std::cell::RefCell;
use std::collections::BTreeMap;

use confidant_protocol::{ClientFrame, ServerFrame};
use leptos::prelude::*;
use serde::Deserialize;
use uuid::Uuid;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;

use crate::live;
use crate::text;

/// One account's progress in a conversation, as the list gives it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub struct Progress {
    /// The newest seq one of its devices took in.
    pub delivered_seq: u64,
    /// The newest seq the person read.
    pub read_seq: u64,
}

/// A row of a conversation's `receipts` in the list.
#[derive(Debug, Clone, Deserialize)]
pub struct ReceiptRow {
    user_id: Uuid,
    #[serde(flatten)]
    progress: Progress,
}

/// Where one of the person's own messages stands with everyone else in the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Accepted by the server; some other person's devices have not taken it in yet.
    Sent,
    /// Every other person has it on at least one device.
    Delivered,
    /// Every other person has read it.
    Read,
}

impl State {
    /// The attribute value tests and styles read.
    pub fn name(self) -> &'static str {
        match self {
            State::Sent => "sent",
            State::Delivered => "delivered",
            State::Read => "read",
        }
    }

    /// What the person sees.
    pub fn label(self) -> &'static str {
        match self {
            State::Sent => text::RECEIPT_SENT,
            State::Delivered => text::RECEIPT_DELIVERED,
            State::Read => text::RECEIPT_READ,
        }
    }
}

thread_local! {
    /// Per conversation, per account: how far it got.
    static PROGRESS: RwSignal<BTreeMap<Uuid, BTreeMap<Uuid, Progress>>> = RwSignal::new(BTreeMap::new());
    /// Per conversation, the newest seq this tab said the person read.
    static SAID: RefCell<BTreeMap<Uuid, u64>> = const { RefCell::new(BTreeMap::new()) };
}

fn progress() -> RwSignal<BTreeMap<Uuid, BTreeMap<Uuid, Progress>>> {
    PROGRESS.with(|p| *p)
}

/// Makes the receipts' signal, at the start, outside every view (`make_tab_state` in lib.rs).
pub fn make() {
    progress();
}

/// The list's view of `conversation`, which replaces what was known (it is read from the server).
pub fn listed(conversation: Uuid, rows: &[ReceiptRow]) {
    let fresh: BTreeMap<Uuid, Progress> = rows.iter().map(|r| (r.user_id, r.progress)).collect();
    progress().update(|p| {
        let known = p.entry(conversation).or_default();
        for (user, new) in fresh {
            let old = known.entry(user).or_default();
            old.delivered_seq = old.delivered_seq.max(new.delivered_seq);
            old.read_seq = old.read_seq.max(new.read_seq);
        }
    });
}

/// Takes in an `mls.receipt`: (conversation, account, read seq when it carries one).
pub fn take(frame: &ServerFrame) -> Option<(Uuid, Uuid, Option<u64>)> {
    let ServerFrame::MlsReceipt { conversation_id, user_id, delivered_seq, read_seq, .. } = frame else {
        return None;
    };
    progress().update(|p| {
        let entry = p.entry(*conversation_id).or_default().entry(*user_id).or_default();
        entry.delivered_seq = entry.delivered_seq.max(delivered_seq.unwrap_or(0));
        entry.read_seq = entry.read_seq.max(read_seq.unwrap_or(0));
        // What was read was taken in.
        entry.delivered_seq = entry.delivered_seq.max(entry.read_seq);
    });
    Some((*conversation_id, *user_id, *read_seq))
}

/// Where the person's message at `seq` stands with `others` (the other accounts in the
/// conversation, as its group says); none when nobody else is in it. Tracked: a screen that
/// calls it redraws as receipts arrive.
pub fn state(conversation: Uuid, seq: u64, others: &[Uuid]) -> Option<State> {
    if others.is_empty() {
        return None;
    }
    progress().with(|p| {
        let of = |user: &Uuid| p.get(&conversation).and_then(|c| c.get(user)).copied().unwrap_or_default();
        if others.iter().all(|u| of(u).read_seq >= seq) {
            Some(State::Read)
        } else if others.iter().all(|u| of(u).delivered_seq >= seq) {
            Some(State::Delivered)
        } else {
            Some(State::Sent)
        }
    })
}

/// The person has `conversation` open with its newest message at `seq`: says so to the server
/// when the page can be seen (a tab in the background reads nothing) and it is news.
pub fn seen(conversation: Uuid, seq: u64) {
    let visible = web_sys::window().and_then(|w| w.document()).is_some_and(|d| !d.hidden());
    if !visible || seq == 0 || SAID.with(|s| s.borrow().get(&conversation).is_some_and(|said| *said >= seq)) {
        return;
    }
    let id = live::request_id();
    if live::send(&ClientFrame::mls_read(id, conversation, seq)) {
        SAID.with(|s| s.borrow_mut().insert(conversation, seq));
    }
}

/// Calls `again` whenever the page comes back into view (the open conversation is then read).
pub fn on_visible(again: fn()) {
    thread_local! {
        static INSTALLED: RefCell<bool> = const { RefCell::new(false) };
    }
    if INSTALLED.with(|i| std::mem::replace(&mut *i.borrow_mut(), true)) {
        return;
    }
    let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
    let handler = Closure::<dyn FnMut()>::new(move || {
        if web_sys::window().and_then(|w| w.document()).is_some_and(|d| !d.hidden()) {
            again();
        }
    });
    let _ = document.add_event_listener_with_callback("visibilitychange", handler.as_ref().unchecked_ref());
    // Lives as long as the page.
    handler.forget();
}

/// Forgets everything (sign-out).
pub fn clear() {
    progress().set(BTreeMap::new());
    SAID.with(|s| s.borrow_mut().clear());
}
