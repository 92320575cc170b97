//! The `confidant` binary: parses the command line and settings, starts logging, runs the
//! subcommand, and turns failures into exit codes (2: configuration, 1: anything else).

use std::error::Error;
use std::process::ExitCode;

use clap::Parser;
use confidant::cli::{Cli, Command};
use confidant::{server, settings, telemetry};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => return fail(&error, 2),
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
