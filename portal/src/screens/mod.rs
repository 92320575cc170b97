//! The screens, one module per audience, and [`Home`]: the signed-in person's navigation by
//! role. Which screen is shown lives in a signal, never in the URL, so no address, title or
//! history entry ever names a patient.

pub mod clinician;
pub mod enroll;
pub mod messages;
pub mod note;
pub mod notes;
pub mod open_notes;
pub mod owner;
pub mod patient;
pub mod schedule;
pub mod scores;
pub mod sign_in;
pub mod supervision;
pub mod template_form;
pub mod templates;
pub mod widgets;

use leptos::prelude::*;
use uuid::Uuid;

use crate::session;
use crate::text;

/// A signed-in person's place in the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    Home,
    Messages,
    MyNotes,
    Preferences,
    Form(Uuid),
    Schedule,
    Patients,
    Chart(Uuid),
    Note(Uuid),
    Cosign,
    Templates,
    Alerts,
    Staff,
    BreakGlass,
    Audit,
}

/// The signed-in home: TOTP enrollment first when the role needs it, then the role's screens.
#[component]
pub fn Home() -> impl IntoView {
    let p = session::portal();
    let place = RwSignal::new(Place::Home);
    provide_context(place);
    move || {
        let Some(me) = p.me.get() else { return ().into_any() };
        if me.must_enroll() {
            return view! { <enroll::Enroll/> }.into_any();
        }
        let patient_tabs: &[(Place, &str)] = if me.open_notes {
            &[
                (Place::Home, text::NAV_HOME),
                (Place::Messages, text::NAV_MESSAGES),
                (Place::MyNotes, text::NAV_MY_NOTES),
                (Place::Preferences, text::NAV_PREFERENCES),
            ]
        } else {
            &[
                (Place::Home, text::NAV_HOME),
                (Place::Messages, text::NAV_MESSAGES),
                (Place::Preferences, text::NAV_PREFERENCES),
            ]
        };
        let tabs: &[(Place, &str)] = match me.role.as_str() {
            "patient" => patient_tabs,
            "clinician" => &[
                (Place::Home, text::NAV_SCHEDULE),
                (Place::Patients, text::NAV_PATIENTS),
                (Place::Messages, text::NAV_MESSAGES),
                (Place::Alerts, text::NAV_ALERTS),
                (Place::Cosign, text::NAV_COSIGN),
                (Place::Templates, text::NAV_TEMPLATES),
            ],
            "practice_owner" => &[
                (Place::Home, text::NAV_SCHEDULE),
                (Place::Patients, text::NAV_PATIENTS),
                (Place::Alerts, text::NAV_ALERTS),
                (Place::Messages, text::NAV_MESSAGES),
                (Place::Staff, text::NAV_USERS),
                (Place::Templates, text::NAV_TEMPLATES),
                (Place::BreakGlass, text::NAV_BREAK_GLASS),
                (Place::Audit, text::NAV_AUDIT),
            ],
            _ => &[
                (Place::Home, text::NAV_SCHEDULE),
                (Place::Patients, text::NAV_PATIENTS),
                (Place::Alerts, text::NAV_ALERTS),
                (Place::Messages, text::NAV_MESSAGES),
            ],
        };
        let role = me.role.clone();
        view! {
            <nav aria-label=text::NAV_LABEL class="tabs">
                {tabs.iter().map(|(to, label)| {
                    let to = *to;
                    view! {
                        <button type="button" class="tab"
                            aria-current=move || (place.get() == to).then_some("page")
                            on:click=move |_| place.set(to)>{*label}</button>
                    }
                }).collect_view()}
            </nav>
            {move || match (role.as_str(), place.get()) {
                ("patient", Place::Home) => view! { <patient::PatientHome/> }.into_any(),
                ("patient", Place::Preferences) => view! { <patient::Preferences/> }.into_any(),
                ("patient", Place::MyNotes) => view! { <open_notes::MyNotes/> }.into_any(),
                ("patient", Place::Form(id)) => view! { <patient::FormScreen assignment=id/> }.into_any(),
                (_, Place::Messages) => view! { <messages::MessagesScreen/> }.into_any(),
                (_, Place::Home | Place::Schedule) => view! { <schedule::ScheduleScreen/> }.into_any(),
                (_, Place::Patients) => view! { <clinician::PatientList/> }.into_any(),
                (_, Place::Chart(id)) => view! { <clinician::Chart patient=id/> }.into_any(),
                (_, Place::Note(id)) => view! { <note::NoteScreen note_id=id/> }.into_any(),
                ("clinician" | "practice_owner", Place::Cosign) => view! { <notes::CosignQueue/> }.into_any(),
                ("clinician" | "practice_owner", Place::Templates) => view! { <templates::TemplateList/> }.into_any(),
                (_, Place::Alerts) => view! { <clinician::AlertList/> }.into_any(),
                ("practice_owner", Place::Staff) => view! { <owner::StaffScreen/> }.into_any(),
                ("practice_owner", Place::BreakGlass) => view! { <owner::BreakGlassScreen/> }.into_any(),
                ("practice_owner", Place::Audit) => view! { <owner::AuditScreen/> }.into_any(),
                _ => ().into_any(),
            }}
        }
        .into_any()
    }
}

/// The signal of where the person is; call it while a component is built, not in a handler.
pub fn place() -> RwSignal<Place> {
    use_context::<RwSignal<Place>>().unwrap_or_else(|| RwSignal::new(Place::Home))
}
