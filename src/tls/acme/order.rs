//! One ACME order (RFC 8555, section 7.4) through instant-acme: each domain proven with
//! TLS-ALPN-01 (RFC 8737) on the node's own listener, then a CSR for a fresh ECDSA P-256 key,
//! then the issued chain. The challenge certificates are withdrawn however the order ends.

use std::time::Duration;

use instant_acme::{
    Account, AuthorizationStatus, ChallengeType, Identifier, NewOrder, Order, OrderStatus, RetryPolicy,
};

use super::cache::Issued;
use super::error::AcmeError;
use crate::settings::AcmeDomain;
use crate::tls::resolver::CertResolver;

/// How long the CA may take to validate every domain once told the challenges are ready.
const VALIDATION_TIMEOUT: Duration = Duration::from_secs(120);

/// How long the CA may take to issue once the order is finalized.
const ISSUANCE_TIMEOUT: Duration = Duration::from_secs(120);

/// Orders a certificate for `domains`, presenting challenge certificates through `resolver`.
pub async fn order(account: &Account, domains: &[AcmeDomain], resolver: &CertResolver) -> Result<Issued, AcmeError> {
    let identifiers: Vec<Identifier> = domains.iter().map(|d| Identifier::Dns(d.as_str().to_owned())).collect();
    let mut order = account.new_order(&NewOrder::new(&identifiers)).await.map_err(AcmeError::Order)?;
    let mut presented = Presented { resolver, domains: Vec::new() };
    let mut authorizations = order.authorizations();
    while let Some(next) = authorizations.next().await {
        let mut authorization = next.map_err(AcmeError::Order)?;
        let domain = authorization.identifier().to_string();
        match authorization.status {
            // Proven recently for this account: nothing to do.
            AuthorizationStatus::Valid => continue,
            AuthorizationStatus::Pending => {}
            status => return Err(AcmeError::Authorization { domain, status: format!("{status:?}").to_lowercase() }),
        }
        let mut challenge = authorization
            .challenge(ChallengeType::TlsAlpn01)
            .ok_or_else(|| AcmeError::NoTlsAlpnChallenge { domain: domain.clone() })?;
        let certificate = super::challenge::certificate(&domain, challenge.key_authorization().digest().as_ref())?;
        presented.add(&domain, certificate);
        challenge.set_ready().await.map_err(AcmeError::Order)?;
        tracing::debug!(domain = %domain, "TLS-ALPN-01 challenge ready");
    }
    let polled = order.poll_ready(&RetryPolicy::new().timeout(VALIDATION_TIMEOUT)).await;
    // Validation is over either way; the challenge certificates go before anything else.
    drop(presented);
    let status = match polled {
        Ok(status) => status,
        // The order itself carries the validation's problem (Pebble, Let's Encrypt).
        Err(instant_acme::Error::Api(problem)) => {
            let names: Vec<&str> = domains.iter().map(AcmeDomain::as_str).collect();
            return Err(AcmeError::NotValidated { why: format!("{}: {problem}", names.join(",")) });
        }
        Err(error) => return Err(AcmeError::Order(error)),
    };
    if status != OrderStatus::Ready {
        return Err(AcmeError::NotValidated { why: why_not_validated(&mut order).await });
    }

    let key =
        rcgen::KeyPair::generate().map_err(|source| AcmeError::Generate { what: "the certificate key", source })?;
    let names: Vec<String> = domains.iter().map(|d| d.as_str().to_owned()).collect();
    let mut params =
        rcgen::CertificateParams::new(names).map_err(|source| AcmeError::Generate { what: "the CSR", source })?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key).map_err(|source| AcmeError::Generate { what: "the CSR", source })?;
    order.finalize_csr(csr.der()).await.map_err(AcmeError::Order)?;
    let chain_pem =
        order.poll_certificate(&RetryPolicy::new().timeout(ISSUANCE_TIMEOUT)).await.map_err(AcmeError::Order)?;
    Ok(Issued { chain_pem, key_pem: zeroize::Zeroizing::new(key.serialize_pem()) })
}

/// The CA's own words on why an order is not ready: the first failed challenge's problem.
async fn why_not_validated(order: &mut Order) -> String {
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut authorization)) = authorizations.next().await {
        let Ok(state) = authorization.refresh().await else { continue };
        let domain = state.identifier().to_string();
        if let Some(problem) = state.challenges.iter().find_map(|c| c.error.as_ref()) {
            return format!("{domain}: {problem}");
        }
    }
    "the CA gave no reason".into()
}

/// The challenge certificates presented for this order, withdrawn when it is dropped (success,
/// error, timeout or cancellation alike).
struct Presented<'a> {
    resolver: &'a CertResolver,
    domains: Vec<String>,
}

impl Presented<'_> {
    fn add(&mut self, domain: &str, certificate: std::sync::Arc<rustls::sign::CertifiedKey>) {
        self.resolver.add_challenge(domain, certificate);
        self.domains.push(domain.to_owned());
    }
}

impl Drop for Presented<'_> {
    fn drop(&mut self) {
        for domain in &self.domains {
            self.resolver.remove_challenge(domain);
        }
    }
}
