//! Logging set-up: `tracing` to standard error (standard output is for command output such as
//! an audit export), text or JSON. Log lines carry ids (request,
//! node, later user and session ids), never PHI; panics are logged by location only because a
//! panic message may quote data.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

use crate::settings::{LogFormat, LogSettings};

/// Why logging cannot start.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `log.filter` (or `RUST_LOG`) is not a valid filter (bad configuration).
    #[error("invalid configuration: `log.filter` is not a valid tracing filter: {0}")]
    Filter(#[from] tracing_subscriber::filter::ParseError),
    /// A global subscriber was already installed (a bug, or a second call).
    #[error("logging was already initialised")]
    AlreadyInitialised,
}

/// Installs the global subscriber and the panic hook. `RUST_LOG`, when set, replaces `log.filter`.
pub fn init(settings: &LogSettings) -> Result<(), TelemetryError> {
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| settings.filter.clone());
    let filter = EnvFilter::try_new(directives)?;
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match settings.format {
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
            )
            .try_init(),
    };
    installed.map_err(|_| TelemetryError::AlreadyInitialised)?;

    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| format!("{}:{}", l.file(), l.line()));
        tracing::error!(
            location = location.as_deref().unwrap_or("unknown"),
            "panic; its message is withheld because it may contain PHI"
        );
    }));
    Ok(())
}
