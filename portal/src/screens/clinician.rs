//! Patients and their charts, and alerts. A clinician sees their care team's patients; a chart
//! shows demographics, every form with its score, severity band and the item-9 flag, the scores
//! over time as charts (`scores.rs`), the patient's notes (`notes.rs`), and the urgent alerts to
//! acknowledge and document. Front desk and
//! owners create patients and invite them to the portal from the same list.

use leptos::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use super::widgets::{ErrorNote, Field, Select, at};
use super::{Place, place};
use crate::api::{
    self, AlertState, AlertView, Assignment, CareTeamMember, ChartAlerts, Failure, Invitation, PatientRecord,
    StaffMember, Submitted,
};
use crate::live::live;
use crate::session;
use crate::text;
use crate::time;

/// The patients within reach, and for front desk and owners, creating one.
#[component]
pub fn PatientList() -> impl IntoView {
    let place = place();
    let patients = RwSignal::new(None::<Vec<PatientRecord>>);
    let failure = RwSignal::new(None::<Failure>);
    let reload = RwSignal::new(0u32);
    let role = session::portal().me.get_untracked().map(|m| m.role).unwrap_or_default();
    Effect::new(move |_| {
        reload.track();
        leptos::task::spawn_local(async move {
            match api::get::<Vec<PatientRecord>>("/api/v1/patients").await {
                Ok(mut list) => {
                    list.sort_by(|a, b| a.legal_name.cmp(&b.legal_name));
                    patients.set(Some(list));
                }
                Err(f) => failure.set(Some(f)),
            }
        });
    });
    let creates = matches!(role.as_str(), "front_desk" | "practice_owner");
    view! {
        <h1>{text::PATIENTS}</h1>
        <ErrorNote failure=failure/>
        <section class="card">
            {move || match patients.get() {
                None => view! { <p class="muted">{text::LOADING}</p> }.into_any(),
                Some(list) if list.is_empty() => view! { <p class="muted">{text::NO_PATIENTS}</p> }.into_any(),
                Some(list) => view! {
                    <ul class="rows">
                        {list.into_iter().filter_map(|p| {
                            let id = p.id?;
                            Some(view! {
                                <li class="row">
                                    <span class="who">{p.name()}</span>
                                    <span class="muted">{p.date_of_birth.clone()}</span>
                                    <button type="button" data-patient=id.to_string() on:click=move |_| place.set(Place::Chart(id))>{text::CHART}</button>
                                </li>
                            })
                        }).collect_view()}
                    </ul>
                }.into_any(),
            }}
        </section>
        {creates.then(|| view! { <NewPatient reload=reload/> })}
    }
}

/// The five inputs of a patient record, shared by creating and editing one.
#[derive(Clone, Copy)]
struct RecordInputs {
    legal: RwSignal<String>,
    preferred: RwSignal<String>,
    born: RwSignal<String>,
    email: RwSignal<String>,
    phone: RwSignal<String>,
}

impl RecordInputs {
    fn of(record: &PatientRecord) -> Self {
        Self {
            legal: RwSignal::new(record.legal_name.clone()),
            preferred: RwSignal::new(record.preferred_name.clone().unwrap_or_default()),
            born: RwSignal::new(record.date_of_birth.clone()),
            email: RwSignal::new(record.email.clone().unwrap_or_default()),
            phone: RwSignal::new(record.phone.clone().unwrap_or_default()),
        }
    }

    /// The record as typed: trimmed, empty optional fields left out.
    fn record(&self, id: Option<Uuid>) -> PatientRecord {
        let opt = |s: RwSignal<String>| Some(s.get_untracked().trim().to_owned()).filter(|s| !s.is_empty());
        PatientRecord {
            id,
            legal_name: self.legal.get_untracked().trim().to_owned(),
            preferred_name: opt(self.preferred),
            date_of_birth: self.born.get_untracked(),
            email: opt(self.email),
            phone: opt(self.phone),
        }
    }

    fn clear(&self) {
        for s in [self.legal, self.preferred, self.born, self.email, self.phone] {
            s.set(String::new());
        }
    }
}

/// The record's fields, each with the server's reason at it (ids start with `prefix`).
#[component]
fn RecordFields(inputs: RecordInputs, failure: RwSignal<Option<Failure>>, prefix: &'static str) -> impl IntoView {
    view! {
        <Field id=format!("{prefix}legal_name") label=text::LEGAL_NAME value=inputs.legal error=at(failure, "legal_name") autocomplete="off"/>
        <Field id=format!("{prefix}preferred_name") label=text::PREFERRED_NAME value=inputs.preferred error=at(failure, "preferred_name")/>
        <Field id=format!("{prefix}date_of_birth") label=text::DATE_OF_BIRTH value=inputs.born error=at(failure, "date_of_birth") kind="date"/>
        <Field id=format!("{prefix}patient_email") label=text::EMAIL value=inputs.email error=at(failure, "email") kind="email"/>
        <Field id=format!("{prefix}phone") label=text::PHONE value=inputs.phone error=at(failure, "phone") kind="tel"/>
        <ErrorNote failure=failure fields=&["legal_name", "preferred_name", "date_of_birth", "email", "phone"]/>
    }
}

/// Creating a patient record.
#[component]
fn NewPatient(reload: RwSignal<u32>) -> impl IntoView {
    let inputs = RecordInputs::of(&PatientRecord::default());
    let failure = RwSignal::new(None::<Failure>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let record = inputs.record(None);
        leptos::task::spawn_local(async move {
            match api::call::<_, serde_json::Value>("POST", "/api/v1/patients", &record).await {
                Ok(_) => {
                    failure.set(None);
                    inputs.clear();
                    reload.update(|r| *r += 1);
                }
                Err(f) => failure.set(Some(f)),
            }
        });
    };
    view! {
        <form class="card" on:submit=submit novalidate aria-labelledby="new-patient-title">
            <h2 id="new-patient-title">{text::NEW_PATIENT}</h2>
            <RecordFields inputs=inputs failure=failure prefix=""/>
            <button type="submit" class="primary">{text::CREATE_PATIENT}</button>
        </form>
    }
}

#[derive(Serialize)]
struct Invite {
    role: &'static str,
    email: String,
    patient_id: Uuid,
}

#[derive(Serialize)]
struct AssignForm {
    form: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    clinician_id: Option<Uuid>,
}

/// A patient's chart.
#[component]
pub fn Chart(patient: Uuid) -> impl IntoView {
    let place = place();
    let l = live();
    let role = session::portal().me.get_untracked().map(|m| m.role).unwrap_or_default();
    let clinician = role == "clinician";
    // Front desk and owners keep the record, invite the patient and keep the care team.
    let manages = matches!(role.as_str(), "front_desk" | "practice_owner");
    let record = RwSignal::new(None::<PatientRecord>);
    let forms = RwSignal::new(Vec::<(Assignment, Option<Submitted>)>::new());
    let alerts = RwSignal::new(None::<ChartAlerts>);
    let failure = RwSignal::new(None::<Failure>);
    let invitation = RwSignal::new(None::<String>);
    let reload = RwSignal::new(0u32);
    let editing = RwSignal::new(false);
    leptos::task::spawn_local(async move {
        match api::get::<PatientRecord>(&format!("/api/v1/patients/{patient}")).await {
            Ok(r) => record.set(Some(r)),
            Err(f) => failure.set(Some(f)),
        }
    });
    Effect::new(move |_| {
        l.intake_version.track();
        l.alerts.track();
        reload.track();
        if !clinician {
            return;
        }
        leptos::task::spawn_local(async move {
            if let Ok(list) = api::get::<Vec<Assignment>>(&format!("/api/v1/patients/{patient}/intake-forms")).await {
                let mut rows = Vec::with_capacity(list.len());
                for a in list {
                    let scored = if a.submitted_at_ms.is_some() {
                        api::get::<Submitted>(&format!("/api/v1/intake-forms/{}", a.assignment_id)).await.ok()
                    } else {
                        None
                    };
                    rows.push((a, scored));
                }
                forms.set(rows);
            }
            if let Ok(a) = api::get::<ChartAlerts>(&format!("/api/v1/patients/{patient}/alerts")).await {
                alerts.set(Some(a));
            }
        });
    });
    let invite = move |_| {
        let Some(email) = record.get_untracked().and_then(|r| r.email) else { return };
        leptos::task::spawn_local(async move {
            let body = Invite { role: "patient", email, patient_id: patient };
            match api::call::<_, Invitation>("POST", "/api/v1/users/invitations", &body).await {
                Ok(i) => invitation.set(Some(i.invitation_token)),
                Err(f) => failure.set(Some(f)),
            }
        });
    };
    let form_choice = RwSignal::new(String::new());
    let assign = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let form = form_choice.get_untracked();
        if form.is_empty() {
            return;
        }
        leptos::task::spawn_local(async move {
            match api::call::<_, serde_json::Value>(
                "POST",
                &format!("/api/v1/patients/{patient}/intake-forms"),
                &AssignForm { form, clinician_id: None },
            )
            .await
            {
                Ok(_) => reload.update(|r| *r += 1),
                Err(f) => failure.set(Some(f)),
            }
        });
    };
    view! {
        <button type="button" class="link" on:click=move |_| place.set(Place::Patients)>{text::BACK}</button>
        <ErrorNote failure=failure/>
        {move || record.get().map(|r| view! {
            <section class="card" aria-labelledby="chart-title">
                <h1 id="chart-title">{r.name()}</h1>
                <dl class="facts">
                    <dt>{text::DATE_OF_BIRTH}</dt><dd>{r.date_of_birth.clone()}</dd>
                    <dt>{text::EMAIL}</dt><dd>{r.email.clone().unwrap_or_default()}</dd>
                    <dt>{text::PHONE}</dt><dd>{r.phone.clone().unwrap_or_default()}</dd>
                </dl>
                {manages.then(|| view! {
                    <button type="button" on:click=move |_| editing.update(|e| *e = !*e)>{text::EDIT}</button>
                })}
                {(manages && r.email.is_some()).then(|| view! {
                    <button type="button" on:click=invite>{text::INVITE_TO_PORTAL}</button>
                })}
                {move || invitation.get().map(|t| view! {
                    <p class="notice" role="status">{text::INVITATION_CREATED} " " <code class="invitation">{t}</code></p>
                })}
            </section>
        })}
        <Show when=move || editing.get()>
            {move || record.get().map(|r| view! { <EditPatient patient=patient record=r editing=editing saved=record/> })}
        </Show>
        {manages.then(|| {
            let team = Team::load(patient, failure);
            view! {
                <CareTeam patient=patient team=team failure=failure/>
                {(role == "front_desk").then(|| view! { <AssignForClinician patient=patient team=team/> })}
            }
        })}
        {clinician.then(|| view! { <super::scores::ScreeningCharts patient=patient/> })}
        {matches!(role.as_str(), "clinician" | "front_desk" | "billing").then(|| view! { <super::notes::NoteList patient=patient/> })}
        {clinician.then(|| view! {
            <section class="card" aria-labelledby="alerts-title">
                <h2 id="alerts-title">
                    {text::ALERTS}
                    {move || alerts.with(|a| a.as_ref().is_some_and(|a| a.urgent)).then(|| view! { <span class="badge urgent" data-urgent="true">{text::URGENT}</span> })}
                </h2>
                {move || alerts.get().map(|a| view! { <AlertRows alerts=a.alerts reload=reload/> })}
            </section>
            <section class="card" aria-labelledby="intake-title">
                <h2 id="intake-title">{text::INTAKE}</h2>
                <ul class="rows">
                    {move || forms.get().into_iter().map(|(a, s)| view! {
                        <li class="row" data-form=a.form.clone()>
                            <span>{text::form_title(&a.form)}</span>
                            {match (a.submitted_at_ms, s.and_then(|s| s.score)) {
                                (None, _) => view! { <span class="muted">{text::NOT_SUBMITTED}</span> }.into_any(),
                                (Some(at), None) => view! { <span>{time::day(at)}</span> }.into_any(),
                                (Some(at), Some(score)) => view! {
                                    <span>{time::day(at)}</span>
                                    <span class="score" data-score=score.total.to_string()>{format!("{}: {}", text::SCORE, score.total)}</span>
                                    <span class=format!("band {}", score.severity)>{text::severity(&score.severity)}</span>
                                    {score.urgent.then(|| view! { <span class="badge urgent">{text::ITEM9_FLAG}</span> })}
                                }.into_any(),
                            }}
                        </li>
                    }).collect_view()}
                </ul>
                <form class="inline" on:submit=assign>
                    <label for="assign-form">{text::ASSIGN_FORM}</label>
                    <select id="assign-form" on:change=move |ev| form_choice.set(event_target_value(&ev))>
                        <option value="">{text::CHOOSE}</option>
                        <option value="phq9">{text::form_title("phq9")}</option>
                        <option value="gad7">{text::form_title("gad7")}</option>
                        <option value="general_intake">{text::form_title("general_intake")}</option>
                    </select>
                    <button type="submit">{text::ASSIGN}</button>
                </form>
            </section>
        })}
    }
}

/// Editing a patient's record (front desk, owners): every field at once, checked by the server
/// (its reasons at the fields); the chart shows the saved record.
#[component]
fn EditPatient(
    patient: Uuid,
    record: PatientRecord,
    editing: RwSignal<bool>,
    saved: RwSignal<Option<PatientRecord>>,
) -> impl IntoView {
    let inputs = RecordInputs::of(&record);
    let failure = RwSignal::new(None::<Failure>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let changed = inputs.record(Some(patient));
        leptos::task::spawn_local(async move {
            match api::call_empty("PUT", &format!("/api/v1/patients/{patient}"), &changed).await {
                Ok(()) => {
                    saved.set(Some(changed));
                    editing.set(false);
                }
                Err(f) => failure.set(Some(f)),
            }
        });
    };
    view! {
        <form class="card" on:submit=submit novalidate aria-labelledby="edit-patient-title">
            <h2 id="edit-patient-title">{text::EDIT_PATIENT}</h2>
            <RecordFields inputs=inputs failure=failure prefix="edit-"/>
            <div class="toolbar">
                <button type="submit" class="primary">{text::SAVE}</button>
                <button type="button" class="link" on:click=move |_| editing.set(false)>{text::BACK}</button>
            </div>
        </form>
    }
}

/// The forms a patient can be given.
const FORMS: [&str; 3] = ["phq9", "gad7", "general_intake"];

/// Front desk gives a patient a form for a clinician of the care team, who reads the results
/// and is alerted on submission. Front desk never sees the answers.
#[component]
fn AssignForClinician(patient: Uuid, team: Team) -> impl IntoView {
    let form = RwSignal::new(String::new());
    let clinician = RwSignal::new(String::new());
    let failure = RwSignal::new(None::<Failure>);
    let done = RwSignal::new(None::<&'static str>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        done.set(None);
        let chosen = form.get_untracked();
        if chosen.is_empty() {
            failure.set(Some(Failure::on_field("form", text::CHOOSE_A_FORM)));
            return;
        }
        let Ok(for_clinician) = clinician.get_untracked().parse::<Uuid>() else {
            failure.set(Some(Failure::on_field("clinician_id", text::CHOOSE_A_CLINICIAN)));
            return;
        };
        let body = AssignForm { form: chosen, clinician_id: Some(for_clinician) };
        leptos::task::spawn_local(async move {
            match api::call::<_, serde_json::Value>("POST", &format!("/api/v1/patients/{patient}/intake-forms"), &body)
                .await
            {
                Ok(_) => {
                    failure.set(None);
                    done.set(Some(text::FORM_ASSIGNED));
                }
                Err(f) => failure.set(Some(f)),
            }
        });
    };
    view! {
        <form class="card" on:submit=submit novalidate aria-labelledby="desk-assign-title">
            <h2 id="desk-assign-title">{text::ASSIGN_FORM}</h2>
            <Select id="desk-assign-form" label=text::FORM value=form error=at(failure, "form")
                options=Signal::derive(|| FORMS.iter().map(|f| ((*f).to_owned(), text::form_title(f).to_owned())).collect())/>
            <Select id="desk-assign-clinician" label=text::RESULTS_GO_TO value=clinician error=at(failure, "clinician_id")
                options=Signal::derive(move || team.members())/>
            <ErrorNote failure=failure fields=&["form", "clinician_id"]/>
            {move || done.get().map(|d| view! { <p class="notice" role="status">{d}</p> })}
            <button type="submit">{text::ASSIGN}</button>
        </form>
    }
}

/// A patient's care team with the staff directory that names its members: loaded once per
/// chart, again when it changes, and read by both the care-team card and the form giving.
#[derive(Clone, Copy)]
struct Team {
    staff: RwSignal<Vec<StaffMember>>,
    members: RwSignal<Vec<CareTeamMember>>,
    version: RwSignal<u32>,
}

impl Team {
    fn load(patient: Uuid, failure: RwSignal<Option<Failure>>) -> Self {
        let team =
            Self { staff: RwSignal::new(Vec::new()), members: RwSignal::new(Vec::new()), version: RwSignal::new(0) };
        leptos::task::spawn_local(async move {
            if let Ok(list) = api::get::<Vec<StaffMember>>("/api/v1/staff").await {
                team.staff.set(list);
            }
        });
        Effect::new(move |_| {
            team.version.track();
            leptos::task::spawn_local(async move {
                match api::get::<Vec<CareTeamMember>>(&format!("/api/v1/patients/{patient}/care-team")).await {
                    Ok(list) => team.members.set(list),
                    Err(f) => failure.set(Some(f)),
                }
            });
        });
        team
    }

    fn name(&self, id: Uuid) -> String {
        let named = self.staff.with(|s| s.iter().find(|m| m.user_id == id).map(StaffMember::label));
        named.unwrap_or_else(|| text::role("clinician").to_owned())
    }

    /// (clinician id, name) of each member.
    fn members(&self) -> Vec<(String, String)> {
        self.members.get().into_iter().map(|m| (m.clinician_id.to_string(), self.name(m.clinician_id))).collect()
    }

    /// (id, name) of every clinician of the practice.
    fn clinicians(&self) -> Vec<(String, String)> {
        self.staff
            .with(|s| s.iter().filter(|m| m.role == "clinician").map(|m| (m.user_id.to_string(), m.label())).collect())
    }
}

/// The patient's care team, and adding a clinician to it (front desk, owners).
#[component]
fn CareTeam(patient: Uuid, team: Team, failure: RwSignal<Option<Failure>>) -> impl IntoView {
    let choice = RwSignal::new(String::new());
    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Ok(clinician) = choice.get_untracked().parse::<Uuid>() else { return };
        leptos::task::spawn_local(async move {
            match api::call_empty(
                "PUT",
                &format!("/api/v1/patients/{patient}/care-team/{clinician}"),
                &serde_json::json!({}),
            )
            .await
            {
                Ok(()) => team.version.update(|v| *v += 1),
                Err(f) => failure.set(Some(f)),
            }
        });
    };
    view! {
        <section class="card" aria-labelledby="care-team-title">
            <h2 id="care-team-title">{text::CARE_TEAM}</h2>
            <ul class="rows">
                {move || team.members().into_iter().map(|(id, name)| view! { <li class="row" data-member=id>{name}</li> }).collect_view()}
            </ul>
            <form class="inline" on:submit=add>
                <Select id="care-team-clinician" label=text::CLINICIAN value=choice error=Signal::derive(|| None::<String>)
                    options=Signal::derive(move || team.clinicians())/>
                <button type="submit">{text::ADD_TO_CARE_TEAM}</button>
            </form>
        </section>
    }
}

#[derive(Serialize)]
struct Note {
    note: String,
}

/// Alerts with their state; acknowledging, and documenting follow-up on urgent ones.
#[component]
fn AlertRows(alerts: Vec<AlertView>, reload: RwSignal<u32>) -> impl IntoView {
    if alerts.is_empty() {
        return view! { <p class="muted">{text::NO_ALERTS}</p> }.into_any();
    }
    view! {
        <ul class="rows">
            {alerts.into_iter().map(|a| view! { <AlertRow alert=a reload=reload/> }).collect_view()}
        </ul>
    }
    .into_any()
}

#[component]
fn AlertRow(alert: AlertView, reload: RwSignal<u32>) -> impl IntoView {
    let id = alert.alert_id;
    let note = RwSignal::new(String::new());
    let failure = RwSignal::new(None::<Failure>);
    let kind = serde_json::to_value(alert.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
    let state = alert.state;
    let ack = move |_| {
        leptos::task::spawn_local(async move {
            match api::post_empty(&format!("/api/v1/alerts/{id}/ack")).await {
                Ok(()) => reload.update(|r| *r += 1),
                Err(f) => failure.set(Some(f)),
            }
        });
    };
    let document = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = Note { note: note.get_untracked() };
        leptos::task::spawn_local(async move {
            match api::call_empty("POST", &format!("/api/v1/alerts/{id}/follow-up"), &body).await {
                Ok(()) => reload.update(|r| *r += 1),
                Err(mut f) => {
                    if f.code == "invalid_field" {
                        f.field = Some("note".into());
                    }
                    failure.set(Some(f))
                }
            }
        });
    };
    let field_id = format!("note-{id}");
    view! {
        <li class=if alert.urgent { "row alert urgent" } else { "row alert" } data-alert=id.to_string() data-state=format!("{state:?}").to_lowercase()>
            <span>{text::alert_kind(&kind)}</span>
            <span class="muted">{time::date_time(alert.raised_at_ms)}</span>
            {alert.sign_in_attack.clone().map(|attack| view! {
                <super::owner::SignInAttackDetails attack=attack/>
            })}
            {(state == AlertState::Open).then(|| view! { <button type="button" on:click=ack>{text::ACKNOWLEDGE}</button> })}
            {alert.acknowledged_at_ms.filter(|_| state != AlertState::Open).map(|at| view! {
                <span class="muted" data-acknowledged="">{format!("{} {}", text::ACKNOWLEDGED, time::date_time(at))}</span>
            })}
            {(alert.urgent && alert.follow_up.is_none() && state != AlertState::Resolved).then(|| view! {
                <form class="follow-up" on:submit=document novalidate>
                    <Field id=field_id label=text::FOLLOW_UP value=note error=at(failure, "note") hint=text::FOLLOW_UP_HINT/>
                    <button type="submit">{text::DOCUMENT_FOLLOW_UP}</button>
                </form>
            })}
            <ErrorNote failure=failure fields=&["note"]/>
        </li>
    }
}

/// Every open alert of the caller, live.
#[component]
pub fn AlertList() -> impl IntoView {
    let l = live();
    let alerts = RwSignal::new(None::<Vec<AlertView>>);
    let failure = RwSignal::new(None::<Failure>);
    let reload = RwSignal::new(0u32);
    Effect::new(move |_| {
        l.alerts.track();
        reload.track();
        leptos::task::spawn_local(async move {
            match api::get::<Vec<AlertView>>("/api/v1/alerts").await {
                Ok(list) => alerts.set(Some(list)),
                Err(f) => failure.set(Some(f)),
            }
        });
    });
    view! {
        <h1>{text::ALERTS}</h1>
        <ErrorNote failure=failure/>
        <section class="card">
            {move || alerts.get().map(|a| view! { <AlertRows alerts=a reload=reload/> })}
        </section>
    }
}
