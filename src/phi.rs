//! Values that are PHI, in memory. They are wiped when dropped and never print their content:
//! `Debug` shows only that a value is there, and there is no `Display`, so a PHI value cannot
//! reach a log line, a panic message or an error body by accident.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use zeroize::Zeroizing;

/// A PHI text (a name, an email address, a date of birth...).
#[derive(Clone, PartialEq, Eq)]
pub struct PhiText(Zeroizing<String>);

impl PhiText {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(Zeroizing::new(value.into()))
    }

    /// The content, for the code that encrypts it or returns it to an authorized reader.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// From decrypted bytes; `None` if they are not UTF-8 (which sealing never produces).
    pub(crate) fn from_plaintext(bytes: &[u8]) -> Option<Self> {
        std::str::from_utf8(bytes).ok().map(Self::new)
    }
}

impl fmt::Debug for PhiText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PhiText(..)")
    }
}

impl Serialize for PhiText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// PHI text arrives in Unicode Normalization Form C (`plain_text.rs`): the same name typed on
/// two keyboards is stored, compared and indexed as one.
impl<'de> Deserialize<'de> for PhiText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Zeroizing::new(String::deserialize(deserializer)?);
        Ok(match crate::plain_text::to_nfc(&text) {
            Some(normalized) => Self::new(normalized),
            None => Self(text),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phi_text_arrives_in_nfc() {
        let name: PhiText = serde_json::from_str("\"Jose\\u0301\"").unwrap();
        assert_eq!(name.expose(), "Jos\u{e9}");
    }

    #[test]
    fn debug_hides_the_content_even_nested() {
        let name = PhiText::new("Ada Lovelace");
        assert_eq!(format!("{name:?}"), "PhiText(..)");
        assert!(!format!("{:?}", Some(vec![name])).contains("Ada"));
    }

    #[test]
    fn serializes_as_a_plain_string_for_authorized_readers() {
        let name = PhiText::new("Ada");
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"Ada\"");
        assert_eq!(serde_json::from_str::<PhiText>("\"Ada\"").unwrap(), name);
    }
}
