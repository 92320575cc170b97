//! What the intake frames carry: a patient's answers ([`IntakeAnswers`]), a form as it is
//! filled in ([`FormDefinition`]) and a screening's result ([`ScreeningScore`], [`Severity`]).
//! Answers and results are PHI: their `Debug` never shows them and none has a `Display`. Each
//! serializes exactly as the untyped JSON it replaced, byte for byte.

use std::collections::BTreeMap;
use std::fmt;

use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A patient's answers to a form: item id -> answer (`{"item1": 2, "goals": "..."}`). PHI:
/// `Debug` shows how many items it holds, never an answer.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct IntakeAnswers(BTreeMap<String, Answer>);

impl IntakeAnswers {
    /// No answers.
    pub fn new() -> Self {
        Self::default()
    }

    /// The answer to item `item`, if it was given.
    pub fn get(&self, item: &str) -> Option<&Answer> {
        self.0.get(item)
    }

    /// Sets the answer to `item`, returning the one it replaces.
    pub fn insert(&mut self, item: impl Into<String>, answer: Answer) -> Option<Answer> {
        self.0.insert(item.into(), answer)
    }

    /// The ids of the items answered, in order.
    pub fn items(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// Each item id with its answer, in order of the ids.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Answer)> {
        self.0.iter().map(|(item, answer)| (item.as_str(), answer))
    }

    /// How many items it holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<K: Into<String>> FromIterator<(K, Answer)> for IntakeAnswers {
    fn from_iter<I: IntoIterator<Item = (K, Answer)>>(iter: I) -> Self {
        Self(iter.into_iter().map(|(item, answer)| (item.into(), answer)).collect())
    }
}

impl fmt::Debug for IntakeAnswers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "IntakeAnswers({} items)", self.0.len())
    }
}

/// One answer, as the client sent it. PHI: `Debug` shows its kind, never its value.
#[derive(Clone, PartialEq, Eq)]
pub enum Answer {
    /// A choice item's option, by index (which is also its score): a JSON number from 0.
    Choice(u64),
    /// A text item's text: a JSON string.
    Text(String),
    /// JSON `null`: not answered (a draft may say so).
    Blank,
    /// Any other JSON value (a negative or fractional number, a boolean, a list, an object).
    /// Never valid: it is kept so that the form's validation names the item it breaks
    /// (`invalid_answer`) instead of the whole frame being refused as malformed.
    Other(Value),
}

impl fmt::Debug for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Answer::Choice(_) => "Choice(..)",
            Answer::Text(_) => "Text(..)",
            Answer::Blank => "Blank",
            Answer::Other(_) => "Other(..)",
        })
    }
}

impl Serialize for Answer {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Answer::Choice(index) => serializer.serialize_u64(*index),
            Answer::Text(text) => serializer.serialize_str(text),
            Answer::Blank => serializer.serialize_unit(),
            Answer::Other(value) => value.serialize(serializer),
        }
    }
}

impl<'de> Deserialize<'de> for Answer {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(match Value::deserialize(deserializer)? {
            Value::Number(n) => match n.as_u64() {
                Some(index) => Answer::Choice(index),
                None => Answer::Other(Value::Number(n)),
            },
            Value::String(text) => Answer::Text(text),
            Value::Null => Answer::Blank,
            other => Answer::Other(other),
        })
    }
}

/// A screening's total: the sum of its scored items. PHI: `Debug` never shows it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ScreeningScore(pub u32);

impl fmt::Debug for ScreeningScore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ScreeningScore(..)")
    }
}

/// The published severity band of a screening's total (PHQ-9: minimal, mild, moderate,
/// moderately severe, severe; GAD-7 the same without moderately severe). PHI: `Debug` never
/// shows which.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// PHQ-9 and GAD-7 0-4.
    Minimal,
    /// PHQ-9 and GAD-7 5-9.
    Mild,
    /// PHQ-9 and GAD-7 10-14.
    Moderate,
    /// PHQ-9 15-19.
    ModeratelySevere,
    /// PHQ-9 20-27, GAD-7 15-21.
    Severe,
}

impl Severity {
    /// The wire and stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Minimal => "minimal",
            Severity::Mild => "mild",
            Severity::Moderate => "moderate",
            Severity::ModeratelySevere => "moderately_severe",
            Severity::Severe => "severe",
        }
    }
}

impl fmt::Debug for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Severity(..)")
    }
}

/// A form as the patient fills it in (the template: no PHI). The fields of this and of
/// [`FormItem`] are declared in alphabetical order, the order the form was sent in while it
/// was an untyped JSON object, so the wire is unchanged byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormDefinition {
    /// What the patient reads first.
    pub instructions: String,
    /// The items, in order.
    pub items: Vec<FormItem>,
    /// Which form (`general_intake`, `phq9`, `gad7`).
    pub kind: String,
    /// Its title.
    pub title: String,
}

/// One item of a form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormItem {
    /// How it is answered.
    pub answer: AnswerKind,
    /// Stable id: the key of its answer in [`IntakeAnswers`].
    pub id: String,
    /// Whether a submission must answer it.
    pub required: bool,
    /// Whether it counts towards the total.
    pub scored: bool,
    /// The question.
    pub text: String,
}

/// How an item is answered: `{"options": [...], "type": "choice"}` or
/// `{"max_chars": 2000, "type": "text"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AnswerKind {
    /// One of the options, answered with its index ([`Answer::Choice`]).
    Choice {
        /// The options, in order.
        options: Vec<String>,
    },
    /// Free text of at most `max_chars` characters ([`Answer::Text`]).
    Text {
        /// The limit.
        max_chars: u32,
    },
}

impl Serialize for AnswerKind {
    /// The tag after the fields (a derived tag comes first), as the untyped form had it.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut out = serializer.serialize_struct("AnswerKind", 2)?;
        match self {
            AnswerKind::Choice { options } => {
                out.serialize_field("options", options)?;
                out.serialize_field("type", "choice")?;
            }
            AnswerKind::Text { max_chars } => {
                out.serialize_field("max_chars", max_chars)?;
                out.serialize_field("type", "text")?;
            }
        }
        out.end()
    }
}

/// The PHQ-9 item that asks about thoughts of self-harm ("item 9"). Any answer above zero is
/// urgent: the server raises the `phq9_item9` alert on submit, and the portal shows crisis
/// resources the moment it is chosen. One definition for both.
pub const PHQ9_SELF_HARM_ITEM: &str = "item9";

/// Whether `answers` to a form of `kind` (`FormDefinition::kind`) report thoughts of self-harm.
pub fn reports_self_harm(kind: &str, answers: &IntakeAnswers) -> bool {
    kind == "phq9" && matches!(answers.get(PHQ9_SELF_HARM_ITEM), Some(Answer::Choice(n)) if *n > 0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn answers_go_out_as_they_came_in_byte_for_byte() {
        let text = r#"{"a":2,"b":"Ada's reason","c":null,"d":-1,"e":1.5,"f":true,"g":[1],"h":{"x":1},"i":18446744073709551615}"#;
        let answers: IntakeAnswers = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&answers).unwrap(), text);
        assert_eq!(answers.get("a"), Some(&Answer::Choice(2)));
        assert_eq!(answers.get("b"), Some(&Answer::Text("Ada's reason".into())));
        assert_eq!(answers.get("c"), Some(&Answer::Blank));
        assert!(matches!(answers.get("d"), Some(Answer::Other(_))));
        assert!(matches!(answers.get("e"), Some(Answer::Other(_))));
        let as_value: Value = serde_json::from_str(text).unwrap();
        assert_eq!(serde_json::to_string(&answers).unwrap(), serde_json::to_string(&as_value).unwrap());
    }

    #[test]
    fn answers_and_results_never_print() {
        let answers: IntakeAnswers =
            [("goals", Answer::Text("sentinel-goal".into())), ("item9", Answer::Choice(3))].into_iter().collect();
        for shown in [format!("{answers:?}"), format!("{answers:#?}")] {
            assert_eq!(shown, "IntakeAnswers(2 items)");
        }
        assert_eq!(format!("{:?}", Answer::Text("sentinel".into())), "Text(..)");
        assert_eq!(format!("{:?}", (ScreeningScore(23), Severity::Severe)), "(ScreeningScore(..), Severity(..))");
    }

    #[test]
    fn an_intake_frame_keeps_a_wrong_kind_of_answer_for_validation_and_never_prints_it() {
        let text = r#"{"v":1,"type":"intake.draft","id":"d1","assignment_id":"3f1c2b7e-1a2b-4c3d-8e9f-0a1b2c3d4e5f","answers":{"item1":true,"goals":"sentinel"}}"#;
        let frame = crate::ClientFrame::parse(text).unwrap();
        let crate::ClientFrame::IntakeDraft { answers, .. } = &frame else { panic!("an intake.draft") };
        assert_eq!(answers.get("item1"), Some(&Answer::Other(Value::Bool(true))));
        assert!(!format!("{frame:?}").contains("sentinel"));
    }

    #[test]
    fn severity_and_score_keep_their_wire_names() {
        assert_eq!(serde_json::to_string(&Severity::ModeratelySevere).unwrap(), r#""moderately_severe""#);
        assert_eq!(serde_json::from_str::<Severity>(r#""mild""#).unwrap().as_str(), "mild");
        assert_eq!(serde_json::to_string(&ScreeningScore(8)).unwrap(), "8");
    }

    #[test]
    fn an_answer_kind_puts_its_tag_last_and_reads_either_order() {
        let choice = AnswerKind::Choice { options: vec!["No".into(), "Yes".into()] };
        assert_eq!(serde_json::to_string(&choice).unwrap(), r#"{"options":["No","Yes"],"type":"choice"}"#);
        let text = serde_json::to_string(&AnswerKind::Text { max_chars: 2000 }).unwrap();
        assert_eq!(text, r#"{"max_chars":2000,"type":"text"}"#);
        let read: AnswerKind = serde_json::from_str(r#"{"type":"text","max_chars":5}"#).unwrap();
        assert_eq!(read, AnswerKind::Text { max_chars: 5 });
    }
}
