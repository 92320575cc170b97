//! One-time recovery codes: how a person who lost their authenticator still passes the second factor.

use confidant_actors::ids::UserId;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Codes in a set: enough to survive a few lost devices, few enough to print on one card.
pub const RECOVERY_CODE_COUNT: usize = 10;

/// Base32 characters in a code (80 bits).
const CODE_CHARS: usize = 16;

/// Characters between dashes in the displayed form.
const GROUP: usize = 4;

/// RFC 4648 base32 alphabet.
const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Separates recovery-code hashes from any other SHA-256 use, and lets the scheme change later.
const HASH_DOMAIN: &[u8] = b"confidant/identity/recovery-code/v1\0";

/// A recovery code as shown once to the user: 16 random base32 characters (80 bits) in groups of four,
/// `ABCD-EFGH-JKLM-NPQR` (RFC 4648 base32 alphabet A-Z2-7). Zeroized on drop, no Debug content.
///
/// Until used it passes the second factor on its own, so it is treated like a password.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct RecoveryCode(String);

impl RecoveryCode {
    /// The code in its display form, to show the user once (and to [`hash`] for storage).
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// A fresh random code.
    fn random() -> Self {
        let mut random = Zeroizing::new([0u8; CODE_CHARS]);
        OsRng.fill_bytes(&mut random[..]);
        let mut code = String::with_capacity(CODE_CHARS + CODE_CHARS / GROUP - 1);
        for (i, byte) in random.iter().enumerate() {
            if i > 0 && i.is_multiple_of(GROUP) {
                code.push('-');
            }
            // 256 is a multiple of 32, so the low five bits of a uniform byte are uniform: no bias.
            code.push(char::from(BASE32_ALPHABET[usize::from(byte & 0x1f)]));
        }
        Self(code)
    }
}

impl std::fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RecoveryCode")
    }
}

/// A fresh set of codes.
pub fn generate() -> Vec<RecoveryCode> {
    (0..RECOVERY_CODE_COUNT).map(|_| RecoveryCode::random()).collect()
}

/// What is stored: SHA-256 over a domain label, the account id and the normalized code (uppercase, dashes and
/// whitespace removed, so "abcd efgh-jklm npqr" matches). 80 random bits make a slow hash unnecessary; binding
/// the account id stops a stored hash from being moved to another account. Returns None when the input is not
/// 16 base32 characters after normalizing (so garbage is never looked up).
pub fn hash(user: &UserId, code: &str) -> Option<[u8; 32]> {
    let code = normalize(code)?;
    let mut hasher = Sha256::new();
    hasher.update(HASH_DOMAIN);
    hasher.update(user.as_uuid().as_bytes());
    hasher.update(&code[..]);
    Some(hasher.finalize().into())
}

/// The 16 code characters, uppercased, with dashes and whitespace removed; `None` unless that is exactly 16
/// characters of the base32 alphabet.
fn normalize(code: &str) -> Option<Zeroizing<[u8; CODE_CHARS]>> {
    let mut chars = Zeroizing::new([0u8; CODE_CHARS]);
    let mut len = 0;
    for c in code.chars() {
        if c == '-' || c.is_whitespace() {
            continue;
        }
        let c = c.to_ascii_uppercase();
        if !matches!(c, 'A'..='Z' | '2'..='7') {
            return None;
        }
        // The match above guarantees ASCII, so the cast keeps the whole character.
        *chars.get_mut(len)? = c as u8;
        len += 1;
    }
    (len == CODE_CHARS).then_some(chars)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::collections::HashSet;

    use uuid::Uuid;

    use super::*;

    fn user() -> UserId {
        UserId::from_uuid(Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef))
    }

    #[test]
    fn a_set_is_ten_distinct_codes() {
        let codes = generate();
        assert_eq!(codes.len(), RECOVERY_CODE_COUNT);
        let distinct: HashSet<&str> = codes.iter().map(RecoveryCode::as_str).collect();
        assert_eq!(distinct.len(), RECOVERY_CODE_COUNT);
    }

    #[test]
    fn a_code_is_four_groups_of_four_base32_characters() {
        for code in generate() {
            let groups: Vec<&str> = code.as_str().split('-').collect();
            assert_eq!(groups.len(), 4, "{}", code.as_str());
            for group in groups {
                assert_eq!(group.len(), 4, "{}", code.as_str());
                assert!(group.chars().all(|c| matches!(c, 'A'..='Z' | '2'..='7')), "{}", code.as_str());
            }
        }
    }

    #[test]
    fn every_generated_code_can_be_hashed() {
        for code in generate() {
            assert!(hash(&user(), code.as_str()).is_some());
        }
    }

    #[test]
    fn hashing_ignores_case_dashes_and_whitespace() {
        let expected = hash(&user(), "ABCD-EFGH-JKLM-NPQR").unwrap();
        for typed in ["abcd efgh-jklm npqr", "ABCDEFGHJKLMNPQR", "  abcd-efgh-jklm-npqr\n", "Abcd - Efgh - Jklm - Npqr"]
        {
            assert_eq!(hash(&user(), typed), Some(expected), "{typed:?}");
        }
    }

    #[test]
    fn different_codes_give_different_hashes() {
        assert_ne!(hash(&user(), "ABCD-EFGH-JKLM-NPQR"), hash(&user(), "ABCD-EFGH-JKLM-NPQS"));
    }

    #[test]
    fn the_same_code_hashes_differently_for_different_users() {
        let other = UserId::from_uuid(Uuid::from_u128(1));
        assert_ne!(hash(&user(), "ABCD-EFGH-JKLM-NPQR"), hash(&other, "ABCD-EFGH-JKLM-NPQR"));
    }

    #[test]
    fn garbage_is_never_hashed() {
        for garbage in [
            "",
            "----",
            "ABCD-EFGH-JKLM-NPQ",
            "ABCD-EFGH-JKLM-NPQRS",
            "ABCD-EFGH-JKLM-NPQ1",
            "ABCD-EFGH-JKLM-NPQ8",
            "ABCD-EFGH-JKLM-NPQ0",
            "ABCD_EFGH_JKLM_NPQR",
            "ÄBCD-EFGH-JKLM-NPQR",
            "ABCD-EFGH-JKLM-NPQR=",
        ] {
            assert_eq!(hash(&user(), garbage), None, "{garbage:?}");
        }
    }

    #[test]
    fn debug_shows_only_the_type_name() {
        for code in generate() {
            let debug = format!("{code:?}");
            assert_eq!(debug, "RecoveryCode");
            assert!(!debug.contains(code.as_str()));
        }
    }
}
