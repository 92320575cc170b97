//! Supervision on the owner's staff screen: who supervises whom, and marking a pre-licensed
//! clinician as supervised by another clinician, or no longer (`PUT
//! /api/v1/users/{id}/supervisor`). A supervised clinician's record notes are final only once
//! their supervisor co-signs them.

use leptos::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use super::widgets::{ErrorNote, Select, at};
use crate::api::{self, Failure, Supervision, UserRow};
use crate::text;

#[derive(Serialize)]
struct SupervisorChoice {
    supervisor_id: Option<Uuid>,
}

/// Every active clinician with their supervisor (and whom they supervise), each changeable.
#[component]
pub fn SupervisionCard(users: RwSignal<Option<Vec<UserRow>>>, reload: RwSignal<u32>) -> impl IntoView {
    let pairs = RwSignal::new(None::<Vec<Supervision>>);
    let failure = RwSignal::new(None::<Failure>);
    Effect::new(move |_| {
        reload.track();
        leptos::task::spawn_local(async move {
            match api::get::<Vec<Supervision>>("/api/v1/supervisions").await {
                Ok(list) => pairs.set(Some(list)),
                Err(f) => failure.set(Some(f)),
            }
        });
    });
    view! {
        <section class="card" aria-labelledby="supervision-title">
            <h2 id="supervision-title">{text::SUPERVISION}</h2>
            <p class="muted">{text::SUPERVISION_INTRO}</p>
            <ErrorNote failure=failure/>
            {move || match (users.get(), pairs.get()) {
                (Some(staff), Some(pairs)) => {
                    let clinicians: Vec<UserRow> = staff.into_iter().filter(|u| u.role == "clinician").collect();
                    let active: Vec<UserRow> = clinicians.iter().filter(|u| u.status == "active").cloned().collect();
                    if active.len() < 2 {
                        return view! { <p class="muted">{text::SUPERVISION_NEEDS_TWO}</p> }.into_any();
                    }
                    view! {
                        <ul class="rows">
                            {active.clone().into_iter().map(|u| view! {
                                <SupervisionRow clinician=u clinicians=clinicians.clone() active=active.clone()
                                    pairs=pairs.clone() reload=reload/>
                            }).collect_view()}
                        </ul>
                    }.into_any()
                }
                _ if failure.with(Option::is_some) => ().into_any(),
                _ => view! { <p class="muted" role="status">{text::LOADING}</p> }.into_any(),
            }}
        </section>
    }
}

/// One clinician: who supervises them and whom they supervise; choosing their supervisor.
#[component]
fn SupervisionRow(
    clinician: UserRow,
    clinicians: Vec<UserRow>,
    active: Vec<UserRow>,
    pairs: Vec<Supervision>,
    reload: RwSignal<u32>,
) -> impl IntoView {
    let id = clinician.user_id;
    let name = |who: Uuid| clinicians.iter().find(|c| c.user_id == who).map(UserRow::label).unwrap_or_default();
    let current = pairs.iter().find(|p| p.clinician_id == id).map(|p| p.supervisor_id);
    let supervises: Vec<String> =
        pairs.iter().filter(|p| p.supervisor_id == id).map(|p| name(p.clinician_id)).collect();
    let state = match current {
        Some(s) => format!("{} {}", text::SUPERVISED_BY, name(s)),
        None => text::NOT_SUPERVISED.to_owned(),
    };
    let chosen = RwSignal::new(current.map(|c| c.to_string()).unwrap_or_default());
    let failure = RwSignal::new(None::<Failure>);
    let options: Vec<(String, String)> =
        active.iter().filter(|c| c.user_id != id).map(|c| (c.user_id.to_string(), c.label())).collect();
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = SupervisorChoice { supervisor_id: chosen.get_untracked().parse().ok() };
        leptos::task::spawn_local(async move {
            match api::call_empty("PUT", &format!("/api/v1/users/{id}/supervisor"), &body).await {
                Ok(()) => reload.update(|r| *r += 1),
                Err(f) => failure.set(Some(f)),
            }
        });
    };
    view! {
        <li class="row supervision" data-supervisee=id.to_string()
            data-supervisor=current.map(|c| c.to_string()).unwrap_or_default()>
            <span class="who">{clinician.label()}</span>
            <span class="muted" data-supervision-state="">{state}</span>
            {(!supervises.is_empty()).then(|| view! {
                <span class="muted" data-supervises="">{format!("{} {}", text::SUPERVISES, supervises.join(", "))}</span>
            })}
            <form class="inline" on:submit=save novalidate>
                <Select id=format!("supervisor-{id}") label=text::SUPERVISOR value=chosen
                    error=at(failure, "supervisor_id") options=Signal::derive(move || options.clone())
                    empty=text::NO_SUPERVISOR/>
                <button type="submit">{text::SAVE}</button>
            </form>
            <ErrorNote failure=failure fields=&["supervisor_id"]/>
        </li>
    }
}
