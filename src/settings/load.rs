//! Layering and checking of the configuration sources. Errors name the key, where the value came
//! from and what is wrong with it, and never echo a secret value.

use std::path::{Path, PathBuf};

use figment::providers::{Format, Serialized, Toml};
use figment::value::{Dict, Map};
use figment::{Figment, Metadata, Profile, Provider};
use serde::Deserialize;

use super::Settings;

/// The embedded defaults, compiled in so a bare `confidant serve` needs no files.
pub const DEFAULTS: &str = include_str!("../../config/default.toml");

/// Prefix of every environment variable Confidant reads.
const ENV_PREFIX: &str = "CONFIDANT_";

/// Settings that may hold a password, so may also be given as `CONFIDANT_<KEY>_FILE` naming a
/// file that holds the value (for container secrets), and whose values are never echoed.
const SECRET_KEYS: &[&str] = &["database_url", "audit_database_url", "redis_url", "smtp_url", "master_key"];

/// Short environment names kept for operators' convenience, mapped to their nested keys.
const ENV_ALIASES: &[(&str, &str)] = &[("tls_cert", "tls.cert"), ("tls_key", "tls.key")];

/// Environment variables with the prefix that are not settings (read by the CLI itself).
const ENV_NOT_SETTINGS: &[&str] = &["config"];

/// Configuration that cannot be used. Start-up stops with exit code 2 and this message.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key has a value of the wrong type or format, or is unknown.
    #[error("invalid configuration: {problems}")]
    Invalid {
        /// One line per problem: key, source and what is wrong.
        problems: String,
    },
    /// A file named by `--config` or a `*_FILE` variable cannot be read.
    #[error("invalid configuration: {what}: cannot read {}: {source}", path.display())]
    Unreadable {
        /// Which setting or option named the file.
        what: String,
        /// The file.
        path: PathBuf,
        /// Why it cannot be read.
        source: std::io::Error,
    },
}

/// Loads settings from the process environment and the optional `--config` file.
pub fn load(config_file: Option<&Path>) -> Result<Settings, ConfigError> {
    load_from(config_file, std::env::vars())
}

/// Loads settings from the given environment instead of the process's, so tests need not touch
/// global state. Later sources win: defaults, then the file, then the environment.
pub fn load_from(
    config_file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Settings, ConfigError> {
    let settings: Settings = layered(config_file, env)?.extract().map_err(describe)?;
    check(&settings)?;
    Ok(settings)
}

/// Where the audit store is, read from the same sources even when the rest of the
/// configuration is invalid, so that a refused start can still be audited. `None` when these
/// two keys are themselves unusable.
pub fn audit_store_hint(config_file: Option<&Path>) -> Option<AuditStoreHint> {
    layered(config_file, std::env::vars()).ok()?.extract().ok()
}

/// The two settings that locate the audit store.
#[derive(Debug, Clone, Deserialize)]
pub struct AuditStoreHint {
    /// The data directory (SQLite audit store, node id).
    pub data_dir: PathBuf,
    /// The PostgreSQL audit store, if configured.
    #[serde(default, deserialize_with = "super::urls::optional")]
    pub audit_database_url: Option<super::DatabaseUrl>,
}

/// The configuration sources, later ones winning: defaults, the file, the environment.
fn layered(
    config_file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Figment, ConfigError> {
    let mut figment = Figment::from(Toml::string(DEFAULTS));
    if let Some(path) = config_file {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Unreadable {
            what: "--config".into(),
            path: path.to_owned(),
            source,
        })?;
        figment = figment.merge(Named(format!("config file {}", path.display()), Toml::string(&text)));
    }

    let env: Vec<(String, String)> = env.into_iter().filter(|(k, _)| k.starts_with(ENV_PREFIX)).collect();
    for (name, value) in &env {
        let Some(key) = settings_key(name) else { continue };
        // Parsed the way figment's own `Env` provider does: "8443" becomes a number, "1.3" a float.
        let value: figment::value::Value = value.parse().unwrap_or_else(|never| match never {});
        figment = figment.merge(Named(format!("environment variable {name}"), Serialized::default(&key, value)));
    }
    for (name, path) in &env {
        let Some(key) = secret_file_key(name) else { continue };
        let path = PathBuf::from(path);
        let value = std::fs::read_to_string(&path).map_err(|source| ConfigError::Unreadable {
            what: name.clone(),
            path,
            source,
        })?;
        figment = figment.merge(Named(format!("file named by {name}"), Serialized::default(key, value.trim())));
    }
    Ok(figment)
}

/// A provider under the name its errors should cite ("environment variable CONFIDANT_LISTEN").
struct Named<P>(String, P);

impl<P: Provider> Provider for Named<P> {
    fn metadata(&self) -> Metadata {
        Metadata::named(self.0.clone())
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        self.1.data()
    }
}

/// `CONFIDANT_HTTP__MAX_BODY_BYTES` -> `http.max_body_bytes`; `None` for variables that are not
/// settings (`CONFIDANT_<SECRET>_FILE`, `CONFIDANT_CONFIG`). Settings that are paths ending in
/// `_file` (`CONFIDANT_KEYS__MASTER_KEY_FILE`) are settings like any other.
fn settings_key(env_name: &str) -> Option<String> {
    let key = env_name.strip_prefix(ENV_PREFIX)?.to_ascii_lowercase();
    if secret_file_key(env_name).is_some() || ENV_NOT_SETTINGS.contains(&key.as_str()) {
        return None;
    }
    let key =
        ENV_ALIASES.iter().find(|(short, _)| *short == key).map_or(key.replace("__", "."), |(_, k)| (*k).to_owned());
    Some(key)
}

/// `CONFIDANT_DATABASE_URL_FILE` -> `database_url`, for secret keys only.
fn secret_file_key(env_name: &str) -> Option<&'static str> {
    let key = env_name.strip_prefix(ENV_PREFIX)?.strip_suffix("_FILE")?.to_ascii_lowercase();
    SECRET_KEYS.iter().copied().find(|k| *k == key)
}

/// Turns figment's errors into one line per problem: `key` (source): what is wrong.
fn describe(errors: figment::Error) -> ConfigError {
    let problems: Vec<String> = errors
        .into_iter()
        .map(|e| {
            let key = e.path.join(".");
            let source = e.metadata.as_ref().map(|m| m.name.to_string());
            let secret = SECRET_KEYS.contains(&key.as_str());
            let what = match &e.kind {
                figment::error::Kind::Message(m) => m.clone(),
                figment::error::Kind::UnknownField(field, _) => format!("unknown key `{field}`"),
                _ if secret => "has the wrong type".into(),
                kind => kind.to_string(),
            };
            match (key.is_empty(), source) {
                (false, Some(source)) => format!("`{key}` (from {source}) {what}"),
                (false, None) => format!("`{key}` {what}"),
                (true, Some(source)) => format!("{source}: {what}"),
                (true, None) => what,
            }
        })
        .collect();
    ConfigError::Invalid { problems: problems.join("; ") }
}

/// Rules that span several keys.
fn check(settings: &Settings) -> Result<(), ConfigError> {
    let invalid = |problems: &str| Err(ConfigError::Invalid { problems: problems.into() });
    super::tls::check(&settings.tls).map_err(|problems| ConfigError::Invalid { problems })?;
    if settings.http.max_body_bytes == 0 {
        return invalid("`http.max_body_bytes` must be greater than 0");
    }
    // One attachment is one row of the main store (a PostgreSQL `bytea` holds up to 1 GiB).
    if !(1..=256 * 1024 * 1024).contains(&settings.messaging.attachment_max_bytes) {
        return invalid("`messaging.attachment_max_bytes` must be between 1 and 268435456 (256 MiB)");
    }
    if settings.audit.checkpoint_every_entries == 0 || settings.audit.checkpoint_every_secs == 0 {
        return invalid("`audit.checkpoint_every_entries` and `audit.checkpoint_every_secs` must be greater than 0");
    }
    if !(3600..=31 * 86_400).contains(&settings.audit.head_email_every_secs) {
        return invalid("`audit.head_email_every_secs` must be between 3600 (an hour) and 2678400 (31 days)");
    }
    if settings.audit.retention_years < 6 {
        return invalid("`audit.retention_years` must be at least 6 (HIPAA, 45 CFR 164.316(b)(2))");
    }
    if let Some(bad) = settings.audit.trusted_keys.iter().find(|k| super::public_key(k).is_none()) {
        let shown: String = bad.chars().take(80).collect();
        return Err(ConfigError::Invalid {
            problems: format!(
                "`audit.trusted_keys` holds `{shown}`, which is not an Ed25519 public key (64 hex digits)"
            ),
        });
    }
    if settings.database.max_connections == 0 {
        return invalid("`database.max_connections` must be greater than 0");
    }
    if settings.master_key.is_some() && settings.keys.master_key_file.is_some() {
        return invalid("both `master_key` and `keys.master_key_file` are set: set one");
    }
    let keys = &settings.keys;
    if keys.reencrypt_batch == 0 || keys.refresh_secs == 0 {
        return invalid("`keys.reencrypt_batch` and `keys.refresh_secs` must be greater than 0");
    }
    if keys.retire_grace_secs < 2 * keys.refresh_secs {
        return invalid("`keys.retire_grace_secs` must be at least twice `keys.refresh_secs`");
    }
    let identity = &settings.identity;
    if identity.account_cap_failures > 100 || identity.account_cap_failures <= identity.account_free_failures {
        return invalid(
            "`identity.account_cap_failures` must be more than `identity.account_free_failures` and at most 100 (NIST SP 800-63B 5.2.2)",
        );
    }
    let lifetimes = [
        identity.session_idle_secs,
        identity.session_absolute_secs,
        identity.access_token_secs,
        identity.authorization_code_secs,
        identity.sign_in_flow_secs,
        identity.invitation_secs,
        identity.break_glass_secs,
        identity.lock_base_secs,
        identity.failure_memory_secs,
    ];
    if lifetimes.contains(&0) || identity.password_hashing_concurrency == 0 {
        return invalid("`identity` lifetimes, lock_base_secs and password_hashing_concurrency must be greater than 0");
    }
    if identity.session_idle_secs > identity.session_absolute_secs {
        return invalid("`identity.session_idle_secs` must not exceed `identity.session_absolute_secs`");
    }
    if identity.lock_max_secs < identity.lock_base_secs {
        return invalid("`identity.lock_max_secs` must be at least `identity.lock_base_secs`");
    }
    if identity.authorization_code_secs > 600 {
        return invalid("`identity.authorization_code_secs` must be at most 600 (RFC 6749 section 4.1.2)");
    }
    let ws = &settings.ws;
    if ws.auth_timeout_secs == 0 || ws.heartbeat_interval_secs == 0 || ws.max_unauthenticated_per_address == 0 {
        return invalid(
            "`ws.auth_timeout_secs`, `ws.heartbeat_interval_secs` and `ws.max_unauthenticated_per_address` must be greater than 0",
        );
    }
    if ws.heartbeat_timeout_secs <= ws.heartbeat_interval_secs {
        return invalid("`ws.heartbeat_timeout_secs` must be longer than `ws.heartbeat_interval_secs`");
    }
    if ws.heartbeat_timeout_secs + ws.heartbeat_interval_secs > 60 {
        return invalid(
            "`ws.heartbeat_interval_secs` + `ws.heartbeat_timeout_secs` (how long a dead peer can linger) must be at most 60",
        );
    }
    check_reminders(&settings.reminders).map_err(|problems| ConfigError::Invalid { problems })?;
    check_alerts(&settings.alerts).map_err(|problems| ConfigError::Invalid { problems })?;
    check_backup(&settings.backup).map_err(|problems| ConfigError::Invalid { problems })?;
    let client_ok = |c: &crate::settings::OAuthClient| {
        !c.id.is_empty() && !c.redirect_uris.is_empty() && c.redirect_uris.iter().all(|u| url::Url::parse(u).is_ok())
    };
    if !identity.clients.iter().all(client_ok) {
        return invalid("every `identity.clients` entry needs an id and absolute redirect_uris");
    }
    Ok(())
}

/// The reminder settings: a usable sender, a portal link that can carry no identifier, and
/// unencrypted templates (staff notices' too) that cannot name PHI.
fn check_reminders(r: &crate::settings::ReminderSettings) -> Result<(), String> {
    use super::template::{ENCRYPTED_PLACEHOLDERS, Template, UNENCRYPTED_PLACEHOLDERS};
    if r.from.parse::<lettre::message::Mailbox>().is_err() {
        return Err("`reminders.from` must be an email address, optionally as `Name <address>`".into());
    }
    let portal = url::Url::parse(&r.portal_url).ok();
    if !portal.is_some_and(|u| u.scheme() == "https" && u.query().is_none() && u.fragment().is_none()) {
        return Err(
            "`reminders.portal_url` must be an https:// URL without query or fragment (no identifier may ride in it)"
                .into(),
        );
    }
    let one_line = |s: &str| !s.trim().is_empty() && !s.chars().any(char::is_control);
    if !one_line(&r.subject) || !one_line(&r.staff_notice_subject) || !one_line(&r.practice_name) {
        return Err(
            "`reminders.subject`, `reminders.staff_notice_subject` and `reminders.practice_name` must be one non-empty line"
                .into(),
        );
    }
    let templates = [
        ("reminders.subject", &r.subject, UNENCRYPTED_PLACEHOLDERS),
        ("reminders.template_upcoming", &r.template_upcoming, UNENCRYPTED_PLACEHOLDERS),
        ("reminders.template_cancelled", &r.template_cancelled, UNENCRYPTED_PLACEHOLDERS),
        ("reminders.encrypted_template_upcoming", &r.encrypted_template_upcoming, ENCRYPTED_PLACEHOLDERS),
        ("reminders.encrypted_template_cancelled", &r.encrypted_template_cancelled, ENCRYPTED_PLACEHOLDERS),
        ("reminders.staff_notice_subject", &r.staff_notice_subject, UNENCRYPTED_PLACEHOLDERS),
        ("reminders.staff_notice_template", &r.staff_notice_template, UNENCRYPTED_PLACEHOLDERS),
    ];
    for (key, text, allowed) in templates {
        Template::parse(text, allowed).map_err(|why| format!("`{key}` {why}"))?;
    }
    if r.lead_minutes.len() > 5 || r.lead_minutes.iter().any(|&m| m == 0 || m > 43_200) {
        return Err("`reminders.lead_minutes`: at most 5 lead times, each 1 to 43200 minutes".into());
    }
    if !(-1080..=1080).contains(&r.utc_offset_minutes) {
        return Err("`reminders.utc_offset_minutes` must be between -1080 and 1080".into());
    }
    let positive = [r.poll_interval_ms, r.lease_secs, r.retry_base_secs, r.smtp_timeout_secs];
    if positive.contains(&0) || r.batch == 0 || r.max_attempts == 0 || r.retry_max_secs < r.retry_base_secs {
        return Err("`reminders` intervals, batch and max_attempts must be greater than 0, and retry_max_secs at least retry_base_secs".into());
    }
    if r.lease_secs <= r.smtp_timeout_secs.saturating_mul(4) {
        return Err("`reminders.lease_secs` must be more than four times `reminders.smtp_timeout_secs` (a send must finish inside its lease)".into());
    }
    if !matches!(r.dkim_algorithm.as_str(), "rsa" | "ed25519") {
        return Err("`reminders.dkim_algorithm` must be \"rsa\" or \"ed25519\"".into());
    }
    if r.dkim_key_file.is_some() && r.dkim_selector.trim().is_empty() {
        return Err("`reminders.dkim_selector` is needed with `reminders.dkim_key_file`".into());
    }
    Ok(())
}

/// The backup settings: a schedule that can run, into a directory, encrypted to valid keys,
/// keeping something.
fn check_backup(b: &crate::settings::BackupSettings) -> Result<(), String> {
    use crate::settings::BackupSchedule;
    if crate::backup::Recipients::parse(&b.recipients).is_err() && !b.recipients.is_empty() {
        return Err("`backup.recipients` must be age public keys (age1...)".into());
    }
    if b.daily_minute().is_none() {
        return Err("`backup.daily_at` must be a time of day HH:MM (UTC)".into());
    }
    if b.interval_secs == 0 {
        return Err("`backup.interval_secs` must be greater than 0".into());
    }
    if b.schedule == BackupSchedule::Off {
        return Ok(());
    }
    if b.directory.as_ref().is_none_or(|d| d.as_os_str().is_empty()) {
        return Err("`backup.directory` is needed when `backup.schedule` is not off".into());
    }
    if b.recipients.is_empty() {
        return Err(
            "`backup.recipients` must name at least one age public key when `backup.schedule` is not off".into()
        );
    }
    if b.keep_daily == 0 && b.keep_weekly == 0 && b.keep_monthly == 0 {
        return Err("`backup.keep_daily`, `backup.keep_weekly` and `backup.keep_monthly` cannot all be 0".into());
    }
    Ok(())
}

/// The escalation settings: emails that can name accounts, and timings that can run.
fn check_alerts(a: &crate::settings::AlertSettings) -> Result<(), String> {
    let mut emails = a.on_call.iter().chain(a.clinician_hours.iter().map(|c| &c.email));
    if let Some(position) = emails.position(|e| crate::identity::Email::parse(e).is_none()) {
        return Err(format!(
            "`alerts.on_call` and `alerts.clinician_hours` need sign-in emails; entry {} is not one",
            position + 1
        ));
    }
    if a.poll_interval_ms == 0 || a.max_escalations == 0 || a.repeat_after_secs == 0 {
        return Err(
            "`alerts.poll_interval_ms`, `alerts.repeat_after_secs` and `alerts.max_escalations` must be greater than 0"
                .into(),
        );
    }
    if !(-1080..=1080).contains(&a.utc_offset_minutes) {
        return Err("`alerts.utc_offset_minutes` must be between -1080 and 1080".into());
    }
    if !(60..=604_800).contains(&a.sign_in_attack_window_secs) {
        return Err("`alerts.sign_in_attack_window_secs` must be between 60 (a minute) and 604800 (a week)".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{LogFormat, TlsVersion};

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn problems(pairs: &[(&str, &str)]) -> String {
        load_from(None, env(pairs)).unwrap_err().to_string()
    }

    #[test]
    fn embedded_defaults_alone_give_a_runnable_single_node() {
        let s = load_from(None, env(&[])).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8443");
        assert_eq!(s.data_dir, PathBuf::from("./data"));
        assert!(s.database_url.is_none() && s.audit_database_url.is_none() && s.redis_url.is_none());
        assert!(s.tls.cert.is_none() && s.tls.key.is_none());
        assert_eq!(s.tls.min_version, TlsVersion::Tls13);
        assert_eq!(s.log.format, LogFormat::Text);
    }

    #[test]
    fn environment_overrides_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.toml");
        std::fs::write(&file, "listen = \"127.0.0.1:9000\"\ndata_dir = \"/srv/from-file\"\n[http]\nmax_body_bytes = 10\nhsts_max_age_secs = 1\nshutdown_timeout_secs = 1\nreadiness_timeout_ms = 1\n").unwrap();

        let s = load_from(
            Some(&file),
            env(&[("CONFIDANT_DATA_DIR", "/srv/from-env"), ("CONFIDANT_HTTP__MAX_BODY_BYTES", "2048")]),
        )
        .unwrap();

        assert_eq!(s.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(s.data_dir, PathBuf::from("/srv/from-env"));
        assert_eq!(s.http.max_body_bytes, 2048);
    }

    #[test]
    fn short_tls_names_and_numeric_min_version_are_understood() {
        let s = load_from(
            None,
            env(&[
                ("CONFIDANT_TLS_CERT", "/c.pem"),
                ("CONFIDANT_TLS_KEY", "/k.pem"),
                ("CONFIDANT_TLS__MIN_VERSION", "1.2"),
            ]),
        )
        .unwrap();
        assert_eq!(s.tls.cert, Some(PathBuf::from("/c.pem")));
        assert_eq!(s.tls.min_version, TlsVersion::Tls12);
    }

    #[test]
    fn a_bad_value_names_the_key_and_its_source() {
        let message = problems(&[("CONFIDANT_LISTEN", "not-an-address")]);
        assert!(message.contains("`listen`"), "{message}");
        assert!(message.contains("CONFIDANT_LISTEN"), "{message}");
    }

    #[test]
    fn tls_older_than_1_2_cannot_be_configured() {
        let message = problems(&[("CONFIDANT_TLS__MIN_VERSION", "1.1")]);
        assert!(message.contains("`tls.min_version`"), "{message}");
    }

    #[test]
    fn an_unknown_key_is_refused_rather_than_ignored() {
        let message = problems(&[("CONFIDANT_LISTNE", "127.0.0.1:1")]);
        assert!(message.contains("listne"), "{message}");
    }

    #[test]
    fn a_certificate_without_its_key_is_refused() {
        let message = problems(&[("CONFIDANT_TLS_CERT", "/c.pem")]);
        assert!(message.contains("tls.key"), "{message}");
    }

    #[test]
    fn acme_is_configured_from_the_environment_with_lets_encrypt_by_default() {
        let s = load_from(
            None,
            env(&[
                ("CONFIDANT_TLS__ACME__DOMAINS", "[\"Portal.Example.org\", \"www.example.org\"]"),
                ("CONFIDANT_TLS__ACME__CONTACT", "mailto:it@example.org"),
            ]),
        )
        .unwrap();
        let acme = s.tls.acme.as_ref().unwrap();
        let domains: Vec<&str> = acme.domains.iter().map(|d| d.as_str()).collect();
        assert_eq!(domains, ["portal.example.org", "www.example.org"]);
        assert_eq!(acme.directory_url.as_str(), crate::settings::LETS_ENCRYPT_PRODUCTION);
        assert_eq!(s.acme_cache_dir(), PathBuf::from("./data/acme"));
    }

    #[test]
    fn acme_settings_that_cannot_work_are_refused_naming_the_key() {
        let contact = ("CONFIDANT_TLS__ACME__CONTACT", "mailto:it@example.org");
        let wildcard = problems(&[("CONFIDANT_TLS__ACME__DOMAINS", "[\"*.example.org\"]"), contact]);
        assert!(wildcard.contains("tls.acme.domains") && wildcard.contains("wildcard"), "{wildcard}");
        let none = problems(&[("CONFIDANT_TLS__ACME__DOMAINS", "[]"), contact]);
        assert!(none.contains("`tls.acme.domains` must name at least one domain"), "{none}");
        let not_mail = problems(&[
            ("CONFIDANT_TLS__ACME__DOMAINS", "[\"portal.example.org\"]"),
            ("CONFIDANT_TLS__ACME__CONTACT", "it@example.org"),
        ]);
        assert!(not_mail.contains("tls.acme.contact") && not_mail.contains("mailto:"), "{not_mail}");
        let plain = problems(&[
            ("CONFIDANT_TLS__ACME__DOMAINS", "[\"portal.example.org\"]"),
            contact,
            ("CONFIDANT_TLS__ACME__DIRECTORY_URL", "http://acme.example.org/dir"),
        ]);
        assert!(plain.contains("tls.acme.directory_url"), "{plain}");
        let both = problems(&[
            ("CONFIDANT_TLS__ACME__DOMAINS", "[\"portal.example.org\"]"),
            contact,
            ("CONFIDANT_TLS_CERT", "/c.pem"),
            ("CONFIDANT_TLS_KEY", "/k.pem"),
        ]);
        assert!(both.contains("`tls.acme`") && both.contains("`tls.cert`"), "{both}");
    }

    #[test]
    fn secrets_can_come_from_files_and_are_never_echoed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("db-url");
        std::fs::write(&file, "mysql://app:hunter2hunter2@db.example.org/x\n").unwrap();

        let message = problems(&[("CONFIDANT_DATABASE_URL_FILE", file.to_str().unwrap())]);

        assert!(message.contains("`database_url`"), "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn an_empty_url_means_not_configured() {
        let s = load_from(None, env(&[("CONFIDANT_DATABASE_URL", ""), ("CONFIDANT_REDIS_URL", " ")])).unwrap();
        assert!(s.database_url.is_none() && s.redis_url.is_none());
    }

    #[test]
    fn the_production_example_is_complete_and_valid() {
        // Parsed alone, without the defaults underneath: every key must be present in the example,
        // and none may be stale (unknown keys are refused).
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/production.example.toml");
        let s: Settings = Figment::from(Toml::file_exact(&example)).extract().unwrap();
        check(&s).unwrap();
        assert!(s.database_url.is_some() && s.audit_database_url.is_some() && s.redis_url.is_some());
        assert!(s.tls.cert.is_some());
        assert_eq!(s.log.format, LogFormat::Json);
    }

    #[test]
    fn a_backup_schedule_needs_a_directory_recipients_and_a_time_of_day() {
        let key =
            ("CONFIDANT_BACKUP__RECIPIENTS", "[\"age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\"]");
        let message = problems(&[("CONFIDANT_BACKUP__SCHEDULE", "daily"), key]);
        assert!(message.contains("`backup.directory`"), "{message}");
        let message = problems(&[("CONFIDANT_BACKUP__SCHEDULE", "interval"), ("CONFIDANT_BACKUP__DIRECTORY", "/b")]);
        assert!(message.contains("`backup.recipients`"), "{message}");
        let message = problems(&[("CONFIDANT_BACKUP__DAILY_AT", "25:00")]);
        assert!(message.contains("`backup.daily_at`"), "{message}");
        let s = load_from(
            None,
            env(&[("CONFIDANT_BACKUP__SCHEDULE", "daily"), ("CONFIDANT_BACKUP__DIRECTORY", "/b"), key]),
        );
        assert_eq!(s.unwrap().backup.daily_minute(), Some(150));
    }

    #[test]
    fn a_clear_reminder_cannot_be_configured_to_carry_phi_or_an_identifying_link() {
        let message = problems(&[("CONFIDANT_REMINDERS__TEMPLATE_UPCOMING", "See you at {starts_at}")]);
        assert!(message.contains("`reminders.template_upcoming`") && message.contains("starts_at"), "{message}");
        let message = problems(&[("CONFIDANT_REMINDERS__PORTAL_URL", "https://portal.example.org/?patient=42")]);
        assert!(message.contains("`reminders.portal_url`"), "{message}");
        let s = load_from(None, env(&[("CONFIDANT_REMINDERS__ENCRYPTED_TEMPLATE_UPCOMING", "At {starts_at}")]));
        assert!(s.is_ok(), "an encrypted template may name the details");
    }

    #[test]
    fn a_staff_notice_can_name_only_the_practice_and_the_portal() {
        let message = problems(&[("CONFIDANT_REMINDERS__STAFF_NOTICE_TEMPLATE", "About {clinician}: {portal_url}")]);
        assert!(message.contains("`reminders.staff_notice_template`") && message.contains("clinician"), "{message}");
        let message = problems(&[("CONFIDANT_REMINDERS__STAFF_NOTICE_SUBJECT", "Urgent: {starts_at}")]);
        assert!(message.contains("`reminders.staff_notice_subject`"), "{message}");
        let message = problems(&[("CONFIDANT_REMINDERS__STAFF_NOTICE_SUBJECT", "Urgent\nBcc: x@example.org")]);
        assert!(message.contains("`reminders.staff_notice_subject`"), "{message}");
        let s = load_from(None, env(&[("CONFIDANT_REMINDERS__STAFF_NOTICE_TEMPLATE", "{practice}: {portal_url}")]));
        assert!(s.is_ok(), "the practice and the portal link may be named");
    }

    #[test]
    fn the_smtp_url_is_a_secret_that_must_require_tls() {
        let message = problems(&[("CONFIDANT_SMTP_URL", "smtp://u:hunter2hunter2@mail.example.org")]);
        assert!(message.contains("`smtp_url`") && !message.contains("hunter2"), "{message}");
    }

    #[test]
    fn path_settings_ending_in_file_are_settings_not_secret_files() {
        let s = load_from(
            None,
            env(&[
                ("CONFIDANT_KEYS__MASTER_KEY_FILE", "/etc/confidant/master.key"),
                ("CONFIDANT_AUDIT__SIGNING_KEY_FILE", "/etc/confidant/audit.key"),
            ]),
        )
        .unwrap();
        assert_eq!(s.keys.master_key_file, Some(PathBuf::from("/etc/confidant/master.key")));
        assert_eq!(s.audit.signing_key_file, Some(PathBuf::from("/etc/confidant/audit.key")));
    }

    #[test]
    fn the_master_key_comes_from_a_file_variable_and_is_never_echoed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("master");
        std::fs::write(&file, "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=\n").unwrap();
        let s = load_from(None, env(&[("CONFIDANT_MASTER_KEY_FILE", file.to_str().unwrap())])).unwrap();
        assert_eq!(s.master_key.unwrap().expose(), "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=");

        let both = problems(&[
            ("CONFIDANT_MASTER_KEY", "c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI="),
            ("CONFIDANT_KEYS__MASTER_KEY_FILE", "/k"),
        ]);
        assert!(both.contains("set one") && !both.contains("c2VjcmV0"), "{both}");
    }
}
