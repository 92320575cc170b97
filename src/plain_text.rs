//! What a line of text typed by a person may hold, wherever a name or other text is entered (a
//! patient's record, a member of staff's name, an email address, a break-glass reason, an
//! intake answer). Two rules beyond length:
//!
//! - No control characters, and none of the characters that are invisible or change the
//!   direction of the text around them (U+202A-U+202E, U+2066-U+2069, U+200E/U+200F, U+061C,
//!   U+200B, U+2060-U+2064, U+FEFF, U+00AD, U+180E, U+2028/U+2029, U+FFF9-U+FFFB). With them a
//!   displayed name can read as another patient's ("Ana Ruiz" and "Ana \u{202E}ziuR" look alike
//!   on screen), the wrong-patient error every clinical system must prevent. The joiners
//!   U+200C/U+200D stay allowed: Persian, Hindi and emoji need them.
//! - Stored in Unicode Normalization Form C, so the same name typed on two keyboards (a
//!   precomposed "é" or "e" + U+0301) is the same text, compares equal and sorts together.

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// Why a text is refused (the rule, for an `invalid_field` message; never the value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A control character (a line break where only one line is allowed).
    Control,
    /// An invisible or direction-changing character.
    Hidden,
}

impl Refusal {
    /// The rule broken, in words.
    pub fn rule(self) -> &'static str {
        match self {
            Self::Control => "contains control characters",
            Self::Hidden => "contains invisible or text-direction characters",
        }
    }
}

/// Whether `c` is invisible or changes the direction of the text around it.
pub fn is_hidden(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{061C}'
            | '\u{180E}'
            | '\u{200B}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{2028}'
            | '\u{2029}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
            | '\u{FFF9}'..='\u{FFFB}'
    )
}

/// Checks `value`; `lines` allows line breaks (`\n`, `\r`) and tabs, as in an address.
pub fn check(value: &str, lines: bool) -> Result<(), Refusal> {
    for c in value.chars() {
        if is_hidden(c) {
            return Err(Refusal::Hidden);
        }
        if c.is_control() && !(lines && matches!(c, '\n' | '\r' | '\t')) {
            return Err(Refusal::Control);
        }
    }
    Ok(())
}

/// `value` in Normalization Form C; `None` when it is already (the common case, which costs
/// one quick scan and no allocation).
pub fn to_nfc(value: &str) -> Option<String> {
    match is_nfc_quick(value.chars()) {
        IsNormalized::Yes => None,
        _ => {
            let normalized: String = value.nfc().collect();
            (normalized != value).then_some(normalized)
        }
    }
}

/// `value` in Normalization Form C.
pub fn nfc(value: &str) -> String {
    to_nfc(value).unwrap_or_else(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn direction_and_invisible_characters_are_refused_everywhere() {
        for c in ['\u{202E}', '\u{202D}', '\u{2066}', '\u{2067}', '\u{2068}', '\u{2069}', '\u{200E}', '\u{200F}']
            .into_iter()
            .chain(['\u{FEFF}', '\u{2028}', '\u{2029}', '\u{200B}', '\u{061C}', '\u{00AD}'])
        {
            let text = format!("Ana {c}Ruiz");
            assert_eq!(check(&text, false), Err(Refusal::Hidden), "U+{:04X}", c as u32);
            assert_eq!(check(&text, true), Err(Refusal::Hidden), "U+{:04X} in several lines", c as u32);
        }
    }

    #[test]
    fn line_breaks_only_where_lines_are_allowed_and_joiners_always() {
        assert_eq!(check("12 Main St\nApt 4", false), Err(Refusal::Control));
        assert_eq!(check("12 Main St\r\nApt 4", true), Ok(()));
        assert_eq!(check("bell\u{7}", true), Err(Refusal::Control));
        assert_eq!(check("می\u{200C}خواهم", false), Ok(()), "ZWNJ in Persian");
        assert_eq!(check("José Núñez-García, PsyD", false), Ok(()));
    }

    #[test]
    fn the_same_name_typed_two_ways_is_stored_one_way() {
        let decomposed = "Jose\u{301}";
        assert_eq!(nfc(decomposed), "Jos\u{e9}");
        assert_eq!(to_nfc("Jos\u{e9}"), None);
        assert_eq!(to_nfc("Ana Ruiz"), None);
    }
}
