//! The `Mailer` actor: lettre's async SMTP transport with TLS required, either from the first
//! byte (`smtps://`, port 465) or through STARTTLS with `Tls::Required`, so a server that does
//! not offer TLS fails the attempt instead of receiving plaintext. Messages are DKIM-signed when
//! a key is configured. It reports what happened; the scheduler decides what that means.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use lettre::message::dkim::{DkimConfig, DkimSigningAlgorithm, DkimSigningKey};
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters, TlsVersion};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::ReminderError;
use crate::settings::{ReminderSettings, SmtpUrl};

/// Why an SMTP attempt failed, as the reason code stored and audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// The server could not be reached (connection refused, reset, DNS).
    #[error("the SMTP server could not be reached")]
    Unreachable,
    /// A connect, TLS or command timeout.
    #[error("the SMTP server timed out")]
    Timeout,
    /// The TLS handshake failed (certificate, protocol version).
    #[error("TLS with the SMTP server failed")]
    Tls,
    /// The server broke the protocol or cannot do what is required (no STARTTLS offered).
    #[error("the SMTP server does not support what is required (STARTTLS, AUTH)")]
    Protocol,
    /// A 4xx reply: try again later.
    #[error("the SMTP server deferred the message")]
    Deferred,
    /// A 5xx reply: the server will never take it.
    #[error("the SMTP server rejected the message")]
    Rejected,
}

impl DeliveryError {
    /// The stored reason code.
    pub fn reason(self) -> &'static str {
        match self {
            DeliveryError::Unreachable => "smtp_unreachable",
            DeliveryError::Timeout => "smtp_timeout",
            DeliveryError::Tls => "smtp_tls_failed",
            DeliveryError::Protocol => "smtp_protocol",
            DeliveryError::Deferred => "smtp_deferred",
            DeliveryError::Rejected => "smtp_rejected",
        }
    }

    /// Whether a later attempt could succeed.
    pub fn is_permanent(self) -> bool {
        self == DeliveryError::Rejected
    }

    /// Whether the server answered with a reply code, so the message was certainly not taken.
    pub fn is_reply(self) -> bool {
        matches!(self, DeliveryError::Deferred | DeliveryError::Rejected)
    }

    fn of(error: &lettre::transport::smtp::Error) -> Self {
        if error.is_permanent() {
            DeliveryError::Rejected
        } else if error.is_transient() {
            DeliveryError::Deferred
        } else if error.is_timeout() {
            DeliveryError::Timeout
        } else if error.is_tls() {
            DeliveryError::Tls
        } else if error.is_client() || error.is_response() {
            DeliveryError::Protocol
        } else {
            DeliveryError::Unreachable
        }
    }
}

/// Opens (or reuses) a connection and checks it answers: connect, TLS, EHLO, AUTH.
#[derive(Message, Debug)]
#[rtype(result = "Result<(), DeliveryError>")]
pub struct Probe;

/// Sends one message (signed first when DKIM is configured). `Debug` shows nothing of the
/// message: its To header is the patient's address.
#[derive(Message)]
#[rtype(result = "Result<(), DeliveryError>")]
pub struct Deliver {
    /// The message; its envelope comes from its From and To headers.
    pub message: Message,
}

impl std::fmt::Debug for Deliver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Deliver(..)")
    }
}

/// The SMTP client of this node.
pub struct Mailer {
    transport: Option<AsyncSmtpTransport<Tokio1Executor>>,
    dkim: Option<Arc<DkimConfig>>,
}

impl Drop for Mailer {
    /// lettre's connection pool closes its connections on a task it spawns when dropped; an
    /// actor dropped after its runtime stopped would panic there, so it gets a runtime of its
    /// own for that moment (whose tasks end with it).
    fn drop(&mut self) {
        let Some(transport) = self.transport.take() else { return };
        if tokio::runtime::Handle::try_current().is_ok() {
            drop(transport);
        } else if let Ok(runtime) = tokio::runtime::Builder::new_current_thread().build() {
            let _inside = runtime.enter();
            drop(transport);
        }
    }
}

impl Mailer {
    /// A mailer for `url` as configured. Any unusable setting is a configuration error naming
    /// its key (start-up exits 2).
    pub fn new(url: &SmtpUrl, settings: &ReminderSettings) -> Result<Self, ReminderError> {
        let mut tls = TlsParameters::builder(url.host().to_owned()).set_min_tls_version(TlsVersion::Tlsv12);
        if let Some(path) = &settings.smtp_ca_file {
            let pem = std::fs::read(path).map_err(|_| ReminderError::Configuration("reminders.smtp_ca_file"))?;
            let roots =
                Certificate::from_pem(&pem).map_err(|_| ReminderError::Configuration("reminders.smtp_ca_file"))?;
            tls = tls.add_root_certificate(roots);
        }
        let parameters = tls.build_rustls().map_err(|_| ReminderError::Configuration("smtp_url"))?;
        let tls = if url.implicit_tls { Tls::Wrapper(parameters) } else { Tls::Required(parameters) };
        let timeout = Duration::from_secs(settings.smtp_timeout_secs);
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(url.host())
            .port(url.port())
            .tls(tls)
            .timeout(Some(timeout))
            .pool_config(PoolConfig::new().max_size(4).idle_timeout(Duration::from_secs(60)));
        if let Some((user, password)) = url.credentials() {
            builder = builder.credentials(Credentials::new(user, password));
        }
        Ok(Self { transport: Some(builder.build()), dkim: dkim(settings)?.map(Arc::new) })
    }
}

/// The DKIM configuration, when a key file is set.
fn dkim(settings: &ReminderSettings) -> Result<Option<DkimConfig>, ReminderError> {
    let Some(path) = &settings.dkim_key_file else { return Ok(None) };
    let bad = ReminderError::Configuration("reminders.dkim_key_file");
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(path).map_err(|_| bad)?);
    let algorithm =
        if settings.dkim_algorithm == "ed25519" { DkimSigningAlgorithm::Ed25519 } else { DkimSigningAlgorithm::Rsa };
    let key = DkimSigningKey::new(text.trim(), algorithm)
        .map_err(|_| ReminderError::Configuration("reminders.dkim_key_file"))?;
    let domain = if settings.dkim_domain.trim().is_empty() {
        let from: lettre::message::Mailbox =
            settings.from.parse().map_err(|_| ReminderError::Configuration("reminders.from"))?;
        from.email.domain().to_owned()
    } else {
        settings.dkim_domain.trim().to_owned()
    };
    Ok(Some(DkimConfig::default_config(settings.dkim_selector.trim().to_owned(), domain, key)))
}

impl Actor for Mailer {
    type Context = Context<Self>;
}

impl Handler<Probe> for Mailer {
    type Result = ResponseFuture<Result<(), DeliveryError>>;

    fn handle(&mut self, _msg: Probe, _ctx: &mut Self::Context) -> Self::Result {
        let Some(transport) = self.transport.clone() else {
            return Box::pin(async { Err(DeliveryError::Unreachable) });
        };
        Box::pin(async move {
            match transport.test_connection().await {
                Ok(true) => Ok(()),
                Ok(false) => Err(DeliveryError::Unreachable),
                Err(error) => Err(DeliveryError::of(&error)),
            }
        })
    }
}

impl Handler<Deliver> for Mailer {
    type Result = ResponseFuture<Result<(), DeliveryError>>;

    fn handle(&mut self, msg: Deliver, _ctx: &mut Self::Context) -> Self::Result {
        let Some(transport) = self.transport.clone() else {
            return Box::pin(async { Err(DeliveryError::Unreachable) });
        };
        let mut message = msg.message;
        if let Some(dkim) = &self.dkim {
            message.sign(dkim);
        }
        Box::pin(async move { transport.send(message).await.map(|_| ()).map_err(|e| DeliveryError::of(&e)) })
    }
}
