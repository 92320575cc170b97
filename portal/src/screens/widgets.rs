//! Pieces every screen uses: the header, form fields with their error at the field, the error
//! note with its request id, the idle warning, the signed-out screen and the toasts.

use leptos::prelude::*;

use crate::api::Failure;
use crate::live;
use crate::session::{self, Ended, Stage};
use crate::text;

/// The page header: the product, and when signed in, who and the sign-out buttons.
#[component]
pub fn Header() -> impl IntoView {
    let p = session::portal();
    view! {
        <header class="top">
            <span class="brand">{text::PRODUCT}</span>
            <Show when=move || p.me.with(|m| m.is_some()) && p.stage.get() == Stage::Home>
                <span class="who">
                    {move || p.me.with(|m| m.as_ref().map(|m| format!("{} · {}", m.display_name, text::role(&m.role))))}
                </span>
                <button type="button" class="link" on:click=|_| session::sign_out(false)>{text::SIGN_OUT}</button>
                <button type="button" class="link" on:click=|_| session::sign_out(true)>{text::SIGN_OUT_EVERYWHERE}</button>
            </Show>
        </header>
    }
}

/// A labelled input with its hint and its error, tied together for screen readers.
#[component]
pub fn Field(
    #[prop(into)] id: String,
    label: &'static str,
    value: RwSignal<String>,
    #[prop(into)] error: Signal<Option<String>>,
    #[prop(default = "text")] kind: &'static str,
    #[prop(default = "off")] autocomplete: &'static str,
    #[prop(optional)] hint: Option<&'static str>,
    #[prop(optional)] inputmode: Option<&'static str>,
) -> impl IntoView {
    let described = if hint.is_some() { format!("{id}-hint {id}-error") } else { format!("{id}-error") };
    view! {
        <div class="field">
            <label for=id.clone()>{label}</label>
            {hint.map(|h| view! { <p class="hint" id=format!("{id}-hint")>{h}</p> })}
            <input
                id=id.clone()
                name=id.clone()
                type=kind
                autocomplete=autocomplete
                inputmode=inputmode
                prop:value=move || value.get()
                on:input=move |ev| value.set(event_target_value(&ev))
                aria-invalid=move || error.with(|e| e.as_ref().map(|_| "true"))
                aria-describedby=described
            />
            <p class="error" id=format!("{id}-error")>{move || error.get()}</p>
        </div>
    }
}

/// A labelled `<select>` with its error; `options` are (value, label) pairs, after an empty
/// one that reads `empty` ("Choose…" unless given).
#[component]
pub fn Select(
    #[prop(into)] id: String,
    label: &'static str,
    value: RwSignal<String>,
    #[prop(into)] error: Signal<Option<String>>,
    #[prop(into)] options: Signal<Vec<(String, String)>>,
    #[prop(default = text::CHOOSE)] empty: &'static str,
) -> impl IntoView {
    view! {
        <div class="field">
            <label for=id.clone()>{label}</label>
            <select id=id.clone() name=id.clone() aria-describedby=format!("{id}-error")
                aria-invalid=move || error.with(|e| e.as_ref().map(|_| "true"))
                on:change=move |ev| value.set(event_target_value(&ev))>
                <option value="" prop:selected=move || value.get().is_empty()>{empty}</option>
                {move || options.get().into_iter().map(|(key, label)| {
                    let selected = { let key = key.clone(); move || value.get() == key };
                    view! { <option value=key prop:selected=selected>{label}</option> }
                }).collect_view()}
            </select>
            <p class="error" id=format!("{id}-error")>{move || error.get()}</p>
        </div>
    }
}

/// A failure that belongs to no field: the plain-words message and the request id.
#[component]
pub fn ErrorNote(
    failure: RwSignal<Option<Failure>>,
    #[prop(optional)] fields: &'static [&'static str],
) -> impl IntoView {
    let shown = move || failure.get().filter(|f| f.field.as_deref().is_none_or(|x| !fields.contains(&x)));
    view! {
        <div class="error-note" role="alert">
            {move || shown().map(|f| view! { <p>{f.describe()}</p> })}
        </div>
    }
}

/// The warning before the idle limit, with "stay signed in".
#[component]
pub fn IdleWarning() -> impl IntoView {
    view! {
        <Show when=move || session::idle_warning_secs().is_some()>
            <div class="dialog" role="alertdialog" aria-modal="true" aria-labelledby="idle-title" aria-describedby="idle-text">
                <h2 id="idle-title">{text::IDLE_WARNING_TITLE}</h2>
                <p id="idle-text">
                    {text::IDLE_WARNING} " "
                    {move || session::idle_warning_secs().map(|s| format!("({}:{:02})", s / 60, s % 60))}
                </p>
                <button type="button" class="primary" autofocus on:click=|_| session::stay()>{text::STAY_SIGNED_IN}</button>
            </div>
        </Show>
    }
}

/// The screen after the session ended: why, and the way back in. Nothing else.
#[component]
pub fn SessionEnded(why: Ended) -> impl IntoView {
    let message = match why {
        Ended::Idle => text::ENDED_IDLE,
        Ended::Absolute => text::ENDED_ABSOLUTE,
        Ended::Revoked => text::ENDED_REVOKED,
        Ended::SignedOut => text::ENDED_SIGNED_OUT,
        Ended::Unknown => text::ENDED_UNKNOWN,
    };
    let p = session::portal();
    view! {
        <section class="card narrow" aria-labelledby="ended-title">
            <h1 id="ended-title">{text::ENDED_TITLE}</h1>
            <p data-ended=format!("{why:?}").to_lowercase()>{message}</p>
            <button type="button" class="primary" on:click=move |_| p.stage.set(Stage::SignIn { notice: None })>
                {text::SIGN_IN_AGAIN}
            </button>
        </section>
    }
}

/// Live notices: a form submitted, an urgent alert.
#[component]
pub fn Toasts() -> impl IntoView {
    let l = live::live();
    view! {
        <div class="toasts" role="status" aria-live="polite">
            <For each=move || l.toasts.get() key=|t| t.id let:toast>
                <div class=if toast.urgent { "toast urgent" } else { "toast" }>
                    <strong>{toast.title}</strong>
                    <button type="button" class="link" on:click=move |_| l.toasts.update(|t| t.retain(|x| x.id != toast.id))>
                        {text::DISMISS}
                    </button>
                </div>
            </For>
        </div>
    }
}

/// A signal for a form's failure, and the message at `field`.
pub fn at(failure: RwSignal<Option<Failure>>, field: &'static str) -> Signal<Option<String>> {
    Signal::derive(move || failure.with(|f| f.as_ref().and_then(|f| f.at(field))))
}
