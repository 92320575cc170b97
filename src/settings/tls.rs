//! The listener's certificate settings: a configured certificate (`tls.cert`/`tls.key`), a
//! certificate obtained by ACME (`[tls.acme]`), or neither, for a development certificate. The
//! ACME values are parsed here, at the edge, so `tls::acme` never re-checks them.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;

use super::paths;

/// Let's Encrypt's production directory, the default of `tls.acme.directory_url`.
pub const LETS_ENCRYPT_PRODUCTION: &str = "https://acme-v02.api.letsencrypt.org/directory";

/// Let's Encrypt's staging directory: untrusted certificates, generous rate limits. For trying a
/// set-up before asking production.
pub const LETS_ENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

/// Certificate and protocol versions of the listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM certificate chain; with `key`. Neither, and no `acme`: a development certificate in
    /// `data_dir`.
    #[serde(default, deserialize_with = "paths::optional_path")]
    pub cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) for `cert`.
    #[serde(default, deserialize_with = "paths::optional_path")]
    pub key: Option<PathBuf>,
    /// Oldest accepted protocol version.
    pub min_version: TlsVersion,
    /// Obtain and renew the certificate from an ACME CA (Let's Encrypt by default). Refused
    /// together with `cert`/`key`: one source of truth for what the listener serves.
    #[serde(default)]
    pub acme: Option<AcmeSettings>,
}

/// ACME (RFC 8555): the node proves control of its domains with TLS-ALPN-01 (RFC 8737) on its
/// own listener, so the listener must be reachable on port 443 of every domain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AcmeSettings {
    /// The names the certificate covers; each must resolve to this node.
    pub domains: Vec<AcmeDomain>,
    /// How the CA reaches the practice about the account (`mailto:it@example.org`).
    pub contact: AcmeContact,
    /// The CA's directory. Default: Let's Encrypt production; use its staging directory
    /// ([`LETS_ENCRYPT_STAGING`]) to try a set-up.
    #[serde(default)]
    pub directory_url: AcmeDirectory,
    /// Where the account key, the certificate and its key are kept (mode 0700, files 0600).
    /// Default: `acme/` in `data_dir`.
    #[serde(default, deserialize_with = "paths::optional_path")]
    pub cache_dir: Option<PathBuf>,
    /// A PEM root certificate trusted, alone, for the CA's own HTTPS (a test CA such as Pebble).
    /// Unset: the system's trusted roots.
    #[serde(default, deserialize_with = "paths::optional_path")]
    pub root_ca_file: Option<PathBuf>,
}

/// A DNS name a certificate may be ordered for: lower-case, no wildcard (TLS-ALPN-01 cannot
/// prove one), not an IP address, no trailing dot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct AcmeDomain(String);

impl AcmeDomain {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AcmeDomain {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let name = value.trim().to_ascii_lowercase();
        let refuse = |why: &str| Err(format!("`{}` {why}", value.chars().take(80).collect::<String>()));
        if name.contains('*') {
            return refuse("is a wildcard, which TLS-ALPN-01 cannot prove; list each name");
        }
        if name.parse::<std::net::IpAddr>().is_ok() {
            return refuse("is an IP address; give the DNS name clients use");
        }
        if name.ends_with('.') || rustls_pki_types::DnsName::try_from(name.as_str()).is_err() {
            return refuse("is not a valid DNS name");
        }
        Ok(Self(name))
    }
}

impl fmt::Display for AcmeDomain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An ACME account contact: a `mailto:` URI with one address.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct AcmeContact(String);

impl AcmeContact {
    /// The URI, `mailto:...`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AcmeContact {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let value = value.trim();
        // One plain address: a local part and a DNS domain, nothing a URI would read as more
        // (no second address, no query).
        let address = value.strip_prefix("mailto:").unwrap_or_default();
        let plain = |c: char| !c.is_whitespace() && !c.is_control() && !",;?&<>\"".contains(c);
        let valid = match address.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && address.chars().all(plain)
                    && domain.contains('.')
                    && rustls_pki_types::DnsName::try_from(domain).is_ok()
            }
            None => false,
        };
        if !valid {
            return Err("must be `mailto:` followed by one email address".into());
        }
        Ok(Self(value.to_owned()))
    }
}

/// The URL of an ACME directory: `https://`, as RFC 8555 requires.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct AcmeDirectory(String);

impl AcmeDirectory {
    /// The URL.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for AcmeDirectory {
    fn default() -> Self {
        Self(LETS_ENCRYPT_PRODUCTION.to_owned())
    }
}

impl TryFrom<String> for AcmeDirectory {
    type Error = String;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let value = value.trim();
        match url::Url::parse(value) {
            Ok(url) if url.scheme() == "https" && url.host().is_some() => Ok(Self(value.to_owned())),
            _ => Err("must be an https:// URL (Let's Encrypt: https://acme-v02.api.letsencrypt.org/directory)".into()),
        }
    }
}

/// The TLS versions Confidant can be told to accept at minimum. Anything below 1.2 does not
/// exist here, so it cannot be configured by mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3.
    Tls12,
    /// TLS 1.3 only (the default).
    Tls13,
}

impl<'de> Deserialize<'de> for TlsVersion {
    /// Accepts `"1.2"`/`"1.3"`, and the bare numbers a TOML file or an environment variable
    /// turn them into.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = TlsVersion;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"1.3\" or \"1.2\" (older versions are never accepted)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<TlsVersion, E> {
                match v.trim() {
                    "1.3" => Ok(TlsVersion::Tls13),
                    "1.2" => Ok(TlsVersion::Tls12),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<TlsVersion, E> {
                // Environment values arrive as f32, so 1.3 is 1.2999999523...
                let near = |x: f64| (v - x).abs() < 1e-6;
                if near(1.3) {
                    Ok(TlsVersion::Tls13)
                } else if near(1.2) {
                    Ok(TlsVersion::Tls12)
                } else {
                    Err(E::invalid_value(serde::de::Unexpected::Float(v), &self))
                }
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// The rules between the keys: a certificate comes with its key, and from one source only.
pub(super) fn check(tls: &TlsSettings) -> Result<(), String> {
    match (&tls.cert, &tls.key) {
        (Some(_), None) => {
            return Err(
                "`tls.cert` is set but `tls.key` is not: set both, or neither for a development certificate".into()
            );
        }
        (None, Some(_)) => {
            return Err(
                "`tls.key` is set but `tls.cert` is not: set both, or neither for a development certificate".into()
            );
        }
        _ => {}
    }
    let Some(acme) = &tls.acme else { return Ok(()) };
    if tls.cert.is_some() {
        return Err("`tls.acme` and `tls.cert`/`tls.key` are both set: the listener's certificate comes from one of them; remove the other".into());
    }
    if acme.domains.is_empty() {
        return Err("`tls.acme.domains` must name at least one domain".into());
    }
    let mut sorted = acme.domains.clone();
    sorted.sort();
    if sorted.windows(2).any(|pair| pair[0] == pair[1]) {
        return Err("`tls.acme.domains` names a domain twice".into());
    }
    if acme.domains.len() > 100 {
        return Err("`tls.acme.domains`: at most 100 names in one certificate".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn domain(s: &str) -> Result<AcmeDomain, String> {
        AcmeDomain::try_from(s.to_owned())
    }

    #[test]
    fn a_domain_is_a_lower_case_dns_name_without_wildcard_or_address() {
        assert_eq!(domain(" Portal.Example.ORG ").unwrap().as_str(), "portal.example.org");
        for bad in ["*.example.org", "192.0.2.1", "::1", "example.org.", "exa mple.org", "", "-x.example"] {
            assert!(domain(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn a_contact_is_one_mailto_address() {
        assert!(AcmeContact::try_from("mailto:it@example.org".to_owned()).is_ok());
        for bad in [
            "it@example.org",
            "mailto:",
            "mailto:not-an-address",
            "tel:+15555550100",
            "mailto:a@example.org,b@example.org",
            "mailto:@example.org",
            "mailto:it@localhost",
        ] {
            assert!(AcmeContact::try_from(bad.to_owned()).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn a_directory_is_an_https_url() {
        assert!(AcmeDirectory::try_from(LETS_ENCRYPT_STAGING.to_owned()).is_ok());
        assert!(AcmeDirectory::try_from("http://acme.example.org/dir".to_owned()).is_err());
        assert_eq!(AcmeDirectory::default().as_str(), LETS_ENCRYPT_PRODUCTION);
    }
}
