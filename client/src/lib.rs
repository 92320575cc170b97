//! Confidant's Rust client SDK: sign in, register a device, keep its MLS state in a local
//! encrypted file, create or join end-to-end encrypted conversations, send, receive, and catch
//! up after being offline. The server orders and delivers ciphertext; only devices hold keys.
//!
//! The device's MLS core ([`Device`] with its conversations and what it receives: frames in,
//! frames and events out) does no I/O and builds for `wasm32-unknown-unknown`. The default
//! feature `native` adds what a browser cannot run: the REST API, the socket, the event loop
//! that acknowledges, the sealed state file, and `confidant-chat`.
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

// The MLS core: no I/O, builds for wasm32.
pub mod attachment;
mod conversation;
mod cursors;
pub mod device;
pub mod payload;
mod receive;
mod snapshot;

// What needs a native platform (feature `native`): REST, the socket, the event loop, the disk.
#[cfg(feature = "native")]
mod acks;
#[cfg(feature = "native")]
pub mod api;
#[cfg(feature = "native")]
pub mod connection;
#[cfg(feature = "native")]
mod online;
#[cfg(feature = "native")]
mod sealed;
#[cfg(feature = "native")]
pub mod state_file;

pub use attachment::{AttachmentError, SealedAttachment, open_attachment, seal_attachment};
pub use conversation::{NewConversation, NewMember, StagedCommit};
pub use device::{ConversationKind, Device};
pub use payload::{AttachmentRef, Payload, PayloadError};
pub use receive::{Event, Received};

#[cfg(feature = "native")]
pub use acks::AckPolicy;
#[cfg(feature = "native")]
pub use api::{Api, Server, UploadedAttachment};
#[cfg(feature = "native")]
pub use connection::Connection;

/// Why a client operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server's certificate could not be loaded.
    #[error("the server certificate is not a PEM certificate")]
    Certificate,
    /// The HTTP request failed.
    #[cfg(feature = "native")]
    #[error("request failed: {0}")]
    Http(#[from] reqwest::Error),
    /// The socket failed.
    #[cfg(feature = "native")]
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
    /// An attachment could not be encrypted, or what was downloaded is not the file the message
    /// carries (altered, substituted, or not opened by its key): nothing of it is returned.
    #[error("attachment: {0}")]
    Attachment(#[from] AttachmentError),
}
