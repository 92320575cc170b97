//! Connection URLs of the databases and Redis. They can carry passwords, so their `Debug`
//! redacts the password and nothing here ever echoes a rejected URL back.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Deserializer};
use url::{Host, Url};

/// A PostgreSQL connection URL, checked at load time: scheme `postgres://` or `postgresql://`, a
/// database name, and TLS required (`sslmode=require`, `verify-ca` or `verify-full`) unless the
/// host is this machine.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(Url);

/// A Redis URL: `rediss://` (TLS) anywhere, plain `redis://` only to this machine.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl(Url);

/// An SMTP submission URL with TLS required, whatever the host: `smtps://HOST[:465]` (implicit
/// TLS) or `smtp://HOST[:587]?tls=required` (STARTTLS, refusing a server that does not offer
/// it). A plain `smtp://` or `?tls=opportunistic` is refused: reminders must never fall back to
/// plaintext, not even on a loopback relay that forwards them onwards.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpUrl {
    url: Url,
    /// `true`: TLS from the first byte; `false`: STARTTLS, required.
    pub implicit_tls: bool,
}

impl SmtpUrl {
    /// The server's host name (also the name its certificate must carry).
    pub fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }

    /// The port: as given, else 465 for implicit TLS and 587 for STARTTLS.
    pub fn port(&self) -> u16 {
        self.url.port().unwrap_or(if self.implicit_tls { 465 } else { 587 })
    }

    /// User name and password for SMTP AUTH, percent-decoded. The password: never log it.
    pub fn credentials(&self) -> Option<(String, String)> {
        if self.url.username().is_empty() {
            return None;
        }
        let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
        Some((decode(self.url.username()), decode(self.url.password().unwrap_or_default())))
    }
}

impl DatabaseUrl {
    /// The URL to hand to the driver. Contains the password: never log it.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }
}

impl RedisUrl {
    /// The URL to hand to the client. Contains the password: never log it.
    pub fn expose(&self) -> &str {
        self.0.as_str()
    }
}

impl TryFrom<String> for DatabaseUrl {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, String> {
        let url = Url::parse(&raw).map_err(|e| format!("is not a valid URL ({e})"))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(format!(
                "scheme `{}` is not supported: use postgres://, or leave the key unset for SQLite in the data directory",
                url.scheme()
            ));
        }
        if url.path().trim_start_matches('/').is_empty() {
            return Err("names no database (postgres://USER@HOST:PORT/DATABASE)".into());
        }
        let sslmode = url.query_pairs().find(|(k, _)| k == "sslmode").map(|(_, v)| v.into_owned());
        let tls_required = matches!(sslmode.as_deref(), Some("require" | "verify-ca" | "verify-full"));
        if !is_local(&url) && !tls_required {
            return Err("points at another machine without TLS: add ?sslmode=verify-full (or require)".into());
        }
        Ok(Self(url))
    }
}

impl TryFrom<String> for RedisUrl {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, String> {
        let url = Url::parse(&raw).map_err(|e| format!("is not a valid URL ({e})"))?;
        match url.scheme() {
            "rediss" | "redis+unix" | "unix" => Ok(Self(url)),
            "redis" if is_local(&url) => Ok(Self(url)),
            "redis" => Err("points at another machine without TLS: use rediss://".into()),
            other => Err(format!("scheme `{other}` is not supported: use rediss:// (or redis:// on this machine)")),
        }
    }
}

impl TryFrom<String> for SmtpUrl {
    type Error = String;

    fn try_from(raw: String) -> Result<Self, String> {
        const USE: &str = "use smtps://HOST:465 (implicit TLS) or smtp://HOST:587?tls=required (STARTTLS)";
        let url = Url::parse(&raw).map_err(|e| format!("is not a valid URL ({e})"))?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("names no host: {USE}"));
        }
        let mut tls = None;
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "tls" => tls = Some(value.into_owned()),
                other => return Err(format!("has an unknown parameter `{other}`: {USE}")),
            }
        }
        let implicit_tls = match (url.scheme(), tls.as_deref()) {
            ("smtps", None | Some("wrapper")) => true,
            ("smtp", Some("required")) => false,
            ("smtp", None) => return Err(format!("is plain SMTP, which would send reminders unencrypted: {USE}")),
            ("smtp" | "smtps", Some(_)) => {
                return Err(format!("allows SMTP without TLS (only tls=required is accepted): {USE}"));
            }
            (other, _) => return Err(format!("scheme `{other}` is not supported: {USE}")),
        };
        Ok(Self { url, implicit_tls })
    }
}

/// Loopback hosts (and Unix sockets, which have no host) never leave the machine. For
/// non-special schemes such as `postgres:` the url crate leaves IP hosts as text, so they are
/// parsed here.
fn is_local(url: &Url) -> bool {
    match url.host() {
        None => true,
        Some(Host::Domain(d)) => {
            d.eq_ignore_ascii_case("localhost")
                || d.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
        }
        Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
    }
}

/// Shows the URL with its password replaced, so settings can be logged whole.
fn redacted(url: &Url, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let mut shown = url.clone();
    if shown.password().is_some() {
        // Only fails for URLs that cannot have a password, which this one just had.
        let _ = shown.set_password(Some("REDACTED"));
    }
    write!(f, "{:?}", shown.as_str())
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        redacted(&self.0, f)
    }
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        redacted(&self.url, f)
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        redacted(&self.0, f)
    }
}

/// Deserializes an optional URL where an empty string (an unset-but-present environment
/// variable) means "not configured". The error never contains the URL itself.
pub(super) fn optional<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<String, Error = String>,
{
    let raw = Option::<String>::deserialize(deserializer)?;
    match raw.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => T::try_from(s).map(Some).map_err(serde::de::Error::custom),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn db(url: &str) -> Result<DatabaseUrl, String> {
        DatabaseUrl::try_from(url.to_owned())
    }

    #[test]
    fn local_postgres_without_tls_is_accepted() {
        assert!(db("postgres://postgres@127.0.0.1:5432/confidant").is_ok());
        assert!(db("postgresql://postgres@localhost/confidant").is_ok());
    }

    #[test]
    fn remote_postgres_must_require_tls() {
        let refused = db("postgres://app:pw@db.example.org/confidant").unwrap_err();
        assert!(refused.contains("sslmode"), "{refused}");
        assert!(db("postgres://app:pw@db.example.org/confidant?sslmode=verify-full").is_ok());
    }

    #[test]
    fn other_schemes_and_missing_database_are_refused() {
        assert!(db("mysql://root@localhost/confidant").unwrap_err().contains("mysql"));
        assert!(db("postgres://postgres@localhost").unwrap_err().contains("database"));
    }

    #[test]
    fn rejections_never_echo_the_password() {
        for bad in ["postgres://u:hunter2hunter2@db.example.org/x", "mysql://u:hunter2hunter2@h/x"] {
            assert!(!db(bad).unwrap_err().contains("hunter2"));
        }
        let refused = RedisUrl::try_from("redis://:hunter2hunter2@cache.example.org".to_owned());
        assert!(!refused.unwrap_err().contains("hunter2"));
    }

    #[test]
    fn debug_redacts_passwords() {
        let url = db("postgres://app:hunter2hunter2@127.0.0.1/confidant").unwrap();
        let shown = format!("{url:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("REDACTED"));
    }

    #[test]
    fn smtp_needs_implicit_tls_or_required_starttls() {
        let smtp = |u: &str| SmtpUrl::try_from(u.to_owned());
        let implicit = smtp("smtps://mailer:hunter2hunter2@mail.example.org").unwrap();
        assert!(implicit.implicit_tls && implicit.port() == 465);
        assert_eq!(implicit.credentials().unwrap().0, "mailer");
        let starttls = smtp("smtp://mail.example.org?tls=required").unwrap();
        assert!(!starttls.implicit_tls && starttls.port() == 587);
        for refused in [
            "smtp://mail.example.org",
            "smtp://127.0.0.1:25",
            "smtp://mail.example.org?tls=opportunistic",
            "smtp://mail.example.org?tls=none",
            "http://mail.example.org",
            "smtps://u:hunter2hunter2@mail.example.org?auth=plain",
        ] {
            let why = smtp(refused).unwrap_err();
            assert!(why.contains("tls=required") && !why.contains("hunter2"), "{refused}: {why}");
        }
        assert!(!format!("{implicit:?}").contains("hunter2"));
    }

    #[test]
    fn plain_redis_only_on_this_machine() {
        assert!(RedisUrl::try_from("redis://127.0.0.1:6379".to_owned()).is_ok());
        assert!(RedisUrl::try_from("redis://cache.example.org".to_owned()).is_err());
        assert!(RedisUrl::try_from("rediss://cache.example.org".to_owned()).is_ok());
    }
}
