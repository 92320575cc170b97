//! Clinical notes around a note: a patient's notes in the chart (clinicians open and begin
//! them; front desk and billing see only that a note exists, its date, kind and status) and the
//! supervisor's co-sign queue. The note itself is `note.rs`; the templates, `templates.rs`.

use leptos::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use super::widgets::{ErrorNote, Select, at};
use super::{Place, place};
use crate::api::{self, Failure, ListedTemplate, NoteSummary, StaffMember};
use crate::live::live;
use crate::session;
use crate::text;
use crate::time;

/// The staff directory, to name authors and co-signers; loaded once per screen.
#[derive(Clone, Copy)]
pub struct Directory(RwSignal<Vec<StaffMember>>);

impl Directory {
    pub fn load() -> Self {
        let staff = RwSignal::new(Vec::new());
        leptos::task::spawn_local(async move {
            if let Ok(list) = api::get::<Vec<StaffMember>>("/api/v1/staff").await {
                staff.set(list);
            }
        });
        Self(staff)
    }

    /// How `id` appears: their name, or "Clinician" until the directory names them.
    pub fn name(&self, id: Uuid) -> String {
        let named = self.0.with(|s| s.iter().find(|m| m.user_id == id).map(StaffMember::label));
        named.unwrap_or_else(|| text::role("clinician").to_owned())
    }
}

/// The signed-in account's id.
pub fn my_id() -> Option<Uuid> {
    session::portal().me.get_untracked().map(|m| m.user_id)
}

/// The latest version of each template, in the order listed.
fn latest(templates: Vec<ListedTemplate>) -> Vec<ListedTemplate> {
    let mut out: Vec<ListedTemplate> = Vec::new();
    for t in templates {
        match out.iter_mut().find(|o| o.definition.key == t.definition.key) {
            Some(o) if o.definition.version < t.definition.version => *o = t,
            Some(_) => {}
            None => out.push(t),
        }
    }
    out
}

#[derive(Serialize)]
struct Begin {
    template_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    appointment_id: Option<Uuid>,
}

/// A patient's notes in their chart. Clinicians open the ones they may read and begin new ones;
/// front desk and billing see that a note exists, its date, kind and status, and nothing else.
#[component]
pub fn NoteList(patient: Uuid) -> impl IntoView {
    let place = place();
    let role = session::portal().me.get_untracked().map(|m| m.role).unwrap_or_default();
    let clinician = role == "clinician";
    let me = my_id();
    let notes = RwSignal::new(None::<Vec<NoteSummary>>);
    let failure = RwSignal::new(None::<Failure>);
    let names = Directory::load();
    leptos::task::spawn_local(async move {
        match api::get::<Vec<NoteSummary>>(&format!("/api/v1/patients/{patient}/notes")).await {
            Ok(list) => notes.set(Some(list)),
            Err(f) => failure.set(Some(f)),
        }
    });
    view! {
        <section class="card" aria-labelledby="notes-title">
            <h2 id="notes-title">{text::NOTES}</h2>
            <ErrorNote failure=failure/>
            {move || match notes.get() {
                None if failure.with(Option::is_some) => ().into_any(),
                None => view! { <p class="muted" role="status">{text::LOADING}</p> }.into_any(),
                Some(list) if list.is_empty() => view! { <p class="muted">{text::NO_NOTES}</p> }.into_any(),
                Some(list) => view! {
                    <ul class="rows">
                        {list.into_iter().map(|n| {
                            let id = n.note_id;
                            let opens = clinician && (Some(n.author_id) == me || n.status != "draft");
                            view! {
                                <li class="row" data-note=id.to_string() data-status=n.status.clone()>
                                    <span>{time::day(n.service_at_ms)}</span>
                                    <span>{text::note_kind(&n.kind)}</span>
                                    <span class=format!("status {}", n.status)>{text::note_status(&n.status)}</span>
                                    {n.late_entry.then(|| view! { <span class="badge">{text::LATE_ENTRY}</span> })}
                                    {clinician.then(|| view! { <span class="muted">{names.name(n.author_id)}</span> })}
                                    {opens.then(|| view! {
                                        <button type="button" on:click=move |_| place.set(Place::Note(id))>
                                            {if n.status == "draft" { text::CONTINUE_NOTE } else { text::OPEN_NOTE }}
                                        </button>
                                    })}
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any(),
            }}
            {clinician.then(|| view! { <BeginNote patient=patient/> })}
        </section>
    }
}

/// Beginning a note on a template, for one of the clinician's sessions with the patient or for
/// none.
#[component]
fn BeginNote(patient: Uuid) -> impl IntoView {
    let place = place();
    let l = live();
    let templates = RwSignal::new(Vec::<ListedTemplate>::new());
    let template = RwSignal::new(String::new());
    let session = RwSignal::new(String::new());
    let failure = RwSignal::new(None::<Failure>);
    leptos::task::spawn_local(async move {
        match api::get::<Vec<ListedTemplate>>("/api/v1/note-templates").await {
            Ok(list) => templates.set(latest(list)),
            Err(f) => failure.set(Some(f)),
        }
    });
    let sessions = Signal::derive(move || {
        let mine = my_id();
        l.schedule.with(|s| {
            let mut rows: Vec<_> = s
                .values()
                .filter(|a| a.patient_id == patient && Some(a.clinician_id) == mine && a.status == "booked")
                .map(|a| (a.starts_at_ms, a.id))
                .collect();
            rows.sort();
            rows.into_iter().rev().map(|(at, id)| (id.to_string(), time::date_time(at))).collect()
        })
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let key = template.get_untracked();
        if key.is_empty() {
            failure.set(Some(Failure::on_field("template_key", text::CHOOSE_A_TEMPLATE)));
            return;
        }
        let body = Begin { template_key: key, appointment_id: session.get_untracked().parse().ok() };
        leptos::task::spawn_local(async move {
            match api::call::<_, api::Note>("POST", &format!("/api/v1/patients/{patient}/notes"), &body).await {
                Ok(note) => place.set(Place::Note(note.summary.note_id)),
                Err(f) => failure.set(Some(f)),
            }
        });
    };
    view! {
        <form class="begin-note" on:submit=submit novalidate>
            <Select id="note-template" label=text::NOTE_TEMPLATE value=template error=at(failure, "template_key")
                options=Signal::derive(move || templates.get().into_iter()
                    .map(|t| (t.definition.key.clone(), t.definition.title.clone())).collect())/>
            <Select id="note-session" label=text::NOTE_SESSION value=session error=at(failure, "appointment_id")
                options=sessions/>
            <ErrorNote failure=failure fields=&["template_key", "appointment_id"]/>
            <button type="submit" class="primary">{text::BEGIN_NOTE}</button>
        </form>
    }
}

/// The notes awaiting the signed-in supervisor's co-signature, oldest signed first.
#[component]
pub fn CosignQueue() -> impl IntoView {
    let place = place();
    let queue = RwSignal::new(None::<Vec<NoteSummary>>);
    let failure = RwSignal::new(None::<Failure>);
    let names = Directory::load();
    leptos::task::spawn_local(async move {
        match api::get::<Vec<NoteSummary>>("/api/v1/cosign-queue").await {
            Ok(list) => queue.set(Some(list)),
            Err(f) => failure.set(Some(f)),
        }
    });
    view! {
        <h1>{text::COSIGN_QUEUE}</h1>
        <p class="muted">{text::COSIGN_INTRO}</p>
        <ErrorNote failure=failure/>
        <section class="card">
            {move || match queue.get() {
                None if failure.with(Option::is_some) => ().into_any(),
                None => view! { <p class="muted" role="status">{text::LOADING}</p> }.into_any(),
                Some(list) if list.is_empty() => view! { <p class="muted">{text::COSIGN_EMPTY}</p> }.into_any(),
                Some(list) => view! {
                    <ul class="rows">
                        {list.into_iter().map(|n| {
                            let id = n.note_id;
                            view! {
                                <li class="row" data-note=id.to_string()>
                                    <span class="who">{names.name(n.author_id)}</span>
                                    <span>{text::note_kind(&n.kind)}</span>
                                    <span class="muted">{format!("{} {}", text::SIGNED_ON, n.signed_at_ms.map(time::date_time).unwrap_or_default())}</span>
                                    <button type="button" on:click=move |_| place.set(Place::Note(id))>{text::REVIEW_AND_COSIGN}</button>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any(),
            }}
        </section>
    }
}
