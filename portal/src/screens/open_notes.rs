//! A patient's own notes under open notes (`notes.open_notes`): their final progress notes,
//! newest first, each opened read-only (`note.rs`) with its addenda and signatures. The server
//! lists nothing else to a patient (never a draft, another kind or a psychotherapy note); the
//! tab is absent when the practice has not turned open notes on.

use leptos::prelude::*;

use super::notes::Directory;
use super::widgets::ErrorNote;
use super::{Place, place};
use crate::api::{self, Failure, NoteSummary};
use crate::session;
use crate::text;
use crate::time;

/// The patient's shared notes.
#[component]
pub fn MyNotes() -> impl IntoView {
    let place = place();
    let notes = RwSignal::new(None::<Vec<NoteSummary>>);
    let failure = RwSignal::new(None::<Failure>);
    let names = Directory::load();
    if let Some(patient) = session::portal().me.get_untracked().and_then(|m| m.patient_id) {
        leptos::task::spawn_local(async move {
            match api::get::<Vec<NoteSummary>>(&format!("/api/v1/patients/{patient}/notes")).await {
                Ok(list) => notes.set(Some(list)),
                Err(f) => failure.set(Some(f)),
            }
        });
    }
    view! {
        <h1>{text::MY_NOTES}</h1>
        <p class="muted">{text::MY_NOTES_INTRO}</p>
        <ErrorNote failure=failure/>
        <section class="card" aria-label=text::MY_NOTES>
            {move || match notes.get() {
                None if failure.with(Option::is_some) => ().into_any(),
                None => view! { <p class="muted" role="status">{text::LOADING}</p> }.into_any(),
                Some(list) if list.is_empty() => view! { <p class="muted">{text::NO_SHARED_NOTES}</p> }.into_any(),
                Some(list) => view! {
                    <ul class="rows">
                        {list.into_iter().map(|n| {
                            let id = n.note_id;
                            view! {
                                <li class="row" data-note=id.to_string() data-status=n.status.clone()>
                                    <span>{time::day(n.service_at_ms)}</span>
                                    <span>{text::note_kind(&n.kind)}</span>
                                    <span class="muted">{move || names.name(n.author_id)}</span>
                                    <button type="button" on:click=move |_| place.set(Place::Note(id))>{text::READ_NOTE}</button>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any(),
            }}
        </section>
    }
}
