//! The template grammar of reminders: literal text and `{placeholders}`, and which placeholders
//! may appear where. The settings check the configured templates with it at start-up;
//! `reminders::content` renders them.

/// Placeholders an unencrypted reminder (and every subject) may use: nothing about the patient.
pub const UNENCRYPTED_PLACEHOLDERS: &[&str] = &["practice", "portal_url"];

/// Placeholders an encrypted reminder may use.
pub const ENCRYPTED_PLACEHOLDERS: &[&str] =
    &["practice", "portal_url", "starts_at", "ends_at", "clinician", "location"];

/// A checked template: literal text and placeholders, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Piece>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Value(&'static str),
}

impl Template {
    /// Parses `text`, allowing only the placeholders in `allowed`. The error says what is
    /// wrong without quoting the template.
    pub fn parse(text: &str, allowed: &[&'static str]) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            pieces.push(Piece::Text(rest[..open].to_owned()));
            let after = &rest[open + 1..];
            let close = after.find('}').ok_or("has a `{` without its `}`")?;
            let name = &after[..close];
            let known = allowed.iter().find(|a| **a == name).ok_or_else(|| {
                format!(
                    "uses the placeholder `{{{name}}}`, which is not allowed there (allowed: {})",
                    allowed.join(", ")
                )
            })?;
            pieces.push(Piece::Value(known));
            rest = &after[close + 1..];
        }
        if rest.contains('}') {
            return Err("has a `}` without its `{`".into());
        }
        pieces.push(Piece::Text(rest.to_owned()));
        Ok(Self(pieces))
    }

    /// Fills the placeholders once from `value` (values are never expanded again), with
    /// control characters in values replaced by spaces so no value can add lines or headers.
    pub fn render(&self, value: impl Fn(&str) -> String) -> String {
        let mut out = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Value(name) => {
                    out.extend(value(name).chars().map(|c| if c.is_control() { ' ' } else { c }));
                }
            }
        }
        out
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_clear_template_cannot_name_phi() {
        for phi in ["starts_at", "ends_at", "clinician", "location", "patient"] {
            let why = Template::parse(&format!("see {{{phi}}}"), UNENCRYPTED_PLACEHOLDERS).unwrap_err();
            assert!(why.contains("not allowed"), "{why}");
        }
        assert!(Template::parse("{practice} {portal_url}", UNENCRYPTED_PLACEHOLDERS).is_ok());
        assert!(Template::parse("{practice", UNENCRYPTED_PLACEHOLDERS).is_err());
        assert!(Template::parse("practice}", UNENCRYPTED_PLACEHOLDERS).is_err());
    }

    #[test]
    fn values_are_inserted_once_and_cannot_add_lines() {
        let template = Template::parse("Dear {practice}!", UNENCRYPTED_PLACEHOLDERS).unwrap();
        let out = template.render(|_| "{portal_url}\r\nBcc: evil@example.org".into());
        assert_eq!(out, "Dear {portal_url}  Bcc: evil@example.org!");
    }
}
