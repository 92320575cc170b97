//! Why a certificate could not be obtained, or ACME cannot start; each variant says whether it
//! is the operator's configuration, the CA, the set-up outside the node, or our bug.

use std::path::PathBuf;

/// The problem type of a CA that no longer knows our account (RFC 8555, section 6.7).
const ACCOUNT_DOES_NOT_EXIST: &str = "urn:ietf:params:acme:error:accountDoesNotExist";

/// Why a certificate could not be obtained, or ACME cannot start.
#[derive(Debug, thiserror::Error)]
pub enum AcmeError {
    /// `tls.acme.root_ca_file` is not a readable PEM certificate (bad configuration).
    #[error("`tls.acme.root_ca_file`: cannot use {}: {reason}", path.display())]
    RootCa {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file of the cache cannot be read or written (the machine failed us).
    #[error("ACME cache {}: {source}", path.display())]
    Cache {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The CA's directory could not be reached, or it refused to register or find the account
    /// (dependency down, or a refusal: the message says which).
    #[error("ACME account: {0}")]
    Account(#[source] instant_acme::Error),
    /// A request about the order failed or the CA refused it (dependency down, rate limit,
    /// policy: the CA's message says which).
    #[error("ACME order: {0}")]
    Order(#[source] instant_acme::Error),
    /// The CA offers no TLS-ALPN-01 challenge for a domain (it must, for us to prove it).
    #[error("the CA offers no tls-alpn-01 challenge for {domain}")]
    NoTlsAlpnChallenge {
        /// The domain.
        domain: String,
    },
    /// An authorization is in a state an order cannot go on from (invalid, revoked, expired).
    #[error("the CA's authorization of {domain} is {status}")]
    Authorization {
        /// The domain.
        domain: String,
        /// Its status.
        status: String,
    },
    /// The CA could not validate a domain: it did not resolve to this node, or port 443 did
    /// not reach this listener (bad set-up outside the node).
    #[error("the CA could not validate every domain: {why}")]
    NotValidated {
        /// The CA's words.
        why: String,
    },
    /// A key, CSR or challenge certificate could not be made (our bug).
    #[error("cannot make {what}: {source}")]
    Generate {
        /// What.
        what: &'static str,
        /// rcgen's error.
        source: rcgen::Error,
    },
    /// What the CA issued (or the cache holds) is not a usable certificate and key.
    #[error("the ACME certificate is unusable: {0}")]
    Unusable(String),
    /// The whole order took longer than the node allows it (`acme::ORDER_TIMEOUT`).
    #[error("the order did not finish within {secs} s")]
    TimedOut {
        /// The limit.
        secs: u64,
    },
}

impl AcmeError {
    /// True when the operator configured something unusable (exit code 2 at start-up).
    pub fn is_configuration(&self) -> bool {
        matches!(self, AcmeError::RootCa { .. })
    }

    /// True when the CA says it does not know the account (it was deactivated, or a test CA
    /// restarted): the account must be registered again.
    pub(super) fn is_unknown_account(&self) -> bool {
        let problem = match self {
            AcmeError::Account(instant_acme::Error::Api(problem))
            | AcmeError::Order(instant_acme::Error::Api(problem)) => problem,
            _ => return false,
        };
        problem.r#type.as_deref() == Some(ACCOUNT_DOES_NOT_EXIST)
    }
}
