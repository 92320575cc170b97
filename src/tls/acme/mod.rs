//! Certificates from an ACME CA (RFC 8555), obtained and renewed by the node itself, so a
//! practice with a domain name needs no other software (docs/OPERATIONS.md, "Certificates").
//! Domains are proven with TLS-ALPN-01 on the node's own listener. At start-up a cached
//! certificate is served if it is valid; otherwise the development certificate stands in until
//! the first order completes. [`Acme::spawn`] then orders when there is no certificate and
//! renews two thirds of the way through its life; failures are logged and retried with backoff
//! while the current certificate keeps being served.
//!
//! `cache.rs` keeps the account and certificates, `order.rs` runs one order, `challenge.rs`
//! makes the TLS-ALPN-01 certificate, `error.rs` says what went wrong.

mod cache;
mod challenge;
mod error;
mod order;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use confidant_actors::clock::Clock;
use instant_acme::{Account, NewAccount};
use rustls::sign::CertifiedKey;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

use self::cache::{AcmeCache, Issued};
pub use self::error::AcmeError;
use super::resolver::CertResolver;
use super::validity::{Validity, rfc3339};
use crate::settings::{AcmeContact, AcmeDirectory, AcmeDomain, AcmeSettings};

/// A running node looks at its certificate at least this often, so a suspended machine or a
/// clock change cannot make it sleep through the renewal date.
const RECHECK_EVERY: Duration = Duration::from_secs(3600);

/// The first retry after a failed order waits this long; each next one twice as long...
const RETRY_FIRST: Duration = Duration::from_secs(120);

/// ...up to this, which also keeps a persistent failure under Let's Encrypt's limit of five
/// failed validations per domain per hour.
const RETRY_MAX: Duration = Duration::from_secs(3600);

/// One whole order (account, validation, issuance) is abandoned after this long.
const ORDER_TIMEOUT: Duration = Duration::from_secs(600);

/// The node's ACME client: its settings, its cache and what it presents now.
pub struct Acme {
    domains: Vec<AcmeDomain>,
    contact: AcmeContact,
    directory: AcmeDirectory,
    root_ca: Option<PathBuf>,
    cache: AcmeCache,
    clock: Arc<dyn Clock>,
    /// The validity of the ACME certificate being served; `None` while none is.
    current: Option<Validity>,
}

impl Acme {
    /// Opens the cache (creating it, 0700) and checks `root_ca_file`, so both fail at start-up.
    pub fn new(settings: &AcmeSettings, cache_dir: PathBuf, clock: Arc<dyn Clock>) -> Result<Self, AcmeError> {
        if let Some(path) = &settings.root_ca_file {
            CertificateDer::from_pem_file(path)
                .map_err(|e| AcmeError::RootCa { path: path.clone(), reason: e.to_string() })?;
        }
        let cache = AcmeCache::open(cache_dir, &settings.directory_url, &settings.domains)?;
        Ok(Self {
            domains: settings.domains.clone(),
            contact: settings.contact.clone(),
            directory: settings.directory_url.clone(),
            root_ca: settings.root_ca_file.clone(),
            cache,
            clock,
            current: None,
        })
    }

    /// The cached certificate, when there is one for these domains and this CA and it is valid
    /// now. Logs what it found.
    pub fn load_cached(&mut self) -> Option<Arc<CertifiedKey>> {
        let domains = self.domain_list();
        let issued = match self.cache.load_certificate() {
            Ok(Some(issued)) => issued,
            Ok(None) => {
                tracing::info!(domains = %domains, cache = %self.cache.dir().display(), "no cached ACME certificate for these domains");
                return None;
            }
            Err(error) => {
                tracing::warn!(domains = %domains, %error, "cannot read the cached ACME certificate; ordering a new one");
                return None;
            }
        };
        let (certified, validity) = match usable(&issued) {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(domains = %domains, %error, "the cached ACME certificate is unusable; ordering a new one");
                return None;
            }
        };
        if !validity.is_valid_at(self.clock.now_ms()) {
            tracing::warn!(domains = %domains, expires_at = %validity.expires_at(), "the cached ACME certificate is not valid now; ordering a new one");
            return None;
        }
        tracing::info!(
            domains = %domains,
            expires_at = %validity.expires_at(),
            renew_at = %rfc3339(validity.renew_at_ms()),
            "serving the cached ACME certificate"
        );
        self.current = Some(validity);
        Some(certified)
    }

    /// Keeps the certificate `resolver` presents current, on the current (actix) runtime, for
    /// as long as it runs.
    pub fn spawn(self, resolver: Arc<CertResolver>) {
        actix_web::rt::spawn(self.run(resolver));
    }

    async fn run(mut self, resolver: Arc<CertResolver>) {
        let mut failures: u32 = 0;
        loop {
            let now = self.clock.now_ms();
            let due_at = self.current.as_ref().map_or(now, Validity::renew_at_ms);
            if now < due_at {
                let wait = Duration::from_millis(u64::try_from(due_at - now).unwrap_or(0)).min(RECHECK_EVERY);
                tokio::time::sleep(wait).await;
                continue;
            }
            let why = if self.current.is_some() { "renewal due" } else { "no certificate yet" };
            tracing::info!(domains = %self.domain_list(), directory = %self.directory.as_str(), why, "ordering a certificate from the ACME CA");
            let outcome = tokio::time::timeout(ORDER_TIMEOUT, self.obtain(&resolver)).await;
            match outcome.unwrap_or(Err(AcmeError::TimedOut { secs: ORDER_TIMEOUT.as_secs() })) {
                Ok(validity) => {
                    failures = 0;
                    tracing::info!(
                        domains = %self.domain_list(),
                        expires_at = %validity.expires_at(),
                        renew_at = %rfc3339(validity.renew_at_ms()),
                        "installed a new certificate from the ACME CA"
                    );
                    self.current = Some(validity);
                }
                Err(error) => {
                    failures = failures.saturating_add(1);
                    if error.is_unknown_account()
                        && let Err(forget) = self.cache.forget_account()
                    {
                        tracing::error!(error = %forget, "cannot forget the ACME account the CA no longer knows");
                    }
                    let retry_in = retry_delay(failures);
                    let expires_at = self.current.as_ref().map_or_else(|| "none".to_owned(), Validity::expires_at);
                    tracing::error!(
                        domains = %self.domain_list(),
                        %error,
                        attempt = failures,
                        retry_in_secs = retry_in.as_secs(),
                        current_certificate_expires_at = %expires_at,
                        "could not obtain a certificate from the ACME CA"
                    );
                    tokio::time::sleep(retry_in).await;
                }
            }
        }
    }

    /// One order, its certificate kept in the cache and installed in `resolver`.
    async fn obtain(&self, resolver: &CertResolver) -> Result<Validity, AcmeError> {
        let account = self.account().await?;
        let issued = order::order(&account, &self.domains, resolver).await?;
        let (certified, validity) = usable(&issued)?;
        self.cache.save_certificate(&issued)?;
        resolver.replace(certified);
        Ok(validity)
    }

    /// The cached account, or a new one registered (agreeing to the CA's terms of service: an
    /// operator who configures ACME accepts them) and cached.
    async fn account(&self) -> Result<Account, AcmeError> {
        let builder = match &self.root_ca {
            Some(root) => Account::builder_with_root(root),
            None => Account::builder(),
        }
        .map_err(AcmeError::Account)?;
        if let Some(credentials) = self.cache.load_account()? {
            return builder.from_credentials(credentials).await.map_err(AcmeError::Account);
        }
        let contact = [self.contact.as_str()];
        let new = NewAccount { contact: &contact, terms_of_service_agreed: true, only_return_existing: false };
        let (account, credentials) =
            builder.create(&new, self.directory.as_str().to_owned(), None).await.map_err(AcmeError::Account)?;
        self.cache.save_account(&credentials)?;
        tracing::info!(directory = %self.directory.as_str(), account = %account.id(), "registered an ACME account");
        Ok(account)
    }

    /// The domains, comma-separated, for logs.
    fn domain_list(&self) -> String {
        self.domains.iter().map(AcmeDomain::as_str).collect::<Vec<_>>().join(",")
    }
}

/// The certificate and key rustls presents, and the leaf's validity.
fn usable(issued: &Issued) -> Result<(Arc<CertifiedKey>, Validity), AcmeError> {
    let (chain, key) = issued.parts().map_err(AcmeError::Unusable)?;
    let validity = Validity::of(&chain[0]).map_err(AcmeError::Unusable)?;
    let certified = CertifiedKey::from_der(chain, key, &rustls::crypto::ring::default_provider())
        .map_err(|e| AcmeError::Unusable(e.to_string()))?;
    Ok((Arc::new(certified), validity))
}

/// How long to wait before the next attempt after `failures` failed ones in a row.
fn retry_delay(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    RETRY_FIRST.saturating_mul(1 << doublings).min(RETRY_MAX)
}

#[cfg(test)]
mod tests {
    use confidant_actors::clock::ManualClock;

    use super::*;

    const DAY_MS: i64 = 86_400_000;

    fn settings(dir: &std::path::Path) -> AcmeSettings {
        AcmeSettings {
            domains: vec![AcmeDomain::try_from("portal.example.org".to_owned()).unwrap()],
            contact: AcmeContact::try_from("mailto:it@example.org".to_owned()).unwrap(),
            directory_url: AcmeDirectory::default(),
            cache_dir: Some(dir.to_owned()),
            root_ca_file: None,
        }
    }

    fn issued_for(days: i64, now_ms: i64) -> Issued {
        let mut params = rcgen::CertificateParams::new(vec!["portal.example.org".to_owned()]).unwrap();
        let now = time::OffsetDateTime::from_unix_timestamp(now_ms / 1000).unwrap();
        params.not_before = now;
        params.not_after = now + time::Duration::days(days);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Issued { chain_pem: cert.pem(), key_pem: zeroize::Zeroizing::new(key.serialize_pem()) }
    }

    #[test]
    fn retries_back_off_from_two_minutes_to_an_hour() {
        let waits: Vec<u64> = (1..=7).map(|n| retry_delay(n).as_secs()).collect();
        assert_eq!(waits, [120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(retry_delay(u32::MAX), RETRY_MAX);
    }

    #[test]
    fn a_valid_cached_certificate_is_served_and_renewed_two_thirds_through_its_life() {
        let dir = tempfile::tempdir().unwrap();
        let now = 1_800_000_000_000;
        let clock = Arc::new(ManualClock::at(now));
        let mut acme = Acme::new(&settings(dir.path()), dir.path().to_owned(), clock.clone()).unwrap();
        acme.cache.save_certificate(&issued_for(90, now)).unwrap();

        assert!(acme.load_cached().is_some());

        let renew_at = acme.current.as_ref().unwrap().renew_at_ms();
        assert_eq!(renew_at, now + 60 * DAY_MS);
    }

    #[test]
    fn an_expired_cached_certificate_is_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let now = 1_800_000_000_000;
        let clock = Arc::new(ManualClock::at(now));
        let mut acme = Acme::new(&settings(dir.path()), dir.path().to_owned(), clock.clone()).unwrap();
        acme.cache.save_certificate(&issued_for(90, now)).unwrap();

        clock.advance_ms(91 * DAY_MS);

        assert!(acme.load_cached().is_none());
        assert!(acme.current.is_none());
    }

    #[test]
    fn an_unreadable_root_ca_file_is_a_configuration_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut with_root = settings(dir.path());
        with_root.root_ca_file = Some(dir.path().join("missing.pem"));

        let error = Acme::new(&with_root, dir.path().to_owned(), Arc::new(ManualClock::at(0))).err().unwrap();

        assert!(error.is_configuration());
        assert!(error.to_string().contains("tls.acme.root_ca_file"));
    }
}
