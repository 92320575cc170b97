//! One clinical note. Its author writes the draft in a form generated from the note's template
//! (texts, choices, dates, lists), autosaved over the socket as they type (`note.draft`, over
//! REST when the socket is down) so it resumes on any browser; signing asks for a fresh TOTP
//! code. A signed note shows locked, with its signed addenda; a clinician adds one with a fresh
//! code, and the supervisor a note awaits co-signs it. A signed record note downloads as a PDF
//! (a plain link: the browser sends the session cookie; the server says `attachment`).

use std::time::Duration;

use confidant_protocol::VERSION;
use confidant_protocol::frames::{ClientFrame, ServerFrame};
use leptos::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use super::notes::{Directory, my_id};
use super::widgets::{ErrorNote, Field, at};
use super::{Place, place};
use crate::api::{self, Failure, FieldValue, Measure, Note, NoteFields, NoteSummary, TemplateSection};
use crate::live;
use crate::session;
use crate::text;
use crate::time;

/// How long typing pauses before the draft is saved.
const AUTOSAVE_PAUSE: Duration = Duration::from_millis(400);

/// A note, as its reader may see it.
#[component]
pub fn NoteScreen(note_id: Uuid) -> impl IntoView {
    let place = place();
    let note = RwSignal::new(None::<Note>);
    let failure = RwSignal::new(None::<Failure>);
    let reload = RwSignal::new(0u32);
    let names = Directory::load();
    let me = my_id();
    let role = session::portal().me.get_untracked().map(|m| m.role).unwrap_or_default();
    let clinician = role == "clinician";
    // A patient reads their own notes under open notes, from their list of them.
    let patient = role == "patient";
    Effect::new(move |_| {
        reload.track();
        leptos::task::spawn_local(async move {
            match api::get::<Note>(&format!("/api/v1/notes/{note_id}")).await {
                Ok(n) => note.set(Some(n)),
                Err(f) => failure.set(Some(f)),
            }
        });
    });
    let back = move |_| match note.with_untracked(|n| n.as_ref().map(|n| n.summary.patient_id)) {
        _ if patient => place.set(Place::MyNotes),
        Some(record) => place.set(Place::Chart(record)),
        None => place.set(Place::Patients),
    };
    view! {
        <button type="button" class="link" on:click=back>{if patient { text::BACK_TO_MY_NOTES } else { text::BACK_TO_CHART }}</button>
        <ErrorNote failure=failure/>
        {move || match note.get() {
            None if failure.with(Option::is_some) => ().into_any(),
            None => view! { <p class="muted" role="status">{text::LOADING}</p> }.into_any(),
            Some(n) => {
                let s = n.summary.clone();
                let editable = s.status == "draft" && Some(s.author_id) == me;
                let cosigns = s.status == "awaiting_cosign" && s.cosigner_id == me && s.cosigner_id.is_some();
                let addends = clinician && s.status != "draft";
                // A psychotherapy note is never part of an export of the record.
                let exports = s.status != "draft" && s.kind != "psychotherapy";
                view! {
                    <section class="card note" aria-labelledby="note-title" data-note-status=s.status.clone()>
                        <h1 id="note-title">{n.template.title.clone()}</h1>
                        <Facts summary=s.clone() names=names/>
                        {exports.then(|| view! {
                            <p><a class="button" href=format!("/api/v1/notes/{note_id}/pdf") download="note.pdf">{text::DOWNLOAD_PDF}</a></p>
                        })}
                        <Context note=n.clone()/>
                        {if editable {
                            view! { <DraftEditor note=n.clone() reload=reload/> }.into_any()
                        } else {
                            view! { <Locked note=n.clone()/> }.into_any()
                        }}
                    </section>
                    {(s.status != "draft").then(|| view! { <Addenda note=n.clone() names=names/> })}
                    {cosigns.then(|| view! { <Cosign note_id=note_id reload=reload/> })}
                    {addends.then(|| view! { <AddAddendum note_id=note_id reload=reload/> })}
                }.into_any()
            }
        }}
    }
}

/// The note's facts: date of service, kind, status, who wrote and signed it.
#[component]
fn Facts(summary: NoteSummary, names: Directory) -> impl IntoView {
    let s = summary;
    view! {
        <dl class="facts">
            <dt>{text::DATE_OF_SERVICE}</dt><dd>{time::day(s.service_at_ms)}</dd>
            <dt>{text::NOTE_KIND}</dt><dd>{text::note_kind(&s.kind)}</dd>
            <dt>{text::NOTE_STATUS}</dt>
            <dd data-status=s.status.clone()>
                {text::note_status(&s.status)}
                {s.late_entry.then(|| view! { " " <span class="badge">{text::LATE_ENTRY}</span> })}
            </dd>
            <dt>{text::AUTHOR}</dt><dd>{move || names.name(s.author_id)}</dd>
            {s.signed_at_ms.map(|at| view! { <dt>{text::SIGNED}</dt><dd>{time::date_time(at)}</dd> })}
            {s.cosigner_id.map(|c| view! {
                <dt>{text::COSIGNER}</dt>
                <dd>{move || names.name(c)} " " {s.cosigned_at_ms.map(|at| format!("({} {})", text::COSIGNED_ON, time::date_time(at)))
                    .unwrap_or_else(|| format!("({})", text::AWAITING))}</dd>
            })}
        </dl>
    }
}

/// What the note was pre-filled with: the latest PHQ-9 and GAD-7 and their change since the
/// previous note, and the treatment plan's diagnosis and goals.
#[component]
fn Context(note: Note) -> impl IntoView {
    let c = note.context;
    let measure = |form: &'static str, m: Option<Measure>| {
        m.map(|m| {
            let change = match m.change_since_last_note {
                Some(d) if d > 0 => format!(", +{d} {}", text::SINCE_LAST_NOTE),
                Some(d) => format!(", {d} {}", text::SINCE_LAST_NOTE),
                None => String::new(),
            };
            view! {
                <li data-context=form>
                    {format!("{} {} ({}, {}){change}", text::form_short(form), m.total, text::severity(&m.severity), time::day(m.submitted_at_ms))}
                </li>
            }
        })
    };
    let empty = c.phq9.is_none() && c.gad7.is_none() && c.diagnosis.is_empty() && c.goals.is_empty();
    (!empty).then(|| {
        view! {
            <aside class="context" aria-label=text::NOTE_CONTEXT>
                <h2>{text::NOTE_CONTEXT}</h2>
                <ul>
                    {measure("phq9", c.phq9)}
                    {measure("gad7", c.gad7)}
                    {(!c.diagnosis.is_empty()).then(|| view! { <li>{format!("{}: {}", text::DIAGNOSIS, c.diagnosis.join("; "))}</li> })}
                    {(!c.goals.is_empty()).then(|| view! { <li>{format!("{}: {}", text::GOALS, c.goals.join("; "))}</li> })}
                </ul>
            </aside>
        }
    })
}

/// How the autosave stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SaveState {
    Idle,
    Pending,
    Saving,
    Saved,
    Failed,
}

#[derive(Serialize)]
struct Draft {
    fields: NoteFields,
}

#[derive(Serialize)]
struct Code {
    totp_code: String,
}

/// The author's draft: the template's sections, saved as typed; signing with a fresh code.
#[component]
fn DraftEditor(note: Note, reload: RwSignal<u32>) -> impl IntoView {
    let note_id = note.summary.note_id;
    let fields = RwSignal::new(note.fields.clone());
    let saved = RwSignal::new(SaveState::Idle);
    let revision = RwSignal::new(0u64);
    let failure = RwSignal::new(None::<Failure>);
    let code = RwSignal::new(String::new());

    // Saves the fields as they stand, over the socket (REST when it is down).
    let save = move |this: u64| {
        if revision.get_untracked() != this {
            return;
        }
        saved.set(SaveState::Saving);
        let id = live::request_id();
        let frame = ClientFrame::NoteDraft { v: VERSION, id: id.clone(), note_id, fields: fields.get_untracked() };
        let sent = live::request(id, &frame, move |answer| {
            if revision.get_untracked() != this {
                return;
            }
            match answer {
                ServerFrame::Ack { .. } => saved.set(SaveState::Saved),
                ServerFrame::Error { code, message, .. } => {
                    saved.set(SaveState::Failed);
                    failure.set(Some(Failure {
                        status: 400,
                        message: text::error_message(code.as_str()).map(str::to_owned).unwrap_or(message),
                        code: code.as_str().to_owned(),
                        field: None,
                        request_id: None,
                    }));
                }
                _ => {}
            }
        });
        if !sent {
            let body = Draft { fields: fields.get_untracked() };
            leptos::task::spawn_local(async move {
                let answer = api::call_empty("PUT", &format!("/api/v1/notes/{note_id}/draft"), &body).await;
                if revision.get_untracked() != this {
                    return;
                }
                match answer {
                    Ok(()) => saved.set(SaveState::Saved),
                    Err(f) => {
                        saved.set(SaveState::Failed);
                        failure.set(Some(f));
                    }
                }
            });
        }
    };
    let change = move |id: String, value: FieldValue| {
        fields.update(|f| {
            f.insert(id.clone(), value);
        });
        failure.update(|f| {
            if f.as_ref().is_some_and(|f| f.field.as_deref() == Some(id.as_str())) {
                *f = None;
            }
        });
        let this = revision.get_untracked() + 1;
        revision.set(this);
        saved.set(SaveState::Pending);
        set_timeout(move || save(this), AUTOSAVE_PAUSE);
    };
    let sections = note.template.sections.clone();
    let sign = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        // A required section left empty is named before a code is spent on it.
        let empty = fields.with_untracked(|f| {
            sections
                .iter()
                .find(|s| {
                    s.required
                        && match f.get(&s.id) {
                            Some(FieldValue::Text(t)) => t.trim().is_empty(),
                            Some(FieldValue::List(items)) => items.is_empty(),
                            None => true,
                        }
                })
                .map(|s| s.id.clone())
        });
        if let Some(id) = empty {
            failure.set(Some(Failure::on_field(&id, text::SECTION_REQUIRED)));
            super::patient::focus(&format!("section-{id}"));
            return;
        }
        let totp_code = code.get_untracked().trim().to_owned();
        if totp_code.len() != 6 || !totp_code.chars().all(|c| c.is_ascii_digit()) {
            failure.set(Some(Failure::on_field("totp_code", text::CODE_NEEDED)));
            return;
        }
        // What is on screen is what gets signed: saved first, pending saves dropped.
        revision.update(|r| *r += 1);
        let body = Draft { fields: fields.get_untracked() };
        leptos::task::spawn_local(async move {
            if let Err(f) = api::call_empty("PUT", &format!("/api/v1/notes/{note_id}/draft"), &body).await {
                saved.set(SaveState::Failed);
                failure.set(Some(f));
                return;
            }
            saved.set(SaveState::Saved);
            match api::call::<_, NoteSummary>("POST", &format!("/api/v1/notes/{note_id}/sign"), &Code { totp_code })
                .await
            {
                Ok(_) => reload.update(|r| *r += 1),
                Err(f) => {
                    code.set(String::new());
                    failure.set(Some(on_code(f)));
                }
            }
        });
    };
    view! {
        <form class="note-form" on:submit=sign novalidate>
            {note.template.sections.clone().into_iter().map(|section| view! {
                <SectionInput section=section fields=fields failure=failure on_change=change/>
            }).collect_view()}
            <p class="save-state" role="status" data-save=move || format!("{:?}", saved.get()).to_lowercase()>
                {move || match saved.get() {
                    SaveState::Idle => "",
                    SaveState::Pending => text::UNSAVED,
                    SaveState::Saving => text::SAVING,
                    SaveState::Saved => text::SAVED,
                    SaveState::Failed => text::SAVE_FAILED,
                }}
            </p>
            <ErrorNote failure=failure fields=&["totp_code"]/>
            <fieldset class="step-up">
                <legend>{text::SIGN_NOTE}</legend>
                <p class="hint">{text::SIGN_NOTE_HINT}</p>
                <Field id="sign-code" label=text::TOTP_CODE value=code error=at(failure, "totp_code")
                    inputmode="numeric" autocomplete="one-time-code"/>
                <button type="submit" class="primary">{text::SIGN_AND_LOCK}</button>
            </fieldset>
        </form>
    }
}

/// A failure of a signature: a wrong or used code, or too many tries, is shown at the code.
fn on_code(mut f: Failure) -> Failure {
    if matches!(f.code.as_str(), "invalid_mfa" | "too_many_attempts") {
        f.field = Some("totp_code".into());
    }
    f
}

/// One section of the draft, as its template says: a text, a choice, several, a date, a list.
#[component]
fn SectionInput(
    section: TemplateSection,
    fields: RwSignal<NoteFields>,
    failure: RwSignal<Option<Failure>>,
    on_change: impl Fn(String, FieldValue) + Copy + 'static,
) -> impl IntoView {
    let id = section.id.clone();
    let dom = format!("section-{}", section.id);
    let error_id = format!("{dom}-error");
    let error = {
        let id = id.clone();
        move || failure.with(|f| f.as_ref().and_then(|f| f.at(&id)))
    };
    let invalid = {
        let error = error.clone();
        move || error().map(|_| "true")
    };
    let text_of = {
        let id = id.clone();
        move || match fields.with(|f| f.get(&id).cloned()) {
            Some(FieldValue::Text(t)) => t,
            Some(FieldValue::List(items)) => items.join("\n"),
            None => String::new(),
        }
    };
    let list_of = {
        let id = id.clone();
        move || match fields.with(|f| f.get(&id).cloned()) {
            Some(FieldValue::List(items)) => items,
            _ => Vec::new(),
        }
    };
    let required = section.required.then(|| view! { <span class="required">{format!(" ({})", text::REQUIRED)}</span> });
    match section.kind.as_str() {
        "choice" | "multi_choice" => {
            let multi = section.kind == "multi_choice";
            view! {
                <fieldset class="item" id=dom.clone() tabindex="-1" aria-describedby=error_id.clone() aria-invalid=invalid>
                    <legend>{section.label.clone()}{required}</legend>
                    {section.options.into_iter().enumerate().map(|(n, option)| {
                        let input = format!("{dom}-{n}");
                        let id = id.clone();
                        let checked = {
                            let option = option.clone();
                            let text_of = text_of.clone();
                            let list_of = list_of.clone();
                            move || if multi { list_of().contains(&option) } else { text_of() == option }
                        };
                        let pick = {
                            let option = option.clone();
                            let list_of = list_of.clone();
                            move |ev: leptos::ev::Event| {
                                if multi {
                                    let on = event_target_checked(&ev);
                                    let mut items = list_of();
                                    items.retain(|x| *x != option);
                                    if on {
                                        items.push(option.clone());
                                    }
                                    on_change(id.clone(), FieldValue::List(items));
                                } else {
                                    on_change(id.clone(), FieldValue::Text(option.clone()));
                                }
                            }
                        };
                        view! {
                            <label class="option" for=input.clone()>
                                <input type=if multi { "checkbox" } else { "radio" } id=input.clone() name=dom.clone()
                                    value=option.clone() prop:checked=checked on:change=pick/>
                                {option.clone()}
                            </label>
                        }
                    }).collect_view()}
                    <p class="error" id=error_id.clone()>{error}</p>
                </fieldset>
            }
            .into_any()
        }
        kind => {
            let (list, date) = (kind == "list", kind == "date");
            let hint_id = format!("{dom}-hint");
            let input = move |ev: leptos::ev::Event| {
                let value = event_target_value(&ev);
                let value = if list {
                    FieldValue::List(
                        value.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect(),
                    )
                } else {
                    FieldValue::Text(value)
                };
                on_change(id.clone(), value);
            };
            view! {
                <div class="item field">
                    <label for=dom.clone()>{section.label.clone()}{required}</label>
                    {list.then(|| view! { <p class="hint" id=hint_id.clone()>{text::ONE_PER_LINE}</p> })}
                    {if date {
                        view! {
                            <input type="date" id=dom.clone() name=dom.clone() aria-describedby=error_id.clone()
                                aria-invalid=invalid prop:value=text_of on:input=input/>
                        }.into_any()
                    } else {
                        view! {
                            <textarea id=dom.clone() name=dom.clone() rows=if list { "3" } else { "5" }
                                aria-describedby=if list { format!("{hint_id} {error_id}") } else { error_id.clone() }
                                aria-invalid=invalid prop:value=text_of on:input=input></textarea>
                        }.into_any()
                    }}
                    <p class="error" id=error_id.clone()>{error}</p>
                </div>
            }
            .into_any()
        }
    }
}

/// A signed note's sections, locked: shown, never editable.
#[component]
fn Locked(note: Note) -> impl IntoView {
    let fields = note.fields;
    view! {
        <p class="notice locked" data-locked="true">{text::NOTE_LOCKED}</p>
        <dl class="note-fields">
            {note.template.sections.into_iter().map(|s| {
                let value = match fields.get(&s.id) {
                    Some(FieldValue::Text(t)) if !t.is_empty() => view! { <p class="note-text">{t.clone()}</p> }.into_any(),
                    Some(FieldValue::List(items)) if !items.is_empty() => view! {
                        <ul>{items.iter().map(|i| view! { <li>{i.clone()}</li> }).collect_view()}</ul>
                    }.into_any(),
                    _ => view! { <p class="muted">{text::NOT_FILLED_IN}</p> }.into_any(),
                };
                view! { <dt>{s.label}</dt><dd data-section=s.id>{value}</dd> }
            }).collect_view()}
        </dl>
        {note.signed_digest.map(|d| view! { <p class="muted small digest">{format!("{}: {}", text::SIGNATURE_DIGEST, &d[..d.len().min(16)])}</p> })}
    }
}

/// The note's signed addenda, in order.
#[component]
fn Addenda(note: Note, names: Directory) -> impl IntoView {
    view! {
        <section class="card" aria-labelledby="addenda-title">
            <h2 id="addenda-title">{text::ADDENDA}</h2>
            {if note.addenda.is_empty() {
                view! { <p class="muted">{text::NO_ADDENDA}</p> }.into_any()
            } else {
                view! {
                    <ol class="addenda">
                        {note.addenda.into_iter().map(|a| view! {
                            <li class="addendum" data-addendum=a.addendum_id.to_string()>
                                <p class="muted small">
                                    {format!("{} · {} {}", names.name(a.author_id), text::SIGNED_ON, time::date_time(a.signed_at_ms))}
                                    {a.late_entry.then(|| view! { " " <span class="badge">{text::LATE_ENTRY}</span> })}
                                </p>
                                <p class="note-text">{a.text}</p>
                            </li>
                        }).collect_view()}
                    </ol>
                }.into_any()
            }}
        </section>
    }
}

#[derive(Serialize)]
struct NewAddendum {
    text: String,
    totp_code: String,
}

/// Writing and signing an addendum to a signed note.
#[component]
fn AddAddendum(note_id: Uuid, reload: RwSignal<u32>) -> impl IntoView {
    let body = RwSignal::new(String::new());
    let code = RwSignal::new(String::new());
    let failure = RwSignal::new(None::<Failure>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let text_now = body.get_untracked();
        if text_now.trim().is_empty() {
            failure.set(Some(Failure::on_field("text", text::ADDENDUM_NEEDED)));
            return;
        }
        let totp_code = code.get_untracked().trim().to_owned();
        if totp_code.len() != 6 || !totp_code.chars().all(|c| c.is_ascii_digit()) {
            failure.set(Some(Failure::on_field("totp_code", text::CODE_NEEDED)));
            return;
        }
        let sent = NewAddendum { text: text_now, totp_code };
        leptos::task::spawn_local(async move {
            match api::call::<_, serde_json::Value>("POST", &format!("/api/v1/notes/{note_id}/addenda"), &sent).await {
                Ok(_) => {
                    failure.set(None);
                    body.set(String::new());
                    code.set(String::new());
                    reload.update(|r| *r += 1);
                }
                Err(f) => {
                    code.set(String::new());
                    failure.set(Some(on_code(f)));
                }
            }
        });
    };
    let error = at(failure, "text");
    view! {
        <form class="card" on:submit=submit novalidate aria-labelledby="addendum-title">
            <h2 id="addendum-title">{text::ADD_ADDENDUM}</h2>
            <p class="hint">{text::ADDENDUM_HINT}</p>
            <div class="field">
                <label for="addendum-text">{text::ADDENDUM}</label>
                <textarea id="addendum-text" name="addendum-text" rows="4" aria-describedby="addendum-text-error"
                    aria-invalid=move || error.with(|e| e.as_ref().map(|_| "true"))
                    prop:value=move || body.get() on:input=move |ev| body.set(event_target_value(&ev))></textarea>
                <p class="error" id="addendum-text-error">{move || error.get()}</p>
            </div>
            <Field id="addendum-code" label=text::TOTP_CODE value=code error=at(failure, "totp_code")
                inputmode="numeric" autocomplete="one-time-code"/>
            <ErrorNote failure=failure fields=&["text", "totp_code"]/>
            <button type="submit" class="primary">{text::SIGN_ADDENDUM}</button>
        </form>
    }
}

/// The supervisor's co-signature, with a fresh code.
#[component]
fn Cosign(note_id: Uuid, reload: RwSignal<u32>) -> impl IntoView {
    let code = RwSignal::new(String::new());
    let failure = RwSignal::new(None::<Failure>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let totp_code = code.get_untracked().trim().to_owned();
        if totp_code.len() != 6 || !totp_code.chars().all(|c| c.is_ascii_digit()) {
            failure.set(Some(Failure::on_field("totp_code", text::CODE_NEEDED)));
            return;
        }
        leptos::task::spawn_local(async move {
            match api::call::<_, NoteSummary>("POST", &format!("/api/v1/notes/{note_id}/cosign"), &Code { totp_code })
                .await
            {
                Ok(_) => reload.update(|r| *r += 1),
                Err(f) => {
                    code.set(String::new());
                    failure.set(Some(on_code(f)));
                }
            }
        });
    };
    view! {
        <form class="card" on:submit=submit novalidate aria-labelledby="cosign-title">
            <h2 id="cosign-title">{text::COSIGN}</h2>
            <p class="hint">{text::COSIGN_HINT}</p>
            <Field id="cosign-code" label=text::TOTP_CODE value=code error=at(failure, "totp_code")
                inputmode="numeric" autocomplete="one-time-code"/>
            <ErrorNote failure=failure fields=&["totp_code"]/>
            <button type="submit" class="primary">{text::COSIGN_NOTE}</button>
        </form>
    }
}
