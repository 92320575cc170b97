//! Note templates as data (docs/API.md, "Note templates"): one JSON definition each, the
//! built-in ones shipped in `templates/*.json` and a practice's own stored by owners. A
//! definition is checked once, when it is read or added ([`Template::parse`]); a note keeps the
//! key and version of the template it was written on, and its fields are checked against that
//! version ([`Template::check_fields`]) on every save and when it is signed.

use std::collections::HashSet;

use confidant_protocol::{FieldValue, NoteFields};
use serde::{Deserialize, Serialize};

use crate::plain_text;

/// The longest text field, in characters (about twenty pages).
pub const MAX_TEXT_CHARS: usize = 50_000;
/// The most items a list field holds.
pub const MAX_LIST_ITEMS: usize = 50;
/// The longest list item, in characters.
pub const MAX_ITEM_CHARS: usize = 500;
/// The most sections a template has.
pub const MAX_SECTIONS: usize = 60;
/// The most options a choice offers.
pub const MAX_OPTIONS: usize = 30;
/// The longest title, label or option, in characters.
pub const MAX_LABEL_CHARS: usize = 120;

/// What a note is, which decides who reads it: progress notes (and the other record notes) are
/// part of the patient's record; a psychotherapy note (45 CFR 164.501) is kept apart, for its
/// author alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoteKind {
    /// A session's progress note (SOAP, DAP, BIRP, GIRP, or a practice's own).
    Progress,
    /// An intake assessment (biopsychosocial).
    IntakeAssessment,
    /// A treatment plan: problems, goals, objectives, interventions, dates.
    TreatmentPlan,
    /// A discharge summary.
    DischargeSummary,
    /// A psychotherapy note: its author's alone, never part of the record or an export.
    Psychotherapy,
}

impl NoteKind {
    /// The stored and documented name.
    pub const fn as_str(self) -> &'static str {
        match self {
            NoteKind::Progress => "progress",
            NoteKind::IntakeAssessment => "intake_assessment",
            NoteKind::TreatmentPlan => "treatment_plan",
            NoteKind::DischargeSummary => "discharge_summary",
            NoteKind::Psychotherapy => "psychotherapy",
        }
    }

    /// Parses the stored name.
    pub fn parse(text: &str) -> Option<Self> {
        [
            NoteKind::Progress,
            NoteKind::IntakeAssessment,
            NoteKind::TreatmentPlan,
            NoteKind::DischargeSummary,
            NoteKind::Psychotherapy,
        ]
        .into_iter()
        .find(|kind| kind.as_str() == text)
    }
}

/// What a section takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldKind {
    /// Free text, several lines.
    Text,
    /// One of `options`.
    Choice {
        /// The choices, as shown.
        options: Vec<String>,
    },
    /// Any of `options`.
    MultiChoice {
        /// The choices, as shown.
        options: Vec<String>,
    },
    /// A date, `YYYY-MM-DD`.
    Date,
    /// A list of short texts (diagnoses, goals).
    List,
}

/// One section of a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SectionJson", into = "SectionJson")]
pub struct Section {
    /// Its id in a note's fields: `a-z`, `0-9` and `_`, 1 to 40 characters, unique.
    pub id: String,
    /// What the clinician sees.
    pub label: String,
    /// What it takes.
    pub field: FieldKind,
    /// Whether a note is signed only with it filled in.
    pub required: bool,
}

/// A section as JSON: `type` names the kind; `options` belong to the two choice kinds only.
/// (serde's `flatten` cannot refuse unknown members, so the shape is read flat and checked.)
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SectionJson {
    id: String,
    label: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    options: Option<Vec<String>>,
    #[serde(default)]
    required: bool,
}

impl TryFrom<SectionJson> for Section {
    type Error = &'static str;

    fn try_from(json: SectionJson) -> Result<Self, Self::Error> {
        let field = match (json.kind.as_str(), json.options) {
            ("text", None) => FieldKind::Text,
            ("date", None) => FieldKind::Date,
            ("list", None) => FieldKind::List,
            ("choice", Some(options)) => FieldKind::Choice { options },
            ("multi_choice", Some(options)) => FieldKind::MultiChoice { options },
            _ => return Err("a section's type is text, choice, multi_choice, date or list; only choices have options"),
        };
        Ok(Section { id: json.id, label: json.label, field, required: json.required })
    }
}

impl From<Section> for SectionJson {
    fn from(section: Section) -> Self {
        let (kind, options) = match section.field {
            FieldKind::Text => ("text", None),
            FieldKind::Date => ("date", None),
            FieldKind::List => ("list", None),
            FieldKind::Choice { options } => ("choice", Some(options)),
            FieldKind::MultiChoice { options } => ("multi_choice", Some(options)),
        };
        SectionJson { id: section.id, label: section.label, kind: kind.to_owned(), options, required: section.required }
    }
}

/// A template's definition, as JSON. A practice's template is sent without `version` (the
/// server gives the next one for its key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Its key: `a-z`, `0-9` and `_`, 1 to 40 characters.
    pub key: String,
    /// Its version, from 1; a note keeps the one it was written on.
    #[serde(default)]
    pub version: u32,
    /// Its title.
    pub title: String,
    /// What a note written on it is.
    pub kind: NoteKind,
    /// Its sections, in order.
    pub sections: Vec<Section>,
}

/// Why a template definition is refused: the place and the rule (a template holds no PHI, but
/// the message still never quotes the definition).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{place} {rule}")]
pub struct InvalidTemplate {
    /// Where: `key`, `title`, `sections`, `sections[3].options`...
    pub place: String,
    /// The rule it breaks.
    pub rule: &'static str,
}

/// Why a note's fields are refused: the field and the rule, never the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} {rule}")]
pub struct InvalidField {
    /// The field's id (only ever an id of the template, or `fields`).
    pub field: String,
    /// The rule it breaks.
    pub rule: &'static str,
}

fn invalid(place: impl Into<String>, rule: &'static str) -> InvalidTemplate {
    InvalidTemplate { place: place.into(), rule }
}

/// Whether `text` is a calendar date written `YYYY-MM-DD`.
fn is_date(text: &str) -> bool {
    time::Date::parse(text, time::macros::format_description!("[year]-[month]-[day]")).is_ok()
}

/// Whether `text` is a template key or section id: 1 to 40 characters of `a-z`, `0-9`, `_`.
pub fn is_identifier(text: &str) -> bool {
    (1..=40).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn check_label(place: String, text: &str) -> Result<(), InvalidTemplate> {
    let length = text.chars().count();
    if text.trim().is_empty() {
        return Err(invalid(place, "must not be empty"));
    }
    if length > MAX_LABEL_CHARS {
        return Err(invalid(place, "is longer than 120 characters"));
    }
    plain_text::check(text, false).map_err(|refusal| invalid(place, refusal.rule()))
}

impl Template {
    /// Reads and checks a definition: JSON of this shape, a valid key, title and sections
    /// (unique ids, labels, two to thirty distinct options for a choice).
    pub fn parse(json: &[u8]) -> Result<Self, InvalidTemplate> {
        let template: Template = serde_json::from_slice(json)
            .map_err(|_| invalid("definition", "is not a template: see docs/API.md, \"Note templates\""))?;
        template.check()?;
        Ok(template)
    }

    /// The rules of a definition (see [`Self::parse`]).
    pub fn check(&self) -> Result<(), InvalidTemplate> {
        if !is_identifier(&self.key) {
            return Err(invalid("key", "must be 1 to 40 characters of a-z, 0-9 and _"));
        }
        check_label("title".to_owned(), &self.title)?;
        if self.sections.is_empty() || self.sections.len() > MAX_SECTIONS {
            return Err(invalid("sections", "must hold 1 to 60 sections"));
        }
        let mut ids = HashSet::new();
        for (n, section) in self.sections.iter().enumerate() {
            if !is_identifier(&section.id) {
                return Err(invalid(format!("sections[{n}].id"), "must be 1 to 40 characters of a-z, 0-9 and _"));
            }
            if !ids.insert(section.id.as_str()) {
                return Err(invalid(format!("sections[{n}].id"), "is used by another section"));
            }
            check_label(format!("sections[{n}].label"), &section.label)?;
            if let FieldKind::Choice { options } | FieldKind::MultiChoice { options } = &section.field {
                if options.len() < 2 || options.len() > MAX_OPTIONS {
                    return Err(invalid(format!("sections[{n}].options"), "must offer 2 to 30 choices"));
                }
                let mut seen = HashSet::new();
                for (m, option) in options.iter().enumerate() {
                    check_label(format!("sections[{n}].options[{m}]"), option)?;
                    if !seen.insert(option.as_str()) {
                        return Err(invalid(format!("sections[{n}].options[{m}]"), "is offered twice"));
                    }
                }
            }
        }
        Ok(())
    }

    /// The section `id`.
    pub fn section(&self, id: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.id == id)
    }

    /// Checks `fields` against this template: only its sections, each value of its section's
    /// kind and within its limits; with `complete`, every required section filled in (to sign).
    pub fn check_fields(&self, fields: &NoteFields, complete: bool) -> Result<(), InvalidField> {
        let bad = |field: &str, rule| InvalidField { field: field.to_owned(), rule };
        for (id, value) in fields.iter() {
            let Some(section) = self.section(id) else {
                return Err(InvalidField { field: "fields".to_owned(), rule: "name a section the template lacks" });
            };
            match (&section.field, value) {
                (FieldKind::Text, FieldValue::Text(text)) => {
                    if text.chars().count() > MAX_TEXT_CHARS {
                        return Err(bad(id, "is longer than 50000 characters"));
                    }
                    plain_text::check(text, true).map_err(|refusal| bad(id, refusal.rule()))?;
                }
                (FieldKind::Choice { options }, FieldValue::Text(choice)) => {
                    if !choice.is_empty() && !options.contains(choice) {
                        return Err(bad(id, "is not one of the template's choices"));
                    }
                }
                (FieldKind::MultiChoice { options }, FieldValue::List(choices)) => {
                    if choices.iter().any(|c| !options.contains(c)) {
                        return Err(bad(id, "holds a choice the template does not offer"));
                    }
                    if choices.iter().collect::<HashSet<_>>().len() != choices.len() {
                        return Err(bad(id, "holds a choice twice"));
                    }
                }
                (FieldKind::Date, FieldValue::Text(date)) => {
                    if !date.is_empty() && !is_date(date) {
                        return Err(bad(id, "must be a date, YYYY-MM-DD"));
                    }
                }
                (FieldKind::List, FieldValue::List(items)) => {
                    if items.len() > MAX_LIST_ITEMS {
                        return Err(bad(id, "holds more than 50 items"));
                    }
                    for item in items {
                        if item.chars().count() > MAX_ITEM_CHARS {
                            return Err(bad(id, "holds an item longer than 500 characters"));
                        }
                        plain_text::check(item, false).map_err(|refusal| bad(id, refusal.rule()))?;
                    }
                }
                (FieldKind::Text | FieldKind::Choice { .. } | FieldKind::Date, FieldValue::List(_)) => {
                    return Err(bad(id, "must be a text"));
                }
                (FieldKind::MultiChoice { .. } | FieldKind::List, FieldValue::Text(_)) => {
                    return Err(bad(id, "must be a list of texts"));
                }
            }
        }
        if complete {
            for section in self.sections.iter().filter(|s| s.required) {
                let filled = match fields.get(&section.id) {
                    Some(FieldValue::Text(text)) => !text.trim().is_empty(),
                    Some(FieldValue::List(items)) => !items.is_empty(),
                    None => false,
                };
                if !filled {
                    return Err(bad(&section.id, "is required to sign"));
                }
            }
        }
        Ok(())
    }
}

/// The built-in definitions, one file each.
const BUILT_IN_JSON: [&str; 8] = [
    include_str!("templates/soap.json"),
    include_str!("templates/dap.json"),
    include_str!("templates/birp.json"),
    include_str!("templates/girp.json"),
    include_str!("templates/biopsychosocial.json"),
    include_str!("templates/treatment_plan.json"),
    include_str!("templates/discharge_summary.json"),
    include_str!("templates/psychotherapy.json"),
];

/// The built-in templates, checked like a practice's (a test proves each passes). A built-in
/// that failed its check would be left out rather than stop the node; the test keeps that from
/// shipping.
pub fn built_in() -> &'static [Template] {
    static BUILT_IN: std::sync::OnceLock<Vec<Template>> = std::sync::OnceLock::new();
    BUILT_IN.get_or_init(|| BUILT_IN_JSON.iter().filter_map(|json| Template::parse(json.as_bytes()).ok()).collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_template_is_valid_and_version_one() {
        for json in BUILT_IN_JSON {
            let template = Template::parse(json.as_bytes()).expect(json);
            assert_eq!(template.version, 1, "{}", template.key);
        }
        assert_eq!(built_in().len(), BUILT_IN_JSON.len());
        let keys: Vec<_> = built_in().iter().map(|t| t.key.as_str()).collect();
        for key in ["soap", "dap", "birp", "girp", "biopsychosocial", "treatment_plan", "discharge_summary"] {
            assert!(keys.contains(&key), "{key}");
        }
    }

    #[test]
    fn the_intake_assessment_offers_structured_mental_status_choices_and_a_risk_assessment() {
        let intake = built_in().iter().find(|t| t.key == "biopsychosocial").unwrap();
        assert_eq!(intake.kind, NoteKind::IntakeAssessment);
        for id in ["mse_mood", "mse_affect", "mse_orientation", "risk_suicide", "risk_homicide"] {
            assert!(matches!(intake.section(id).unwrap().field, FieldKind::Choice { .. }), "{id}");
        }
    }

    #[test]
    fn a_definition_breaking_a_rule_is_refused_naming_the_place() {
        let cases = [
            (
                r#"{"key":"Bad Key","title":"t","kind":"progress","sections":[{"id":"a","label":"A","type":"text"}]}"#,
                "key",
            ),
            (r#"{"key":"k","title":"t","kind":"progress","sections":[]}"#, "sections"),
            (
                r#"{"key":"k","title":"t","kind":"progress","sections":[{"id":"a","label":"A","type":"text"},{"id":"a","label":"B","type":"text"}]}"#,
                "sections[1].id",
            ),
            (
                r#"{"key":"k","title":"t","kind":"progress","sections":[{"id":"a","label":"A","type":"choice","options":["x"]}]}"#,
                "sections[0].options",
            ),
            (
                r#"{"key":"k","title":"t","kind":"memo","sections":[{"id":"a","label":"A","type":"text"}]}"#,
                "definition",
            ),
            (
                r#"{"key":"k","title":"t","kind":"progress","sections":[{"id":"a","label":"A","type":"essay"}]}"#,
                "definition",
            ),
        ];
        for (json, place) in cases {
            assert_eq!(Template::parse(json.as_bytes()).unwrap_err().place, place, "{json}");
        }
    }

    #[test]
    fn fields_are_checked_against_their_sections_and_required_ones_only_to_sign() {
        let soap = built_in().iter().find(|t| t.key == "soap").unwrap();
        let mut fields = NoteFields::new();
        fields.insert("subjective", FieldValue::Text("slept better".into()));
        assert!(soap.check_fields(&fields, false).is_ok());
        assert_eq!(soap.check_fields(&fields, true).unwrap_err().field, "objective");
        fields.insert("mood", FieldValue::Text("x".into()));
        assert_eq!(soap.check_fields(&fields, false).unwrap_err().field, "fields");
        let plan = built_in().iter().find(|t| t.key == "treatment_plan").unwrap();
        let mut fields = NoteFields::new();
        fields.insert("target_date", FieldValue::Text("2027-02-30".into()));
        assert_eq!(plan.check_fields(&fields, false).unwrap_err().field, "target_date");
        let mut fields = NoteFields::new();
        fields.insert("goals", FieldValue::Text("not a list".into()));
        assert_eq!(plan.check_fields(&fields, false).unwrap_err().rule, "must be a list of texts");
    }
}
