//! The schedule, live: a clinician's own, or the practice's for front desk and owners, by day or
//! by week. Front desk books, reschedules and cancels here (a double booking's 409 is explained
//! at the form) and sends a reminder now, with its delivery state.

use std::collections::HashMap;

use confidant_protocol::frames::Appointment;
use leptos::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use super::widgets::{ErrorNote, Field, Select, at};
use crate::api::{self, Failure, PatientRecord, Reminder, StaffMember};
use crate::live::live;
use crate::session;
use crate::text;
use crate::time;

/// Names of the people the schedule mentions, loaded once per screen.
#[derive(Clone, Copy)]
pub struct Names {
    pub patients: RwSignal<HashMap<Uuid, String>>,
    pub staff: RwSignal<Vec<StaffMember>>,
}

impl Names {
    /// Loads the patients within the caller's reach and the practice's staff.
    pub fn load() -> Self {
        let names = Names { patients: RwSignal::new(HashMap::new()), staff: RwSignal::new(Vec::new()) };
        leptos::task::spawn_local(async move {
            if let Ok(list) = api::get::<Vec<PatientRecord>>("/api/v1/patients").await {
                names.patients.set(list.into_iter().filter_map(|p| Some((p.id?, p.name()))).collect());
            }
            if let Ok(list) = api::get::<Vec<StaffMember>>("/api/v1/staff").await {
                names.staff.set(list);
            }
        });
        names
    }

    fn patient(&self, id: Uuid) -> String {
        self.patients.with(|p| p.get(&id).cloned()).unwrap_or_else(|| text::PATIENT.to_owned())
    }

    fn clinician(&self, id: Uuid) -> String {
        self.staff.with(|s| s.iter().find(|m| m.user_id == id).map(|m| m.label())).unwrap_or_default()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Span {
    Day,
    Week,
}

#[derive(Serialize)]
struct Book {
    clinician_id: Uuid,
    patient_id: Uuid,
    starts_at_ms: i64,
    ends_at_ms: i64,
}

#[derive(Serialize)]
struct Move {
    starts_at_ms: i64,
    ends_at_ms: i64,
}

/// The schedule screen.
#[component]
pub fn ScheduleScreen() -> impl IntoView {
    let l = live();
    let me = session::portal().me.get_untracked();
    let role = me.as_ref().map(|m| m.role.clone()).unwrap_or_default();
    let books = matches!(role.as_str(), "front_desk" | "practice_owner");
    let names = Names::load();
    let span = RwSignal::new(Span::Day);
    let from = RwSignal::new(time::start_of_day(js_sys::Date::now()));
    let editing = RwSignal::new(None::<Appointment>);
    let to = move || time::add_days(from.get(), if span.get() == Span::Day { 1 } else { 7 });
    let shown = move || {
        let (a, b) = (from.get() as i64, to() as i64);
        let mut list: Vec<Appointment> =
            l.schedule.with(|s| s.values().filter(|x| x.starts_at_ms < b && x.ends_at_ms > a).cloned().collect());
        list.sort_by_key(|x| x.starts_at_ms);
        list
    };
    let step = move |days: i32| {
        let n = if span.get_untracked() == Span::Day { days } else { days * 7 };
        from.update(|f| *f = time::add_days(*f, n));
    };
    let title = if books { text::PRACTICE_SCHEDULE } else { text::MY_SCHEDULE };
    view! {
        <h1>{title}</h1>
        <div class="toolbar" role="group" aria-label=text::NAV_SCHEDULE>
            <button type="button" on:click=move |_| step(-1)>{text::PREVIOUS}</button>
            <button type="button" on:click=move |_| from.set(time::start_of_day(js_sys::Date::now()))>{text::TODAY}</button>
            <button type="button" on:click=move |_| step(1)>{text::NEXT}</button>
            <button type="button" aria-pressed=move || (span.get() == Span::Day).to_string() on:click=move |_| span.set(Span::Day)>{text::DAY}</button>
            <button type="button" aria-pressed=move || (span.get() == Span::Week).to_string() on:click=move |_| span.set(Span::Week)>{text::WEEK}</button>
            <span class="period">{move || time::day(from.get() as i64)}</span>
        </div>
        <section class="card" aria-label=title data-version=move || l.schedule_version.get().to_string()>
            {move || {
                let list = shown();
                if list.is_empty() {
                    return view! { <p class="muted">{text::NO_APPOINTMENTS}</p> }.into_any();
                }
                view! {
                    <ul class="rows schedule">
                        {list.into_iter().map(|a| {
                            let cancelled = a.status == "cancelled";
                            let row = a.clone();
                            view! {
                                <li class=if cancelled { "row cancelled" } else { "row" } data-appointment=a.id.to_string()>
                                    <span class="when">{format!("{} – {}", time::date_time(a.starts_at_ms), time::clock(a.ends_at_ms))}</span>
                                    <span class="who">{names.patient(a.patient_id)}</span>
                                    <span class="muted">{names.clinician(a.clinician_id)}</span>
                                    {cancelled.then(|| view! { <span class="badge">{text::CANCELLED}</span> })}
                                    {(books && !cancelled).then(|| view! {
                                        <button type="button" on:click=move |_| editing.set(Some(row.clone()))>{text::EDIT}</button>
                                    })}
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
        </section>
        {books.then(|| view! {
            {move || editing.get().map(|a| view! { <Edit appointment=a names=names editing=editing/> })}
            <BookForm names=names/>
        })}
    }
}

/// Booking: clinician, patient, start and length; the server's 409 shown at the form.
#[component]
fn BookForm(names: Names) -> impl IntoView {
    let clinician = RwSignal::new(String::new());
    let patient = RwSignal::new(String::new());
    let starts = RwSignal::new(String::new());
    let minutes = RwSignal::new("50".to_owned());
    let failure = RwSignal::new(None::<Failure>);
    let notice = RwSignal::new(false);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        notice.set(false);
        let Ok(clinician_id) = clinician.get_untracked().parse::<Uuid>() else {
            return failure.set(Some(Failure::on_field("clinician_id", text::CHOOSE_CLINICIAN)));
        };
        let Ok(patient_id) = patient.get_untracked().parse::<Uuid>() else {
            return failure.set(Some(Failure::on_field("patient_id", text::CHOOSE_PATIENT)));
        };
        let Some((starts_at_ms, ends_at_ms)) = slot(&starts.get_untracked(), &minutes.get_untracked(), failure) else {
            return;
        };
        let body = Book { clinician_id, patient_id, starts_at_ms, ends_at_ms };
        failure.set(None);
        leptos::task::spawn_local(async move {
            match api::call::<_, serde_json::Value>("POST", "/api/v1/appointments", &body).await {
                Ok(_) => notice.set(true),
                Err(f) => failure.set(Some(conflict_explained(f))),
            }
        });
    };
    view! {
        <form class="card" on:submit=submit novalidate aria-labelledby="book-title">
            <h2 id="book-title">{text::BOOK}</h2>
            <Select id="clinician_id" label=text::CLINICIAN value=clinician error=at(failure, "clinician_id")
                options=Signal::derive(move || names.staff.with(|s| s.iter().filter(|m| m.role == "clinician").map(|m| (m.user_id.to_string(), m.label())).collect()))/>
            <Select id="patient_id" label=text::PATIENT value=patient error=at(failure, "patient_id")
                options=Signal::derive(move || {
                    let mut list: Vec<(String, String)> = names.patients.with(|p| p.iter().map(|(k, v)| (k.to_string(), v.clone())).collect());
                    list.sort_by(|a, b| a.1.cmp(&b.1));
                    list
                })/>
            <Field id="starts_at_ms" label=text::STARTS value=starts error=at(failure, "starts_at_ms") kind="datetime-local"/>
            <Field id="ends_at_ms" label=text::DURATION_MINUTES value=minutes error=at(failure, "ends_at_ms") kind="number" inputmode="numeric"/>
            <ErrorNote failure=failure fields=&["clinician_id", "patient_id", "starts_at_ms", "ends_at_ms"]/>
            <Show when=move || notice.get()><p class="notice" role="status">{text::BOOKED}</p></Show>
            <button type="submit" class="primary">{text::BOOK}</button>
        </form>
    }
}

/// Rescheduling, cancelling and reminding about one appointment.
#[component]
fn Edit(appointment: Appointment, names: Names, editing: RwSignal<Option<Appointment>>) -> impl IntoView {
    let id = appointment.id;
    let starts = RwSignal::new(time::to_local_input(appointment.starts_at_ms));
    let length = (appointment.ends_at_ms - appointment.starts_at_ms) / 60_000;
    let minutes = RwSignal::new(length.to_string());
    let failure = RwSignal::new(None::<Failure>);
    let reminders = RwSignal::new(Vec::<Reminder>::new());
    let load_reminders = move || {
        leptos::task::spawn_local(async move {
            if let Ok(list) = api::get::<Vec<Reminder>>(&format!("/api/v1/appointments/{id}/reminders")).await {
                reminders.set(list);
            }
        });
    };
    load_reminders();
    let reschedule = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some((starts_at_ms, ends_at_ms)) = slot(&starts.get_untracked(), &minutes.get_untracked(), failure) else {
            return;
        };
        failure.set(None);
        let body = Move { starts_at_ms, ends_at_ms };
        leptos::task::spawn_local(async move {
            match api::call::<_, serde_json::Value>("PUT", &format!("/api/v1/appointments/{id}"), &body).await {
                Ok(_) => editing.set(None),
                Err(f) => failure.set(Some(conflict_explained(f))),
            }
        });
    };
    let cancel = move |_| {
        leptos::task::spawn_local(async move {
            match api::post_empty(&format!("/api/v1/appointments/{id}/cancel")).await {
                Ok(()) => editing.set(None),
                Err(f) => failure.set(Some(f)),
            }
        });
    };
    let remind = move |_| {
        leptos::task::spawn_local(async move {
            match api::post_empty(&format!("/api/v1/appointments/{id}/reminders")).await {
                Ok(()) => load_reminders(),
                Err(f) => failure.set(Some(f)),
            }
        });
    };
    view! {
        <form class="card" on:submit=reschedule novalidate aria-labelledby="edit-title">
            <h2 id="edit-title">{format!("{} · {}", names.patient(appointment.patient_id), time::date_time(appointment.starts_at_ms))}</h2>
            <Field id="reschedule-starts" label=text::STARTS value=starts error=at(failure, "starts_at_ms") kind="datetime-local"/>
            <Field id="reschedule-minutes" label=text::DURATION_MINUTES value=minutes error=at(failure, "ends_at_ms") kind="number" inputmode="numeric"/>
            <ErrorNote failure=failure fields=&["starts_at_ms", "ends_at_ms"]/>
            <div class="toolbar">
                <button type="submit" class="primary">{text::RESCHEDULE}</button>
                <button type="button" on:click=cancel>{text::CANCEL_APPOINTMENT}</button>
                <button type="button" on:click=remind>{text::SEND_REMINDER}</button>
                <button type="button" class="link" on:click=move |_| editing.set(None)>{text::BACK}</button>
            </div>
            <h3>{text::REMINDER_STATUS}</h3>
            <ul class="rows">
                {move || reminders.get().into_iter().map(|r| view! {
                    <li class="row" data-reminder-state=r.state.clone()>{text::reminder_state(&r.state)} {r.reason.map(|f| format!(" ({})", text::reminder_reason(&f)))}</li>
                }).collect_view()}
            </ul>
        </form>
    }
}

/// The start and end (UTC ms) of a slot typed as a local start and a length in minutes (5 to
/// 480), or `None` with the problem shown at its field.
fn slot(starts: &str, minutes: &str, failure: RwSignal<Option<Failure>>) -> Option<(i64, i64)> {
    let Some(starts_at_ms) = time::parse_local(starts) else {
        failure.set(Some(Failure::on_field("starts_at_ms", text::START_INVALID)));
        return None;
    };
    let Some(length) = minutes.trim().parse::<i64>().ok().filter(|m| (5..=480).contains(m)) else {
        failure.set(Some(Failure::on_field("ends_at_ms", text::LENGTH_INVALID)));
        return None;
    };
    Some((starts_at_ms, starts_at_ms + length * 60_000))
}

/// A double booking's 409, in plain words at the start time.
fn conflict_explained(mut f: Failure) -> Failure {
    if f.status == 409 {
        f.message = text::CONFLICT_BOOKING.to_owned();
        f.field = Some("starts_at_ms".into());
    }
    f
}
