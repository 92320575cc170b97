//! Passwords: the policy a new password must meet, and argon2id hashing and verification run off the async
//! executor with bounded concurrency, so that sign-in bursts can neither stall the server nor exhaust memory.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, LazyLock};

use argon2::password_hash::phc::PasswordHash;
use argon2::{Algorithm, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version};
use tokio::sync::{OnceCell, Semaphore};
use zeroize::Zeroizing;

/// Fewest characters (Unicode scalar values) a new password may have: length is what makes a password strong.
pub const MIN_LENGTH: usize = 12;

/// Most characters a new password may have, so that nobody can make the server hash megabytes per attempt.
pub const MAX_LENGTH: usize = 256;

/// Why a new password is refused. Display is a human sentence naming the rule, never the password.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PolicyViolation {
    /// Shorter than [`MIN_LENGTH`] characters.
    #[error("the password must be at least {min} characters long")]
    TooShort {
        /// The minimum length in characters.
        min: usize,
    },
    /// Longer than [`MAX_LENGTH`] characters.
    #[error("the password must be at most {max} characters long")]
    TooLong {
        /// The maximum length in characters.
        max: usize,
    },
    /// On the shipped list of common passwords, a variation of one, or a trivial pattern.
    #[error("the password is too common or too easy to guess")]
    Common,
    /// Contains the account's name (the local part of its email address).
    #[error("the password must not contain the account name")]
    ContainsAccountName,
}

impl PolicyViolation {
    /// Stable machine-readable code for API error bodies, so clients can localise the message.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooShort { .. } => "password_too_short",
            Self::TooLong { .. } => "password_too_long",
            Self::Common => "password_too_common",
            Self::ContainsAccountName => "password_contains_account_name",
        }
    }
}

/// The shipped list of common passwords, loaded once on first use.
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    include_str!("common_passwords.txt")
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
});

/// Account names shorter than this are not looked for in a password: they would refuse too much by accident.
const MIN_ACCOUNT_NAME_LENGTH: usize = 4;

/// A stripped password must keep at least this many characters to be judged for trivial patterns on its own.
const MIN_TRIVIAL_CORE_LENGTH: usize = 8;

/// Checks a new password: length, the shipped common-password list (compared case-insensitively, also after
/// stripping leading/trailing digits and punctuation, removing separators and undoing common letter
/// substitutions, so "Password1234!" and "P@ssw0rd-2024" are refused), passwords made of one repeated character,
/// a short repeated unit or a simple ascending/descending run (e.g. "aaaaaaaaaaaa", "123456789012",
/// "abcdefghijkl"), and it must not contain one of `account_names` (the email local part; case-insensitive, only
/// names of at least 4 characters count). Returns the first rule broken, in that order.
pub fn check_policy(password: &str, account_names: &[&str]) -> Result<(), PolicyViolation> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(PolicyViolation::TooShort { min: MIN_LENGTH });
    }
    if length > MAX_LENGTH {
        return Err(PolicyViolation::TooLong { max: MAX_LENGTH });
    }
    let lowered = Zeroizing::new(password.to_lowercase());
    let compact = Zeroizing::new(without_separators(&lowered));
    if is_guessable(&lowered) || is_guessable(&compact) {
        return Err(PolicyViolation::Common);
    }
    if contains_account_name(&lowered, &compact, account_names) {
        return Err(PolicyViolation::ContainsAccountName);
    }
    Ok(())
}

/// Characters people pad a weak word with ("password2024!", "!!dragon!!").
fn is_padding(c: char) -> bool {
    c.is_ascii_digit() || c.is_ascii_punctuation() || c.is_whitespace()
}

/// Characters people put between the words of a passphrase ("correct horse-battery_staple").
fn is_separator(c: char) -> bool {
    c.is_whitespace() || matches!(c, '-' | '_' | '.')
}

fn without_separators(text: &str) -> String {
    text.chars().filter(|c| !is_separator(*c)).collect()
}

/// Undoes the usual letter-for-symbol substitutions ("p@ssw0rd" -> "password").
fn without_substitutions(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '@' | '4' => 'a',
            '3' => 'e',
            '1' | '!' => 'i',
            '0' => 'o',
            '$' | '5' => 's',
            '7' => 't',
            other => other,
        })
        .collect()
}

fn is_common(candidate: &str) -> bool {
    !candidate.is_empty() && COMMON_PASSWORDS.contains(candidate)
}

/// Whether the lowercased `text` is a common password, a padded or disguised one, or a trivial pattern.
fn is_guessable(text: &str) -> bool {
    let trailing_stripped = text.trim_end_matches(is_padding);
    let core = trailing_stripped.trim_start_matches(is_padding);
    if is_common(text) || is_common(trailing_stripped) || is_common(core) {
        return true;
    }
    let undisguised = Zeroizing::new(without_substitutions(trailing_stripped));
    let undisguised_core = Zeroizing::new(without_substitutions(core));
    if is_common(&undisguised) || is_common(&undisguised_core) {
        return true;
    }
    is_trivial(text) || (core.chars().count() >= MIN_TRIVIAL_CORE_LENGTH && is_trivial(core))
}

/// One repeated character, a simple run, or a short (or itself guessable) unit repeated.
fn is_trivial(text: &str) -> bool {
    is_run(text) || is_repeated_unit(text)
}

/// The next character of an ascending run: digits and letters wrap around ("9" -> "0", "z" -> "a").
fn successor(c: char) -> Option<char> {
    match c {
        '9' => Some('0'),
        'z' => Some('a'),
        '0'..='8' | 'a'..='y' => char::from_u32(u32::from(c) + 1),
        _ => None,
    }
}

/// Whether `text` is a single ascending or descending run of digits or letters, like "345678901234".
fn is_run(text: &str) -> bool {
    let mut pairs = text.chars().zip(text.chars().skip(1)).peekable();
    if pairs.peek().is_none() {
        return false;
    }
    let ascending = pairs.clone().all(|(a, b)| successor(a) == Some(b));
    ascending || pairs.all(|(a, b)| successor(b) == Some(a))
}

/// Whether `text` is a unit repeated at least twice where the unit is at most 3 characters, common, or a run
/// ("aaaaaaaaaaaa", "abcabcabcabc", "123456123456", "dragondragon").
fn is_repeated_unit(text: &str) -> bool {
    let bytes = text.as_bytes();
    text.char_indices().skip(1).map(|(end, _)| end).filter(|end| *end * 2 <= bytes.len()).any(|end| {
        let unit = &text[..end];
        let repeats = bytes.len().is_multiple_of(end) && bytes.chunks(end).all(|chunk| chunk == unit.as_bytes());
        repeats && (unit.chars().count() <= 3 || is_common(unit) || is_run(unit))
    })
}

fn contains_account_name(lowered: &str, compact: &str, account_names: &[&str]) -> bool {
    account_names.iter().any(|name| {
        let local_part = name.split('@').next().unwrap_or(name).trim().to_lowercase();
        let compact_name = without_separators(&local_part);
        (local_part.chars().count() >= MIN_ACCOUNT_NAME_LENGTH && lowered.contains(&local_part))
            || (compact_name.chars().count() >= MIN_ACCOUNT_NAME_LENGTH && compact.contains(&compact_name))
    })
}

/// Why hashing or verifying failed (our bug or a corrupt stored hash), never "wrong password": a mismatch is
/// `Ok(false)`. No variant carries the password or the stored hash.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The argon2 cost parameters given to the hasher are out of range.
    #[error("invalid argon2 parameters: {0}")]
    Params(argon2::Error),
    /// argon2 or the salt generator failed while hashing.
    #[error("password hashing failed: {0}")]
    Hash(argon2::password_hash::Error),
    /// The stored hash is not an argon2 PHC string we can verify against (or asks for absurd costs).
    #[error("the stored password hash is malformed")]
    Malformed,
    /// The blocking task running the hash panicked or was cancelled.
    #[error("the password hashing task did not complete")]
    Pool,
}

/// Stored hashes asking for more than this much memory (KiB, here 1 GiB) are refused as corrupt rather than run.
const MAX_STORED_M_KIB: u32 = 1024 * 1024;
/// Stored hashes asking for more passes than this are refused as corrupt.
const MAX_STORED_T: u32 = 64;
/// Stored hashes asking for more lanes than this are refused as corrupt.
const MAX_STORED_P: u32 = 64;

/// What the dummy hash for unknown accounts is made of; whatever is typed, `verify_or_dummy(.., None)` is false.
const DUMMY_PASSWORD: &str = "confidant-dummy-password-for-unknown-accounts";

struct Inner {
    params: Params,
    max_concurrent: usize,
    permits: Arc<Semaphore>,
    dummy: OnceCell<String>,
}

/// argon2id hasher that runs every hash on tokio's blocking pool, at most `max_concurrent` at a time (a tokio
/// Semaphore), so a burst of sign-ins can neither stall the async executor nor exhaust memory (each hash takes
/// m KiB). Cheap to clone (Arc inside).
#[derive(Clone)]
pub struct PasswordHasher {
    inner: Arc<Inner>,
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("m_kib", &self.inner.params.m_cost())
            .field("t", &self.inner.params.t_cost())
            .field("p", &self.inner.params.p_cost())
            .field("max_concurrent", &self.inner.max_concurrent)
            .finish()
    }
}

impl PasswordHasher {
    /// OWASP Password Storage Cheat Sheet argon2id minimum: m = 19456 KiB, t = 2, p = 1. `max_concurrent` is
    /// clamped to at least 1.
    pub fn new(max_concurrent: usize) -> Self {
        Self::from_params(Params::DEFAULT, max_concurrent)
    }

    /// Custom costs (tests and benchmarks use small ones). Returns Err for invalid params (e.g. m < 8 * p KiB,
    /// t = 0 or p = 0). `max_concurrent` is clamped to at least 1.
    pub fn with_params(m_kib: u32, t: u32, p: u32, max_concurrent: usize) -> Result<Self, PasswordError> {
        let params = Params::new(m_kib, t, p, None).map_err(PasswordError::Params)?;
        Ok(Self::from_params(params, max_concurrent))
    }

    fn from_params(params: Params, max_concurrent: usize) -> Self {
        let max_concurrent = max_concurrent.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            inner: Arc::new(Inner {
                params,
                max_concurrent,
                permits: Arc::new(Semaphore::new(max_concurrent)),
                dummy: OnceCell::new(),
            }),
        }
    }

    /// PHC string ($argon2id$v=19$m=...,t=...,p=...$salt$hash) with a fresh random 16-byte salt.
    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let secret = Zeroizing::new(password.to_owned());
        let params = self.inner.params.clone();
        self.run_blocking(move || {
            let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
            let hashed: PasswordHash = argon2.hash_password(secret.as_bytes()).map_err(PasswordError::Hash)?;
            Ok(hashed.to_string())
        })
        .await
    }

    /// Whether `password` matches `stored` (a PHC string; its own params are used). A malformed stored hash is
    /// an Err, a mismatch is Ok(false).
    pub async fn verify(&self, password: &str, stored: &str) -> Result<bool, PasswordError> {
        let parsed = parse_stored(stored)?;
        let secret = Zeroizing::new(password.to_owned());
        self.run_blocking(move || match Argon2::default().verify_password(secret.as_bytes(), &parsed) {
            Ok(()) => Ok(true),
            Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
            Err(error) => Err(PasswordError::Hash(error)),
        })
        .await
    }

    /// Verifies against `stored`, or, when there is no account (`None`), against a dummy hash made once with this
    /// hasher's params, so an unknown account costs the same time as a wrong password (the very first such call
    /// also pays for making the dummy). Returns false for None always.
    pub async fn verify_or_dummy(&self, password: &str, stored: Option<&str>) -> Result<bool, PasswordError> {
        match stored {
            Some(stored) => self.verify(password, stored).await,
            None => {
                let dummy = self.inner.dummy.get_or_try_init(|| self.hash(DUMMY_PASSWORD)).await?;
                let _ignored = self.verify(password, dummy).await?;
                Ok(false)
            }
        }
    }

    /// True when `stored` was made with other params than this hasher's (so sign-in can upgrade it); also true
    /// for anything that is not an argon2id v19 PHC string.
    pub fn needs_rehash(&self, stored: &str) -> bool {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return true;
        };
        let Ok(params) = Params::try_from(&parsed) else {
            return true;
        };
        let ours = &self.inner.params;
        parsed.algorithm.as_str() != Algorithm::Argon2id.as_str()
            || parsed.version != Some(Version::V0x13.into())
            || params.m_cost() != ours.m_cost()
            || params.t_cost() != ours.t_cost()
            || params.p_cost() != ours.p_cost()
            || !params.keyid().is_empty()
            || !params.data().is_empty()
            || parsed.hash.as_ref().map(|output| output.len()) != Some(Params::DEFAULT_OUTPUT_LEN)
    }

    /// Runs `job` on the blocking pool once a permit is free. The permit moves into the task, so it stays taken
    /// until the hash really finishes even if the caller's future is dropped meanwhile.
    async fn run_blocking<T, F>(&self, job: F) -> Result<T, PasswordError>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, PasswordError> + Send + 'static,
    {
        let permit = Arc::clone(&self.inner.permits).acquire_owned().await.map_err(|_| PasswordError::Pool)?;
        tokio::task::spawn_blocking(move || {
            let result = job();
            drop(permit);
            result
        })
        .await
        .map_err(|_| PasswordError::Pool)?
    }
}

/// Parses a stored PHC string and checks it is a complete argon2 hash with sane costs, before any work is done.
fn parse_stored(stored: &str) -> Result<PasswordHash, PasswordError> {
    let parsed = PasswordHash::new(stored).map_err(|_| PasswordError::Malformed)?;
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err(PasswordError::Malformed);
    }
    Algorithm::new(parsed.algorithm.as_str()).map_err(|_| PasswordError::Malformed)?;
    if let Some(version) = parsed.version {
        Version::try_from(version).map_err(|_| PasswordError::Malformed)?;
    }
    let params = Params::try_from(&parsed).map_err(|_| PasswordError::Malformed)?;
    if params.m_cost() > MAX_STORED_M_KIB || params.t_cost() > MAX_STORED_T || params.p_cost() > MAX_STORED_P {
        return Err(PasswordError::Malformed);
    }
    Ok(parsed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn fast_hasher() -> PasswordHasher {
        PasswordHasher::with_params(256, 1, 1, 4).unwrap()
    }

    // --- policy ---

    #[test]
    fn a_password_shorter_than_twelve_characters_is_refused() {
        assert_eq!(check_policy("tulip-ravin", &[]), Err(PolicyViolation::TooShort { min: 12 }));
        assert_eq!(check_policy("", &[]), Err(PolicyViolation::TooShort { min: 12 }));
    }

    #[test]
    fn a_password_of_exactly_twelve_characters_is_accepted() {
        assert_eq!(check_policy("tulip-ravine", &[]), Ok(()));
    }

    #[test]
    fn length_is_counted_in_characters_not_bytes() {
        let eleven = "日本語のパスワードです";
        assert!(eleven.len() > MIN_LENGTH);
        assert_eq!(check_policy(eleven, &[]), Err(PolicyViolation::TooShort { min: 12 }));
        assert_eq!(check_policy("日本語のパスワードです猫", &[]), Ok(()));
    }

    #[test]
    fn a_password_longer_than_the_maximum_is_refused() {
        let long = "violet-tractor-umbrella ".repeat(11);
        assert!(long.chars().count() > MAX_LENGTH);
        assert_eq!(check_policy(&long, &[]), Err(PolicyViolation::TooLong { max: 256 }));
        let at_max: String = long.chars().take(MAX_LENGTH).collect();
        assert_eq!(check_policy(&at_max, &[]), Ok(()));
    }

    #[test]
    fn a_password_from_the_common_list_is_refused() {
        for password in ["correcthorsebatterystaple", "qwertyuiop123", "iloveyou1234", "1qaz2wsx3edc", "!@#$%^&*()_+"] {
            assert_eq!(check_policy(password, &[]), Err(PolicyViolation::Common), "{password}");
        }
    }

    #[test]
    fn the_common_list_is_compared_case_insensitively() {
        assert_eq!(check_policy("CorrectHorseBatteryStaple", &[]), Err(PolicyViolation::Common));
        assert_eq!(check_policy("QWERTY123456", &[]), Err(PolicyViolation::Common));
    }

    #[test]
    fn a_common_password_padded_with_digits_or_punctuation_is_refused() {
        for password in
            ["Password1234!", "Sunshine2024!!", "dragon!!!!!!", "2024summer!!", "Therapy12345", "Welcome2025!"]
        {
            assert_eq!(check_policy(password, &[]), Err(PolicyViolation::Common), "{password}");
        }
    }

    #[test]
    fn a_common_passphrase_with_separators_is_refused() {
        assert_eq!(check_policy("correct horse battery staple", &[]), Err(PolicyViolation::Common));
        assert_eq!(check_policy("keep-calm-and-carry-on", &[]), Err(PolicyViolation::Common));
    }

    #[test]
    fn a_common_password_with_letters_swapped_for_symbols_is_refused() {
        assert_eq!(check_policy("P@ssw0rd2024!", &[]), Err(PolicyViolation::Common));
        assert_eq!(check_policy("$un$hine12345", &[]), Err(PolicyViolation::Common));
    }

    #[test]
    fn a_password_of_one_repeated_character_is_refused() {
        assert_eq!(check_policy("aaaaaaaaaaaa", &[]), Err(PolicyViolation::Common));
        assert_eq!(check_policy("............", &[]), Err(PolicyViolation::Common));
        assert_eq!(check_policy("ÉÉÉÉÉÉÉÉÉÉÉÉ", &[]), Err(PolicyViolation::Common));
    }

    #[test]
    fn a_simple_ascending_or_descending_run_is_refused() {
        for password in ["123456789012", "abcdefghijkl", "LKJIHGFEDCBA", "098765432109", "uvwxyzabcdef"] {
            assert_eq!(check_policy(password, &[]), Err(PolicyViolation::Common), "{password}");
        }
    }

    #[test]
    fn a_short_or_weak_unit_repeated_is_refused() {
        for password in ["abcabcabcabc", "121212121212", "123456123456", "monkeymonkey"] {
            assert_eq!(check_policy(password, &[]), Err(PolicyViolation::Common), "{password}");
        }
    }

    #[test]
    fn a_password_containing_the_account_name_is_refused() {
        assert_eq!(check_policy("Blue-JSmith-Harbor", &["jsmith"]), Err(PolicyViolation::ContainsAccountName));
        assert_eq!(check_policy("my jane doe harbor lamp", &["jane.doe"]), Err(PolicyViolation::ContainsAccountName));
        assert_eq!(
            check_policy("orchid-jsmith-harbor", &["JSmith@example.org"]),
            Err(PolicyViolation::ContainsAccountName)
        );
    }

    #[test]
    fn account_names_shorter_than_four_characters_are_ignored() {
        assert_eq!(check_policy("bobcat-harbor-lamp", &["bob"]), Ok(()));
    }

    #[test]
    fn a_good_passphrase_passes() {
        assert_eq!(check_policy("violet-tractor-umbrella-42", &["jsmith"]), Ok(()));
        assert_eq!(check_policy("Gq7#v9!LmZ2pXw", &[]), Ok(()));
    }

    #[test]
    fn violations_have_stable_codes_and_never_echo_the_password() {
        let password = "Password1234!";
        let violation = check_policy(password, &[]).unwrap_err();
        assert_eq!(violation.code(), "password_too_common");
        assert!(!violation.to_string().contains(password));
        assert_eq!(PolicyViolation::TooShort { min: 12 }.code(), "password_too_short");
        assert_eq!(PolicyViolation::TooLong { max: 256 }.code(), "password_too_long");
        assert_eq!(PolicyViolation::ContainsAccountName.code(), "password_contains_account_name");
        assert_eq!(
            PolicyViolation::TooShort { min: 12 }.to_string(),
            "the password must be at least 12 characters long"
        );
    }

    #[test]
    fn the_shipped_list_is_lowercase_trimmed_and_holds_the_classics() {
        assert!((400..=1000).contains(&COMMON_PASSWORDS.len()), "{}", COMMON_PASSWORDS.len());
        for entry in COMMON_PASSWORDS.iter() {
            assert_eq!(*entry, entry.to_lowercase(), "{entry}");
            assert_eq!(*entry, entry.trim(), "{entry}");
        }
        for classic in ["password", "qwerty", "letmein", "iloveyou", "welcome", "trustno", "therapy", "confidant"] {
            assert!(COMMON_PASSWORDS.contains(classic), "{classic}");
        }
    }

    // --- hashing ---

    #[tokio::test]
    async fn a_hash_verifies_with_the_same_password() {
        let hasher = fast_hasher();
        let stored = hasher.hash("violet-tractor-umbrella").await.unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=256,t=1,p=1$"), "{stored}");
        assert!(!stored.contains("violet"));
        assert!(hasher.verify("violet-tractor-umbrella", &stored).await.unwrap());
    }

    #[tokio::test]
    async fn a_wrong_password_does_not_verify() {
        let hasher = fast_hasher();
        let stored = hasher.hash("violet-tractor-umbrella").await.unwrap();
        assert!(!hasher.verify("violet-tractor-umbrellA", &stored).await.unwrap());
        assert!(!hasher.verify("", &stored).await.unwrap());
    }

    #[tokio::test]
    async fn the_same_password_hashes_differently_each_time() {
        let hasher = fast_hasher();
        let first = hasher.hash("violet-tractor-umbrella").await.unwrap();
        let second = hasher.hash("violet-tractor-umbrella").await.unwrap();
        assert_ne!(first, second);
    }

    #[tokio::test]
    async fn the_default_hasher_uses_the_owasp_argon2id_minimum() {
        let hasher = PasswordHasher::new(1);
        let stored = hasher.hash("violet-tractor-umbrella").await.unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        assert!(!hasher.needs_rehash(&stored));
    }

    #[tokio::test]
    async fn a_hash_made_with_other_params_verifies_and_needs_rehash() {
        let old = fast_hasher();
        let stored = old.hash("violet-tractor-umbrella").await.unwrap();
        let current = PasswordHasher::with_params(512, 2, 1, 4).unwrap();
        assert!(current.verify("violet-tractor-umbrella", &stored).await.unwrap());
        assert!(current.needs_rehash(&stored));
        assert!(!old.needs_rehash(&stored));
        assert!(current.needs_rehash("not a phc string"));
    }

    #[tokio::test]
    async fn an_unknown_account_never_verifies() {
        let hasher = fast_hasher();
        assert!(!hasher.verify_or_dummy("violet-tractor-umbrella", None).await.unwrap());
        assert!(!hasher.verify_or_dummy(DUMMY_PASSWORD, None).await.unwrap());
        let stored = hasher.hash("violet-tractor-umbrella").await.unwrap();
        assert!(hasher.verify_or_dummy("violet-tractor-umbrella", Some(&stored)).await.unwrap());
    }

    #[tokio::test]
    async fn a_malformed_stored_hash_is_an_error_not_a_mismatch() {
        let hasher = fast_hasher();
        for stored in [
            "",
            "not a phc string",
            "$argon2id$v=19$m=256,t=1,p=1",
            "$argon2id$v=19$m=256,t=1,p=1$c2FsdHNhbHRzYWx0",
            "$bcrypt$v=19$m=256,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
            "$argon2id$v=7$m=256,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
        ] {
            let result = hasher.verify("violet-tractor-umbrella", stored).await;
            assert!(matches!(result, Err(PasswordError::Malformed)), "{stored}: {result:?}");
        }
    }

    #[tokio::test]
    async fn a_stored_hash_asking_for_absurd_memory_is_refused_without_running_it() {
        let hasher = fast_hasher();
        let stored = "$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";
        assert!(matches!(hasher.verify("x", stored).await, Err(PasswordError::Malformed)));
    }

    #[test]
    fn invalid_params_are_refused() {
        assert!(matches!(PasswordHasher::with_params(4, 1, 1, 1), Err(PasswordError::Params(_))));
        assert!(matches!(PasswordHasher::with_params(256, 0, 1, 1), Err(PasswordError::Params(_))));
        assert!(matches!(PasswordHasher::with_params(256, 1, 0, 1), Err(PasswordError::Params(_))));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_hashes_at_once_all_finish_even_with_one_permit() {
        let hasher = PasswordHasher::with_params(256, 1, 1, 0).unwrap();
        let stored = hasher.hash("violet-tractor-umbrella").await.unwrap();
        let (a, b, c, d) = tokio::join!(
            hasher.verify("violet-tractor-umbrella", &stored),
            hasher.verify("wrong-password-here", &stored),
            hasher.verify_or_dummy("violet-tractor-umbrella", None),
            hasher.hash("another-password-here"),
        );
        assert!(a.unwrap());
        assert!(!b.unwrap());
        assert!(!c.unwrap());
        assert!(d.unwrap().starts_with("$argon2id$"));
    }

    #[test]
    fn debug_output_shows_costs_only() {
        let shown = format!("{:?}", fast_hasher());
        assert_eq!(shown, "PasswordHasher { m_kib: 256, t: 1, p: 1, max_concurrent: 4 }");
    }
}
