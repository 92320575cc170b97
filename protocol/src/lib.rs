//! The WebSocket protocol between Confidant and its clients (docs/PROTOCOL.md): versioned JSON
//! text frames, one object each, and the close codes. No I/O and no actix here, so the server,
//! the client SDK and the portal share one definition.
#![forbid(unsafe_code)]

pub mod alerts;
pub mod attachments;
pub mod close;
pub mod device;
pub mod frames;
pub mod intake;
pub mod notes;
pub mod retry;

pub use alerts::{AlertKind, AlertState, AlertView, AttackPattern, FollowUpNote, SignInAttack};
pub use frames::{
    Appointment, BearerToken, ClientFrame, ErrorCode, MlsKind, ScheduleChange, ScheduleScope, ServerFrame,
};
pub use intake::{
    Answer, AnswerKind, FormDefinition, FormItem, IntakeAnswers, PHQ9_SELF_HARM_ITEM, ScreeningScore, Severity,
    reports_self_harm,
};
pub use notes::{FieldValue, NoteFields};

/// The protocol version every frame carries as `"v"`.
pub const VERSION: u32 = 1;

/// The subprotocol the server selects (`Sec-WebSocket-Protocol`).
pub const SUBPROTOCOL: &str = "confidant.v1";

/// A client may offer its access token as a second subprotocol, `bearer.<token>`, instead of
/// sending an `auth` frame first. The server never echoes it.
pub const BEARER_SUBPROTOCOL_PREFIX: &str = "bearer.";

/// The largest text frame the server acts on (bytes). A larger one, up to four times this, gets
/// an `error` frame with code `frame_too_large` and is dropped; anything larger closes the socket
/// with 1009.
pub const MAX_FRAME_BYTES: usize = 64 * 1024;
