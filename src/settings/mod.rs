//! Typed configuration. One [`Settings`] value is built at start-up from the embedded defaults
//! (`config/default.toml`), an optional `--config` file and `CONFIDANT_*` environment variables
//! (see [`load`]), checked once, and passed down; nothing reads the environment after that.

mod hours;
mod load;
mod paths;
mod secret;
mod template;
mod tls;
mod urls;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

pub use hours::WorkingHours;
pub use load::{AuditStoreHint, ConfigError, audit_store_hint, load, load_from};
pub use secret::Secret;
pub use template::{ENCRYPTED_PLACEHOLDERS, Template, UNENCRYPTED_PLACEHOLDERS};
pub use tls::{
    AcmeContact, AcmeDirectory, AcmeDomain, AcmeSettings, LETS_ENCRYPT_PRODUCTION, LETS_ENCRYPT_STAGING, TlsSettings,
    TlsVersion,
};
pub use urls::{DatabaseUrl, RedisUrl, SmtpUrl};

/// Every setting Confidant reads. Unknown keys are refused so a typo cannot silently fall back
/// to a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address of the HTTPS/WSS listener.
    pub listen: SocketAddr,
    /// SQLite files, node id and development certificate live here.
    pub data_dir: PathBuf,
    /// Main store; `None` means SQLite in `data_dir`.
    #[serde(default, deserialize_with = "urls::optional")]
    pub database_url: Option<DatabaseUrl>,
    /// Audit store; `None` means SQLite `audit.db` in `data_dir`.
    #[serde(default, deserialize_with = "urls::optional")]
    pub audit_database_url: Option<DatabaseUrl>,
    /// Cross-node fan-out; `None` means a single node with the in-process broker.
    #[serde(default, deserialize_with = "urls::optional")]
    pub redis_url: Option<RedisUrl>,
    /// The SMTP server reminders are sent through, TLS required; `None`: reminders are queued
    /// but nothing sends them.
    #[serde(default, deserialize_with = "urls::optional")]
    pub smtp_url: Option<SmtpUrl>,
    /// Connection pools.
    pub database: DatabaseSettings,
    /// The listener's certificate (configured, ACME or development) and protocol versions.
    pub tls: TlsSettings,
    /// HTTP limits and headers.
    pub http: HttpSettings,
    /// Log format and filter.
    pub log: LogSettings,
    /// Audit trail checkpoints.
    pub audit: AuditSettings,
    /// The master key (key-encryption key) of PHI field encryption, base64 of 32 bytes.
    /// Usually `CONFIDANT_MASTER_KEY` or `CONFIDANT_MASTER_KEY_FILE`; never in a committed file.
    #[serde(default)]
    pub master_key: Option<Secret>,
    /// Field encryption keys and their rotation.
    pub keys: KeySettings,
    /// Sign-in, sessions, second factors and brute-force limits.
    pub identity: IdentitySettings,
    /// WebSocket sessions.
    pub ws: WsSettings,
    /// Cross-node fan-out.
    pub hub: HubSettings,
    /// End-to-end encrypted messaging.
    pub messaging: MessagingSettings,
    /// Appointment reminders by email.
    pub reminders: ReminderSettings,
    /// Alert escalation: the on-call list, working hours, timings.
    pub alerts: AlertSettings,
    /// Clinical notes: open notes, late entries.
    pub notes: NoteSettings,
    /// Backups (docs/OPERATIONS.md, "Backups and restore").
    pub backup: BackupSettings,
}

/// Clinical notes (docs/OPERATIONS.md, "Clinical notes").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteSettings {
    /// Open notes: patients read their own signed progress notes (never drafts, never
    /// psychotherapy notes, never other kinds).
    pub open_notes: bool,
    /// A note signed, or an addendum written, more than this many hours after the date of
    /// service is marked as a late entry.
    pub late_entry_hours: u32,
}

/// Backups (docs/OPERATIONS.md, "Backups and restore").
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupSettings {
    /// The age public keys (`age1...`) every backup is encrypted to when `confidant backup
    /// create` names none. Their identities (private keys) never belong on the server.
    #[serde(default)]
    pub recipients: Vec<String>,
    /// Scheduled backups taken by the server: `off`, `daily` (at `daily_at`) or `interval`
    /// (every `interval_secs`). With several nodes, one takes each.
    pub schedule: BackupSchedule,
    /// The time of day (`HH:MM`, UTC) of the daily backup.
    pub daily_at: String,
    /// Seconds between two backups on the `interval` schedule.
    pub interval_secs: u64,
    /// The directory scheduled backups are written to (needed unless `schedule` is `off`):
    /// another disk or a mounted remote store, never beside the master key.
    #[serde(default)]
    pub directory: Option<PathBuf>,
    /// Retention: the newest backup of each of this many most recent days is kept...
    pub keep_daily: u32,
    /// ...and of each of this many most recent ISO weeks...
    pub keep_weekly: u32,
    /// ...and of each of this many most recent months; every other scheduled backup in the
    /// directory is deleted after a backup succeeds.
    pub keep_monthly: u32,
}

/// When the server takes backups by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackupSchedule {
    /// Never (backups are taken with `confidant backup create`).
    Off,
    /// Once a day at `backup.daily_at` (UTC).
    Daily,
    /// Every `backup.interval_secs`.
    Interval,
}

impl BackupSettings {
    /// `daily_at` as minutes after midnight UTC, if it is a valid `HH:MM`.
    pub fn daily_minute(&self) -> Option<u32> {
        let (hours, minutes) = self.daily_at.split_once(':')?;
        let all_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(hours) || !all_digits(minutes) {
            return None;
        }
        let (hours, minutes): (u32, u32) = (hours.parse().ok()?, minutes.parse().ok()?);
        (hours < 24 && minutes < 60).then_some(hours * 60 + minutes)
    }
}

/// Alert escalation (docs/OPERATIONS.md, "Alerts and escalation"). An urgent alert nobody
/// acknowledged goes to the on-call list, live and by a staff notice email that carries no PHI.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSettings {
    /// Sign-in emails of the owners and clinicians on call. Empty: the practice's owners.
    pub on_call: Vec<String>,
    /// Inside the clinician's working hours, an urgent alert escalates after this long (or at
    /// the end of the working hours, if sooner); outside them, at once.
    pub escalate_after_secs: u64,
    /// While nobody acknowledges it, the on-call list is told again this often...
    pub repeat_after_secs: u64,
    /// ...up to this many escalation steps in all.
    pub max_escalations: u32,
    /// How often each node looks for alerts due to escalate.
    pub poll_interval_ms: u64,
    /// Working hours are read at this offset from UTC, in minutes.
    pub utc_offset_minutes: i32,
    /// The practice's working hours, for clinicians without their own.
    pub working_hours: WorkingHours,
    /// Clinicians' own working hours, by sign-in email.
    #[serde(default)]
    pub clinician_hours: Vec<ClinicianHours>,
    /// Owners get one sign-in attack alert per pattern and source in each window this long
    /// (aligned on the epoch), however often the pattern recurs in it.
    pub sign_in_attack_window_secs: u64,
}

impl AlertSettings {
    /// [`Self::escalate_after_secs`] as milliseconds.
    pub fn escalate_after_ms(&self) -> i64 {
        i64::try_from(self.escalate_after_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }

    /// [`Self::repeat_after_secs`] as milliseconds.
    pub fn repeat_after_ms(&self) -> i64 {
        i64::try_from(self.repeat_after_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }

    /// [`Self::sign_in_attack_window_secs`] as milliseconds (at least one: checked at load).
    pub fn sign_in_attack_window_ms(&self) -> i64 {
        i64::try_from(self.sign_in_attack_window_secs.saturating_mul(1000)).unwrap_or(i64::MAX).max(1)
    }
}

/// One clinician's working hours.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClinicianHours {
    /// The clinician's sign-in email.
    pub email: String,
    /// Their hours.
    pub working_hours: WorkingHours,
}

/// End-to-end encrypted messaging (docs/MESSAGING.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessagingSettings {
    /// Ciphertext every member device has acknowledged is deleted once it is this old.
    pub retention_secs: u64,
    /// The largest attachment a device may upload, in bytes of the file (its ciphertext may be
    /// `confidant_protocol::attachments::CIPHERTEXT_OVERHEAD` bytes larger).
    pub attachment_max_bytes: usize,
}

/// Appointment reminders and staff notices (docs/OPERATIONS.md, "Reminder delivery"). Templates
/// are plain text with `{placeholders}`; values are inserted once (never re-expanded) with
/// control characters removed. A template that goes out unencrypted may only name `{practice}`
/// and `{portal_url}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReminderSettings {
    /// The sender, `Name <address>`; the address's domain also names the Message-IDs.
    pub from: String,
    /// The practice's name as reminders show it.
    pub practice_name: String,
    /// The portal link every reminder carries: `https://`, no query and no fragment, so no
    /// identifier can ride along.
    pub portal_url: String,
    /// Where appointments take place; only ever sent encrypted.
    pub location: String,
    /// Times in encrypted reminders are shown at this offset from UTC, in minutes.
    pub utc_offset_minutes: i32,
    /// Subject of every reminder (encrypted ones too: headers are never encrypted).
    pub subject: String,
    /// Body of an unencrypted reminder of an upcoming appointment.
    pub template_upcoming: String,
    /// Body of an unencrypted notice that an appointment changed or was cancelled.
    pub template_cancelled: String,
    /// Body of an OpenPGP-encrypted reminder; may also use `{starts_at}`, `{ends_at}`,
    /// `{clinician}` and `{location}`.
    pub encrypted_template_upcoming: String,
    /// Body of an OpenPGP-encrypted cancellation notice; same placeholders.
    pub encrypted_template_cancelled: String,
    /// Subject of a staff notice (an urgent item is waiting in Confidant, from alert escalation).
    pub staff_notice_subject: String,
    /// Body of a staff notice. Never encrypted, so like an unencrypted reminder it may only name
    /// `{practice}` and `{portal_url}`: it never says what is waiting or about whom.
    pub staff_notice_template: String,
    /// Default lead times (minutes before the start) for patients who set none.
    pub lead_minutes: Vec<u32>,
    /// How often each node looks for due reminders.
    pub poll_interval_ms: u64,
    /// At most this many reminders claimed per look.
    pub batch: u32,
    /// A claim is this node's for this long; after it, recovery decides (docs/OPERATIONS.md).
    pub lease_secs: u64,
    /// Attempts before a reminder is failed for good.
    pub max_attempts: u32,
    /// The first retry waits this long; each next one twice as long...
    pub retry_base_secs: u64,
    /// ...up to this.
    pub retry_max_secs: u64,
    /// Connect, TLS and each SMTP command time out after this long.
    pub smtp_timeout_secs: u64,
    /// A PEM file of extra CA certificates trusted for the SMTP server (a private CA); the
    /// public web roots are always trusted.
    #[serde(default, deserialize_with = "paths::optional_path")]
    pub smtp_ca_file: Option<PathBuf>,
    /// DKIM private key (RSA PKCS#1 PEM, or base64 of a 32-byte Ed25519 seed); unset: no DKIM.
    #[serde(default, deserialize_with = "paths::optional_path")]
    pub dkim_key_file: Option<PathBuf>,
    /// `rsa` or `ed25519`.
    pub dkim_algorithm: String,
    /// The DKIM selector (`selector._domainkey.domain` holds the public key).
    pub dkim_selector: String,
    /// The signing domain; empty: the sender's domain.
    pub dkim_domain: String,
}

impl ReminderSettings {
    /// [`Self::lease_secs`] as milliseconds.
    pub fn lease_ms(&self) -> i64 {
        i64::try_from(self.lease_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }
}

/// Cross-node fan-out (used when `redis_url` is set).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HubSettings {
    /// The Redis pub/sub channel every node of one deployment shares.
    pub redis_channel: String,
}

/// WebSocket sessions (docs/PROTOCOL.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WsSettings {
    /// Browser origins allowed to open a socket and to send state-changing requests with the
    /// portal's session cookie (the CSRF rule, `web/browser.rs`), exactly
    /// (`https://portal.example.org`). Empty: only the server's own origin (`https://` + the
    /// request's Host). A non-empty list replaces that default, so it names every origin the
    /// portal is reached by. Clients that send no Origin (native apps, the Rust client) are not
    /// browsers and are allowed.
    pub allowed_origins: Vec<String>,
    /// An unauthenticated socket is closed (4004) after this long.
    pub auth_timeout_secs: u64,
    /// At most this many unauthenticated sockets per source address; more get 429.
    pub max_unauthenticated_per_address: usize,
    /// Ping interval.
    pub heartbeat_interval_secs: u64,
    /// A peer that answers nothing for this long is dropped (4005).
    pub heartbeat_timeout_secs: u64,
}

/// Sign-in and session rules (docs/SECURITY.md, docs/API.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySettings {
    /// A session with no API request for this long is ended (HIPAA automatic logoff).
    pub session_idle_secs: u64,
    /// A session ends this long after sign-in, active or not.
    pub session_absolute_secs: u64,
    /// Lifetime of an access token; a refresh token lives as long as its session.
    pub access_token_secs: u64,
    /// Lifetime of an authorization code (RFC 6749 recommends at most 10 minutes).
    pub authorization_code_secs: u64,
    /// How long a sign-in may wait between the password and the second factor.
    pub sign_in_flow_secs: u64,
    /// Lifetime of an invitation.
    pub invitation_secs: u64,
    /// Lifetime of a break-glass grant.
    pub break_glass_secs: u64,
    /// Whether patients must use TOTP (`required`) or may (`offered`). Staff always must.
    pub patient_mfa: PatientMfa,
    /// Issuer shown in authenticator apps.
    pub totp_issuer: String,
    /// At most this many argon2id hashes run at once (each takes 19 MiB and ~35 ms of a core).
    pub password_hashing_concurrency: usize,
    /// Failed sign-ins for one account from one address (and failed second factors for one
    /// account) before delays start.
    pub account_free_failures: u32,
    /// Consecutive failed sign-ins for one account from all addresses before the account is
    /// locked for every address it has not signed in from lately (at most 100, NIST SP
    /// 800-63B 5.2.2).
    pub account_cap_failures: u32,
    /// An address an account signed in from successfully within this many days is not held by
    /// the account-wide lock.
    pub known_source_days: u64,
    /// Failed sign-ins per source address before delays start.
    pub address_free_failures: u32,
    /// The first delay; each further failure doubles it...
    pub lock_base_secs: u64,
    /// ...up to this temporary lock.
    pub lock_max_secs: u64,
    /// Failures are forgotten after this long without one.
    pub failure_memory_secs: u64,
    /// The OAuth 2.0 public clients allowed to sign in, with their exact redirect URIs.
    pub clients: Vec<OAuthClient>,
}

/// A registered OAuth 2.0 public client (no secret: PKCE protects its codes).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OAuthClient {
    /// `client_id`.
    pub id: String,
    /// Redirect URIs, compared exactly (RFC 9700 section 4.1.3).
    pub redirect_uris: Vec<String>,
}

/// Whether patients must enroll TOTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PatientMfa {
    /// Patients may enroll; once enrolled, sign-in asks for it.
    Offered,
    /// Patients reach their record only after enrolling, like staff.
    Required,
}

/// Where the master key is kept, and how re-encryption after a rotation paces itself.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySettings {
    /// A file holding the master key (base64 of 32 bytes, mode 0600), as an alternative to
    /// `master_key`. With neither, the embedded SQLite default generates `master.key` in
    /// `data_dir`; PostgreSQL refuses to start.
    #[serde(default, deserialize_with = "paths::optional_path")]
    pub master_key_file: Option<PathBuf>,
    /// Rows re-encrypted per transaction after a rotation.
    pub reencrypt_batch: u32,
    /// Pause between two re-encryption batches, so serving keeps priority.
    pub reencrypt_pause_ms: u64,
    /// How often each node reloads the key list (to pick up a rotation made elsewhere) and
    /// looks for values still under an older key.
    pub refresh_secs: u64,
    /// A key is only retired this long after it stopped being active, so that every node has
    /// reloaded the key list (and stopped sealing with it) first. At least `2 * refresh_secs`.
    pub retire_grace_secs: u64,
}

impl KeySettings {
    /// [`Self::refresh_secs`] as a duration.
    pub fn refresh(&self) -> Duration {
        Duration::from_secs(self.refresh_secs)
    }

    /// [`Self::reencrypt_pause_ms`] as a duration.
    pub fn reencrypt_pause(&self) -> Duration {
        Duration::from_millis(self.reencrypt_pause_ms)
    }
}

/// Where and how often the audit writer signs checkpoints of its chain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSettings {
    /// Ed25519 signing key (32-byte seed, hex). `None`: `audit-signing.key` in `data_dir`,
    /// generated on first run.
    #[serde(default, deserialize_with = "paths::optional_path")]
    pub signing_key_file: Option<PathBuf>,
    /// Directory of the append-only checkpoint files, kept apart from the audit database.
    /// `None`: `audit-checkpoints/` in `data_dir`.
    #[serde(default, deserialize_with = "paths::optional_path")]
    pub checkpoint_dir: Option<PathBuf>,
    /// A checkpoint after this many new entries...
    pub checkpoint_every_entries: u64,
    /// ...or after this many seconds with new entries, whichever comes first.
    pub checkpoint_every_secs: u64,
    /// Entries younger than this many years are never purged (at least 6, 45 CFR 164.316).
    pub retention_years: u16,
    /// Public keys (Ed25519, 64 hex digits) that verification trusts; when any is set, only
    /// these. Keep them in a configuration file outside the data directory: whoever can write
    /// the data directory must not be able to change what verification trusts.
    #[serde(default)]
    pub trusted_keys: Vec<String>,
    /// Directories on other storage that also receive every signed checkpoint (witnesses).
    #[serde(default)]
    pub witness_dirs: Vec<PathBuf>,
    /// Each node emails every owner its chains' newest signed heads once in each period this
    /// long (aligned on the epoch; at least an hour), through the reminder outbox.
    pub head_email_every_secs: u64,
}

impl Settings {
    /// The audit signing key file.
    pub fn audit_signing_key_file(&self) -> PathBuf {
        self.audit.signing_key_file.clone().unwrap_or_else(|| self.data_dir.join("audit-signing.key"))
    }

    /// The pinned audit keys (`audit.trusted_keys`, checked when the settings were loaded).
    pub fn pinned_audit_keys(&self) -> Vec<ed25519_dalek::VerifyingKey> {
        self.audit.trusted_keys.iter().filter_map(|k| public_key(k)).collect()
    }

    /// [`AuditSettings::head_email_every_secs`] as milliseconds (at least an hour: checked at
    /// load).
    pub fn audit_head_email_every_ms(&self) -> i64 {
        i64::try_from(self.audit.head_email_every_secs.saturating_mul(1000)).unwrap_or(i64::MAX).max(1)
    }

    /// The checkpoint directory.
    pub fn audit_checkpoint_dir(&self) -> PathBuf {
        self.audit.checkpoint_dir.clone().unwrap_or_else(|| self.data_dir.join("audit-checkpoints"))
    }

    /// Where ACME keeps its account key and certificates (`tls.acme.cache_dir`, or `acme/` in
    /// `data_dir`).
    pub fn acme_cache_dir(&self) -> PathBuf {
        self.tls.acme.as_ref().and_then(|a| a.cache_dir.clone()).unwrap_or_else(|| self.data_dir.join("acme"))
    }

    /// Where the embedded default keeps a generated master key.
    pub fn generated_master_key_file(&self) -> PathBuf {
        self.data_dir.join("master.key")
    }
}

/// An Ed25519 public key written as 64 hex digits (either case, surrounding space ignored).
/// The audit trail's own reader (`audit/trust.rs`) accepts the same form.
pub fn public_key(text: &str) -> Option<ed25519_dalek::VerifyingKey> {
    let text = text.trim();
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    ed25519_dalek::VerifyingKey::from_bytes(&bytes).ok()
}

/// Connection pool sizing, per pool.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// Upper bound of open connections.
    pub max_connections: u32,
    /// How long to wait for a free connection.
    pub acquire_timeout_secs: u64,
}

impl DatabaseSettings {
    /// [`Self::acquire_timeout_secs`] as a duration.
    pub fn acquire_timeout(&self) -> Duration {
        Duration::from_secs(self.acquire_timeout_secs)
    }
}

/// Request limits and response headers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// `Strict-Transport-Security` max-age.
    pub hsts_max_age_secs: u64,
    /// Grace period for in-flight work on SIGTERM.
    pub shutdown_timeout_secs: u64,
    /// Per-dependency budget of `GET /readyz`.
    pub readiness_timeout_ms: u64,
}

impl HttpSettings {
    /// [`Self::shutdown_timeout_secs`] as a duration.
    pub fn shutdown_timeout(&self) -> Duration {
        Duration::from_secs(self.shutdown_timeout_secs)
    }

    /// [`Self::readiness_timeout_ms`] as a duration.
    pub fn readiness_timeout(&self) -> Duration {
        Duration::from_millis(self.readiness_timeout_ms)
    }
}

/// How logs are written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// Human-readable or JSON lines.
    pub format: LogFormat,
    /// `tracing-subscriber` filter directives.
    pub filter: String,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable.
    Text,
    /// One JSON object per line.
    Json,
}
