//! The owner's template form: the practice's own template, or a new version of a listed one,
//! built section by section (label, type, required, choices), never as raw JSON. The server
//! checks the definition (docs/API.md, "Note templates"); its refusal is shown at the field it
//! names ([`on_form`]).

use leptos::prelude::*;
use serde::Serialize;

use super::patient::focus;
use super::widgets::{ErrorNote, Field, Select, at};
use crate::api::{self, Failure, ListedTemplate, Template};
use crate::text;

/// The kinds of note a template makes, in the order offered.
const KINDS: [&str; 5] = ["progress", "intake_assessment", "treatment_plan", "discharge_summary", "psychotherapy"];
/// The types of section, in the order offered.
const SECTION_TYPES: [&str; 5] = ["text", "choice", "multi_choice", "date", "list"];
/// The longest key or section id the server takes.
const MAX_ID: usize = 40;

/// A definition as `POST /api/v1/note-templates` takes it.
#[derive(Serialize)]
struct Definition {
    key: String,
    title: String,
    kind: String,
    sections: Vec<SectionDefinition>,
}

#[derive(Serialize)]
struct SectionDefinition {
    id: String,
    label: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    options: Option<Vec<String>>,
    required: bool,
}

/// One section as the owner writes it.
#[derive(Clone, Copy)]
struct SectionDraft {
    /// Tells the drafts apart on this page (DOM ids, the list's keys).
    uid: u32,
    /// Its id in the version it was copied from: a new version keeps its sections' ids.
    id: RwSignal<Option<String>>,
    label: RwSignal<String>,
    kind: RwSignal<String>,
    required: RwSignal<bool>,
    /// The choices, one per line (choice types only).
    options: RwSignal<String>,
}

impl SectionDraft {
    fn new(uid: u32) -> Self {
        Self {
            uid,
            id: RwSignal::new(None),
            label: RwSignal::new(String::new()),
            kind: RwSignal::new("text".to_owned()),
            required: RwSignal::new(false),
            options: RwSignal::new(String::new()),
        }
    }

    fn has_choices(kind: &str) -> bool {
        matches!(kind, "choice" | "multi_choice")
    }

    fn options_list(&self) -> Vec<String> {
        self.options.with_untracked(|o| o.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect())
    }
}

/// A machine id from what a person typed: lowercase letters and digits, words joined by `_`
/// (empty when nothing of it is a letter or digit of a-z, 0-9).
fn identifier(text: &str) -> String {
    let mut out = String::new();
    let mut gap = false;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            if gap && !out.is_empty() {
                out.push('_');
            }
            gap = false;
            out.push(c.to_ascii_lowercase());
        } else {
            gap = true;
        }
    }
    out.truncate(MAX_ID);
    out.trim_end_matches('_').to_owned()
}

/// The sections' ids: kept from the version they were copied from, otherwise made from their
/// labels, each unique.
fn section_ids(sections: &[SectionDraft]) -> Vec<String> {
    let mut ids: Vec<String> = Vec::new();
    for (n, s) in sections.iter().enumerate() {
        let base =
            s.id.get_untracked()
                .or_else(|| Some(identifier(&s.label.get_untracked())).filter(|i| !i.is_empty()))
                .unwrap_or_else(|| format!("section_{}", n + 1));
        let mut id = base.clone();
        let mut count = 2;
        while ids.contains(&id) {
            let stem: String = base.chars().take(MAX_ID - 4).collect();
            id = format!("{stem}_{count}");
            count += 1;
        }
        ids.push(id);
    }
    ids
}

/// Where on this form the server's refusal belongs: `title`, `sections`, `sections.N.label`,
/// `sections.N.options`, or nowhere (`None`: the form's general error), with the rule in plain
/// words.
fn on_form(mut f: Failure) -> Failure {
    let Some(place) = f.field.clone() else { return f };
    let rule = f.message.strip_prefix(place.as_str()).unwrap_or(&f.message).trim().to_owned();
    let sentence = |text: String| {
        let mut chars = text.chars();
        let mut out: String = chars.next().map(|c| c.to_uppercase().collect()).unwrap_or_default();
        out.push_str(chars.as_str());
        if !out.ends_with('.') {
            out.push('.');
        }
        out
    };
    let (field, message) = match place.as_str() {
        "title" => ("title".to_owned(), sentence(rule)),
        "key" => ("title".to_owned(), text::TEMPLATE_NAME_LETTERS.to_owned()),
        "sections" => ("sections".to_owned(), sentence(rule)),
        other => {
            let Some(rest) = other.strip_prefix("sections[") else { return f };
            let Some((n, part)) = rest.split_once("].") else { return f };
            match part.split_once('[') {
                Some(("options", m)) => {
                    let m: usize = m.trim_end_matches(']').parse().unwrap_or(0);
                    (format!("sections.{n}.options"), sentence(format!("{} {} {rule}", text::CHOICE, m + 1)))
                }
                None if part == "options" => (format!("sections.{n}.options"), sentence(rule)),
                None => (format!("sections.{n}.label"), sentence(rule)),
                Some(_) => return f,
            }
        }
    };
    f.field = Some(field);
    f.message = message;
    f
}

/// The owner's form: a new template, or (from a listed one) its next version.
#[component]
pub fn TemplateEditor(
    templates: RwSignal<Option<Vec<ListedTemplate>>>,
    copy_from: RwSignal<Option<Template>>,
    reload: RwSignal<u32>,
) -> impl IntoView {
    let title = RwSignal::new(String::new());
    let kind = RwSignal::new(String::new());
    let next_uid = RwSignal::new(1u32);
    let sections = RwSignal::new(vec![SectionDraft::new(0)]);
    // A refusal that names a field of this form, shown there; any other, shown above the button.
    let failure = RwSignal::new(None::<Failure>);
    let general = RwSignal::new(None::<Failure>);
    let notice = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let fresh_uid = move || {
        let uid = next_uid.get_untracked();
        next_uid.set(uid + 1);
        uid
    };
    let reset = move || {
        title.set(String::new());
        kind.set(String::new());
        sections.set(vec![SectionDraft::new(fresh_uid())]);
        failure.set(None);
    };
    // A listed template chosen for a new version: the form starts as a copy of it.
    Effect::new(move |_| {
        let Some(t) = copy_from.get() else { return };
        title.set(t.title.clone());
        kind.set(t.kind.clone());
        sections.set(
            t.sections
                .iter()
                .map(|s| {
                    let draft = SectionDraft::new(fresh_uid());
                    draft.id.set(Some(s.id.clone()));
                    draft.label.set(s.label.clone());
                    draft.kind.set(s.kind.clone());
                    draft.required.set(s.required);
                    draft.options.set(s.options.join("\n"));
                    draft
                })
                .collect(),
        );
        failure.set(None);
        general.set(None);
        notice.set(None);
    });
    let add_section = move |_| {
        let draft = SectionDraft::new(fresh_uid());
        sections.update(|s| s.push(draft));
        focus(&format!("tpl-section-{}-label", draft.uid));
    };
    let remove = move |uid: u32| {
        sections.update(|s| s.retain(|d| d.uid != uid));
        failure.set(None);
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        notice.set(None);
        general.set(None);
        let versioning = copy_from.get_untracked().map(|t| t.key);
        let key = versioning.clone().unwrap_or_else(|| identifier(&title.get_untracked()));
        if kind.get_untracked().is_empty() {
            failure.set(Some(Failure::on_field("kind", text::CHOOSE_A_KIND)));
            focus("tpl-kind");
            return;
        }
        // A new template's name must not turn into an existing key: that would be a new version
        // of another template (of a built-in one, even) rather than a template of its own.
        let taken = versioning.is_none()
            && !key.is_empty()
            && templates.with_untracked(|l| l.iter().flatten().any(|t| t.definition.key == key));
        if taken {
            failure.set(Some(Failure::on_field("title", text::TEMPLATE_NAME_TAKEN)));
            focus("tpl-title");
            return;
        }
        let drafts = sections.get_untracked();
        let ids = section_ids(&drafts);
        let body = Definition {
            key,
            title: title.get_untracked(),
            kind: kind.get_untracked(),
            sections: drafts
                .iter()
                .zip(ids)
                .map(|(s, id)| {
                    let kind = s.kind.get_untracked();
                    SectionDefinition {
                        id,
                        label: s.label.get_untracked(),
                        options: SectionDraft::has_choices(&kind).then(|| s.options_list()),
                        kind,
                        required: s.required.get_untracked(),
                    }
                })
                .collect(),
        };
        busy.set(true);
        leptos::task::spawn_local(async move {
            match api::call::<_, ListedTemplate>("POST", "/api/v1/note-templates", &body).await {
                Ok(saved) => {
                    copy_from.set(None);
                    reset();
                    let d = saved.definition;
                    notice.set(Some(format!("{} {} ({} {})", text::TEMPLATE_SAVED, d.title, text::VERSION, d.version)));
                    reload.update(|r| *r += 1);
                }
                Err(f) => {
                    let f = on_form(f);
                    let target = match f.field.as_deref() {
                        Some("title") => Some("tpl-title".to_owned()),
                        Some("sections") => Some("tpl-add-section".to_owned()),
                        Some(place) => place.strip_prefix("sections.").and_then(|rest| {
                            let (n, part) = rest.split_once('.')?;
                            let uid = drafts.get(n.parse::<usize>().ok()?)?.uid;
                            Some(format!("tpl-section-{uid}-{part}"))
                        }),
                        None => None,
                    };
                    match target {
                        Some(id) => {
                            failure.set(Some(f));
                            focus(&id);
                        }
                        None => {
                            failure.set(None);
                            general.set(Some(f));
                        }
                    }
                }
            }
            busy.set(false);
        });
    };
    let cancel = move |_| {
        copy_from.set(None);
        reset();
    };
    let sections_error = at(failure, "sections");
    view! {
        <form class="card template-editor" on:submit=submit novalidate aria-labelledby="tpl-editor-title">
            <h2 id="tpl-editor-title">
                {move || match copy_from.get() {
                    Some(t) => format!("{}: {}", text::NEW_VERSION_OF, t.title),
                    None => text::ADD_TEMPLATE.to_owned(),
                }}
            </h2>
            <p class="hint">{text::ADD_TEMPLATE_HINT}</p>
            <Field id="tpl-title" label=text::TEMPLATE_NAME value=title error=at(failure, "title")/>
            <Select id="tpl-kind" label=text::TEMPLATE_KIND value=kind error=at(failure, "kind")
                options=Signal::derive(|| KINDS.iter().map(|k| ((*k).to_owned(), text::note_kind(k).to_owned())).collect())/>
            <For each=move || sections.get() key=|s| s.uid let:section>
                <SectionEditor section=section sections=sections failure=failure on_remove=remove/>
            </For>
            <p class="error" id="tpl-sections-error">{move || sections_error.get()}</p>
            <button type="button" id="tpl-add-section" aria-describedby="tpl-sections-error" on:click=add_section>
                {text::ADD_SECTION}
            </button>
            <ErrorNote failure=general/>
            {move || notice.get().map(|n| view! { <p class="notice" role="status">{n}</p> })}
            <div class="actions">
                <button type="submit" class="primary" disabled=move || busy.get()>
                    {move || if copy_from.with(Option::is_some) { text::SAVE_VERSION } else { text::SAVE_TEMPLATE }}
                </button>
                {move || copy_from.with(Option::is_some).then(|| view! {
                    <button type="button" on:click=cancel>{text::CANCEL}</button>
                })}
            </div>
        </form>
    }
}

/// One section of the template being written: its label, type, whether it is required, and
/// for a choice its choices; removable.
#[component]
fn SectionEditor(
    section: SectionDraft,
    sections: RwSignal<Vec<SectionDraft>>,
    failure: RwSignal<Option<Failure>>,
    on_remove: impl Fn(u32) + Copy + 'static,
) -> impl IntoView {
    let uid = section.uid;
    let dom = format!("tpl-section-{uid}");
    let position = move || sections.with(|s| s.iter().position(|d| d.uid == uid).unwrap_or(0));
    let error_at = move |part: &'static str| {
        Signal::derive(move || {
            let place = format!("sections.{}.{part}", position());
            failure.with(|f| f.as_ref().and_then(|f| f.at(&place)))
        })
    };
    let label_error = error_at("label");
    let options_error = error_at("options");
    let options_id = format!("{dom}-options");
    let type_id = format!("{dom}-type");
    let required_id = format!("{dom}-required");
    view! {
        <fieldset class="item" data-section-draft=uid.to_string()>
            <legend>{move || format!("{} {}", text::SECTION, position() + 1)}</legend>
            <Field id=format!("{dom}-label") label=text::SECTION_LABEL value=section.label error=label_error/>
            <div class="field">
                <label for=type_id.clone()>{text::SECTION_TYPE}</label>
                <select id=type_id.clone() name=type_id.clone() on:change=move |ev| section.kind.set(event_target_value(&ev))>
                    {SECTION_TYPES.iter().map(|k| {
                        let k = *k;
                        view! { <option value=k prop:selected=move || section.kind.get() == k>{text::section_type(k)}</option> }
                    }).collect_view()}
                </select>
            </div>
            <div class="field check">
                <input id=required_id.clone() type="checkbox" prop:checked=move || section.required.get()
                    on:change=move |ev| section.required.set(event_target_checked(&ev))/>
                <label for=required_id.clone()>{text::SECTION_REQUIRED_TO_SIGN}</label>
            </div>
            <Show when=move || SectionDraft::has_choices(&section.kind.get())>
                <div class="field">
                    <label for=options_id.clone()>{text::CHOICES}</label>
                    <p class="hint" id=format!("{options_id}-hint")>{text::CHOICES_HINT}</p>
                    <textarea id=options_id.clone() name=options_id.clone() rows="4"
                        aria-describedby=format!("{options_id}-hint {options_id}-error")
                        aria-invalid=move || options_error.with(|e| e.as_ref().map(|_| "true"))
                        prop:value=move || section.options.get()
                        on:input=move |ev| section.options.set(event_target_value(&ev))></textarea>
                    <p class="error" id=format!("{options_id}-error")>{move || options_error.get()}</p>
                </div>
            </Show>
            <button type="button" class="link" on:click=move |_| on_remove(uid)>
                {move || format!("{} {}", text::REMOVE_SECTION, position() + 1)}
            </button>
        </fieldset>
    }
}
