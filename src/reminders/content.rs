//! What a reminder says. By default nothing that is PHI: that the practice has an appointment
//! for the recipient, and a portal link with no identifier in it. Times, the clinician and the
//! location are rendered only into the body that [`super::pgp_mime`] encrypts. Templates come
//! from the settings and are checked at start-up, so a template that would put PHI in the clear
//! cannot even be configured.

use std::fmt;

use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Mailbox, MessageBuilder, SinglePart};
use time::{OffsetDateTime, UtcOffset};

use super::ReminderError;
use super::pgp_mime::{self, PgpKey};
use crate::settings::ReminderSettings;

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

/// What a reminder is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An appointment coming up.
    Upcoming,
    /// An appointment cancelled.
    Cancelled,
}

impl Kind {
    /// Stored text.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Upcoming => "upcoming",
            Kind::Cancelled => "cancelled",
        }
    }

    /// Parses the stored text.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "upcoming" => Some(Kind::Upcoming),
            "cancelled" => Some(Kind::Cancelled),
            _ => None,
        }
    }
}

/// The details only an encrypted reminder carries. PHI: no `Debug` of the content.
pub struct Details {
    /// Start (UTC ms).
    pub starts_at_ms: i64,
    /// End (UTC ms).
    pub ends_at_ms: i64,
    /// How the clinician is named.
    pub clinician: String,
}

impl fmt::Debug for Details {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Details(..)")
    }
}

/// Everything needed to write one reminder.
pub struct Letter<'a> {
    /// What it is about.
    pub kind: Kind,
    /// The recipient (PHI).
    pub to: Mailbox,
    /// The stable Message-ID of this reminder (without angle brackets).
    pub message_id: String,
    /// The appointment's details.
    pub details: &'a Details,
    /// The patient's key: with one, the whole body is OpenPGP-encrypted and carries the details.
    pub key: Option<&'a PgpKey>,
}

/// The parsed templates of the settings.
#[derive(Debug, Clone)]
pub struct Templates {
    subject: Template,
    upcoming: Template,
    cancelled: Template,
    encrypted_upcoming: Template,
    encrypted_cancelled: Template,
    from: Mailbox,
    practice: String,
    portal_url: String,
    location: String,
    offset: UtcOffset,
}

impl Templates {
    /// From settings already checked at load time (a template error here names the key).
    pub fn new(settings: &ReminderSettings) -> Result<Self, ReminderError> {
        let parse = |key: &'static str, text: &str, allowed| {
            Template::parse(text, allowed).map_err(|_| ReminderError::Configuration(key))
        };
        Ok(Self {
            subject: parse("reminders.subject", &settings.subject, UNENCRYPTED_PLACEHOLDERS)?,
            upcoming: parse("reminders.template_upcoming", &settings.template_upcoming, UNENCRYPTED_PLACEHOLDERS)?,
            cancelled: parse("reminders.template_cancelled", &settings.template_cancelled, UNENCRYPTED_PLACEHOLDERS)?,
            encrypted_upcoming: parse(
                "reminders.encrypted_template_upcoming",
                &settings.encrypted_template_upcoming,
                ENCRYPTED_PLACEHOLDERS,
            )?,
            encrypted_cancelled: parse(
                "reminders.encrypted_template_cancelled",
                &settings.encrypted_template_cancelled,
                ENCRYPTED_PLACEHOLDERS,
            )?,
            from: settings.from.parse().map_err(|_| ReminderError::Configuration("reminders.from"))?,
            practice: settings.practice_name.clone(),
            portal_url: settings.portal_url.clone(),
            location: settings.location.clone(),
            offset: UtcOffset::from_whole_seconds(settings.utc_offset_minutes * 60)
                .map_err(|_| ReminderError::Configuration("reminders.utc_offset_minutes"))?,
        })
    }

    /// The sender.
    pub fn from(&self) -> &Mailbox {
        &self.from
    }

    /// Writes the email: plain text with no PHI, or PGP/MIME around the full details.
    pub fn write(&self, letter: &Letter<'_>) -> Result<Message, ReminderError> {
        let subject = self.subject.render(|name| self.value(name, None));
        let builder = Message::builder()
            .from(self.from.clone())
            .to(letter.to.clone())
            .subject(subject)
            .message_id(Some(format!("<{}>", letter.message_id)));
        match letter.key {
            None => {
                let template = match letter.kind {
                    Kind::Upcoming => &self.upcoming,
                    Kind::Cancelled => &self.cancelled,
                };
                let body = template.render(|name| self.value(name, None));
                Ok(plain(builder, body)?)
            }
            Some(key) => {
                let template = match letter.kind {
                    Kind::Upcoming => &self.encrypted_upcoming,
                    Kind::Cancelled => &self.encrypted_cancelled,
                };
                let body = zeroize::Zeroizing::new(template.render(|name| self.value(name, Some(letter.details))));
                let inner = SinglePart::builder()
                    .header(ContentType::TEXT_PLAIN)
                    .header(ContentTransferEncoding::QuotedPrintable)
                    .body(body.as_str().to_owned());
                let armored = pgp_mime::encrypt(key, &inner.formatted())?;
                builder.multipart(pgp_mime::multipart_encrypted(armored)).map_err(|_| ReminderError::Build)
            }
        }
    }

    fn value(&self, name: &str, details: Option<&Details>) -> String {
        match (name, details) {
            ("practice", _) => self.practice.clone(),
            ("portal_url", _) => self.portal_url.clone(),
            ("location", Some(_)) => self.location.clone(),
            ("clinician", Some(d)) => d.clinician.clone(),
            ("starts_at", Some(d)) => self.time(d.starts_at_ms),
            ("ends_at", Some(d)) => self.time(d.ends_at_ms),
            // Templates are checked when loaded; a PHI placeholder never reaches a clear email.
            _ => String::new(),
        }
    }

    fn time(&self, at_ms: i64) -> String {
        let at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
            .to_offset(self.offset);
        let format = time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute] (UTC[offset_hour sign:mandatory]:[offset_minute])"
        );
        at.format(&format).unwrap_or_default()
    }
}

fn plain(builder: MessageBuilder, body: String) -> Result<Message, ReminderError> {
    builder
        .singlepart(
            SinglePart::builder()
                .header(ContentType::TEXT_PLAIN)
                .header(ContentTransferEncoding::QuotedPrintable)
                .body(body),
        )
        .map_err(|_| ReminderError::Build)
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
