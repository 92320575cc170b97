//! The signed-in state of this tab: who, which screen, and the server's idle and absolute limits
//! shown honestly (a warning before the idle limit, a clear screen when the session ended).
//! Everything a screen loaded lives in signals that [`ended`] empties: after sign-out or expiry
//! nothing of the person's information is left in the page.

use confidant_protocol::close;
use confidant_protocol::frames::ScheduleScope;
use leptos::prelude::*;

use crate::api::{self, Me};
use crate::live;
use crate::messenger;

/// Seconds before the idle limit when the warning appears (at most half the limit).
const WARN_BEFORE_SECS: f64 = 120.0;
/// The longest the server goes without hearing of the person's activity (at most a quarter of
/// the idle limit).
const ACTIVITY_EVERY_SECS: f64 = 30.0;

/// Why the session is over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    Idle,
    Absolute,
    Revoked,
    SignedOut,
    Unknown,
}

/// What the tab shows.
#[derive(Debug, Clone, PartialEq)]
pub enum Stage {
    /// Asking the server whether a session exists (a reload).
    Loading,
    /// The sign-in form, with a message when the person just accepted an invitation.
    SignIn { notice: Option<&'static str> },
    /// The second factor of a sign-in.
    SecondFactor,
    /// Accepting an invitation.
    Invitation,
    /// Signed in.
    Home,
    /// The session is over; the screen says why.
    Ended(Ended),
}

/// The tab's state, shared by every screen.
#[derive(Clone, Copy)]
pub struct Portal {
    pub stage: RwSignal<Stage>,
    pub me: RwSignal<Option<Me>>,
    /// `Date.now()` of the last request or user activity the server saw.
    pub last_activity_ms: RwSignal<f64>,
    /// `Date.now()`, once a second.
    pub now_ms: RwSignal<f64>,
    /// When the server ends the session at the latest (from `expires_at_ms`).
    pub expires_at_ms: RwSignal<f64>,
}

thread_local! {
    static PORTAL: Portal = Portal {
        stage: RwSignal::new(Stage::Loading),
        me: RwSignal::new(None),
        last_activity_ms: RwSignal::new(js_sys::Date::now()),
        now_ms: RwSignal::new(js_sys::Date::now()),
        expires_at_ms: RwSignal::new(f64::MAX),
    };
}

/// The tab's state.
pub fn portal() -> Portal {
    PORTAL.with(|p| *p)
}

/// Starts the tab: ask the server for the session the cookie may carry, and tick the clock
/// that drives the idle warning.
pub fn start() {
    let p = portal();
    api::on_answers(api::Hooks { answered: activity, session_gone: || ended(Ended::Unknown) });
    leptos::task::spawn_local(async move {
        match api::get::<Me>("/api/v1/browser/session").await {
            Ok(me) => signed_in(me),
            Err(_) => p.stage.set(Stage::SignIn { notice: None }),
        }
    });
    let tick = move || {
        let now = js_sys::Date::now();
        p.now_ms.set(now);
        let Some(me) = p.me.get_untracked() else { return };
        let idle_ms = me.idle_timeout_secs as f64 * 1000.0;
        if now - p.last_activity_ms.get_untracked() >= idle_ms + 2000.0 {
            ended(Ended::Idle);
        } else if now >= p.expires_at_ms.get_untracked() {
            ended(Ended::Absolute);
        }
    };
    let _ = set_interval_with_handle(tick, std::time::Duration::from_secs(1));
}

/// A session started (sign-in, or a reload that found one).
pub fn signed_in(me: Me) {
    let p = portal();
    p.expires_at_ms.set(me.expires_at_ms as f64);
    p.last_activity_ms.set(js_sys::Date::now());
    let live = (!me.must_enroll()).then(|| me.role.clone());
    let account = me.user_id;
    p.me.set(Some(me));
    p.stage.set(Stage::Home);
    if let Some(role) = live {
        let schedule = match role.as_str() {
            "billing" => None,
            "practice_owner" | "front_desk" => Some(ScheduleScope::Practice),
            _ => Some(ScheduleScope::Mine),
        };
        live::connect(schedule, socket_closed);
        messenger::start(account);
    }
}

/// The server closed the socket because the session is over.
fn socket_closed(code: u16) {
    ended(match code {
        close::IDLE_TIMEOUT => Ended::Idle,
        close::SESSION_EXPIRED => Ended::Absolute,
        close::REVOKED => Ended::Revoked,
        _ => Ended::Unknown,
    });
}

/// A request was answered. The HTTP session counted it, but the socket's session actor keeps
/// its own idle clock (and ends the sign-in session when it runs out), so it hears of the
/// activity too, at most as often as [`user_activity`] tells it. Without a socket (enrollment)
/// the request is all the server saw.
pub fn activity() {
    let p = portal();
    if p.me.get_untracked().is_none() {
        return;
    }
    if live::live().connected.get_untracked() {
        user_activity();
    } else {
        p.last_activity_ms.set(js_sys::Date::now());
    }
}

/// The person did something that sends nothing (typing, clicking through a list): tell the
/// server, at most twice a minute, so that a person at work is not signed out.
pub fn user_activity() {
    let p = portal();
    let Some(idle) = p.me.with_untracked(|m| m.as_ref().map(|m| m.idle_timeout_secs as f64)) else { return };
    let now = js_sys::Date::now();
    let every_ms = ACTIVITY_EVERY_SECS.min(idle / 4.0) * 1000.0;
    if now - p.last_activity_ms.get_untracked() >= every_ms && live::send_activity() {
        p.last_activity_ms.set(now);
    }
}

/// Seconds until the idle limit, when the warning should show.
pub fn idle_warning_secs() -> Option<u64> {
    let p = portal();
    let me = p.me.get()?;
    let idle = me.idle_timeout_secs as f64;
    let left = idle - (p.now_ms.get() - p.last_activity_ms.get()) / 1000.0;
    (left <= WARN_BEFORE_SECS.min(idle / 2.0)).then(|| left.max(0.0) as u64)
}

/// "Stay signed in": tells the socket's session actor at once, and asks the HTTP session (which
/// counts the request as activity and says when the session ends at the latest).
pub fn stay() {
    let p = portal();
    if live::send_activity() {
        p.last_activity_ms.set(js_sys::Date::now());
    }
    leptos::task::spawn_local(async move {
        if let Ok(me) = api::get::<Me>("/api/v1/browser/session").await {
            p.expires_at_ms.set(me.expires_at_ms as f64);
        }
    });
}

/// The session is over: close the socket, forget everything loaded, and say why. Only a tab
/// that holds a session (signed in, or between password and second factor) has one to end: a
/// 401 that arrives later, for a request of a session already over, must not take the sign-in
/// form from under the person signing in again.
pub fn ended(why: Ended) {
    let p = portal();
    if p.me.get_untracked().is_none() && p.stage.get_untracked() != Stage::SecondFactor {
        return;
    }
    live::disconnect();
    leptos::task::spawn_local(messenger::ended());
    p.me.set(None);
    p.stage.set(Stage::Ended(why));
}

/// Signs out of this session (or every session), then shows the signed-out screen.
pub fn sign_out(everywhere: bool) {
    leptos::task::spawn_local(async move {
        let path = if everywhere { "/api/v1/sign-out-everywhere" } else { "/api/v1/sign-out" };
        // A device the person chose not to keep is removed while the session still stands.
        messenger::sign_out().await;
        let _ = api::post_empty(path).await;
        ended(Ended::SignedOut);
    });
}
