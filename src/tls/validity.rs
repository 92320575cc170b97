//! When a certificate is valid and when it is due for renewal, read from the certificate itself
//! (its DER, through `x509-cert`), so one found on disk is judged by what it says rather than by
//! when the file was written. Times are milliseconds since the Unix epoch, like every clock here.

use rustls_pki_types::CertificateDer;
use x509_cert::der::Decode;

/// A certificate's validity period, and its subject (to recognise our own development one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validity {
    /// Not valid before this instant.
    pub not_before_ms: i64,
    /// Not valid after this instant.
    pub not_after_ms: i64,
    /// The subject, RFC 4514 (`CN=...,O=...`).
    pub subject: String,
}

impl Validity {
    /// Reads the validity of a DER certificate.
    pub fn of(der: &CertificateDer<'_>) -> Result<Self, String> {
        let cert =
            x509_cert::Certificate::from_der(der.as_ref()).map_err(|e| format!("not an X.509 certificate: {e}"))?;
        let tbs = &cert.tbs_certificate;
        let ms = |time: x509_cert::time::Time| i64::try_from(time.to_unix_duration().as_millis()).unwrap_or(i64::MAX);
        Ok(Self {
            not_before_ms: ms(tbs.validity.not_before),
            not_after_ms: ms(tbs.validity.not_after),
            subject: tbs.subject.to_string(),
        })
    }

    /// How long the certificate is valid in all.
    pub fn lifetime_ms(&self) -> i64 {
        self.not_after_ms.saturating_sub(self.not_before_ms)
    }

    /// When to replace it: two thirds of the way through its life. For a 90-day ACME
    /// certificate that is 30 days before expiry (Let's Encrypt's advice), which leaves weeks to
    /// notice and fix a failing renewal; it scales with shorter-lived certificates.
    pub fn renew_at_ms(&self) -> i64 {
        self.not_before_ms.saturating_add(self.lifetime_ms() / 3 * 2)
    }

    /// Whether the certificate is valid at `now_ms`.
    pub fn is_valid_at(&self, now_ms: i64) -> bool {
        self.not_before_ms <= now_ms && now_ms < self.not_after_ms
    }

    /// The expiry as RFC 3339, for logs.
    pub fn expires_at(&self) -> String {
        rfc3339(self.not_after_ms)
    }
}

/// An instant as RFC 3339 UTC (`2026-01-31T12:00:00Z`), for logs.
pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| format!("{ms} ms after the Unix epoch"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_MS: i64 = 86_400_000;

    fn certificate(not_before: time::OffsetDateTime, not_after: time::OffsetDateTime) -> CertificateDer<'static> {
        let mut params = rcgen::CertificateParams::new(vec!["example.org".to_owned()]).unwrap();
        params.not_before = not_before;
        params.not_after = not_after;
        params.distinguished_name.push(rcgen::DnType::CommonName, "Example");
        params.self_signed(&rcgen::KeyPair::generate().unwrap()).unwrap().der().clone()
    }

    #[test]
    fn validity_and_subject_are_read_from_the_certificate() {
        let start = time::macros::datetime!(2026-01-01 00:00 UTC);
        let der = certificate(start, start + time::Duration::days(90));

        let validity = Validity::of(&der).unwrap();

        assert_eq!(validity.not_before_ms, start.unix_timestamp() * 1000);
        assert_eq!(validity.lifetime_ms(), 90 * DAY_MS);
        assert_eq!(validity.subject, "CN=Example");
        assert_eq!(validity.expires_at(), "2026-04-01T00:00:00Z");
    }

    #[test]
    fn a_90_day_certificate_is_renewed_30_days_before_it_expires() {
        let validity = Validity { not_before_ms: 0, not_after_ms: 90 * DAY_MS, subject: String::new() };
        assert_eq!(validity.not_after_ms - validity.renew_at_ms(), 30 * DAY_MS);
        assert!(validity.is_valid_at(89 * DAY_MS) && !validity.is_valid_at(90 * DAY_MS));
    }

    #[test]
    fn junk_is_not_a_certificate() {
        assert!(Validity::of(&CertificateDer::from(vec![1, 2, 3])).is_err());
    }
}
