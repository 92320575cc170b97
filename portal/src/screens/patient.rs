//! The patient's screens: upcoming appointments, forms to fill in, a form filled live (every
//! answer saved as it is given, so a draft resumes on another device), and reminder preferences.

use confidant_protocol::frames::{ClientFrame, ServerFrame};
use confidant_protocol::{Answer, AnswerKind, FormDefinition, FormItem, IntakeAnswers, VERSION, reports_self_harm};
use leptos::prelude::*;
use uuid::Uuid;

use super::widgets::{ErrorNote, at};
use super::{Place, place};
use crate::api::{self, Assignment, Failure, Preferences as Prefs, StaffMember};
use crate::live::{self, live};
use crate::session;
use crate::text;
use crate::time;

/// Appointments to come, and the forms assigned.
#[component]
pub fn PatientHome() -> impl IntoView {
    let l = live();
    let place = place();
    let forms = RwSignal::new(None::<Vec<Assignment>>);
    let failure = RwSignal::new(None::<Failure>);
    let patient = session::portal().me.get_untracked().and_then(|m| m.patient_id);
    let staff = RwSignal::new(Vec::<StaffMember>::new());
    leptos::task::spawn_local(async move {
        if let Ok(list) = api::get::<Vec<StaffMember>>("/api/v1/staff").await {
            staff.set(list);
        }
    });
    let clinician = move |id: Uuid| {
        staff
            .with(|s| s.iter().find(|m| m.user_id == id).map(StaffMember::label))
            .unwrap_or_else(|| text::role("clinician").to_owned())
    };
    Effect::new(move |_| {
        l.intake_version.track();
        let Some(patient) = patient else { return };
        leptos::task::spawn_local(async move {
            match api::get::<Vec<Assignment>>(&format!("/api/v1/patients/{patient}/intake-forms")).await {
                Ok(list) => forms.set(Some(list)),
                Err(f) => failure.set(Some(f)),
            }
        });
    });
    let upcoming = move || {
        let now = js_sys::Date::now() as i64;
        let mut list: Vec<_> = l
            .schedule
            .with(|s| s.values().filter(|a| a.ends_at_ms > now && a.status != "cancelled").cloned().collect());
        list.sort_by_key(|a| a.starts_at_ms);
        list
    };
    view! {
        <h1>{text::PATIENT_HOME}</h1>
        <ErrorNote failure=failure/>
        <section class="card" aria-labelledby="upcoming-title">
            <h2 id="upcoming-title">{text::UPCOMING}</h2>
            {move || {
                let list = upcoming();
                if list.is_empty() {
                    view! { <p class="muted">{text::NO_UPCOMING}</p> }.into_any()
                } else {
                    view! {
                        <ul class="rows">
                            {list.into_iter().map(|a| view! {
                                <li class="row" data-appointment=a.id.to_string()>
                                    <span class="when">{time::date_time(a.starts_at_ms)}</span>
                                    <span>{format!("{} {}", text::WITH, clinician(a.clinician_id))}</span>
                                    <span class="muted">{format!("{} {}", (a.ends_at_ms - a.starts_at_ms) / 60_000, text::MINUTES)}</span>
                                </li>
                            }).collect_view()}
                        </ul>
                    }.into_any()
                }
            }}
        </section>
        <section class="card" aria-labelledby="forms-title">
            <h2 id="forms-title">{text::FORMS}</h2>
            {move || match forms.get() {
                None => view! { <p class="muted">{text::LOADING}</p> }.into_any(),
                Some(list) if list.is_empty() => view! { <p class="muted">{text::NO_FORMS}</p> }.into_any(),
                Some(list) => view! {
                    <ul class="rows">
                        {list.into_iter().map(|a| {
                            let id = a.assignment_id;
                            let submitted = a.submitted_at_ms;
                            view! {
                                <li class="row">
                                    <span>{text::form_title(&a.form)}</span>
                                    {match submitted {
                                        Some(at) => view! { <span class="muted">{format!("{} {}", text::FORM_SUBMITTED_ON, time::day(at))}</span> }.into_any(),
                                        None => view! {
                                            <button type="button" class="primary" data-assignment=id.to_string()
                                                on:click=move |_| place.set(Place::Form(id))>{text::OPEN_FORM}</button>
                                        }.into_any(),
                                    }}
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any(),
            }}
        </section>
    }
}

/// How the autosave went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SaveState {
    Idle,
    Saving,
    Saved,
    Failed,
}

/// A form filled live over the socket.
#[component]
pub fn FormScreen(assignment: Uuid) -> impl IntoView {
    let place = place();
    let l = live();
    let form = RwSignal::new(None::<FormDefinition>);
    let answers = RwSignal::new(IntakeAnswers::new());
    let saved = RwSignal::new(SaveState::Idle);
    let submitted = RwSignal::new(false);
    let failure = RwSignal::new(None::<Failure>);
    let missing = RwSignal::new(Vec::<String>::new());
    let revision = RwSignal::new(0u64);

    // Open (again after a reconnect): the saved draft comes back with the form.
    Effect::new(move |_| {
        if !l.connected.get() || form.get_untracked().is_some() {
            return;
        }
        let id = live::request_id();
        let frame = ClientFrame::IntakeOpen { v: VERSION, id: id.clone(), assignment_id: assignment };
        live::request(id, &frame, move |answer| match answer {
            ServerFrame::IntakeForm { form: f, answers: a, .. } => {
                answers.set(a);
                form.set(Some(f));
            }
            ServerFrame::Error { code, message, .. } => failure.set(Some(frame_failure(code.as_str(), message))),
            _ => {}
        });
    });

    let save = move || {
        let this = revision.get_untracked() + 1;
        revision.set(this);
        saved.set(SaveState::Saving);
        let id = live::request_id();
        let frame = ClientFrame::IntakeDraft {
            v: VERSION,
            id: id.clone(),
            assignment_id: assignment,
            answers: answers.get_untracked(),
        };
        let sent = live::request(id, &frame, move |answer| {
            if revision.get_untracked() != this {
                return;
            }
            match answer {
                ServerFrame::Ack { .. } => saved.set(SaveState::Saved),
                ServerFrame::Error { code, message, .. } => {
                    saved.set(SaveState::Failed);
                    failure.set(Some(frame_failure(code.as_str(), message)));
                }
                _ => {}
            }
        });
        if !sent {
            saved.set(SaveState::Failed);
        }
    };
    let answer = move |item: String, value: Answer| {
        answers.update(|a| {
            a.insert(item.clone(), value);
        });
        missing.update(|m| m.retain(|x| *x != item));
        save();
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(f) = form.get_untracked() else { return };
        let given = answers.get_untracked();
        let unanswered: Vec<String> = f
            .items
            .iter()
            .filter(|i| i.required && !matches!(given.get(&i.id), Some(Answer::Choice(_)) | Some(Answer::Text(_))))
            .map(|i| i.id.clone())
            .collect();
        if !unanswered.is_empty() {
            focus(&format!("item-{}", unanswered[0]));
            missing.set(unanswered);
            return;
        }
        let id = live::request_id();
        let frame = ClientFrame::IntakeSubmit { v: VERSION, id: id.clone(), assignment_id: assignment, answers: given };
        live::request(id, &frame, move |answer| match answer {
            ServerFrame::Ack { .. } => submitted.set(true),
            ServerFrame::Error { code, message, .. } => failure.set(Some(frame_failure(code.as_str(), message))),
            _ => {}
        });
    };
    let self_harm = move || form.with(|f| f.as_ref().is_some_and(|f| answers.with(|a| reports_self_harm(&f.kind, a))));

    view! {
        <button type="button" class="link" on:click=move |_| place.set(Place::Home)>{text::BACK}</button>
        <Show when=self_harm>
            <aside class="crisis" role="alert" aria-labelledby="crisis-title">
                <h2 id="crisis-title">{text::CRISIS_TITLE}</h2>
                <p>{text::CRISIS_TEXT}</p>
                <p><strong>{move || if submitted.get() { text::CRISIS_ALERTED } else { text::CRISIS_CLINICIAN }}</strong></p>
            </aside>
        </Show>
        <ErrorNote failure=failure/>
        {move || {
            if submitted.get() {
                return view! {
                    <section class="card" aria-labelledby="done-title">
                        <h1 id="done-title" data-submitted="true">{text::SUBMITTED_TITLE}</h1>
                        <p>{text::SUBMITTED_TEXT}</p>
                    </section>
                }.into_any();
            }
            let Some(f) = form.get() else { return view! { <p class="muted" role="status">{text::LOADING}</p> }.into_any() };
            view! {
                <form class="card form" on:submit=submit novalidate aria-labelledby="form-title">
                    <h1 id="form-title">{f.title.clone()}</h1>
                    <p>{f.instructions.clone()}</p>
                    {f.items.into_iter().map(|item| view! { <Item item=item answers=answers missing=missing on_answer=answer/> }).collect_view()}
                    <p class="save-state" role="status" data-save=move || format!("{:?}", saved.get()).to_lowercase()>
                        {move || match saved.get() {
                            SaveState::Idle => "",
                            SaveState::Saving => text::SAVING,
                            SaveState::Saved => text::SAVED,
                            SaveState::Failed => text::SAVE_FAILED,
                        }}
                    </p>
                    <button type="submit" class="primary">{text::SUBMIT}</button>
                </form>
            }.into_any()
        }}
    }
}

/// One question, with its error at the question.
#[component]
fn Item(
    item: FormItem,
    answers: RwSignal<IntakeAnswers>,
    missing: RwSignal<Vec<String>>,
    on_answer: impl Fn(String, Answer) + Copy + 'static,
) -> impl IntoView {
    let id = item.id.clone();
    let dom = format!("item-{}", item.id);
    let error_id = format!("{dom}-error");
    let is_missing = {
        let id = id.clone();
        move || missing.with(|m| m.contains(&id))
    };
    let error = {
        let is_missing = is_missing.clone();
        move || is_missing().then_some(text::ANSWER_REQUIRED)
    };
    let required = item.required.then_some(view! { <span class="required">" (" {text::REQUIRED} ")"</span> });
    match item.answer {
        AnswerKind::Choice { options } => view! {
            <fieldset class="item" id=dom.clone() tabindex="-1" aria-describedby=error_id.clone()
                aria-invalid=move || is_missing().then_some("true")>
                <legend>{item.text.clone()}{required}</legend>
                {options.into_iter().enumerate().map(|(n, label)| {
                    let id = id.clone();
                    let checked = {
                        let id = id.clone();
                        move || answers.with(|a| a.get(&id) == Some(&Answer::Choice(n as u64)))
                    };
                    let input = format!("{dom}-{n}");
                    view! {
                        <label class="option" for=input.clone()>
                            <input type="radio" id=input.clone() name=dom.clone() value=n.to_string()
                                prop:checked=checked
                                on:change=move |_| on_answer(id.clone(), Answer::Choice(n as u64))/>
                            {label}
                        </label>
                    }
                }).collect_view()}
                <p class="error" id=error_id.clone()>{error}</p>
            </fieldset>
        }
        .into_any(),
        AnswerKind::Text { max_chars } => {
            let value = {
                let id = id.clone();
                move || {
                    answers.with(|a| match a.get(&id) {
                        Some(Answer::Text(t)) => t.clone(),
                        _ => String::new(),
                    })
                }
            };
            view! {
                <div class="item field">
                    <label for=dom.clone()>{item.text.clone()}{required}</label>
                    <textarea id=dom.clone() maxlength=max_chars.to_string() rows="3"
                        aria-describedby=error_id.clone() aria-invalid=move || is_missing().then_some("true")
                        prop:value=value
                        on:input=move |ev| {
                            let text = event_target_value(&ev);
                            on_answer(id.clone(), if text.is_empty() { Answer::Blank } else { Answer::Text(text) })
                        }></textarea>
                    <p class="error" id=error_id.clone()>{error}</p>
                </div>
            }
            .into_any()
        }
    }
}

fn frame_failure(code: &str, message: String) -> Failure {
    Failure {
        status: 400,
        code: code.to_owned(),
        message: text::error_message(code).map(str::to_owned).unwrap_or(message),
        field: None,
        request_id: None,
    }
}

/// Moves the keyboard focus to element `id`.
pub(crate) fn focus(id: &str) {
    use wasm_bindgen::JsCast;
    if let Some(el) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id(id))
        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
    {
        let _ = el.focus();
    }
}

/// Reminder preferences: email on or off, and an OpenPGP key for reminders with details.
#[component]
pub fn Preferences() -> impl IntoView {
    let patient = session::portal().me.get_untracked().and_then(|m| m.patient_id);
    let enabled = RwSignal::new(true);
    let key = RwSignal::new(String::new());
    let failure = RwSignal::new(None::<Failure>);
    let notice = RwSignal::new(false);
    let path = patient.map(|p| format!("/api/v1/patients/{p}/reminder-preferences")).unwrap_or_default();
    {
        let path = path.clone();
        leptos::task::spawn_local(async move {
            if let Ok(p) = api::get::<Prefs>(&path).await {
                enabled.set(p.email_enabled);
                // A key typed before the saved one arrived is the person's: it is not replaced.
                key.update(|k| {
                    if k.is_empty() {
                        *k = p.pgp_public_key.unwrap_or_default();
                    }
                });
            }
        });
    }
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        notice.set(false);
        failure.set(None);
        let body = Prefs {
            email_enabled: enabled.get_untracked(),
            lead_minutes: None,
            pgp_public_key: Some(key.get_untracked()).filter(|k| !k.trim().is_empty()),
        };
        let path = path.clone();
        leptos::task::spawn_local(async move {
            match api::call::<_, serde_json::Value>("PUT", &path, &body).await {
                Ok(_) => notice.set(true),
                Err(mut f) => {
                    if f.code == "invalid_field" {
                        f.field = Some("pgp_public_key".into());
                    }
                    failure.set(Some(f))
                }
            }
        });
    };
    view! {
        <form class="card" on:submit=submit novalidate aria-labelledby="prefs-title">
            <h1 id="prefs-title">{text::PREFERENCES_TITLE}</h1>
            <label class="option" for="email-enabled">
                <input type="checkbox" id="email-enabled" prop:checked=move || enabled.get()
                    on:change=move |ev| enabled.set(event_target_checked(&ev))/>
                {text::EMAIL_REMINDERS}
            </label>
            <div class="field">
                <label for="pgp_public_key">{text::PGP_KEY}</label>
                <p class="hint" id="pgp-hint">{text::PGP_HINT}</p>
                <textarea id="pgp_public_key" rows="6" aria-describedby="pgp-hint pgp-error"
                    aria-invalid=move || failure.with(|f| f.as_ref().and_then(|f| f.at("pgp_public_key")).map(|_| "true"))
                    prop:value=move || key.get() on:input=move |ev| key.set(event_target_value(&ev))></textarea>
                <p class="error" id="pgp-error">{move || at(failure, "pgp_public_key").get()}</p>
            </div>
            <ErrorNote failure=failure fields=&["pgp_public_key"]/>
            <Show when=move || notice.get()><p class="notice" role="status">{text::PREFERENCES_SAVED}</p></Show>
            <button type="submit" class="primary">{text::SAVE}</button>
        </form>
    }
}
