//! Identifier newtypes shared by the actors and the server. Each wraps a UUID so ids of
//! different things cannot be mixed up across a module boundary; none of them is PHI.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize), serde(transparent))]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps an existing UUID.
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            /// The UUID inside.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, uuid::Error> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// One node: a server process with its own data directory.
    NodeId
);
uuid_id!(
    /// One account (staff or patient).
    UserId
);
uuid_id!(
    /// One patient record.
    PatientId
);
uuid_id!(
    /// One sign-in session.
    SessionId
);
uuid_id!(
    /// One HTTP request or WebSocket frame exchange.
    RequestId
);
uuid_id!(
    /// One audit event.
    EventId
);

impl RequestId {
    /// A fresh, time-ordered id.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }
}

impl EventId {
    /// A fresh, time-ordered id.
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }
}

impl NodeId {
    /// A fresh random id, for a node's first run.
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }
}

impl PatientId {
    /// A fresh random id. Random rather than time-ordered: a patient id may appear where the
    /// time the patient registered should not be readable from it.
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }
}

impl UserId {
    /// A fresh random id (random for the same reason as [`PatientId::generate`]).
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }
}

impl SessionId {
    /// A fresh random id.
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }
}
uuid_id!(
    /// One registered messaging device of an account (it holds MLS keys; the server never does).
    DeviceId
);
uuid_id!(
    /// One end-to-end encrypted conversation (its MLS group id).
    ConversationId
);
uuid_id!(
    /// One encrypted attachment of a conversation (the server holds its ciphertext, never its key).
    AttachmentId
);

impl AttachmentId {
    /// A fresh random id (it is the only name of the ciphertext: unguessable).
    pub fn generate() -> Self {
        Self(Uuid::new_v4())
    }
}
