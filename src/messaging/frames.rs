//! The frames a device receives: a stored message of one of its conversations, and its
//! Welcome. Pushed live and replayed on attach, so both paths send the same bytes.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use confidant_protocol::{ServerFrame, VERSION};

use super::{PendingWelcome, Stored};

/// The frame a device receives for a stored message.
pub fn message_frame(stored: &Stored) -> ServerFrame {
    ServerFrame::MlsMessage {
        v: VERSION,
        conversation_id: *stored.conversation_id.as_uuid(),
        seq: stored.seq,
        kind: stored.kind,
        sender_device: *stored.sender.as_uuid(),
        message: B64.encode(&stored.message),
    }
}

/// The frame a device receives for its Welcome.
pub fn welcome_frame(welcome: &PendingWelcome) -> ServerFrame {
    ServerFrame::MlsWelcome {
        v: VERSION,
        conversation_id: *welcome.conversation_id.as_uuid(),
        seq: welcome.seq,
        welcome: B64.encode(&welcome.welcome),
        ratchet_tree: B64.encode(&welcome.ratchet_tree),
    }
}
