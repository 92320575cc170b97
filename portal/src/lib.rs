//! Confidant's web portal: patients, clinicians, front desk and owners in a browser. A Leptos app
//! rendered on the client, compiled to WebAssembly and served from the `confidant` binary (its
//! build script builds this crate). It shares `confidant-protocol` with the server, so every
//! frame has one definition from the database to the screen.
//!
//! Security in the browser (docs/SECURITY.md, "Portal"): the session is an HttpOnly cookie this
//! code never sees; nothing is stored in localStorage or sessionStorage, and IndexedDB holds only
//! the messaging device's vault, sealed under a non-extractable WebCrypto key (`vault.rs`); no URL,
//! title or history entry carries PHI (the portal never changes the URL at all); every request
//! is same-origin under a strict CSP.
//!
//! Trusted Types: the CSP refuses every `innerHTML` assignment. Leptos inserts an element whose
//! attributes and children are all literals (an "inert" element) through `innerHTML`, so no
//! `view!` may hold one: give it a computed value (`{text::X}`, a value from data). The browser
//! tests fail on the resulting page error.

pub mod api;
pub mod live;
pub mod messenger;
pub mod mls;
pub mod receipts;
pub mod screens;
pub mod session;
pub mod text;
pub mod time;
pub mod vault;

use leptos::prelude::*;
use wasm_bindgen::prelude::wasm_bindgen;

use crate::session::Stage;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = console, js_name = error)]
    fn console_error(message: &str);
}

/// Makes the tab's state (the session's, the socket's, the messenger's and the receipts'
/// signals, each kept in a thread-local) before anything is mounted. A signal belongs to the
/// reactive owner current where it is made, and is disposed with it: made first inside a view,
/// the tab's state would die when that view is drawn anew, and the next read would panic. (A
/// conversation opened before the list's receipts had loaded did exactly that: its messages,
/// redrawn, disposed the receipts.) Made here, with no owner, they live as long as the tab.
fn make_tab_state() {
    session::portal();
    live::live();
    messenger::messenger();
    receipts::make();
}

/// Says where a panic happened on the browser's console before the module traps (a trap says
/// only "unreachable"). The place only: a panic's message may quote what it was handling.
fn report_panics(module: &'static str) {
    std::panic::set_hook(Box::new(move |info| {
        let at = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
        console_error(&format!("{module} panicked at {}", at.as_deref().unwrap_or("an unknown place")));
    }));
}

/// Runs when the module is instantiated: mounts the app and asks for the session.
#[wasm_bindgen(start)]
pub fn start() {
    report_panics("portal");
    make_tab_state();
    leptos::mount::mount_to_body(App);
    session::start();
}

/// The whole page: a skip link, the header, the current stage's screen, the idle warning and
/// the toasts.
#[component]
fn App() -> impl IntoView {
    let p = session::portal();
    view! {
        <a class="skip" href="#content">{text::SKIP_TO_CONTENT}</a>
        <screens::widgets::Header/>
        <main id="content" tabindex="-1" on:keydown=|_| session::user_activity() on:click=|_| session::user_activity()>
            {move || match p.stage.get() {
                Stage::Loading => view! { <p class="muted" role="status">{text::LOADING}</p> }.into_any(),
                Stage::SignIn { notice } => view! { <screens::sign_in::SignIn notice=notice/> }.into_any(),
                Stage::SecondFactor => view! { <screens::sign_in::SecondFactor/> }.into_any(),
                Stage::Invitation => view! { <screens::sign_in::Invitation/> }.into_any(),
                Stage::Home => view! { <screens::Home/> }.into_any(),
                Stage::Ended(why) => view! { <screens::widgets::SessionEnded why=why/> }.into_any(),
            }}
        </main>
        <screens::widgets::IdleWarning/>
        <screens::widgets::Toasts/>
    }
}
