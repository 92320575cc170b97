//! The note templates: every template and version listed (name, kind, version, built in or the
//! practice's own, its sections); owners also get the form that adds the practice's own template
//! or a new version of any (`template_form.rs`).

use leptos::prelude::*;

use super::patient::focus;
use super::template_form::TemplateEditor;
use super::widgets::ErrorNote;
use crate::api::{self, Failure, ListedTemplate, Template};
use crate::session;
use crate::text;

/// The note templates, and for owners the form that adds one.
#[component]
pub fn TemplateList() -> impl IntoView {
    let templates = RwSignal::new(None::<Vec<ListedTemplate>>);
    let failure = RwSignal::new(None::<Failure>);
    let reload = RwSignal::new(0u32);
    let owner = session::portal().me.get_untracked().is_some_and(|m| m.role == "practice_owner");
    let copy_from = RwSignal::new(None::<Template>);
    Effect::new(move |_| {
        reload.track();
        leptos::task::spawn_local(async move {
            match api::get::<Vec<ListedTemplate>>("/api/v1/note-templates").await {
                Ok(list) => templates.set(Some(list)),
                Err(f) => failure.set(Some(f)),
            }
        });
    });
    // The newest version of each key: the one a new version starts from.
    let is_latest = move |d: &Template| {
        templates.with_untracked(|l| {
            l.iter().flatten().filter(|t| t.definition.key == d.key).all(|t| t.definition.version <= d.version)
        })
    };
    view! {
        <h1>{text::TEMPLATES}</h1>
        <ErrorNote failure=failure/>
        {owner.then(|| view! { <TemplateEditor templates=templates copy_from=copy_from reload=reload/> })}
        {move || match templates.get() {
            None if failure.with(Option::is_some) => ().into_any(),
            None => view! { <p class="muted" role="status">{text::LOADING}</p> }.into_any(),
            Some(list) if list.is_empty() => view! { <p class="muted">{text::NO_TEMPLATES}</p> }.into_any(),
            Some(list) => list.into_iter().map(|t| {
                let d = t.definition;
                let title_id = format!("template-{}-{}", d.key, d.version);
                let versioned = (owner && is_latest(&d)).then(|| d.clone());
                view! {
                    <section class="card template" data-template=d.key.clone() data-version=d.version.to_string()
                        data-built-in=t.built_in.to_string() aria-labelledby=title_id.clone()>
                        <h2 id=title_id.clone()>{d.title.clone()}</h2>
                        <p class="muted">
                            {format!("{} · {} {} · {}", text::note_kind(&d.kind), text::VERSION, d.version,
                                if t.built_in { text::BUILT_IN } else { text::PRACTICE_OWN })}
                        </p>
                        <ul class="sections">
                            {d.sections.into_iter().map(|s| view! {
                                <li>
                                    <strong>{s.label}</strong>
                                    {format!(" · {}", text::section_kind(&s.kind))}
                                    {s.required.then(|| view! { <span class="required">{format!(" ({})", text::REQUIRED)}</span> })}
                                    {(!s.options.is_empty()).then(|| view! { <span class="muted small">{format!(": {}", s.options.join(", "))}</span> })}
                                </li>
                            }).collect_view()}
                        </ul>
                        {versioned.map(|d| {
                            let label = format!("{}: {}", text::NEW_VERSION, d.title);
                            view! {
                                <button type="button" aria-label=label on:click=move |_| {
                                    copy_from.set(Some(d.clone()));
                                    focus("tpl-title");
                                }>{text::NEW_VERSION}</button>
                            }
                        })}
                    </section>
                }
            }).collect_view().into_any(),
        }}
    }
}
