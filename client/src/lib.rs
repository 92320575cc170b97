//! Confidant's Rust client SDK: sign in, register a device, keep its MLS state in a local
//! encrypted file, create or join end-to-end encrypted conversations, send, receive, and catch
//! up after being offline. The server orders and delivers ciphertext; only devices hold keys.
//!
//! ```no_run
//! # async fn example() -> Result<(), confidant_client::ClientError> {
//! use confidant_client::{Connection, Device, Server};
//! let server = Server::new("https://localhost:8443", &std::fs::read("data/tls/dev-cert.pem").unwrap())?;
//! let api = server.sign_in("patient@example.org", "a long passphrase", None).await?;
//! let mut device = Device::register(&api).await?;
//! let mut socket = device.connect(&api).await?;
//! # let _ = &mut socket;
//! # Ok(()) }
//! ```

mod acks;
pub mod api;
pub mod connection;
mod conversation;
mod cursors;
pub mod device;
mod online;
mod receive;
mod sealed;
mod snapshot;
pub mod state_file;

pub use acks::AckPolicy;
pub use api::{Api, Server};
pub use connection::Connection;
pub use conversation::{NewConversation, NewMember, StagedCommit};
pub use device::{ConversationKind, Device};
pub use receive::{Event, Received};

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server's certificate could not be loaded.
    #[error("the server certificate is not a PEM certificate")]
    Certificate,
    /// The HTTP request failed.
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The socket failed.
    #[error("socket failed: {0}")]
    Socket(#[from] tokio_tungstenite::tungstenite::Error),
    /// The server refused (`status` is 0 for socket error frames), with its error code.
    #[error("the server refused ({status}): {code}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// The error code.
        code: String,
    },
    /// The account asks for a second factor.
    #[error("a TOTP code is required")]
    MfaRequired,
    /// The server did something this client does not expect.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// MLS refused an operation (the message says which).
    #[error("MLS: {0}")]
    Mls(String),
    /// A commit lost the race for its epoch; the conversation moved on (process, then retry).
    #[error("the conversation moved to epoch {0}; catch up and retry")]
    Stale(u64),
    /// No answer in time.
    #[error("timed out")]
    Timeout,
    /// The socket closed.
    #[error("the socket closed")]
    Closed,
    /// The state file could not be read or written (or the key is wrong).
    #[error("state file: {0}")]
    State(&'static str),
}
