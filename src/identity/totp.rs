//! Time-based one-time passwords (RFC 6238) as a second sign-in factor: SHA-1, 6 digits, 30 second steps,
//! the only parameters every authenticator app supports.

use rand_core::{OsRng, RngCore};
use totp_rs::{Algorithm, Builder, Totp};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Digits in a code: what authenticator apps show by default.
pub const DIGITS: usize = 6;

/// Seconds a code stays current: what authenticator apps assume by default.
pub const PERIOD_SECS: u64 = 30;

/// [`DIGITS`] in the type totp-rs wants.
const DIGITS_U8: u8 = 6;

/// Length of a freshly generated secret: 160 bits, the RFC 4226 section 4 recommendation.
const GENERATED_LEN: usize = 20;

/// Shortest secret accepted back from storage: 128 bits, the RFC 4226 section 4 minimum.
const MIN_LEN: usize = 16;

/// Longest secret accepted back from storage: one SHA-1 block; anything longer is not something we wrote.
const MAX_LEN: usize = 64;

/// RFC 4648 base32 alphabet.
const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A TOTP shared secret: 20 random bytes (160 bits, RFC 4226 section 4 recommendation). Zeroized on drop.
///
/// Anyone holding it can mint codes for the account, so it has no `Display` and its `Debug` shows only the type
/// name.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct TotpSecret(Vec<u8>);

impl TotpSecret {
    /// A fresh secret from the operating system's random number generator, for enrolling an authenticator.
    pub fn generate() -> Self {
        let mut bytes = vec![0u8; GENERATED_LEN];
        OsRng.fill_bytes(&mut bytes);
        Self(bytes)
    }

    /// Rebuilds a secret read back from (encrypted) storage. `None` unless it is 16 to 64 bytes long, so a
    /// truncated or foreign value is never used as a key.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        (MIN_LEN..=MAX_LEN).contains(&bytes.len()).then(|| Self(bytes.to_vec()))
    }

    /// The raw key, for encrypting it into storage.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// RFC 4648 base32 without padding, what a person types into an authenticator app by hand.
    pub fn base32(&self) -> Zeroizing<String> {
        // Reserve the padded length up front so the string never reallocates and leaves a copy behind.
        let mut out = Zeroizing::new(String::with_capacity(self.0.len().div_ceil(5) * 8));
        // At most 4 leftover bits plus one new byte: fits in 16 bits.
        let mut buffer: u16 = 0;
        let mut bits: u32 = 0;
        for &byte in &self.0 {
            buffer = (buffer << 8) | u16::from(byte);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                out.push(base32_char(buffer >> bits));
            }
            buffer &= (1 << bits) - 1;
        }
        if bits > 0 {
            out.push(base32_char(buffer << (5 - bits)));
        }
        buffer.zeroize();
        out
    }
}

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret")
    }
}

/// The base32 character for the low five bits of `value`.
fn base32_char(value: u16) -> char {
    char::from(BASE32_ALPHABET[usize::from(value & 0x1f)])
}

/// Why a provisioning URI could not be built. Carries no input values: the account label may identify a patient.
#[derive(Debug, thiserror::Error)]
pub enum TotpError {
    /// The issuer is empty or contains ':', which the Key Uri Format uses to separate issuer from account.
    #[error("the TOTP issuer must be non-empty and must not contain ':'")]
    InvalidIssuer,
    /// The account label is empty or contains ':', which the Key Uri Format uses to separate issuer from account.
    #[error("the TOTP account label must be non-empty and must not contain ':'")]
    InvalidAccount,
    /// totp-rs refused the parameters for another reason.
    #[error("the TOTP provisioning URI could not be built")]
    Uri,
}

impl From<totp_rs::TotpError> for TotpError {
    fn from(error: totp_rs::TotpError) -> Self {
        match error {
            totp_rs::TotpError::InvalidIssuer { .. } => Self::InvalidIssuer,
            totp_rs::TotpError::InvalidAccountName { .. } | totp_rs::TotpError::AccountNameNotSet => {
                Self::InvalidAccount
            }
            _ => Self::Uri,
        }
    }
}

/// The otpauth://totp/ URI authenticator apps read from a QR code (Key Uri Format): issuer, account label,
/// secret, algorithm SHA1, digits 6, period 30.
///
/// The parameters are spelled out although they are the format's defaults, so no app has to guess.
pub fn provisioning_uri(secret: &TotpSecret, issuer: &str, account: &str) -> Result<Zeroizing<String>, TotpError> {
    if issuer.is_empty() || issuer.contains(':') {
        return Err(TotpError::InvalidIssuer);
    }
    if account.is_empty() || account.contains(':') {
        return Err(TotpError::InvalidAccount);
    }
    let totp = builder(secret).with_issuer(Some(issuer)).with_account_name(account).build()?;
    let url = Zeroizing::new(totp.to_url()?);
    const PARAMETERS: &str = "&algorithm=SHA1&digits=6&period=30";
    // Sized up front so pushing never reallocates and leaves an unzeroized copy of the secret behind.
    let mut uri = Zeroizing::new(String::with_capacity(url.len() + PARAMETERS.len()));
    uri.push_str(&url);
    uri.push_str(PARAMETERS);
    Ok(uri)
}

/// The time step (unix_secs / 30) a time falls in.
pub fn step_at(unix_secs: u64) -> u64 {
    unix_secs / PERIOD_SECS
}

/// The code for a time (clients and tests use it).
pub fn code_at(secret: &TotpSecret, unix_secs: u64) -> String {
    engine(secret).generate(unix_secs).to_string()
}

/// Checks `code` against the steps t-1, t, t+1 around `unix_secs` (one step of clock drift each way) and
/// returns the matching step, but only if it is greater than `last_used_step`: a code, once accepted, can
/// never be accepted again (replay protection; the caller stores the returned step). Compares in constant
/// time; input that is not exactly 6 ASCII digits (after trimming surrounding whitespace and removing one
/// inner space, e.g. "123 456") is simply no match.
pub fn verify(secret: &TotpSecret, code: &str, unix_secs: u64, last_used_step: Option<u64>) -> Option<u64> {
    let given = normalize(code)?;
    let totp = engine(secret);
    let now = step_at(unix_secs);
    let mut matched = None;
    for step in [now.checked_sub(1), Some(now), now.checked_add(1)].into_iter().flatten() {
        let Some(time) = step.checked_mul(PERIOD_SECS) else {
            continue;
        };
        let expected = Zeroizing::new(totp.generate(time).to_string());
        // Every candidate is compared, whatever matched before, so timing does not depend on the code.
        let fresh = last_used_step.is_none_or(|used| step > used);
        if constant_time_eq(expected.as_bytes(), &given[..]) && fresh {
            // The highest step wins, so a code that happens to be valid for two steps burns both.
            matched = Some(step);
        }
    }
    matched
}

/// The digits of `code` once surrounding whitespace and at most one inner space are removed, or `None` when that
/// is not exactly [`DIGITS`] ASCII digits.
fn normalize(code: &str) -> Option<Zeroizing<[u8; DIGITS]>> {
    let mut digits = Zeroizing::new([0u8; DIGITS]);
    let mut len = 0;
    let mut spaces = 0;
    for &byte in code.trim().as_bytes() {
        if byte == b' ' {
            spaces += 1;
            if spaces > 1 {
                return None;
            }
            continue;
        }
        if !byte.is_ascii_digit() {
            return None;
        }
        *digits.get_mut(len)? = byte;
        len += 1;
    }
    (len == DIGITS).then_some(digits)
}

/// Byte equality whose running time depends only on the lengths, not on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

/// A totp-rs builder with this module's fixed parameters and the secret.
fn builder(secret: &TotpSecret) -> Builder {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(DIGITS_U8)
        .with_step_duration(PERIOD_SECS)
        .with_skew(0)
        .with_secret(secret.as_bytes())
}

/// A totp-rs generator for the secret. `build_noncompliant` cannot fail; the only check it skips (secret of at
/// least 128 bits) is already enforced by [`TotpSecret`]'s constructors.
fn engine(secret: &TotpSecret) -> Totp {
    builder(secret).build_noncompliant()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn rfc_secret() -> TotpSecret {
        TotpSecret::from_bytes(b"12345678901234567890").unwrap()
    }

    /// A time in the middle of a step, so t-1 and t+1 are whole periods away.
    const NOW: u64 = 1_111_111_111;

    #[test]
    fn codes_are_the_last_six_digits_of_the_rfc_6238_sha1_test_vectors() {
        let secret = rfc_secret();
        for (time, eight_digits) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(code_at(&secret, time), eight_digits[2..], "T = {time}");
        }
    }

    #[test]
    fn a_step_is_thirty_seconds() {
        assert_eq!(step_at(0), 0);
        assert_eq!(step_at(29), 0);
        assert_eq!(step_at(30), 1);
        assert_eq!(step_at(59), 1);
    }

    #[test]
    fn generated_secrets_are_160_random_bits() {
        let a = TotpSecret::generate();
        let b = TotpSecret::generate();
        assert_eq!(a.as_bytes().len(), 20);
        assert_ne!(a.as_bytes(), b.as_bytes());
    }

    #[test]
    fn only_secrets_of_16_to_64_bytes_are_read_back() {
        assert!(TotpSecret::from_bytes(&[7; 15]).is_none());
        assert!(TotpSecret::from_bytes(&[7; 65]).is_none());
        assert!(TotpSecret::from_bytes(&[]).is_none());
        assert_eq!(TotpSecret::from_bytes(&[7; 16]).unwrap().as_bytes(), &[7; 16]);
        assert_eq!(TotpSecret::from_bytes(&[7; 64]).unwrap().as_bytes(), &[7; 64]);
    }

    #[test]
    fn base32_is_rfc_4648_without_padding() {
        assert_eq!(rfc_secret().base32().as_str(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        // RFC 4648 section 10 vectors, padding removed.
        for (input, expected) in [
            (&b"foobarbazquxquuxcorg"[..], "MZXW6YTBOJRGC6TROV4HC5LVPBRW64TH"),
            (b"foobarbazquxquuxcorge", "MZXW6YTBOJRGC6TROV4HC5LVPBRW64THMU"),
            (b"foobarbazquxquuxcorgeg", "MZXW6YTBOJRGC6TROV4HC5LVPBRW64THMVTQ"),
            (b"foobarbazquxquuxcorgegr", "MZXW6YTBOJRGC6TROV4HC5LVPBRW64THMVTXE"),
            (b"foobarbazquxquuxcorgegra", "MZXW6YTBOJRGC6TROV4HC5LVPBRW64THMVTXEYI"),
        ] {
            assert_eq!(TotpSecret::from_bytes(input).unwrap().base32().as_str(), expected);
        }
    }

    #[test]
    fn the_current_code_is_accepted_and_its_step_returned() {
        let secret = rfc_secret();
        let code = code_at(&secret, NOW);
        assert_eq!(verify(&secret, &code, NOW, None), Some(step_at(NOW)));
    }

    #[test]
    fn one_step_of_clock_drift_either_way_is_accepted() {
        let secret = rfc_secret();
        let previous = code_at(&secret, NOW - PERIOD_SECS);
        let next = code_at(&secret, NOW + PERIOD_SECS);
        assert_eq!(verify(&secret, &previous, NOW, None), Some(step_at(NOW) - 1));
        assert_eq!(verify(&secret, &next, NOW, None), Some(step_at(NOW) + 1));
    }

    #[test]
    fn two_steps_of_drift_are_refused() {
        let secret = rfc_secret();
        let too_old = code_at(&secret, NOW - 2 * PERIOD_SECS);
        let too_new = code_at(&secret, NOW + 2 * PERIOD_SECS);
        assert_eq!(verify(&secret, &too_old, NOW, None), None);
        assert_eq!(verify(&secret, &too_new, NOW, None), None);
    }

    #[test]
    fn a_code_once_accepted_is_never_accepted_again() {
        let secret = rfc_secret();
        let code = code_at(&secret, NOW);
        let used = verify(&secret, &code, NOW, None).unwrap();
        assert_eq!(verify(&secret, &code, NOW, Some(used)), None);
        assert_eq!(verify(&secret, &code, NOW + PERIOD_SECS, Some(used)), None);
    }

    #[test]
    fn an_earlier_step_than_the_last_used_one_is_refused_even_within_drift() {
        let secret = rfc_secret();
        let previous = code_at(&secret, NOW - PERIOD_SECS);
        assert_eq!(verify(&secret, &previous, NOW, Some(step_at(NOW))), None);
    }

    #[test]
    fn a_later_step_after_a_used_one_is_accepted() {
        let secret = rfc_secret();
        let used = verify(&secret, &code_at(&secret, NOW), NOW, None).unwrap();
        let later = NOW + PERIOD_SECS;
        assert_eq!(verify(&secret, &code_at(&secret, later), later, Some(used)), Some(used + 1));
    }

    #[test]
    fn surrounding_whitespace_and_one_inner_space_are_ignored() {
        let secret = rfc_secret();
        let code = code_at(&secret, NOW);
        let spaced = format!("{} {}", &code[..3], &code[3..]);
        assert_eq!(verify(&secret, &format!("  {code}\n"), NOW, None), Some(step_at(NOW)));
        assert_eq!(verify(&secret, &spaced, NOW, None), Some(step_at(NOW)));
    }

    #[test]
    fn anything_but_six_ascii_digits_is_no_match() {
        let secret = rfc_secret();
        let code = code_at(&secret, NOW);
        let garbage = [
            String::new(),
            "      ".to_owned(),
            code[..5].to_owned(),
            format!("{code}0"),
            format!("0{code}"),
            format!("{} {} {}", &code[..2], &code[2..4], &code[4..]),
            format!("+{}", &code[1..]),
            format!("{}\t{}", &code[..3], &code[3..]),
            "abcdef".to_owned(),
            "١٢٣٤٥٦".to_owned(),
            "14050471".to_owned(),
        ];
        for input in &garbage {
            assert_eq!(verify(&secret, input, NOW, None), None, "{input:?}");
        }
    }

    #[test]
    fn times_at_the_edges_of_the_clock_do_not_panic() {
        let secret = rfc_secret();
        assert_eq!(verify(&secret, &code_at(&secret, 0), 0, None), Some(0));
        let at_the_end = u64::MAX;
        assert_eq!(verify(&secret, &code_at(&secret, at_the_end), at_the_end, None), Some(step_at(at_the_end)));
    }

    #[test]
    fn provisioning_uri_carries_issuer_account_secret_and_parameters() {
        let secret = rfc_secret();
        let uri = provisioning_uri(&secret, "Confidant", "patient@example.org").unwrap();
        assert!(uri.starts_with("otpauth://totp/"), "{}", uri.as_str());
        assert!(uri.contains(&format!("secret={}", secret.base32().as_str())));
        assert!(uri.contains("issuer=Confidant"));
        assert!(uri.contains("algorithm=SHA1"));
        assert!(uri.contains("digits=6"));
        assert!(uri.contains("period=30"));
    }

    #[test]
    fn an_authenticator_reading_the_uri_computes_the_same_codes() {
        let secret = TotpSecret::generate();
        let uri = provisioning_uri(&secret, "Confidant Clinic", "patient@example.org").unwrap();
        let app = Totp::from_url(uri.as_str()).unwrap();
        assert_eq!(app.issuer(), Some("Confidant Clinic"));
        assert_eq!(app.account_name(), "patient@example.org");
        assert_eq!(app.generate(NOW).to_string(), code_at(&secret, NOW));
    }

    #[test]
    fn labels_with_a_colon_or_empty_are_refused_without_echoing_them() {
        let secret = rfc_secret();
        let error = provisioning_uri(&secret, "Con:fidant", "patient@example.org").unwrap_err();
        assert!(matches!(error, TotpError::InvalidIssuer));
        assert!(!error.to_string().contains("Con:fidant"));
        let error = provisioning_uri(&secret, "Confidant", "patient:jane@example.org").unwrap_err();
        assert!(matches!(error, TotpError::InvalidAccount));
        assert!(!error.to_string().contains("jane"));
        assert!(matches!(provisioning_uri(&secret, "", "a@example.org"), Err(TotpError::InvalidIssuer)));
        assert!(matches!(provisioning_uri(&secret, "Confidant", ""), Err(TotpError::InvalidAccount)));
    }

    #[test]
    fn debug_of_a_secret_shows_only_the_type_name() {
        let secret = rfc_secret();
        let debug = format!("{secret:?}");
        assert_eq!(debug, "TotpSecret");
        assert!(!debug.contains(secret.base32().as_str()));
    }
}
