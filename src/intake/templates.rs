//! The forms: a general intake, the PHQ-9 (depression) and the GAD-7 (anxiety), with their
//! items, answer options, required fields, validation and scoring. PHQ-9 and GAD-7 item texts
//! and severity bands are those published by their authors (Kroenke, Spitzer, Williams; free to
//! use without permission): PHQ-9 total 0-27 banded 0-4 minimal, 5-9 mild, 10-14 moderate,
//! 15-19 moderately severe, 20-27 severe; GAD-7 total 0-21 banded 0-4 minimal, 5-9 mild, 10-14
//! moderate, 15-21 severe. Any PHQ-9 item 9 answer above zero is flagged urgent.

use std::fmt;

use confidant_protocol::intake::{self, FormDefinition, FormItem, IntakeAnswers, Severity};
use serde::Serialize;

/// Which form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FormKind {
    /// First-visit intake.
    GeneralIntake,
    /// Patient Health Questionnaire-9.
    Phq9,
    /// Generalized Anxiety Disorder-7.
    Gad7,
}

impl FormKind {
    /// Every form.
    pub const ALL: [FormKind; 3] = [FormKind::GeneralIntake, FormKind::Phq9, FormKind::Gad7];

    /// The stored and wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            FormKind::GeneralIntake => "general_intake",
            FormKind::Phq9 => "phq9",
            FormKind::Gad7 => "gad7",
        }
    }

    /// Parses the name.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// How an item is answered.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Answer {
    /// One of the options, answered with its index (which is also its score).
    Choice {
        /// The options, in order.
        options: &'static [&'static str],
    },
    /// Free text of at most `max_chars` characters.
    Text {
        /// The limit.
        max_chars: usize,
    },
}

/// One item.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Item {
    /// Stable id (the key of its answer).
    pub id: &'static str,
    /// The question.
    pub text: &'static str,
    /// How it is answered.
    pub answer: Answer,
    /// Whether a submission must answer it.
    pub required: bool,
    /// Whether it counts towards the total.
    pub scored: bool,
}

/// A form.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Template {
    /// Which.
    pub kind: FormKind,
    /// Its title.
    pub title: &'static str,
    /// What the patient reads first.
    pub instructions: &'static str,
    /// The items, in order.
    pub items: &'static [Item],
}

const FREQUENCY: &[&str] = &["Not at all", "Several days", "More than half the days", "Nearly every day"];
const DIFFICULTY: &[&str] = &["Not difficult at all", "Somewhat difficult", "Very difficult", "Extremely difficult"];

const fn frequency(id: &'static str, text: &'static str) -> Item {
    Item { id, text, answer: Answer::Choice { options: FREQUENCY }, required: true, scored: true }
}

const fn text(id: &'static str, text: &'static str, required: bool, max_chars: usize) -> Item {
    Item { id, text, answer: Answer::Text { max_chars }, required, scored: false }
}

const fn choice(id: &'static str, text: &'static str, options: &'static [&'static str], required: bool) -> Item {
    Item { id, text, answer: Answer::Choice { options }, required, scored: false }
}

const PHQ9: Template = Template {
    kind: FormKind::Phq9,
    title: "PHQ-9",
    instructions: "Over the last 2 weeks, how often have you been bothered by any of the following problems?",
    items: &[
        frequency("item1", "Little interest or pleasure in doing things"),
        frequency("item2", "Feeling down, depressed, or hopeless"),
        frequency("item3", "Trouble falling or staying asleep, or sleeping too much"),
        frequency("item4", "Feeling tired or having little energy"),
        frequency("item5", "Poor appetite or overeating"),
        frequency(
            "item6",
            "Feeling bad about yourself - or that you are a failure or have let yourself or your family down",
        ),
        frequency("item7", "Trouble concentrating on things, such as reading the newspaper or watching television"),
        frequency(
            "item8",
            "Moving or speaking so slowly that other people could have noticed? Or the opposite - being so fidgety or \
             restless that you have been moving around a lot more than usual",
        ),
        frequency("item9", "Thoughts that you would be better off dead or of hurting yourself in some way"),
        choice(
            "difficulty",
            "If you checked off any problems, how difficult have these problems made it for you to do your work, take \
             care of things at home, or get along with other people?",
            DIFFICULTY,
            false,
        ),
    ],
};

const GAD7: Template = Template {
    kind: FormKind::Gad7,
    title: "GAD-7",
    instructions: "Over the last 2 weeks, how often have you been bothered by the following problems?",
    items: &[
        frequency("item1", "Feeling nervous, anxious, or on edge"),
        frequency("item2", "Not being able to stop or control worrying"),
        frequency("item3", "Worrying too much about different things"),
        frequency("item4", "Trouble relaxing"),
        frequency("item5", "Being so restless that it is hard to sit still"),
        frequency("item6", "Becoming easily annoyed or irritable"),
        frequency("item7", "Feeling afraid, as if something awful might happen"),
        choice(
            "difficulty",
            "If you checked off any problems, how difficult have these problems made it for you to do your work, take \
             care of things at home, or get along with other people?",
            DIFFICULTY,
            false,
        ),
    ],
};

const GENERAL_INTAKE: Template = Template {
    kind: FormKind::GeneralIntake,
    title: "Intake",
    instructions: "Tell us a little about what brings you here. Your answers are encrypted and seen only by your care team.",
    items: &[
        text("reason_for_visit", "What brings you to see us?", true, 2000),
        text("goals", "What would you like to get out of treatment?", false, 2000),
        choice("prior_treatment", "Have you had mental health treatment before?", &["No", "Yes"], true),
        text("current_medications", "Which medications do you take now (name and dose)?", false, 2000),
        text("allergies", "Do you have any allergies?", false, 1000),
        choice(
            "substance_use",
            "How often do you use alcohol or other substances?",
            &["Never", "Occasionally", "Regularly"],
            true,
        ),
        choice("preferred_contact", "How should we contact you?", &["Portal message", "Phone", "Email"], true),
    ],
};

impl Template {
    /// The form as it is sent to be filled in.
    pub fn definition(&self) -> FormDefinition {
        let answer = |answer: Answer| match answer {
            Answer::Choice { options } => {
                intake::AnswerKind::Choice { options: options.iter().map(|o| (*o).to_owned()).collect() }
            }
            Answer::Text { max_chars } => {
                intake::AnswerKind::Text { max_chars: u32::try_from(max_chars).unwrap_or(u32::MAX) }
            }
        };
        FormDefinition {
            instructions: self.instructions.to_owned(),
            items: self
                .items
                .iter()
                .map(|item| FormItem {
                    answer: answer(item.answer),
                    id: item.id.to_owned(),
                    required: item.required,
                    scored: item.scored,
                    text: item.text.to_owned(),
                })
                .collect(),
            kind: self.kind.as_str().to_owned(),
            title: self.title.to_owned(),
        }
    }
}

/// The template of a form.
pub fn template(kind: FormKind) -> &'static Template {
    match kind {
        FormKind::GeneralIntake => &GENERAL_INTAKE,
        FormKind::Phq9 => &PHQ9,
        FormKind::Gad7 => &GAD7,
    }
}

/// An answer that breaks its item's rule. Names the item and the rule, never the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("`{item}` {rule}")]
pub struct InvalidAnswer {
    /// The item id (or `answers` for the whole object).
    pub item: &'static str,
    /// The rule.
    pub rule: &'static str,
}

/// Checks answers against the form: only its items, each of the right kind and range; with
/// `complete`, every required item answered (a draft may be partial).
pub fn validate(kind: FormKind, answers: &IntakeAnswers, complete: bool) -> Result<(), InvalidAnswer> {
    let form = template(kind);
    if answers.items().any(|k| !form.items.iter().any(|i| i.id == k)) {
        return Err(InvalidAnswer { item: "answers", rule: "holds an item this form does not have" });
    }
    for item in form.items {
        match (answers.get(item.id), item.answer) {
            (None | Some(intake::Answer::Blank), _) => {
                if complete && item.required {
                    return Err(InvalidAnswer { item: item.id, rule: "is required" });
                }
            }
            (Some(intake::Answer::Choice(i)), Answer::Choice { options }) => {
                if usize::try_from(*i).map_or(true, |i| i >= options.len()) {
                    return Err(InvalidAnswer { item: item.id, rule: "is not one of the options" });
                }
            }
            // A negative or fractional number.
            (Some(intake::Answer::Other(serde_json::Value::Number(_))), Answer::Choice { .. }) => {
                return Err(InvalidAnswer { item: item.id, rule: "is not one of the options" });
            }
            (Some(intake::Answer::Text(s)), Answer::Text { max_chars }) => {
                if s.chars().count() > max_chars {
                    return Err(InvalidAnswer { item: item.id, rule: "is too long" });
                }
                if let Err(refusal) = crate::plain_text::check(s, true) {
                    return Err(InvalidAnswer { item: item.id, rule: refusal.rule() });
                }
                if complete && item.required && s.trim().is_empty() {
                    return Err(InvalidAnswer { item: item.id, rule: "is required" });
                }
            }
            (Some(_), Answer::Choice { .. }) => {
                return Err(InvalidAnswer { item: item.id, rule: "must be the index of an option" });
            }
            (Some(_), Answer::Text { .. }) => return Err(InvalidAnswer { item: item.id, rule: "must be text" }),
        }
    }
    Ok(())
}

/// A scored screening (stored sealed, and read by clinicians as
/// `{"total", "severity", "urgent"}`). PHI: `Debug` never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Score {
    /// The total of the scored items.
    pub total: u32,
    /// The published severity band.
    pub severity: Severity,
    /// Whether the clinician must be alerted at once (PHQ-9 item 9 above zero).
    pub urgent: bool,
}

impl fmt::Debug for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Score(..)")
    }
}

/// Scores complete answers (`None` for the general intake, which has no score).
pub fn score(kind: FormKind, answers: &IntakeAnswers) -> Option<Score> {
    let form = template(kind);
    let value = |id: &str| match answers.get(id) {
        Some(intake::Answer::Choice(i)) => *i,
        _ => 0,
    };
    let total: u64 = form.items.iter().filter(|i| i.scored).map(|i| value(i.id)).sum();
    let total = u32::try_from(total).unwrap_or(u32::MAX);
    let severity = match kind {
        FormKind::GeneralIntake => return None,
        FormKind::Phq9 => match total {
            0..=4 => Severity::Minimal,
            5..=9 => Severity::Mild,
            10..=14 => Severity::Moderate,
            15..=19 => Severity::ModeratelySevere,
            _ => Severity::Severe,
        },
        FormKind::Gad7 => match total {
            0..=4 => Severity::Minimal,
            5..=9 => Severity::Mild,
            10..=14 => Severity::Moderate,
            _ => Severity::Severe,
        },
    };
    let urgent = kind == FormKind::Phq9 && value(confidant_protocol::PHQ9_SELF_HARM_ITEM) > 0;
    Some(Score { total, severity, urgent })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    /// An answer as it arrives on the wire.
    fn answer(v: Value) -> intake::Answer {
        serde_json::from_value(v).unwrap()
    }

    fn answers(kind: FormKind, each: u64) -> IntakeAnswers {
        template(kind).items.iter().filter(|i| i.scored).map(|i| (i.id, answer(json!(each)))).collect()
    }

    fn with(mut a: IntakeAnswers, id: &str, v: Value) -> IntakeAnswers {
        a.insert(id, answer(v));
        a
    }

    #[test]
    fn phq9_totals_fall_in_the_published_bands() {
        let band = |a: &IntakeAnswers| score(FormKind::Phq9, a).unwrap().severity.as_str();
        assert_eq!(band(&answers(FormKind::Phq9, 0)), "minimal");
        let nine_ones = answers(FormKind::Phq9, 1);
        assert_eq!(score(FormKind::Phq9, &nine_ones).unwrap().total, 9);
        assert_eq!(band(&nine_ones), "mild");
        assert_eq!(band(&with(answers(FormKind::Phq9, 1), "item1", json!(2))), "moderate");
        assert_eq!(band(&answers(FormKind::Phq9, 2)), "moderately_severe");
        let all_threes = score(FormKind::Phq9, &answers(FormKind::Phq9, 3)).unwrap();
        assert_eq!((all_threes.total, all_threes.severity, all_threes.urgent), (27, Severity::Severe, true));
    }

    #[test]
    fn phq9_item_9_above_zero_is_urgent_whatever_the_total() {
        let only_item9 = with(answers(FormKind::Phq9, 0), "item9", json!(1));
        let scored = score(FormKind::Phq9, &only_item9).unwrap();
        assert_eq!((scored.total, scored.severity.as_str(), scored.urgent), (1, "minimal", true));
        assert!(!score(FormKind::Phq9, &answers(FormKind::Phq9, 0)).unwrap().urgent);
    }

    #[test]
    fn gad7_totals_fall_in_the_published_bands() {
        let band = |each| score(FormKind::Gad7, &answers(FormKind::Gad7, each)).unwrap();
        assert_eq!((band(0).total, band(0).severity.as_str()), (0, "minimal"));
        assert_eq!((band(1).total, band(1).severity.as_str()), (7, "mild"));
        assert_eq!((band(2).total, band(2).severity.as_str()), (14, "moderate"));
        assert_eq!((band(3).total, band(3).severity.as_str()), (21, "severe"));
        assert!(!band(3).urgent);
    }

    #[test]
    fn submissions_need_every_required_item_and_drafts_do_not() {
        let partial: IntakeAnswers = [("item1", answer(json!(2)))].into_iter().collect();
        assert!(validate(FormKind::Phq9, &partial, false).is_ok());
        assert_eq!(validate(FormKind::Phq9, &partial, true), Err(InvalidAnswer { item: "item2", rule: "is required" }));
        assert!(validate(FormKind::Phq9, &answers(FormKind::Phq9, 3), true).is_ok(), "difficulty is optional");
    }

    #[test]
    fn out_of_range_wrong_kind_and_unknown_answers_are_refused() {
        let bad =
            |id: &str, v: Value| validate(FormKind::Gad7, &with(IntakeAnswers::new(), id, v), false).unwrap_err().rule;
        assert_eq!(bad("item1", json!(4)), "is not one of the options");
        assert_eq!(bad("item1", json!(-1)), "is not one of the options");
        assert_eq!(bad("item1", json!("often")), "must be the index of an option");
        assert_eq!(bad("item9", json!(0)), "holds an item this form does not have");
        let long = "x".repeat(2001);
        let intake = with(IntakeAnswers::new(), "reason_for_visit", json!(long));
        assert_eq!(validate(FormKind::GeneralIntake, &intake, false).unwrap_err().rule, "is too long");
        assert_eq!(bad("item1", json!(1.5)), "is not one of the options");
        assert_eq!(bad("item1", json!(true)), "must be the index of an option");
        let number_for_text = with(IntakeAnswers::new(), "goals", json!(3));
        assert_eq!(validate(FormKind::GeneralIntake, &number_for_text, false).unwrap_err().rule, "must be text");
        assert!(validate(FormKind::Gad7, &with(IntakeAnswers::new(), "item1", Value::Null), false).is_ok());
    }

    #[test]
    fn each_form_goes_out_exactly_as_the_untyped_json_it_replaced() {
        for kind in FormKind::ALL {
            let untyped = serde_json::to_value(template(kind)).unwrap();
            assert_eq!(serde_json::to_string(&template(kind).definition()).unwrap(), untyped.to_string(), "{kind:?}");
        }
    }

    #[test]
    fn a_score_never_prints() {
        let scored = score(FormKind::Phq9, &answers(FormKind::Phq9, 3)).unwrap();
        assert_eq!(format!("{scored:?}"), "Score(..)");
        assert_eq!(format!("{:#?}", Some(scored)), "Some(\n    Score(..),\n)");
    }
}
