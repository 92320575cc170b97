//! Logging set-up: `tracing` to standard error (standard output is for command output such as
//! an audit export), text or JSON. Log lines carry ids (request,
//! node, later user and session ids), never PHI; panics are logged by location only because a
//! panic message may quote data.

use std::fmt;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
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

/// A request line or header a client sent that HTTP/1 cannot parse (a raw 0xFF, a space or a
/// control character in the path) is answered by actix-http itself, before any of Confidant's
/// middleware runs, with a bare `400` and the connection closed; it then logs the parse error at
/// ERROR. A client's garbage is not a server error and must not page anyone, so this layer
/// drops exactly those events. The same errors stay visible at TRACE
/// (`RUST_LOG=actix_http::h1=trace`, "parse error").
struct ClientParseErrors;

impl<S: Subscriber> Layer<S> for ClientParseErrors {
    fn event_enabled(&self, event: &Event<'_>, _: Context<'_, S>) -> bool {
        let meta = event.metadata();
        if *meta.level() != Level::ERROR || meta.target() != "actix_http::h1::dispatcher" {
            return true;
        }
        let mut message = ParseErrorMessage(false);
        event.record(&mut message);
        !message.0
    }
}

/// Whether an event's message is actix-http's "stream error: request parse error: ...".
struct ParseErrorMessage(bool);

impl Visit for ParseErrorMessage {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}").starts_with("stream error: request parse error");
        }
    }
}

/// Installs the global subscriber and the panic hook. `RUST_LOG`, when set, replaces `log.filter`.
pub fn init(settings: &LogSettings) -> Result<(), TelemetryError> {
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| settings.filter.clone());
    let filter = EnvFilter::try_new(directives)?;
    let registry = tracing_subscriber::registry().with(filter).with(ClientParseErrors);
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
