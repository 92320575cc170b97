//! What the clinical-note frames carry: a note's fields as a clinician fills them in
//! ([`NoteFields`]). A note is PHI, among the most sensitive a practice holds: `Debug` shows how
//! many fields it holds, never a value, and it has no `Display`.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// One field's value: text (a text, a single choice, a date) or a list of texts (a list, a
/// multiple choice). Which one a field takes is the template's; the server checks it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldValue {
    /// A text, one choice, or a date (`YYYY-MM-DD`).
    Text(String),
    /// Items of a list, or the choices of a multiple choice.
    List(Vec<String>),
}

impl fmt::Debug for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Text(_) => f.write_str("FieldValue::Text(<redacted>)"),
            FieldValue::List(items) => write!(f, "FieldValue::List(<{} redacted>)", items.len()),
        }
    }
}

/// A note's fields: section id -> value (`{"subjective": "...", "diagnosis": ["F32.1"]}`).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NoteFields(BTreeMap<String, FieldValue>);

impl NoteFields {
    /// No fields.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of field `id`, if it was filled in.
    pub fn get(&self, id: &str) -> Option<&FieldValue> {
        self.0.get(id)
    }

    /// Sets field `id`, returning the value it replaces.
    pub fn insert(&mut self, id: impl Into<String>, value: FieldValue) -> Option<FieldValue> {
        self.0.insert(id.into(), value)
    }

    /// Each field id with its value, in order of the ids.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &FieldValue)> {
        self.0.iter().map(|(id, value)| (id.as_str(), value))
    }

    /// How many fields it holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for NoteFields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NoteFields(<{} fields redacted>)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_as_plain_json_and_never_print() {
        let fields: NoteFields =
            serde_json::from_str(r#"{"plan":"weekly sessions","diagnosis":["F32.1"]}"#).unwrap_or_default();
        assert_eq!(fields.len(), 2);
        assert_eq!(fields.get("diagnosis"), Some(&FieldValue::List(vec!["F32.1".to_owned()])));
        let shown = format!("{fields:?} {:?}", fields.get("plan"));
        assert!(!shown.contains("weekly") && !shown.contains("F32"), "{shown}");
    }
}
