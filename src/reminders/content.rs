//! What a reminder says. By default nothing that is PHI: that the practice has an appointment
//! for the recipient, and a portal link with no identifier in it. Times, the clinician and the
//! location are rendered only into the body that [`super::pgp_mime`] encrypts. A staff notice
//! says even less: that an urgent item is waiting in Confidant, and the portal link. An audit
//! head email (to owners) holds the signed heads of one node's audit chains and how to check
//! them: chain ids, numbers, hashes, signatures, key fingerprints, times. Templates
//! come from the settings and are checked at start-up, so a template that would put PHI in the
//! clear cannot even be configured.

use std::fmt;

use lettre::Message;
use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Mailbox, MessageBuilder, SinglePart};
use time::{OffsetDateTime, UtcOffset};

use super::ReminderError;
use super::pgp_mime::{self, PgpKey};
use crate::audit::checkpoint::to_hex;
use crate::audit::signed_head::SignedHead;
use crate::settings::ReminderSettings;

pub use crate::settings::{ENCRYPTED_PLACEHOLDERS, Template, UNENCRYPTED_PLACEHOLDERS};

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
    staff_notice_subject: Template,
    staff_notice: Template,
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
            staff_notice_subject: parse(
                "reminders.staff_notice_subject",
                &settings.staff_notice_subject,
                UNENCRYPTED_PLACEHOLDERS,
            )?,
            staff_notice: parse(
                "reminders.staff_notice_template",
                &settings.staff_notice_template,
                UNENCRYPTED_PLACEHOLDERS,
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
        let builder = self.headers(letter.to.clone(), &letter.message_id, &self.subject);
        match letter.key {
            None => {
                let template = match letter.kind {
                    Kind::Upcoming => &self.upcoming,
                    Kind::Cancelled => &self.cancelled,
                };
                self.clear(builder, template)
            }
            Some(key) => {
                let template = match letter.kind {
                    Kind::Upcoming => &self.encrypted_upcoming,
                    Kind::Cancelled => &self.encrypted_cancelled,
                };
                let body = zeroize::Zeroizing::new(template.render(|name| self.value(name, Some(letter.details))));
                let inner = text_part(body.as_str().to_owned());
                let armored = pgp_mime::encrypt(key, &inner.formatted())?;
                builder.multipart(pgp_mime::multipart_encrypted(armored)).map_err(|_| ReminderError::Build)
            }
        }
    }

    /// Writes a staff notice to `to` (a staff account's address) with the stable `message_id`
    /// (without angle brackets): plain text saying only that an urgent item is waiting, and the
    /// portal link. Never encrypted, and it names no patient, no item and no id.
    pub fn write_staff_notice(&self, to: Mailbox, message_id: &str) -> Result<Message, ReminderError> {
        let builder = self.headers(to, message_id, &self.staff_notice_subject);
        self.clear(builder, &self.staff_notice)
    }

    /// Writes the audit head email of node `node_id` to `to` (an owner's address) with the stable
    /// `message_id`: for each of `heads`, its fields and its line for `confidant audit verify
    /// --head`. Plain text; nothing in it is PHI or secret (signatures are public by design).
    pub fn write_audit_heads(
        &self,
        to: Mailbox,
        message_id: &str,
        node_id: &str,
        heads: &[SignedHead],
    ) -> Result<Message, ReminderError> {
        let subject = format!("Audit trail heads of {}", self.practice);
        let builder = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .message_id(Some(format!("<{message_id}>")));
        let mut body = format!(
            "Confidant: the newest signed heads of the audit trail kept by node {node_id} of {practice}.\n\n\
             This email holds no patient information. Keep it where the people who run the node cannot change \
             it: it records where each audit chain stood. To check later that a chain still holds its head, \
             run `confidant audit verify --head '<line>'` with the head line below (the whole line, in single \
             quotes); a chain whose newest entries were deleted since is named, with the first missing \
             sequence number.\n",
            practice = self.practice
        );
        for head in heads {
            let c = &head.checkpoint;
            body.push_str(&format!(
                "\nChain {}\n  sequence number: {}\n  signed at:       {}\n  head hash:       {}\n  \
                 key fingerprint: {}\n  signature:       {}\n  head line:\n{}\n",
                c.node_id,
                c.seq,
                utc(c.at_ms),
                to_hex(&c.hash),
                to_hex(&head.key),
                to_hex(&c.signature),
                head.to_line()
            ));
        }
        if let Some(first) = heads.first() {
            body.push_str(&format!("\nFor example:\nconfidant audit verify --head '{}'\n", first.to_line()));
        }
        builder.singlepart(text_part(body)).map_err(|_| ReminderError::Build)
    }

    /// From, To, Subject (rendered from `subject`) and Message-ID.
    fn headers(&self, to: Mailbox, message_id: &str, subject: &Template) -> MessageBuilder {
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject.render(|name| self.value(name, None)))
            .message_id(Some(format!("<{message_id}>")))
    }

    /// A plain-text body rendered from a template checked to name nothing but the practice and
    /// the portal link.
    fn clear(&self, builder: MessageBuilder, template: &Template) -> Result<Message, ReminderError> {
        let body = template.render(|name| self.value(name, None));
        builder.singlepart(text_part(body)).map_err(|_| ReminderError::Build)
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

/// `at_ms` as `2026-12-08 10:00:00 UTC`.
fn utc(at_ms: i64) -> String {
    let at =
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(at_ms) * 1_000_000).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    at.format(&format).unwrap_or_default()
}

/// A UTF-8 plain-text part, quoted-printable.
fn text_part(body: String) -> SinglePart {
    SinglePart::builder().header(ContentType::TEXT_PLAIN).header(ContentTransferEncoding::QuotedPrintable).body(body)
}
