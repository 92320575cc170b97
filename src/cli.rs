//! The command line: one binary, `confidant`, with a subcommand per job.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::audit::export::ExportFormat;

/// Confidant: end-to-end encrypted messaging, live schedules and intake forms for
/// mental-health practices.
#[derive(Debug, Parser)]
#[command(name = "confidant", version, about, long_about = None, after_help = CONFIG_HELP)]
pub struct Cli {
    /// TOML file overriding the embedded defaults (environment variables override both).
    #[arg(long, global = true, value_name = "FILE", env = "CONFIDANT_CONFIG")]
    pub config: Option<PathBuf>,

    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: apply pending migrations, then serve HTTPS and WSS until SIGTERM/SIGINT.
    ///
    /// With no configuration it runs as a single node on embedded defaults: SQLite files, a
    /// node id and a self-signed development certificate in ./data, listening on
    /// https://127.0.0.1:8443.
    Serve,
    /// Apply pending database migrations to the main and audit stores, then exit.
    ///
    /// `serve` does this at start-up too; run it on its own to migrate before rolling out new
    /// nodes. Safe to run repeatedly and from several nodes at once.
    Migrate,
    /// Work with the audit trail.
    Audit {
        /// What to do with it.
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Create accounts and invitations from the server's command line.
    User {
        /// What to do.
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Encrypted backups: take one while the server runs, verify one, restore one (see
    /// docs/OPERATIONS.md, "Backups and restore").
    Backup {
        /// What to do.
        #[command(subcommand)]
        command: BackupCommand,
    },
    /// Move the practice's stores (see docs/OPERATIONS.md, "Moving from SQLite to PostgreSQL").
    Store {
        /// What to do.
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Manage the keys that encrypt PHI at rest (see docs/SECURITY.md).
    Keys {
        /// What to do with them.
        #[command(subcommand)]
        command: KeysCommand,
    },
}

/// `confidant user ...`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an active staff account; the password is read from standard input (one line).
    ///
    /// Bootstraps the first practice owner: `confidant user create --role practice_owner
    /// --email owner@example.org`. The owner then invites everyone else. The account must
    /// enroll TOTP at first sign-in before it reaches any PHI. Audited.
    Create {
        /// practice_owner, clinician, front_desk or billing.
        #[arg(long)]
        role: String,
        /// The sign-in email.
        #[arg(long)]
        email: String,
        /// How they appear on screen and in reminders, e.g. "Dr. Ana Ruiz".
        #[arg(long)]
        name: Option<String>,
        /// Degrees or licences shown after the name, e.g. "PsyD".
        #[arg(long)]
        credentials: Option<String>,
    },
    /// Print a one-time invitation token (valid `identity.invitation_secs`) to deliver out of
    /// band; the invitee sets a password with it (POST /api/v1/invitations/accept). Audited.
    Invite {
        /// practice_owner, clinician, front_desk, billing or patient.
        #[arg(long)]
        role: String,
        /// The sign-in email.
        #[arg(long)]
        email: String,
        /// For --role patient: the patient record's id.
        #[arg(long)]
        patient: Option<uuid::Uuid>,
        /// Staff: how they appear on screen and in reminders, e.g. "Dr. Ana Ruiz".
        #[arg(long)]
        name: Option<String>,
        /// Staff: degrees or licences shown after the name, e.g. "PsyD".
        #[arg(long)]
        credentials: Option<String>,
    },
}

/// `confidant backup ...`
#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Write a consistent backup of the main store, the audit store and the audit checkpoint
    /// files, while the server runs, encrypted to age recipients. Audited.
    ///
    /// SQLite stores are copied with `VACUUM INTO`, PostgreSQL ones with `pg_dump` (custom
    /// format) in a snapshot shared with the row counts of the manifest. The master key is never
    /// in a backup; the manifest names its fingerprint. The standard `age` tool decrypts the
    /// file (`age -d -i KEY FILE | tar x`).
    Create {
        /// The backup file to write (replaced whole only once complete).
        #[arg(long, value_name = "FILE")]
        to: PathBuf,
        /// An age public key (age1...) to encrypt to; repeatable. Default: `backup.recipients`.
        #[arg(long = "recipient", value_name = "AGE1...")]
        recipients: Vec<String>,
    },
    /// Decrypt a backup to a private temporary directory and check it: every checksum, both
    /// databases against the manifest, the audit chains against the backup's checkpoint files,
    /// and, with the master key of the settings, every encrypted field. Audited.
    ///
    /// Prints what held and every fault; exits 1 on any fault.
    Verify {
        /// The backup file.
        file: PathBuf,
        /// An age identity file (as `age-keygen` writes) holding a recipient's private key.
        #[arg(long, value_name = "FILE")]
        identity: PathBuf,
        /// PostgreSQL backups only: an empty database to restore the main store's dump into.
        #[arg(long, value_name = "URL")]
        scratch_database: Option<String>,
        /// PostgreSQL backups only: an empty database to restore the audit store's dump into.
        #[arg(long, value_name = "URL")]
        scratch_audit_database: Option<String>,
    },
    /// Restore a backup into the stores and data directory of the settings, which must be
    /// empty (a restore never overwrites), onto the backend it was taken from. Audited.
    ///
    /// The restored stores are checked against the manifest; KeyPackages are discarded (devices
    /// upload fresh ones on their next attach). Start the server with the master key the
    /// restore names.
    Restore {
        /// The backup file.
        file: PathBuf,
        /// An age identity file holding a recipient's private key.
        #[arg(long, value_name = "FILE")]
        identity: PathBuf,
    },
}

/// `confidant store ...`
#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy the SQLite main and audit stores of the settings onto two empty PostgreSQL
    /// databases: every row and ciphertext as stored (nothing is decrypted), every audit chain
    /// in order; then check the copy's rows and chain heads against the source and verify its
    /// audit chains with the checkpoint files. Stop the server first. Audited.
    ///
    /// Then give the server `database_url`, `audit_database_url` and the same master key.
    Copy {
        /// The PostgreSQL database for the main store (empty).
        #[arg(long, value_name = "URL")]
        to: String,
        /// The PostgreSQL database for the audit store (empty; a separate database).
        #[arg(long, value_name = "URL")]
        audit_to: String,
    },
}

/// `confidant keys ...`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// List the data keys: id, purpose, state, and how many values each still protects.
    Status,
    /// Make a new active data key. Running nodes seal new values with it within
    /// `keys.refresh_secs` and re-encrypt older values in the background, in batches. Audited.
    Rotate,
    /// Delete a data key that protects nothing any more (after a rotation and re-encryption).
    ///
    /// Refused while the key is active, still protects values, or stopped being active less
    /// than `keys.retire_grace_secs` ago. Audited.
    Retire {
        /// The key id, as `keys status` lists it.
        key_id: u32,
    },
    /// Rewrap every data key under a new master key, read from standard input (base64 of 32
    /// bytes, one line). No value is re-encrypted. Audited.
    ///
    /// If the current master key is in a file, the file is replaced; otherwise set the new key
    /// (CONFIDANT_MASTER_KEY) on every node and restart them.
    RotateMaster,
    /// Print a new random master key (base64 of 32 bytes), for CONFIDANT_MASTER_KEY.
    GenerateMaster,
}

/// `confidant audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute every node's hash chain in the audit store and check every signed checkpoint.
    ///
    /// Never reads or creates a private key: signatures are checked against the keys pinned
    /// with --trusted-key (or `audit.trusted_keys`), or, when none is pinned, the keys the nodes
    /// registered in the audit store; the output names each key trusted and where it came from.
    /// Checkpoints come from the checkpoint files, the checkpoint table and every witness (the
    /// main store, `audit.witness_dirs`, --witness, and the signed heads of the owners' emails
    /// given with --head).
    ///
    /// Exits 0 when every chain is intact. Exits 1 naming the node and the first bad sequence
    /// number when an entry was changed, deleted, inserted or reordered, when the chain no
    /// longer reaches a signed checkpoint or a witnessed head (its tail was cut off), when a
    /// signature is not by a trusted key, or when the checkpoint files and table disagree.
    Verify {
        /// An Ed25519 public key (64 hex digits) to trust; repeat for each node. Overrides
        /// `audit.trusted_keys`.
        #[arg(long = "trusted-key", value_name = "HEX")]
        trusted_keys: Vec<String>,
        /// A witness directory to check the chains against, besides `audit.witness_dirs`.
        #[arg(long = "witness", value_name = "DIR")]
        witnesses: Vec<std::path::PathBuf>,
        /// A signed head line from the owners' periodic email (`confidant-audit-head/1 node=...
        /// seq=... at_ms=... hash=... key=... signature=...`), quoted; repeatable. Its chain must
        /// hold exactly that head, signed by a trusted key with that fingerprint.
        #[arg(long = "head", value_name = "LINE")]
        heads: Vec<String>,
    },
    /// Write the audit entries recorded in [--since, --until) to standard output.
    ///
    /// The export is itself audited (action `export`), and fails without output if that audit
    /// record cannot be written. Times are dates (2026-11-23, midnight UTC) or RFC 3339.
    Export {
        /// First instant included.
        #[arg(long)]
        since: String,
        /// First instant excluded.
        #[arg(long)]
        until: String,
        /// JSON lines (stored form, with hashes) or a FHIR R4 Bundle of AuditEvent resources.
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
    },
    /// Remove audit entries recorded before --before, which must be older than the retention
    /// period (`audit.retention_years`, at least six years).
    ///
    /// Each chain loses only a prefix; a signed anchor keeps the rest verifiable. The purge is
    /// audited before anything is removed. On PostgreSQL, run it with the audit database's
    /// owner: the server's insert-only role cannot delete.
    Purge {
        /// Remove entries recorded before this date (2019-01-01) or RFC 3339 time.
        #[arg(long)]
        before: String,
    },
    /// Print the newest signed checkpoint of each node, from the checkpoint files.
    Head,
    /// Print the Ed25519 public key that verifies this node's checkpoints (hex), to pin in
    /// `audit.trusted_keys` on every machine that verifies. Reads the key file; never makes one.
    PublicKey,
    /// Create the PostgreSQL role the server should use for the audit database.
    ///
    /// The role may SELECT and INSERT audit records and nothing else. Run with
    /// CONFIDANT_AUDIT_DATABASE_URL set to the database OWNER, after `confidant migrate`; the
    /// new role's password is read from standard input (one line, at least 16 characters).
    /// Then give the server an audit_database_url with the new role. The grants are those of
    /// scripts/audit-role.sql.
    SetupRole {
        /// Name of the role to create (or whose password to reset).
        #[arg(long, default_value = "confidant_audit")]
        role: String,
    },
}

const CONFIG_HELP: &str = "\
Configuration: embedded defaults < --config FILE < environment variables.
  CONFIDANT_LISTEN               address of the HTTPS/WSS listener (default 127.0.0.1:8443)
  CONFIDANT_DATA_DIR             data directory (default ./data)
  CONFIDANT_DATABASE_URL         postgres:// main store (default: SQLite in the data directory)
  CONFIDANT_AUDIT_DATABASE_URL   postgres:// audit store (default: SQLite audit.db)
  CONFIDANT_REDIS_URL            rediss:// for several nodes (default: single node)
  CONFIDANT_TLS_CERT, CONFIDANT_TLS_KEY   PEM files (default: a development certificate)
  CONFIDANT_TLS__ACME__DOMAINS   [\"portal.example.org\"]: obtain the certificate by ACME (with
                                 CONFIDANT_TLS__ACME__CONTACT=mailto:...)
  CONFIDANT_MASTER_KEY           base64 master key of PHI encryption (required with PostgreSQL)
  CONFIDANT_<SECTION>__<KEY>     any other key of config/default.toml
  CONFIDANT_<KEY>_FILE           read a URL setting from a file
A bad value stops start-up with exit code 2.";
