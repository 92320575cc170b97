//! The `confidant` binary: parses the command line and settings, starts logging, runs the
//! subcommand, and turns failures into exit codes (2: configuration, 1: anything else).

use std::error::Error;
use std::process::ExitCode;

use clap::Parser;
use confidant::audit::TrailReport;
use confidant::cli::{AuditCommand, BackupCommand, Cli, Command, KeysCommand, StoreCommand, UserCommand};
use confidant::crypto::MasterKey;
use confidant::{audit_commands, backup_commands, key_commands, server, settings, telemetry, user_commands};

fn main() -> ExitCode {
    // Every file this process creates (the SQLite databases and their WAL and shared-memory
    // files, the audit checkpoint files, the node id, keys and certificates) is owner-only,
    // whatever the umask it was started with. Set before any thread exists.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let cli = Cli::parse();
    let settings = match settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            if matches!(cli.command, Command::Serve) {
                audit_refused_start(cli.config.as_deref());
            }
            return fail(&error, 2);
        }
    };
    if let Err(error) = telemetry::init(&settings.log) {
        return fail(&error, 2);
    }
    // rustls needs a process-wide provider for the clients inside sqlx and redis; the listener
    // names its own. Installing fails only if one is installed already, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let system = actix_web::rt::System::new();
    match cli.command {
        Command::Serve => match system.block_on(server::serve(settings)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => fail(&error, error.exit_code()),
        },
        Command::Migrate => match system.block_on(server::migrate(&settings)) {
            Ok(report) => {
                tracing::info!(main = report.main, audit = report.audit, "migrations applied");
                ExitCode::SUCCESS
            }
            Err(error) => fail(&error, error.exit_code()),
        },
        Command::Audit { command: AuditCommand::Verify { trusted_keys, witnesses, heads } } => {
            match system.block_on(audit_commands::verify(&settings, &trusted_keys, witnesses, &heads)) {
                Ok(report) => report_verification(&report),
                Err(error) => fail(&error, error.exit_code()),
            }
        }
        Command::Audit { command: AuditCommand::SetupRole { role } } => {
            let mut password = String::new();
            if let Err(error) = std::io::stdin().read_line(&mut password) {
                return fail(&error, 2);
            }
            let password = password.trim_end_matches(['\n', '\r']);
            match system.block_on(audit_commands::setup_audit_role(&settings, &role, password)) {
                Ok(()) => {
                    tracing::info!(role = %role, "audit role ready: give the server an audit_database_url with it");
                    ExitCode::SUCCESS
                }
                Err(error) => fail(&error, error.exit_code()),
            }
        }
        Command::Audit { command: AuditCommand::Export { since, until, format } } => {
            match system.block_on(audit_commands::export_entries(&settings, &since, &until, format)) {
                Ok(entries) => {
                    tracing::info!(entries, "audit export written");
                    ExitCode::SUCCESS
                }
                Err(error) => fail(&error, error.exit_code()),
            }
        }
        Command::Audit { command: AuditCommand::Purge { before } } => {
            match system.block_on(audit_commands::purge(&settings, &before)) {
                Ok(purged) => print_lines(purged.iter().map(|p| {
                    format!(
                        "node {}: purged {} entries, chain now starts after seq {}",
                        p.node_id, p.entries, p.up_to_seq
                    )
                })),
                Err(error) => fail(&error, error.exit_code()),
            }
        }
        Command::Audit { command: AuditCommand::Head } => match audit_commands::head(&settings) {
            Ok(checkpoints) => print_lines(checkpoints.iter().map(|c| c.to_line())),
            Err(error) => fail(&error, error.exit_code()),
        },
        Command::Audit { command: AuditCommand::PublicKey } => match audit_commands::public_key(&settings) {
            Ok(key) => print_lines([key]),
            Err(error) => fail(&error, error.exit_code()),
        },
        Command::Keys { command } => run_keys(&system, &settings, command),
        Command::Backup { command } => run_backup(&system, &settings, command),
        Command::Store { command: StoreCommand::Copy { to, audit_to } } => {
            match system.block_on(backup_commands::copy_store(&settings, to, audit_to)) {
                Ok(copied) => print_lines([format!(
                    "copied {} rows in {} tables onto PostgreSQL in {:.1} s; counts, chain heads and {} audit chain(s) verified. Set database_url and audit_database_url and keep the master key",
                    copied.rows,
                    copied.tables,
                    copied.elapsed.as_secs_f64(),
                    copied.chains
                )]),
                Err(error) => fail(&error, error.exit_code()),
            }
        }
        Command::User { command } => run_user(&system, &settings, command),
    }
}

/// `confidant user ...`.
fn run_user(system: &actix_web::rt::SystemRunner, settings: &settings::Settings, command: UserCommand) -> ExitCode {
    let outcome = match command {
        UserCommand::Create { role, email, name, credentials } => {
            let mut password = zeroize::Zeroizing::new(String::new());
            if let Err(error) = std::io::stdin().read_line(&mut password) {
                return fail(&error, 2);
            }
            system
                .block_on(user_commands::create(
                    settings,
                    &role,
                    &email,
                    (name.as_deref(), credentials.as_deref()),
                    &password,
                ))
                .map(|id| vec![format!("created {role} account {id}; sign in and enroll TOTP")])
        }
        UserCommand::Invite { role, email, patient, name, credentials } => {
            let patient = patient.map(confidant_actors::ids::PatientId::from_uuid);
            let name = (name.as_deref(), credentials.as_deref());
            system.block_on(user_commands::invite(settings, &role, &email, patient, name)).map(|invitation| {
                vec![
                    format!("invited {role} account {}", invitation.user_id),
                    format!("invitation token (deliver it out of band; it works once): {}", invitation.token),
                    format!("expires at {} (UTC ms)", invitation.expires_at_ms),
                ]
            })
        }
    };
    match outcome {
        Ok(lines) => print_lines(lines),
        Err(error) => fail(&error, error.exit_code()),
    }
}

/// `confidant backup ...`.
fn run_backup(system: &actix_web::rt::SystemRunner, settings: &settings::Settings, command: BackupCommand) -> ExitCode {
    let outcome = match command {
        BackupCommand::Create { to, recipients } => {
            system.block_on(backup_commands::create(settings, &recipients, &to)).map(|created| {
                let rows: i64 = created.manifest.stores.iter().flat_map(|s| s.tables.values()).sum();
                vec![format!(
                    "backup written to {}: {} bytes, {rows} rows, {} files, in {:.1} s; restoring it needs master key {}",
                    created.path.display(),
                    created.bytes,
                    created.manifest.files.len(),
                    created.elapsed.as_secs_f64(),
                    created.manifest.master_key_fingerprint
                )]
            })
        }
        BackupCommand::Verify { file, identity, scratch_database, scratch_audit_database } => {
            let scratch = backup_commands::Scratch { main: scratch_database, audit: scratch_audit_database };
            match system.block_on(backup_commands::verify(settings, &file, &identity, scratch)) {
                Ok(verified) => return report_backup(&verified),
                Err(error) => Err(error),
            }
        }
        BackupCommand::Restore { file, identity } => {
            system.block_on(backup_commands::restore(settings, &file, &identity)).map(|restored| {
                vec![
                    format!(
                        "restored the backup of {} ms; {} KeyPackages discarded (devices upload fresh ones on their next attach)",
                        restored.manifest.created_at_ms, restored.key_packages_discarded
                    ),
                    format!("start the server with master key {}", restored.manifest.master_key_fingerprint),
                ]
            })
        }
    };
    match outcome {
        Ok(lines) => print_lines(lines),
        Err(error) => fail(&error, error.exit_code()),
    }
}

/// Prints the outcome of `backup verify`: what held, then every fault; exit 0 when sound, 1
/// otherwise.
#[allow(clippy::print_stdout)] // the command's output
fn report_backup(verified: &confidant::backup::Verified) -> ExitCode {
    for line in &verified.passed {
        println!("ok: {line}");
    }
    for fault in &verified.faults {
        println!("FAULT: {}", fault.0);
    }
    if verified.is_sound() {
        println!("backup sound");
        ExitCode::SUCCESS
    } else {
        println!("BACKUP FAULTY: {} fault(s)", verified.faults.len());
        ExitCode::from(1)
    }
}

/// `confidant keys ...`.
fn run_keys(system: &actix_web::rt::SystemRunner, settings: &settings::Settings, command: KeysCommand) -> ExitCode {
    let outcome = match command {
        KeysCommand::Status => system.block_on(key_commands::status(settings)).map(|keys| {
            let mut lines = vec![format!(
                "{:>6}  {:<7}  {:<12}  {:>10}  {:>10}  note",
                "key", "purpose", "state", "rows", "values"
            )];
            lines.extend(keys.iter().map(|k| {
                let note = match (k.key.purpose.as_str(), k.key.state.as_str(), k.protected.rows) {
                    ("field", "decrypt_only", 0) => "protects nothing: can be retired",
                    ("field", "decrypt_only", _) => "re-encryption pending",
                    ("index", _, _) => "blind index",
                    _ => "",
                };
                format!(
                    "{:>6}  {:<7}  {:<12}  {:>10}  {:>10}  {note}",
                    k.key.key_id,
                    k.key.purpose.as_str(),
                    k.key.state.as_str(),
                    k.protected.rows,
                    k.protected.values
                )
            }));
            lines
        }),
        KeysCommand::Rotate => system.block_on(key_commands::rotate(settings)).map(|key_id| {
            vec![format!(
                "data key {key_id} is active; nodes re-encrypt older values within keys.refresh_secs ({} s)",
                settings.keys.refresh_secs
            )]
        }),
        KeysCommand::Retire { key_id } => {
            system.block_on(key_commands::retire(settings, key_id)).map(|()| vec![format!("data key {key_id} retired")])
        }
        KeysCommand::RotateMaster => {
            let mut line = zeroize::Zeroizing::new(String::new());
            if let Err(error) = std::io::stdin().read_line(&mut line) {
                return fail(&error, 2);
            }
            system.block_on(key_commands::rotate_master(settings, &line)).map(|done| {
                let next = match &done.replaced_file {
                    Some(path) => format!("{} now holds it", path.display()),
                    None => "set it as CONFIDANT_MASTER_KEY on every node and restart them".to_owned(),
                };
                vec![format!("rewrapped {} data keys under master key {}; {next}", done.rewrapped, done.fingerprint)]
            })
        }
        KeysCommand::GenerateMaster => Ok(vec![MasterKey::generate().to_base64().to_string()]),
    };
    match outcome {
        Ok(lines) => print_lines(lines),
        Err(error) => fail(&error, error.exit_code()),
    }
}

/// Records a start refused on bad settings in the audit trail, if the settings still say where
/// it is. Failing to do so changes nothing about the refusal: it is reported either way.
fn audit_refused_start(config: Option<&std::path::Path>) {
    let Some(hint) = settings::audit_store_hint(config) else { return };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let recorded = actix_web::rt::System::new().block_on(audit_commands::refused_start(&hint));
    if let Err(error) = recorded {
        eprintln!("confidant: could not audit the refused start: {error}");
    }
}

/// Prints a command's output lines.
#[allow(clippy::print_stdout)] // the command's output
fn print_lines(lines: impl IntoIterator<Item = String>) -> ExitCode {
    for line in lines {
        println!("{line}");
    }
    ExitCode::SUCCESS
}

/// Prints the outcome of `audit verify`: what it trusted and read, then the chains; exit 0 when
/// intact, 1 when broken.
#[allow(clippy::print_stdout)] // the command's output
fn report_verification(report: &TrailReport) -> ExitCode {
    for line in report.basis() {
        println!("{line}");
    }
    match &report.broken {
        None => {
            for chain in &report.chains {
                println!("node {}: {} entries, intact through seq {}", chain.node_id, chain.entries, chain.last_seq);
            }
            println!("audit trail intact: {} chain(s)", report.chains.len());
            ExitCode::SUCCESS
        }
        Some(broken) => {
            println!("AUDIT TRAIL TAMPERED: {broken}");
            ExitCode::from(1)
        }
    }
}

/// Prints the error and its causes on one line to standard error (no backtrace, no panic) and
/// returns `code`.
fn fail(error: &dyn Error, code: u8) -> ExitCode {
    let mut message = format!("confidant: {error}");
    let mut cause = error.source();
    while let Some(inner) = cause {
        message.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    tracing::error!(exit_code = code, "{message}");
    eprintln!("{message}");
    ExitCode::from(code)
}
