//! What a note holds, sealed as one value: the fields the clinician writes ([`NoteFields`]) and
//! what was filled in for them when the note was begun ([`NoteContext`]: the latest PHQ-9 and
//! GAD-7 with their change since the patient's previous note, the treatment plan's diagnosis and
//! goals). The context is fixed at creation; autosave replaces the fields only. Neither prints.

use std::fmt;

use confidant_protocol::{NoteFields, Severity};
use serde::{Deserialize, Serialize};

/// A screening's latest result, as a note shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measure {
    /// The total.
    pub total: u32,
    /// Its published severity band.
    pub severity: Severity,
    /// When the patient submitted it (UTC ms).
    pub submitted_at_ms: i64,
    /// The total minus the latest one before the patient's previous note (`None`: no previous
    /// note, or no screening before it).
    pub change_since_last_note: Option<i64>,
}

/// What was filled in for a note when it was begun.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteContext {
    /// The latest PHQ-9.
    pub phq9: Option<Measure>,
    /// The latest GAD-7.
    pub gad7: Option<Measure>,
    /// The diagnosis of the latest signed treatment plan.
    pub diagnosis: Vec<String>,
    /// The measurable goals of the latest signed treatment plan.
    pub goals: Vec<String>,
}

/// A note's whole content.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoteContent {
    /// What the clinician wrote.
    pub fields: NoteFields,
    /// What was filled in when it was begun.
    pub context: NoteContext,
}

impl NoteContent {
    /// The canonical text a signature's digest is taken over: the note's id, its template and
    /// version, and its content as JSON (fields in id order, so the same note always gives the
    /// same text).
    pub fn signing_text(&self, note_id: uuid::Uuid, template_key: &str, version: u32) -> zeroize::Zeroizing<String> {
        let json = serde_json::to_string(self).unwrap_or_default();
        zeroize::Zeroizing::new(format!("{note_id}\n{template_key}\n{version}\n{json}"))
    }
}

impl fmt::Debug for Measure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Measure(<redacted>)")
    }
}

impl fmt::Debug for NoteContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NoteContext(<redacted>)")
    }
}

impl fmt::Debug for NoteContent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NoteContent({:?}, <context redacted>)", self.fields)
    }
}
