//! The tab's one WebSocket: the same session actor every client talks to (docs/PROTOCOL.md).
//! The browser sends the session cookie with the upgrade; no token is handled here. Frames come
//! in as `confidant-protocol` types and land in signals the screens read: the schedule, the
//! alerts, toasts, and answers to requests by their id. A close with 4001/4002/4003 ends the
//! session (the session module, which sits above this one, says how through [`connect`]); any
//! other close reconnects (alerts and the schedule are replayed).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use confidant_protocol::close;
use confidant_protocol::frames::{Appointment, ClientFrame, ScheduleScope, ServerFrame};
use confidant_protocol::{AlertKind, AlertState, SUBPROTOCOL};
use leptos::prelude::*;
use uuid::Uuid;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

/// Called with the close code when the server ends the session (4001/4002/4003/4004).
pub type OnSessionEnd = fn(u16);

/// The messaging device's hooks (`messenger.rs`, which sits above this module): frames for the
/// device, and "the socket was welcomed" (attach again).
#[derive(Clone, Copy)]
struct MlsHooks {
    incoming: fn(ServerFrame),
    welcomed: fn(),
}

/// A live alert as it arrived (or was replayed).
#[derive(Debug, Clone, PartialEq)]
pub struct LiveAlert {
    pub alert_id: Uuid,
    pub kind: AlertKind,
    pub urgent: bool,
    /// None for an alert about no patient (a sign-in attack, to owners).
    pub patient_id: Option<Uuid>,
    pub assignment_id: Option<Uuid>,
    pub at_ms: i64,
    pub state: AlertState,
}

/// A short notice in the corner (a form submitted, an urgent alert, a sign-in attack).
#[derive(Debug, Clone, PartialEq)]
pub struct Toast {
    pub id: u64,
    pub urgent: bool,
    pub title: &'static str,
    pub patient_id: Option<Uuid>,
}

/// What the socket keeps current.
#[derive(Clone, Copy)]
pub struct Live {
    /// The server welcomed this socket: frames may be sent.
    pub connected: RwSignal<bool>,
    pub schedule: RwSignal<BTreeMap<Uuid, Appointment>>,
    /// Bumped at each schedule change (tests and benchmarks wait on it).
    pub schedule_version: RwSignal<u64>,
    pub alerts: RwSignal<Vec<LiveAlert>>,
    pub toasts: RwSignal<Vec<Toast>>,
    /// Bumped when a form is submitted (lists reload).
    pub intake_version: RwSignal<u64>,
}

type Waiter = Box<dyn FnOnce(ServerFrame)>;

struct Socket {
    ws: WebSocket,
    // Kept alive as long as the socket.
    _handlers: [Closure<dyn FnMut(web_sys::Event)>; 3],
}

thread_local! {
    static LIVE: Live = Live {
        connected: RwSignal::new(false),
        schedule: RwSignal::new(BTreeMap::new()),
        schedule_version: RwSignal::new(0),
        alerts: RwSignal::new(Vec::new()),
        toasts: RwSignal::new(Vec::new()),
        intake_version: RwSignal::new(0),
    };
    static SOCKET: RefCell<Option<Socket>> = const { RefCell::new(None) };
    static WAITERS: RefCell<HashMap<String, Waiter>> = RefCell::new(HashMap::new());
    static NEXT_ID: RefCell<u64> = const { RefCell::new(0) };
    static WANTED: RefCell<bool> = const { RefCell::new(false) };
    /// The schedule to follow once welcomed (none for billing), and who hears of the end.
    static FOLLOW: RefCell<Option<ScheduleScope>> = const { RefCell::new(None) };
    static ON_END: RefCell<Option<OnSessionEnd>> = const { RefCell::new(None) };
    static RETRY: RefCell<u32> = const { RefCell::new(0) };
    static MLS: RefCell<Option<MlsHooks>> = const { RefCell::new(None) };
}

/// Hands the messaging device its frames (`mls.welcome`, `mls.message`, `mls.key_packages_low`)
/// and tells it when the socket is welcomed, so it attaches on every (re)connection.
pub fn on_mls(incoming: fn(ServerFrame), welcomed: fn()) {
    MLS.with(|m| *m.borrow_mut() = Some(MlsHooks { incoming, welcomed }));
}

/// The live state.
pub fn live() -> Live {
    LIVE.with(|l| *l)
}

/// A fresh request id.
pub fn request_id() -> String {
    NEXT_ID.with(|n| {
        let mut n = n.borrow_mut();
        *n += 1;
        format!("p{}", *n)
    })
}

/// Opens the socket (and keeps reopening it until [`disconnect`]), following `schedule` once
/// welcomed; `on_end` hears the close code when the server ends the session.
pub fn connect(schedule: Option<ScheduleScope>, on_end: OnSessionEnd) {
    WANTED.with(|w| *w.borrow_mut() = true);
    FOLLOW.with(|f| *f.borrow_mut() = schedule);
    ON_END.with(|e| *e.borrow_mut() = Some(on_end));
    open();
}

fn open() {
    let Some(window) = web_sys::window() else { return };
    let Ok(host) = window.location().host() else { return };
    let Ok(ws) = WebSocket::new_with_str(&format!("wss://{host}/ws"), SUBPROTOCOL) else { return };
    // The socket is usable once the server's `welcome` says the session stands: a frame sent
    // before it (while the cookie is still being checked) closes the socket with 4004.
    let on_open = Closure::<dyn FnMut(web_sys::Event)>::new(move |_| {
        RETRY.with(|r| *r.borrow_mut() = 0);
    });
    let on_message = Closure::<dyn FnMut(web_sys::Event)>::new(move |event: web_sys::Event| {
        let Ok(message) = event.dyn_into::<MessageEvent>() else { return };
        if let Some(text) = message.data().as_string()
            && let Ok(frame) = serde_json::from_str::<ServerFrame>(&text)
        {
            receive(frame);
        }
    });
    let on_close = Closure::<dyn FnMut(web_sys::Event)>::new(move |event: web_sys::Event| {
        let code = event.dyn_into::<CloseEvent>().map(|c| c.code()).unwrap_or(1006);
        closed(code);
    });
    ws.set_onopen(Some(on_open.as_ref().unchecked_ref()));
    ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
    SOCKET.with(|s| *s.borrow_mut() = Some(Socket { ws, _handlers: [on_open, on_message, on_close] }));
}

/// Closes the socket for good and forgets everything it brought.
pub fn disconnect() {
    WANTED.with(|w| *w.borrow_mut() = false);
    if let Some(socket) = SOCKET.with(|s| s.borrow_mut().take()) {
        socket.ws.set_onclose(None);
        let _ = socket.ws.close_with_code(1000);
    }
    WAITERS.with(|w| w.borrow_mut().clear());
    MLS.with(|m| m.borrow_mut().take());
    let l = live();
    l.connected.set(false);
    l.schedule.set(BTreeMap::new());
    l.alerts.set(Vec::new());
    l.toasts.set(Vec::new());
}

fn closed(code: u16) {
    live().connected.set(false);
    SOCKET.with(|s| s.borrow_mut().take());
    WAITERS.with(|w| w.borrow_mut().clear());
    if matches!(code, close::IDLE_TIMEOUT | close::SESSION_EXPIRED | close::REVOKED | close::UNAUTHENTICATED) {
        if let Some(on_end) = ON_END.with(|e| *e.borrow()) {
            on_end(code);
        }
        return;
    }
    if !WANTED.with(|w| *w.borrow()) {
        return;
    }
    let attempt = RETRY.with(|r| {
        let mut r = r.borrow_mut();
        *r = (*r + 1).min(6);
        *r
    });
    set_timeout(open, std::time::Duration::from_millis(250 << attempt));
}

/// Sends `frame`; `false` when the socket is not open.
pub fn send(frame: &ClientFrame) -> bool {
    let Ok(text) = serde_json::to_string(frame) else { return false };
    if !live().connected.get_untracked() {
        return false;
    }
    SOCKET.with(|s| {
        s.borrow().as_ref().is_some_and(|s| s.ws.ready_state() == WebSocket::OPEN && s.ws.send_with_str(&text).is_ok())
    })
}

/// Sends `frame` (which carries request id `id`) and calls `then` with the answer.
pub fn request(id: String, frame: &ClientFrame, then: impl FnOnce(ServerFrame) + 'static) -> bool {
    WAITERS.with(|w| w.borrow_mut().insert(id.clone(), Box::new(then)));
    let sent = send(frame);
    if !sent {
        WAITERS.with(|w| w.borrow_mut().remove(&id));
    }
    sent
}

/// Tells the server the person is active; `false` when the socket is not open.
pub fn send_activity() -> bool {
    send(&ClientFrame::Activity { v: confidant_protocol::VERSION })
}

fn subscribe() {
    let Some(scope) = FOLLOW.with(|f| *f.borrow()) else { return };
    send(&ClientFrame::ScheduleSubscribe { v: confidant_protocol::VERSION, id: request_id(), scope, after: None });
}

fn receive(frame: ServerFrame) {
    if let Some(id) = frame.request_id()
        && let Some(waiter) = WAITERS.with(|w| w.borrow_mut().remove(id))
    {
        waiter(frame);
        return;
    }
    let l = live();
    match frame {
        ServerFrame::Welcome { .. } => {
            l.connected.set(true);
            subscribe();
            if let Some(hooks) = MLS.with(|m| *m.borrow()) {
                (hooks.welcomed)();
            }
        }
        ServerFrame::MlsWelcome { .. }
        | ServerFrame::MlsMessage { .. }
        | ServerFrame::MlsReceipt { .. }
        | ServerFrame::MlsKeyPackagesLow { .. } => {
            if let Some(hooks) = MLS.with(|m| *m.borrow()) {
                (hooks.incoming)(frame);
            }
        }
        ServerFrame::ScheduleSnapshot { appointments, .. } => {
            l.schedule.set(appointments.into_iter().map(|a| (a.id, a)).collect());
            l.schedule_version.update(|v| *v += 1);
        }
        ServerFrame::ScheduleChanged { appointment, .. } => {
            l.schedule.update(|s| {
                s.insert(appointment.id, appointment);
            });
            l.schedule_version.update(|v| *v += 1);
        }
        ServerFrame::IntakeSubmitted { patient_id, .. } => {
            l.intake_version.update(|v| *v += 1);
            toast(false, crate::text::TOAST_INTAKE, Some(patient_id));
        }
        ServerFrame::Alert { alert_id, kind, urgent, patient_id, assignment_id, at_ms, .. } => {
            let alert = LiveAlert { alert_id, kind, urgent, patient_id, assignment_id, at_ms, state: AlertState::Open };
            let new = l.alerts.with_untracked(|a| a.iter().all(|x| x.alert_id != alert_id));
            if new {
                l.alerts.update(|a| a.push(alert));
                if kind == AlertKind::SignInAttack {
                    toast(true, crate::text::TOAST_SIGN_IN_ATTACK, None);
                } else if kind == AlertKind::BackupFailed {
                    toast(true, crate::text::TOAST_BACKUP_FAILED, None);
                } else if urgent {
                    toast(true, crate::text::TOAST_ALERT, patient_id);
                }
            }
        }
        ServerFrame::AlertUpdated { alert_id, state, .. } => {
            l.alerts.update(|a| {
                for x in a.iter_mut().filter(|x| x.alert_id == alert_id) {
                    x.state = state;
                }
            });
        }
        _ => {}
    }
}

fn toast(urgent: bool, title: &'static str, patient_id: Option<Uuid>) {
    let id = NEXT_ID.with(|n| {
        let mut n = n.borrow_mut();
        *n += 1;
        *n
    });
    live().toasts.update(|t| t.push(Toast { id, urgent, title, patient_id }));
}
