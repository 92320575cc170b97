//! What Confidant takes for an email address, wherever one is entered (a sign-in email, a
//! patient's or their emergency contact's): checked loosely (one `@`, a dotted domain, no
//! spaces) and normalized (trimmed, lowercased) before it is blind-indexed, so a lookup finds it
//! however it was typed.

/// The form an email takes in the blind index: trimmed and lowercased, so a lookup finds it
/// however it was typed.
pub fn normalized_email(email: &str) -> String {
    crate::plain_text::nfc(email.trim()).to_lowercase()
}

/// Whether `value` looks like an email address (one `@`, a dotted domain, no whitespace).
pub(crate) fn is_email(value: &str) -> bool {
    let value = value.trim();
    let Some((local, domain)) = value.split_once('@') else { return false };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains('@')
        && !value.chars().any(char::is_whitespace)
        && crate::plain_text::check(value, false).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_indexed_however_they_were_typed() {
        assert_eq!(normalized_email("  Ada@Example.ORG "), "ada@example.org");
    }

    #[test]
    fn an_address_needs_a_local_part_and_a_dotted_domain() {
        assert!(is_email("ada@example.org"));
        assert!(!is_email("ada@example") && !is_email("@example.org") && !is_email("a da@example.org"));
        assert!(!is_email("ada@exa\u{202E}gro.elpm"), "a direction override");
    }
}
