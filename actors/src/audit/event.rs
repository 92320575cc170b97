//! `AuditEvent`: who did what to which resource, when, from where, with what outcome. Ids and
//! fixed codes only: there is no field that could hold a name, an email, a message or a form
//! answer, and the one free-form field, the reason, is restricted to a snake_case code.

use std::net::IpAddr;

use crate::ids::{EventId, NodeId, PatientId, RequestId, SessionId, UserId};

/// Everything the audit trail records about one access or event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    /// Unique, time-ordered id of this event.
    pub event_id: EventId,
    /// The node whose chain holds it.
    pub node_id: NodeId,
    /// When it happened: UTC, milliseconds since the Unix epoch.
    pub at_ms: i64,
    /// Who acted.
    pub actor: AuditActor,
    /// The sign-in session, when there is one.
    pub session_id: Option<SessionId>,
    /// The request (HTTP or WebSocket frame), when there is one.
    pub request_id: Option<RequestId>,
    /// Where the request came from.
    pub source_ip: Option<IpAddr>,
    /// What was done.
    pub action: Action,
    /// The kind of thing acted on.
    pub resource_type: Option<ResourceType>,
    /// Which one (a UUID, never a name).
    pub resource_id: Option<uuid::Uuid>,
    /// The patient whose PHI was involved, if any.
    pub patient_id: Option<PatientId>,
    /// How it ended.
    pub outcome: Outcome,
    /// Why, as a code (`wrong_password`, `not_on_care_team`).
    pub reason: Option<ReasonCode>,
}

impl AuditEvent {
    /// An event happening now on `node_id`, with no resource, session, request or reason yet.
    pub fn new(node_id: NodeId, actor: AuditActor, action: Action, outcome: Outcome) -> Self {
        let at_ms = crate::clock::now_ms();
        Self {
            event_id: EventId::generate(),
            node_id,
            at_ms,
            actor,
            session_id: None,
            request_id: None,
            source_ip: None,
            action,
            resource_type: None,
            resource_id: None,
            patient_id: None,
            outcome,
            reason: None,
        }
    }

    /// Names the resource acted on.
    pub fn on(mut self, resource_type: ResourceType, resource_id: Option<uuid::Uuid>) -> Self {
        self.resource_type = Some(resource_type);
        self.resource_id = resource_id;
        self
    }

    /// Names the patient whose PHI was involved.
    pub fn for_patient(mut self, patient_id: PatientId) -> Self {
        self.patient_id = Some(patient_id);
        self
    }

    /// Ties the event to a session.
    pub fn in_session(mut self, session_id: SessionId) -> Self {
        self.session_id = Some(session_id);
        self
    }

    /// Ties the event to a request and its source address.
    pub fn from_request(mut self, request_id: RequestId, source_ip: Option<IpAddr>) -> Self {
        self.request_id = Some(request_id);
        self.source_ip = source_ip;
        self
    }

    /// Adds a reason code.
    pub fn because(mut self, reason: ReasonCode) -> Self {
        self.reason = Some(reason);
        self
    }
}

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditActor {
    /// Not signed in (a failed sign-in, a public endpoint).
    Anonymous,
    /// The server itself (start, stop, background re-encryption).
    System,
    /// A signed-in account.
    User {
        /// The account.
        id: UserId,
        /// Its role at the time.
        role: Role,
    },
}

/// Declares an enum of fixed codes with its stable snake_case text and parser.
macro_rules! codes {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant,)+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The stable text stored in the audit trail. Never change one: stored chains hash it.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text,)+ }
            }

            /// Parses the stored text.
            pub fn parse(text: &str) -> Option<Self> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

codes!(
    /// What was done.
    Action {
        /// PHI or another protected resource was read.
        Read = "read",
        /// Created.
        Create = "create",
        /// Changed.
        Update = "update",
        /// Deleted.
        Delete = "delete",
        /// A sign-in succeeded.
        LoginSuccess = "login_success",
        /// A sign-in failed (wrong password, unknown account, locked).
        LoginFailure = "login_failure",
        /// A second factor failed.
        MfaFailure = "mfa_failure",
        /// A sign-out.
        Logout = "logout",
        /// A session ended on its idle or absolute limit.
        SessionTimeout = "session_timeout",
        /// A role, care team or permission changed.
        PermissionChange = "permission_change",
        /// Emergency access outside the normal permissions.
        BreakGlass = "break_glass",
        /// Data left the system (audit export, record export).
        Export = "export",
        /// An encryption key was created, rotated or retired.
        KeyRotation = "key_rotation",
        /// Audit entries older than the retention period were purged.
        Purge = "purge",
        /// A node started.
        ServerStart = "server_start",
        /// A node stopped cleanly.
        ServerStop = "server_stop",
        /// A node refused to start on its configuration.
        ConfigurationError = "configuration_error",
        /// A readiness check found a dependency down.
        ReadinessFailure = "readiness_failure",
    }
);

codes!(
    /// The five roles of the permission matrix.
    Role {
        /// Manages the practice, its users and the audit log.
        PracticeOwner = "practice_owner",
        /// Treats patients on their care team.
        Clinician = "clinician",
        /// Schedules and demographics, never clinical content.
        FrontDesk = "front_desk",
        /// Codes and amounts, never clinical content.
        Billing = "billing",
        /// Their own record only.
        Patient = "patient",
    }
);

codes!(
    /// How it ended.
    Outcome {
        /// Done.
        Success = "success",
        /// Refused by a permission or policy check.
        Denied = "denied",
        /// Failed for another reason.
        Error = "error",
    }
);

codes!(
    /// The kinds of things audit events are about.
    ResourceType {
        /// An account.
        User = "user",
        /// A patient record (demographics).
        Patient = "patient",
        /// An appointment.
        Appointment = "appointment",
        /// A conversation (MLS group).
        Conversation = "conversation",
        /// A message (ciphertext).
        Message = "message",
        /// An intake or screening form response.
        IntakeResponse = "intake_response",
        /// A clinical note.
        Note = "note",
        /// A billing claim.
        Claim = "claim",
        /// An appointment reminder.
        Reminder = "reminder",
        /// The audit trail itself.
        AuditLog = "audit_log",
        /// An encryption key.
        Key = "key",
        /// A sign-in session.
        Session = "session",
        /// The node.
        Server = "server",
        /// Who treats a patient.
        CareTeam = "care_team",
        /// Emergency access to a patient outside the care team.
        BreakGlassGrant = "break_glass_grant",
        /// An invitation to open an account.
        Invitation = "invitation",
        /// A dependency of the node (database, Redis).
        Dependency = "dependency",
        /// A messaging device (its registered credential).
        Device = "device",
        /// A device's MLS KeyPackage (public keys).
        KeyPackage = "key_package",
        /// An alert (an urgent screening answer, a submitted form, a break-glass grant, an
        /// undeliverable reminder) and its acknowledgement, follow-up and escalation.
        Alert = "alert",
        /// The answer of a write kept for its `Idempotency-Key`, replayed to a retry.
        IdempotentAnswer = "idempotent_answer",
        /// An encrypted attachment of a message (ciphertext the server cannot open).
        Attachment = "attachment",
    }
);

/// A reason code: 1 to 64 characters of `a-z`, `0-9` and `_`. The restriction is the point:
/// free text cannot reach the audit trail, so PHI cannot either.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReasonCode(String);

impl ReasonCode {
    /// Accepts a valid code; `None` otherwise.
    pub fn new(code: &str) -> Option<Self> {
        let valid = (1..=64).contains(&code.len())
            && code.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        valid.then(|| Self(code.to_owned()))
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_codes_refuse_free_text() {
        assert!(ReasonCode::new("wrong_password").is_some());
        assert!(ReasonCode::new("Jane Doe asked").is_none());
        assert!(ReasonCode::new("").is_none());
        assert!(ReasonCode::new(&"a".repeat(65)).is_none());
    }

    #[test]
    fn every_code_round_trips_through_its_text() {
        for action in Action::ALL {
            assert_eq!(Action::parse(action.as_str()), Some(*action));
        }
        for kind in ResourceType::ALL {
            assert_eq!(ResourceType::parse(kind.as_str()), Some(*kind));
        }
        for outcome in Outcome::ALL {
            assert_eq!(Outcome::parse(outcome.as_str()), Some(*outcome));
        }
        assert_eq!(Role::parse("front_desk"), Some(Role::FrontDesk));
    }
}
