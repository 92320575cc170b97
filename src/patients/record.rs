//! The patient record's fields and the rules a value must meet before it is stored.

use serde::{Deserialize, Serialize};
use time::macros::format_description;

use crate::email::is_email;
use crate::phi::PhiText;
use confidant_actors::ids::PatientId;

/// What the practice knows about a patient, as entered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatientRecord {
    /// Full legal name (for claims and records).
    #[schema(value_type = crate::http::fields::PersonName)]
    pub legal_name: PhiText,
    /// The name the patient goes by.
    #[serde(default)]
    #[schema(value_type = Option<crate::http::fields::PersonName>)]
    pub preferred_name: Option<PhiText>,
    /// `YYYY-MM-DD`.
    #[schema(value_type = crate::http::fields::DateOfBirth)]
    pub date_of_birth: PhiText,
    /// Contact email (also looked up through a blind index).
    #[serde(default)]
    #[schema(value_type = Option<crate::http::fields::RecordEmail>)]
    pub email: Option<PhiText>,
    /// Contact phone.
    #[serde(default)]
    #[schema(value_type = Option<crate::http::fields::Phone>)]
    pub phone: Option<PhiText>,
    /// Postal address, free text over several lines.
    #[serde(default)]
    #[schema(value_type = Option<crate::http::fields::Address>)]
    pub address: Option<PhiText>,
    /// Whom to call in an emergency.
    #[serde(default)]
    pub emergency_contact: Option<EmergencyContact>,
}

/// An emergency contact (stored as one encrypted value).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EmergencyContact {
    /// Their name.
    #[schema(value_type = crate::http::fields::PersonName)]
    pub name: PhiText,
    /// How they relate to the patient.
    #[serde(default)]
    #[schema(value_type = Option<crate::http::fields::Relationship>)]
    pub relationship: Option<PhiText>,
    /// Their phone.
    #[schema(value_type = crate::http::fields::Phone)]
    pub phone: PhiText,
}

/// A stored patient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patient {
    /// The patient's id.
    pub id: PatientId,
    /// The record, decrypted.
    pub record: PatientRecord,
    /// When it was created (UTC ms).
    pub created_at_ms: i64,
    /// When it last changed (UTC ms).
    pub updated_at_ms: i64,
}

/// A field that breaks its rule. Names the field and the rule, never the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {rule}")]
pub struct InvalidField {
    /// The field.
    pub field: &'static str,
    /// The rule it breaks.
    pub rule: &'static str,
}

impl PatientRecord {
    /// Checks every field; the first that breaks its rule is reported.
    pub fn validate(&self, today: time::Date) -> Result<(), InvalidField> {
        text("legal_name", Some(&self.legal_name), 1, 200, false)?;
        text("preferred_name", self.preferred_name.as_ref(), 1, 200, false)?;
        date_of_birth(&self.date_of_birth, today)?;
        if let Some(email) = &self.email {
            text("email", Some(email), 3, 254, false)?;
            if !is_email(email.expose()) {
                return Err(InvalidField { field: "email", rule: "is not an email address" });
            }
        }
        phone("phone", self.phone.as_ref())?;
        text("address", self.address.as_ref(), 1, 500, true)?;
        if let Some(contact) = &self.emergency_contact {
            text("emergency_contact.name", Some(&contact.name), 1, 200, false)?;
            text("emergency_contact.relationship", contact.relationship.as_ref(), 1, 100, false)?;
            phone("emergency_contact.phone", Some(&contact.phone))?;
        }
        Ok(())
    }
}

fn text(field: &'static str, value: Option<&PhiText>, min: usize, max: usize, lines: bool) -> Result<(), InvalidField> {
    let Some(value) = value else { return Ok(()) };
    let value = value.expose();
    let chars = value.chars().count();
    if value.trim().is_empty() && min > 0 {
        return Err(InvalidField { field, rule: "must not be empty" });
    }
    if chars > max {
        return Err(InvalidField { field, rule: "is too long" });
    }
    if chars < min {
        return Err(InvalidField { field, rule: "is too short" });
    }
    crate::plain_text::check(value, lines).map_err(|refusal| InvalidField { field, rule: refusal.rule() })
}

fn date_of_birth(value: &PhiText, today: time::Date) -> Result<(), InvalidField> {
    let rule = |rule| InvalidField { field: "date_of_birth", rule };
    let date = time::Date::parse(value.expose(), format_description!("[year]-[month]-[day]"))
        .map_err(|_| rule("must be a date as YYYY-MM-DD"))?;
    if date > today {
        return Err(rule("is in the future"));
    }
    if date.year() < 1900 {
        return Err(rule("is before 1900"));
    }
    Ok(())
}

fn phone(field: &'static str, value: Option<&PhiText>) -> Result<(), InvalidField> {
    let Some(value) = value else { return Ok(()) };
    let value = value.expose();
    let digits = value.chars().filter(char::is_ascii_digit).count();
    let allowed = value.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c));
    if !allowed || !(7..=15).contains(&digits) || value.len() > 32 {
        return Err(InvalidField { field, rule: "is not a phone number" });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PatientRecord {
        PatientRecord {
            legal_name: PhiText::new("Ada Lovelace"),
            preferred_name: Some(PhiText::new("Ada")),
            date_of_birth: PhiText::new("1990-12-10"),
            email: Some(PhiText::new("ada@example.org")),
            phone: Some(PhiText::new("+44 20 7946 0000")),
            address: Some(PhiText::new("12 St James's Square\nLondon")),
            emergency_contact: Some(EmergencyContact {
                name: PhiText::new("Mary Somerville"),
                relationship: Some(PhiText::new("friend")),
                phone: PhiText::new("+44 20 7946 0001"),
            }),
        }
    }

    fn today() -> time::Date {
        time::macros::date!(2026 - 11 - 23)
    }

    #[test]
    fn a_complete_record_is_valid() {
        assert_eq!(sample().validate(today()), Ok(()));
    }

    #[test]
    fn each_rule_names_its_field_and_never_the_value() {
        type Breaker = Box<dyn Fn(&mut PatientRecord)>;
        let cases: Vec<(&str, Breaker)> = vec![
            ("legal_name", Box::new(|r| r.legal_name = PhiText::new("  "))),
            ("legal_name", Box::new(|r| r.legal_name = PhiText::new("x".repeat(201)))),
            ("date_of_birth", Box::new(|r| r.date_of_birth = PhiText::new("10/12/1990"))),
            ("date_of_birth", Box::new(|r| r.date_of_birth = PhiText::new("2030-01-01"))),
            ("email", Box::new(|r| r.email = Some(PhiText::new("ada at example.org")))),
            ("phone", Box::new(|r| r.phone = Some(PhiText::new("call me")))),
            ("address", Box::new(|r| r.address = Some(PhiText::new("a\u{0}b")))),
            (
                "emergency_contact.phone",
                Box::new(|r| {
                    if let Some(c) = r.emergency_contact.as_mut() {
                        c.phone = PhiText::new("12");
                    }
                }),
            ),
        ];
        for (field, break_it) in cases {
            let mut record = sample();
            break_it(&mut record);
            let error = record.validate(today()).unwrap_err();
            assert_eq!(error.field, field);
            assert!(!error.to_string().contains("Ada"), "{error}");
        }
    }
}
