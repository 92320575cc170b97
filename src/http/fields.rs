//! The rules of the fields the API reads, as named OpenAPI schemas: what a person's name, a phone
//! number, an email address, a date of birth, a staff name, a break-glass reason or base64 may
//! be, written as the pattern and length the server's own check amounts to (`crate::plain_text`,
//! `crate::email`, `crate::patients::PatientRecord::validate`, `StaffName::parse`, the reason and
//! follow-up rules); and [`Whole`], a number read as JSON Schema's `integer` means it. So a
//! request the document calls valid is one the server accepts, and one it calls invalid is
//! refused, which tests/api/contract.rs holds the server to; the tests below hold each pattern to
//! the check it mirrors.
//!
//! Patterns are ECMA-262, as JSON Schema reads them. Where the server trims (Unicode White_Space)
//! before it checks, the pattern allows that space around the text and counts the length inside
//! it, so it bounds with a quantifier rather than `maxLength`.

use std::borrow::Cow;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};
use time::{Date, OffsetDateTime};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

/// `plain_text::is_hidden`, as the body of a character class.
macro_rules! hidden {
    () => {
        r"\xAD\u061C\u180E\u200B\u200E\u200F\u2028\u2029\u202A-\u202E\u2060-\u2064\u2066-\u2069\uFEFF\uFFF9-\uFFFB"
    };
}

/// A whole number as JSON Schema's `integer` means it: `3` and `3.0` alike (serde reads only the
/// first into an integer type), so a body the document calls valid is read, and anything else
/// (a fraction, a number out of `T`'s range) is refused as a malformed body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Whole<T>(pub T);

impl<'de, T: TryFrom<i64>> Deserialize<'de> for Whole<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// 2^63: the first float no `i64` holds.
        const LIMIT: f64 = 9_223_372_036_854_775_808.0;
        let number = serde_json::Number::deserialize(deserializer)?;
        let whole = number.as_i64().or_else(|| {
            // Whole and within the i64 range: the cast is exact.
            let float = number.as_f64().filter(|f| f.fract() == 0.0 && (-LIMIT..LIMIT).contains(f))?;
            Some(float as i64)
        });
        whole
            .and_then(|n| T::try_from(n).ok())
            .map(Whole)
            .ok_or_else(|| D::Error::custom("not a whole number in range"))
    }
}

/// Characters no single-line text may hold (`plain_text::check` without lines): control
/// characters, and the invisible and text-direction ones (`plain_text::is_hidden`). The body of a
/// character class.
const REFUSED: &str = concat!(r"\x00-\x1F\x7F-\x9F", hidden!());
/// Characters no text over several lines may hold: the same, but tab, line feed and carriage
/// return.
const REFUSED_IN_LINES: &str = concat!(r"\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F", hidden!());
/// Unicode White_Space, what `str::trim` removes and `char::is_whitespace` names.
const SPACE: &str = r"\t\n\x0B\x0C\r \x85\xA0\u1680\u2000-\u200A\u2028\u2029\u202F\u205F\u3000";
/// The White_Space a line may hold (neither a control nor a hidden character).
const LINE_SPACE: &str = r" \xA0\u1680\u2000-\u200A\u202F\u205F\u3000";

/// One line of text as the patient record takes it (not trimmed): no refused character, and at
/// least one that is not white space.
fn line() -> String {
    format!("^[^{REFUSED}]*[^{REFUSED}{SPACE}][^{REFUSED}]*$")
}

/// Text the server trims before it checks: White_Space around `inner` characters in `min..=max`
/// (min at least 2) that begin and end with something else, each allowed by `allowed`.
fn trimmed(allowed: &str, min: usize, max: usize) -> String {
    let edge = format!("[^{allowed}{SPACE}]");
    format!("^[{SPACE}]*{edge}[^{allowed}]{{{},{}}}{edge}[{SPACE}]*$", min - 2, max - 2)
}

/// An email address as `crate::email::is_email` takes it (one `@`, a dotted domain, no white
/// space or refused character within), with `around` allowed around it.
fn email(around: &str) -> String {
    let c = format!("{REFUSED}{SPACE}");
    format!("^[{around}]*[^@{c}]+@[^@.{c}][^@{c}]*\\.[^@{c}]*[^@.{c}][{around}]*$")
}

fn string(description: &str, pattern: String, max_length: Option<usize>) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .description(Some(description))
        .pattern(Some(pattern))
        .max_length(max_length)
        .into()
}

/// Declares a named schema: a unit type whose `ToSchema` is `$schema`.
macro_rules! field {
    ($(#[$doc:meta])* $name:ident => $schema:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                $schema
            }
        }

        impl ToSchema for $name {
            fn name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }
        }
    };
}

field! {
    /// A person's name in a patient record (legal, preferred, an emergency contact's).
    PersonName => string("1 to 200 characters on one line, not only white space; no control, invisible or text-direction characters", line(), Some(200))
}

field! {
    /// How an emergency contact relates to the patient.
    Relationship => string("1 to 100 characters on one line, not only white space; no control, invisible or text-direction characters", line(), Some(100))
}

field! {
    /// A postal address, over several lines.
    Address => string(
        "1 to 500 characters, lines allowed, not only white space; no other control character, no invisible or text-direction characters",
        format!("^[^{REFUSED_IN_LINES}]*[^{REFUSED_IN_LINES}{SPACE}][^{REFUSED_IN_LINES}]*$"),
        Some(500),
    )
}

field! {
    /// A phone number.
    Phone => string("7 to 15 digits, with spaces and `+ - ( ) .` between; at most 32 characters", r"^[ +().-]*(?:[0-9][ +().-]*){7,15}$".to_owned(), Some(32))
}

field! {
    /// A patient's or emergency contact's email address, as the record keeps it.
    RecordEmail => string("An email address (one `@`, a dotted domain); at most 254 characters", email(LINE_SPACE), Some(254))
}

field! {
    /// The email address of an account, trimmed and lowercased by the server.
    AccountEmail => string("An email address (one `@`, a dotted domain); at most 254 characters as sent", email(SPACE), Some(254))
}

field! {
    /// A member of staff's name as shown, "Dr. Ana Ruiz".
    StaffName => string("1 to 100 characters once trimmed, on one line; no control, invisible or text-direction characters", staff_name(), None)
}

field! {
    /// Degrees or licences shown after a staff name, "PsyD"; empty or white space for none.
    Credentials => string("At most 40 characters once trimmed, on one line; no control, invisible or text-direction characters; empty for none", credentials(), None)
}

field! {
    /// Why a clinician breaks the glass.
    BreakGlassReason => string(
        "10 to 1000 characters once trimmed, lines allowed; no other control character, no invisible or text-direction characters",
        trimmed(REFUSED_IN_LINES, 10, 1000),
        None,
    )
}

field! {
    /// What was done about an urgent alert.
    FollowUpNote => string("1 to 2000 characters, beginning and ending with something other than white space", follow_up_note(), None)
}

field! {
    /// A date of birth: a real date from 1900-01-01 to today (UTC).
    DateOfBirth => ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Date)))
        .description(Some("`YYYY-MM-DD`, from 1900-01-01 to today (UTC)"))
        .pattern(Some(date_of_birth(OffsetDateTime::now_utc().date())))
        .into()
}

field! {
    /// Bytes in standard base64 with padding, canonical (the unused bits of the last character zero).
    Base64 => string("Standard base64 with padding", BASE64.to_owned(), None)
}

field! {
    /// An Ed25519 public key: 32 bytes in base64.
    SignatureKey => string("32 bytes in standard base64 (44 characters); an Ed25519 public key", r"^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$".to_owned(), None)
}

field! {
    /// A signed clinical note as a PDF document, for release of records.
    PdfDocument => ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
        .description(Some("A PDF document (raw bytes)"))
        .into()
}

field! {
    /// An attachment's ciphertext, as raw bytes: a 12-byte nonce, the AES-256-GCM ciphertext and
    /// its 16-byte tag.
    Ciphertext => ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
        .description(Some("Raw bytes (not base64): a 12-byte nonce, then AES-256-GCM ciphertext and tag"))
        .into()
}

/// Canonical standard base64, as the server's decoder (the `base64` crate's `STANDARD`) takes it.
const BASE64: &str = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$";

fn staff_name() -> String {
    let edge = format!("[^{REFUSED}{SPACE}]");
    format!("^[{SPACE}]*{edge}(?:[^{REFUSED}]{{0,98}}{edge})?[{SPACE}]*$")
}

fn credentials() -> String {
    let edge = format!("[^{REFUSED}{SPACE}]");
    format!("^[{SPACE}]*(?:{edge}(?:[^{REFUSED}]{{0,38}}{edge})?)?[{SPACE}]*$")
}

fn follow_up_note() -> String {
    let edge = format!("[^{SPACE}]");
    format!(r"^{edge}(?:[\s\S]{{0,1998}}{edge})?$")
}

/// `YYYY-MM-DD` from 1900-01-01 to `today`; `format: date` leaves out the days a month lacks.
fn date_of_birth(today: Date) -> String {
    let (year, month, day) = (today.year(), u8::from(today.month()), today.day());
    let any_month = "(?:0[1-9]|1[0-2])";
    let any_day = "(?:0[1-9]|[12][0-9]|3[01])";
    let mut dates = Vec::new();
    if year > 1900 {
        dates.push(format!("{}-{any_month}-{any_day}", digits_between("1900", &format!("{:04}", year - 1))));
    }
    if month > 1 {
        dates.push(format!("{year:04}-{}-{any_day}", digits_between("01", &format!("{:02}", month - 1))));
    }
    dates.push(format!("{year:04}-{month:02}-{}", digits_between("01", &format!("{day:02}"))));
    format!("^(?:{})$", dates.join("|"))
}

/// A pattern for the decimal numbers from `low` to `high`, both written with the same number of
/// digits (leading zeros kept).
fn digits_between(low: &str, high: &str) -> String {
    let (Some(l), Some(h)) = (low.chars().next(), high.chars().next()) else { return String::new() };
    let (low_rest, high_rest) = (&low[1..], &high[1..]);
    if l == h {
        return format!("{l}{}", digits_between(low_rest, high_rest));
    }
    let width = low_rest.len();
    let any = |n: usize| match n {
        0 => String::new(),
        1 => "[0-9]".to_owned(),
        n => format!("[0-9]{{{n}}}"),
    };
    let from_zero = low_rest.bytes().all(|b| b == b'0');
    let to_nine = high_rest.bytes().all(|b| b == b'9');
    let mut parts = Vec::new();
    let mut first_whole = l;
    if !from_zero {
        parts.push(format!("{l}{}", digits_between(low_rest, &"9".repeat(width))));
        first_whole = char::from(l as u8 + 1);
    }
    let last_whole = if to_nine { h } else { char::from(h as u8 - 1) };
    if first_whole <= last_whole {
        let digit =
            if first_whole == last_whole { first_whole.to_string() } else { format!("[{first_whole}-{last_whole}]") };
        parts.push(format!("{digit}{}", any(width)));
    }
    if !to_nine {
        parts.push(format!("{h}{}", digits_between(&"0".repeat(width), high_rest)));
    }
    if parts.len() == 1 { parts.remove(0) } else { format!("(?:{})", parts.join("|")) }
}

#[cfg(test)]
mod tests {
    use regex::Regex;

    use super::*;
    use crate::patients::{EmergencyContact, PatientRecord};
    use crate::phi::PhiText;

    fn pattern_of<T: PartialSchema>() -> Regex {
        let schema = serde_json::to_value(T::schema()).unwrap();
        Regex::new(schema["pattern"].as_str().unwrap()).unwrap()
    }

    /// What a field's schema accepts: its pattern and its `maxLength`.
    struct Accepts(Regex, Option<usize>);

    impl Accepts {
        fn of<T: PartialSchema>() -> Self {
            let max = serde_json::to_value(T::schema()).unwrap()["maxLength"].as_u64().map(|n| n as usize);
            Self(pattern_of::<T>(), max)
        }

        fn valid(&self, value: &str) -> bool {
            self.0.is_match(value) && self.1.is_none_or(|max| value.chars().count() <= max)
        }
    }

    /// Characters to try: every one below U+3100 and in U+FE00..U+FFFF (every control, space and
    /// hidden character is there), and a spread of the rest.
    fn chars() -> impl Iterator<Item = char> {
        (0..0x3100u32).chain(0xFE00..0x10000).chain((0x3100..0x110000).step_by(997)).filter_map(char::from_u32)
    }

    /// Each of [`chars`] in a few surroundings.
    fn samples() -> impl Iterator<Item = String> {
        chars().flat_map(|c| {
            [c.to_string(), format!("Ana {c}Ruiz"), format!("{c}Ana"), format!("Ana{c}"), format!("{c}{c}")]
        })
    }

    fn record_with(change: impl FnOnce(&mut PatientRecord)) -> PatientRecord {
        let mut record = PatientRecord {
            legal_name: PhiText::new("Ada Lovelace"),
            preferred_name: None,
            date_of_birth: PhiText::new("1990-12-10"),
            email: None,
            phone: None,
            address: None,
            emergency_contact: Some(EmergencyContact {
                name: PhiText::new("Mary"),
                relationship: None,
                phone: PhiText::new("+44 20 7946 0001"),
            }),
        };
        change(&mut record);
        record
    }

    fn today() -> Date {
        OffsetDateTime::now_utc().date()
    }

    #[test]
    fn the_character_classes_are_the_plain_text_rules() {
        let refused = Regex::new(&format!("^[{REFUSED}]$")).unwrap();
        let refused_in_lines = Regex::new(&format!("^[{REFUSED_IN_LINES}]$")).unwrap();
        let space = Regex::new(&format!("^[{SPACE}]$")).unwrap();
        let line_space = Regex::new(&format!("^[{LINE_SPACE}]$")).unwrap();
        for c in (0..=0x10FFFFu32).filter_map(char::from_u32) {
            let text = c.to_string();
            let hex = c as u32;
            assert_eq!(refused.is_match(&text), crate::plain_text::check(&text, false).is_err(), "U+{hex:04X}");
            assert_eq!(refused_in_lines.is_match(&text), crate::plain_text::check(&text, true).is_err(), "U+{hex:04X}");
            assert_eq!(space.is_match(&text), c.is_whitespace(), "U+{hex:04X}");
            let allowed_space = c.is_whitespace() && crate::plain_text::check(&text, false).is_ok();
            assert_eq!(line_space.is_match(&text), allowed_space, "U+{hex:04X}");
        }
    }

    #[test]
    fn names_relationships_and_addresses_follow_the_record_rules() {
        let (name_schema, relationship_schema, address_schema) =
            (Accepts::of::<PersonName>(), Accepts::of::<Relationship>(), Accepts::of::<Address>());
        for value in samples().chain(["x".repeat(100), "x".repeat(101), "x".repeat(200), "x".repeat(201)]) {
            let name = record_with(|r| r.legal_name = PhiText::new(value.clone())).validate(today()).is_ok();
            assert_eq!(name_schema.valid(&value), name, "{value:?}");
            let relationship = record_with(|r| {
                if let Some(c) = r.emergency_contact.as_mut() {
                    c.relationship = Some(PhiText::new(value.clone()));
                }
            });
            assert_eq!(relationship_schema.valid(&value), relationship.validate(today()).is_ok(), "{value:?}");
            let address = record_with(|r| r.address = Some(PhiText::new(value.clone())));
            assert_eq!(address_schema.valid(&value), address.validate(today()).is_ok(), "{value:?}");
        }
    }

    #[test]
    fn phones_and_record_emails_follow_the_record_rules() {
        let phones =
            ["+44 20 7946 0000", "1234567", "123456", "(555) 123-4567", "1234567890123456", "call me", " 1234567 "]
                .map(str::to_owned);
        let phone_schema = Accepts::of::<Phone>();
        for value in phones.into_iter().chain(samples()) {
            let phone = record_with(|r| r.phone = Some(PhiText::new(value.clone())));
            assert_eq!(phone_schema.valid(&value), phone.validate(today()).is_ok(), "{value:?}");
        }
        let emails = [
            "ada@example.org",
            " ada@example.org ",
            "ada@example",
            "@example.org",
            "a da@example.org",
            "a@.b",
            "a@b.",
            "a@b..c",
            "a@b@c.d",
            "a@b.c",
        ]
        .map(str::to_owned);
        let around = samples()
            .flat_map(|s| [format!("{s}a@b.c"), format!("a@b.c{s}"), format!("a{s}@b.c"), format!("a@b{s}.c")]);
        let email_schema = Accepts::of::<RecordEmail>();
        for value in emails.into_iter().chain(around) {
            let email = record_with(|r| r.email = Some(PhiText::new(value.clone())));
            assert_eq!(email_schema.valid(&value), email.validate(today()).is_ok(), "{value:?}");
        }
    }

    #[test]
    fn account_emails_follow_the_account_rule() {
        let around = samples()
            .flat_map(|s| [format!("{s}a@b.c"), format!("a@b.c{s}"), format!("a{s}@b.c"), format!("a@b{s}.c")]);
        let long = [
            format!("{}@b.c", "a".repeat(250)),
            format!("{}@b.c", "a".repeat(251)),
            format!(" {}@b.c", "a".repeat(250)),
        ];
        let schema = Accepts::of::<AccountEmail>();
        for value in around.chain(long) {
            let parsed = crate::identity::Email::parse(&value).is_some();
            assert_eq!(schema.valid(&value), parsed, "{value:?}");
        }
    }

    #[test]
    fn staff_names_and_credentials_follow_their_rule() {
        let (name, credentials) = (pattern_of::<StaffName>(), pattern_of::<Credentials>());
        let long = [98, 99, 100, 101].map(|n| format!(" {} ", "x".repeat(n)));
        for value in samples().chain(long) {
            let named = crate::identity::StaffName::parse(&value, None).is_ok();
            assert_eq!(name.is_match(&value), named, "{value:?}");
        }
        let long = [39, 40, 41].map(|n| format!("\n{}\t", "x".repeat(n)));
        for value in samples().chain(long).chain([String::new(), "  ".to_owned()]) {
            let credited = crate::identity::StaffName::parse("Ana", Some(&value)).is_ok();
            assert_eq!(credentials.is_match(&value), credited, "{value:?}");
        }
    }

    #[test]
    fn reasons_and_notes_follow_their_rules() {
        let lengths = [0, 1, 2, 9, 10, 11, 999, 1000, 1001, 1999, 2000, 2001];
        let sized = lengths
            .into_iter()
            .flat_map(|n| [format!(" {}\n", "x".repeat(n)), format!("x{}x", " ".repeat(n.saturating_sub(2)))]);
        let (reason_pattern, note_pattern) = (pattern_of::<BreakGlassReason>(), pattern_of::<FollowUpNote>());
        for value in samples().map(|s| format!("{s} because of {s}")).chain(samples()).chain(sized) {
            let reason = crate::access::break_glass::check_reason(&PhiText::new(value.clone())).is_ok();
            assert_eq!(reason_pattern.is_match(&value), reason, "{value:?}");
            let note: confidant_protocol::FollowUpNote = serde_json::from_value(value.clone().into()).unwrap();
            let note = note.is_valid();
            assert_eq!(note_pattern.is_match(&value), note, "{value:?}");
        }
    }

    #[test]
    fn dates_of_birth_run_from_1900_to_today() {
        for today in [
            time::macros::date!(2026 - 12 - 06),
            time::macros::date!(2030 - 01 - 01),
            time::macros::date!(2029 - 10 - 31),
        ] {
            let pattern = Regex::new(&date_of_birth(today)).unwrap();
            let mut day = time::macros::date!(1899 - 12 - 25);
            while day <= today + time::Duration::days(800) {
                let text = format!("{:04}-{:02}-{:02}", day.year(), u8::from(day.month()), day.day());
                let record = record_with(|r| r.date_of_birth = PhiText::new(text.clone()));
                assert_eq!(pattern.is_match(&text), record.validate(today).is_ok(), "{text} on {today}");
                day = day.next_day().unwrap();
            }
        }
    }

    #[test]
    fn base64_is_what_the_decoder_takes() {
        use base64::Engine as _;
        use base64::engine::general_purpose::STANDARD;
        let pattern = pattern_of::<Base64>();
        let mut values: Vec<String> = (0..40)
            .map(|n| STANDARD.encode((0..n).map(|b: u8| b.wrapping_mul(37).wrapping_add(n)).collect::<Vec<u8>>()))
            .collect();
        for alphabet in ["A", "B", "Q", "g", "h", "/", "+", "=", "-", "_", " "] {
            for stem in ["", "QQ", "QUI", "QUJD", "QUJDRA", "QUJDRA="] {
                values.extend([
                    format!("{stem}{alphabet}"),
                    format!("{stem}{alphabet}="),
                    format!("{stem}{alphabet}=="),
                ]);
            }
        }
        for value in values {
            assert_eq!(pattern.is_match(&value), STANDARD.decode(&value).is_ok(), "{value:?}");
        }
        let key = pattern_of::<SignatureKey>();
        for n in [31, 32, 33] {
            for fill in [0u8, 7, 255] {
                let value = STANDARD.encode(vec![fill; n]);
                assert_eq!(key.is_match(&value), n == 32, "{value:?}");
            }
        }
        assert!(!key.is_match("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB="), "non-canonical");
    }

    #[test]
    fn a_whole_number_may_be_written_as_a_float() {
        let read = |text: &str| serde_json::from_str::<Whole<u32>>(text).ok().map(|w| w.0);
        assert_eq!((read("3"), read("3.0"), read("3e2"), read("43200.0")), (Some(3), Some(3), Some(300), Some(43200)));
        assert_eq!(
            (read("3.5"), read("-1"), read("4294967296"), read("1e300"), read("\"3\"")),
            (None, None, None, None, None)
        );
        let read = |text: &str| serde_json::from_str::<Whole<i64>>(text).ok().map(|w| w.0);
        assert_eq!((read("-2.0"), read("9223372036854775807"), read("9.3e18")), (Some(-2), Some(i64::MAX), None));
    }

    #[test]
    fn digit_ranges_match_exactly_their_numbers() {
        for (low, high) in [(1900, 2025), (1900, 1900), (1, 9), (10, 31), (1, 12), (1901, 1999), (1955, 2010)] {
            let width = if high >= 1000 { 4 } else { 2 };
            let pattern =
                Regex::new(&format!("^{}$", digits_between(&format!("{low:0width$}"), &format!("{high:0width$}"))))
                    .unwrap();
            for n in 0..10_usize.pow(width as u32) {
                assert_eq!(
                    pattern.is_match(&format!("{n:0width$}")),
                    (low..=high).contains(&n),
                    "{n} in {low}..={high}"
                );
            }
        }
    }
}
