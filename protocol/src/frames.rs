//! The frames. Every frame is a JSON object with `"v": 1` and a `"type"`; requests carry a
//! client-chosen `"id"` (1 to 64 bytes) that the answer (`ack`, `error` or the response
//! frame) repeats.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::VERSION;
use crate::alerts::{AlertKind, AlertState, FollowUpNote, SignInAttack};
use crate::intake::{FormDefinition, IntakeAnswers, ScreeningScore, Severity};
use crate::notes::NoteFields;

/// An access token as the `auth` frame carries it: the JSON string itself on the wire, and
/// `BearerToken(..)` in `Debug`, so a logged or printed frame never shows it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BearerToken(String);

impl BearerToken {
    /// The token, to look up its session.
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(..)")
    }
}

/// A frame from the client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", deny_unknown_fields)]
pub enum ClientFrame {
    /// The access token, as the first frame (when not given as a subprotocol).
    #[serde(rename = "auth")]
    Auth {
        /// Protocol version.
        v: u32,
        /// An OAuth access token.
        token: BearerToken,
    },
    /// Subscribe to a schedule: a snapshot, then every change. With `after`, the changes since
    /// that event id instead (or a snapshot if they are too old).
    #[serde(rename = "schedule.subscribe")]
    ScheduleSubscribe {
        /// Protocol version.
        v: u32,
        /// Request id.
        id: String,
        /// Whose schedule.
        scope: ScheduleScope,
        /// The last event id the client saw.
        #[serde(default)]
        after: Option<u64>,
    },
    /// Stop receiving a schedule.
    #[serde(rename = "schedule.unsubscribe")]
    ScheduleUnsubscribe {
        /// Protocol version.
        v: u32,
        /// Request id.
        id: String,
        /// Whose schedule.
        scope: ScheduleScope,
    },
    /// User activity that sends nothing else (typing in a form); keeps the session from idling.
    #[serde(rename = "activity")]
    Activity {
        /// Protocol version.
        v: u32,
    },
    /// Open an assigned form: the answer is `intake.form` with the saved draft.
    #[serde(rename = "intake.open")]
    IntakeOpen {
        /// Protocol version.
        v: u32,
        /// Request id.
        id: String,
        /// The assignment.
        assignment_id: Uuid,
    },
    /// Save the draft (autosave while typing): item id -> answer (an option's index, or text).
    #[serde(rename = "intake.draft")]
    IntakeDraft {
        /// Protocol version.
        v: u32,
        /// Request id.
        id: String,
        /// The assignment.
        assignment_id: Uuid,
        /// The answers so far.
        answers: IntakeAnswers,
    },
    /// Submit the form: validated, scored, stored; the clinician is told at once.
    #[serde(rename = "intake.submit")]
    IntakeSubmit {
        /// Protocol version.
        v: u32,
        /// Request id.
        id: String,
        /// The assignment.
        assignment_id: Uuid,
        /// Every answer.
        answers: IntakeAnswers,
    },
    /// Open one's own note draft to go on writing it (on this device or another): the answer
    /// is `note.draft` with the saved fields.
    #[serde(rename = "note.open")]
    NoteOpen {
        /// Protocol version.
        v: u32,
        /// Request id.
        id: String,
        /// The note.
        note_id: Uuid,
    },
    /// Save one's own note draft (autosave while typing): section id -> value. A signed note
    /// refuses with `note_locked`.
    #[serde(rename = "note.draft")]
    NoteDraft {
        /// Protocol version.
        v: u32,
        /// Request id.
        id: String,
        /// The note.
        note_id: Uuid,
        /// The fields so far.
        fields: NoteFields,
    },
    /// Bind this session to one of the caller's registered devices: its welcomes and the
    /// messages of its conversations after its acknowledged cursors follow, then live ones.
    #[serde(rename = "mls.attach")]
    MlsAttach {
        /// Protocol version.
        v: u32,
        /// Request id.
        id: String,
        /// The device (registered over REST).
        device_id: Uuid,
    },
    /// An MLS application message (a `PrivateMessage`, base64 of its TLS encoding) for a
    /// conversation the attached device is a member of.
    #[serde(rename = "mls.send")]
    MlsSend {
        /// Protocol version.
        v: u32,
        /// Request id.
        id: String,
        /// The conversation (its MLS group id).
        conversation_id: Uuid,
        /// Base64 of the `MlsMessageOut`.
        message: String,
        /// The attachments the message carries (uploaded to this conversation by the sender's
        /// account and not yet linked; at most `attachments::MAX_PER_MESSAGE`): the server keeps
        /// each as long as the message and deletes it with it. Absent from older clients.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<Uuid>,
    },
    /// An MLS commit (a `PublicMessage`), with the Welcome for the devices it adds.
    #[serde(rename = "mls.commit")]
    MlsCommit {
        /// Protocol version.
        v: u32,
        /// Request id.
        id: String,
        /// The conversation.
        conversation_id: Uuid,
        /// Base64 of the commit's `MlsMessageOut`.
        commit: String,
        /// Base64 of the Welcome's `MlsMessageOut`, when the commit adds members.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        welcome: Option<String>,
    },
    /// The attached device processed everything of a conversation up to `seq`.
    #[serde(rename = "mls.ack")]
    MlsAck {
        /// Protocol version.
        v: u32,
        /// Request id.
        id: String,
        /// The conversation.
        conversation_id: Uuid,
        /// The highest sequence number processed.
        seq: u64,
    },
    /// The person read a conversation up to `seq` (its messages were on their screen): the
    /// other members see their messages as read, and the person's other devices stop counting
    /// them unread.
    #[serde(rename = "mls.read")]
    MlsRead {
        /// Protocol version.
        v: u32,
        /// Request id.
        id: String,
        /// The conversation (the attached device must be a member).
        conversation_id: Uuid,
        /// The newest seq read (at most the conversation's newest).
        seq: u64,
    },
    /// Acknowledge an alert sent to the caller: it stops escalating and clears for every
    /// recipient. With `follow_up` (a clinician on the patient's care team), the follow-up is
    /// documented at the same time, which resolves an urgent alert.
    #[serde(rename = "alert.ack")]
    AlertAck {
        /// Protocol version.
        v: u32,
        /// Request id.
        id: String,
        /// The alert.
        alert_id: Uuid,
        /// What was done (1 to 2,000 characters).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        follow_up: Option<FollowUpNote>,
    },
}

impl ClientFrame {
    /// Parses a text frame; `Err` names what is wrong without quoting the input.
    pub fn parse(text: &str) -> Result<Self, ErrorCode> {
        let frame: ClientFrame = serde_json::from_str(text).map_err(|_| ErrorCode::MalformedFrame)?;
        if frame.version() != VERSION {
            return Err(ErrorCode::UnsupportedVersion);
        }
        if let Some(id) = frame.request_id()
            && !(1..=64).contains(&id.len())
        {
            return Err(ErrorCode::MalformedFrame);
        }
        Ok(frame)
    }

    /// The frame's protocol version.
    pub fn version(&self) -> u32 {
        match self {
            ClientFrame::Auth { v, .. }
            | ClientFrame::ScheduleSubscribe { v, .. }
            | ClientFrame::ScheduleUnsubscribe { v, .. }
            | ClientFrame::Activity { v }
            | ClientFrame::IntakeOpen { v, .. }
            | ClientFrame::IntakeDraft { v, .. }
            | ClientFrame::IntakeSubmit { v, .. }
            | ClientFrame::NoteOpen { v, .. }
            | ClientFrame::NoteDraft { v, .. }
            | ClientFrame::MlsAttach { v, .. }
            | ClientFrame::MlsSend { v, .. }
            | ClientFrame::MlsCommit { v, .. }
            | ClientFrame::MlsAck { v, .. }
            | ClientFrame::MlsRead { v, .. }
            | ClientFrame::AlertAck { v, .. } => *v,
        }
    }

    /// The request id, for frames that are requests.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            ClientFrame::ScheduleSubscribe { id, .. }
            | ClientFrame::ScheduleUnsubscribe { id, .. }
            | ClientFrame::IntakeOpen { id, .. }
            | ClientFrame::IntakeDraft { id, .. }
            | ClientFrame::IntakeSubmit { id, .. }
            | ClientFrame::NoteOpen { id, .. }
            | ClientFrame::NoteDraft { id, .. }
            | ClientFrame::MlsAttach { id, .. }
            | ClientFrame::MlsSend { id, .. }
            | ClientFrame::MlsCommit { id, .. }
            | ClientFrame::MlsAck { id, .. }
            | ClientFrame::MlsRead { id, .. }
            | ClientFrame::AlertAck { id, .. } => Some(id),
            ClientFrame::Auth { .. } | ClientFrame::Activity { .. } => None,
        }
    }

    /// An `auth` frame.
    pub fn auth(token: String) -> Self {
        ClientFrame::Auth { v: VERSION, token: BearerToken(token) }
    }

    /// An `mls.attach` request.
    pub fn mls_attach(id: String, device_id: Uuid) -> Self {
        ClientFrame::MlsAttach { v: VERSION, id, device_id }
    }

    /// An `mls.send` request: base64 of the application message's `MlsMessageOut`.
    pub fn mls_send(id: String, conversation_id: Uuid, message: String) -> Self {
        ClientFrame::MlsSend { v: VERSION, id, conversation_id, message, attachments: Vec::new() }
    }

    /// An `mls.send` request for a message that carries `attachments` (uploaded beforehand): the
    /// server keeps them with the message and deletes them with it.
    pub fn mls_send_with(id: String, conversation_id: Uuid, message: String, attachments: Vec<Uuid>) -> Self {
        ClientFrame::MlsSend { v: VERSION, id, conversation_id, message, attachments }
    }

    /// An `mls.commit` request: base64 of the commit's `MlsMessageOut`, and of the Welcome's
    /// when it adds members.
    pub fn mls_commit(id: String, conversation_id: Uuid, commit: String, welcome: Option<String>) -> Self {
        ClientFrame::MlsCommit { v: VERSION, id, conversation_id, commit, welcome }
    }

    /// An `alert.ack` request, documenting `follow_up` when given.
    pub fn alert_ack(id: String, alert_id: Uuid, follow_up: Option<FollowUpNote>) -> Self {
        ClientFrame::AlertAck { v: VERSION, id, alert_id, follow_up }
    }

    /// An `mls.ack` request: everything of the conversation through `seq` was processed.
    pub fn mls_ack(id: String, conversation_id: Uuid, seq: u64) -> Self {
        ClientFrame::MlsAck { v: VERSION, id, conversation_id, seq }
    }

    /// An `mls.read` request: the person read the conversation through `seq`.
    pub fn mls_read(id: String, conversation_id: Uuid, seq: u64) -> Self {
        ClientFrame::MlsRead { v: VERSION, id, conversation_id, seq }
    }
}

/// Whose schedule a subscription is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleScope {
    /// The caller's own (a clinician's appointments, a patient's).
    Mine,
    /// The whole practice's (front desk, owners, billing).
    Practice,
}

/// A frame from the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ServerFrame {
    /// The session is authenticated.
    #[serde(rename = "welcome")]
    Welcome {
        /// Protocol version.
        v: u32,
        /// The sign-in session.
        session_id: Uuid,
        /// The account.
        user_id: Uuid,
        /// Its role.
        role: String,
        /// Seconds without user activity before the server closes with 4001.
        idle_timeout_secs: u64,
        /// When the server closes with 4002 (UTC ms).
        expires_at_ms: i64,
    },
    /// A request succeeded and has no other answer.
    #[serde(rename = "ack")]
    Ack {
        /// Protocol version.
        v: u32,
        /// The request.
        id: String,
    },
    /// A request or frame was refused; the session lives on.
    #[serde(rename = "error")]
    Error {
        /// Protocol version.
        v: u32,
        /// The request, when the frame parsed (a malformed frame's id is not trusted).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// What went wrong.
        code: ErrorCode,
        /// For people; never quotes the input.
        message: String,
    },
    /// The state of a schedule, answering `schedule.subscribe`.
    #[serde(rename = "schedule.snapshot")]
    ScheduleSnapshot {
        /// Protocol version.
        v: u32,
        /// The request.
        id: String,
        /// Whose schedule.
        scope: ScheduleScope,
        /// Changes after this event id follow as `schedule.changed`.
        last_event_id: u64,
        /// The appointments ending after 24 hours ago, booked and cancelled, oldest first (at
        /// most 5,000).
        appointments: Vec<Appointment>,
    },
    /// One change of a subscribed schedule.
    #[serde(rename = "schedule.changed")]
    ScheduleChanged {
        /// Protocol version.
        v: u32,
        /// Increasing per practice; resume after it with `schedule.subscribe` `after`.
        event_id: u64,
        /// What happened.
        change: ScheduleChange,
        /// The appointment as it now is.
        appointment: Appointment,
    },
    /// An assigned form, answering `intake.open`.
    #[serde(rename = "intake.form")]
    IntakeForm {
        /// Protocol version.
        v: u32,
        /// The request.
        id: String,
        /// The assignment.
        assignment_id: Uuid,
        /// The form: title, instructions, items with their answer kinds and options.
        form: FormDefinition,
        /// The saved draft (empty when none).
        answers: IntakeAnswers,
    },
    /// One's own note draft, answering `note.open`: its template (key and version, read over
    /// REST) and the saved fields.
    #[serde(rename = "note.draft")]
    NoteDraft {
        /// Protocol version.
        v: u32,
        /// The request.
        id: String,
        /// The note.
        note_id: Uuid,
        /// The template's key.
        template_key: String,
        /// The template version the note is written on.
        template_version: u32,
        /// The saved fields.
        fields: NoteFields,
    },
    /// To the assigned clinician: a patient submitted a form.
    #[serde(rename = "intake.submitted")]
    IntakeSubmitted {
        /// Protocol version.
        v: u32,
        /// The assignment (read the answers over REST).
        assignment_id: Uuid,
        /// Whose.
        patient_id: Uuid,
        /// Which form (`general_intake`, `phq9`, `gad7`).
        form: String,
        /// The total, for screenings.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        score: Option<ScreeningScore>,
        /// The severity band, for screenings.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        severity: Option<Severity>,
        /// When (UTC ms).
        submitted_at_ms: i64,
    },
    /// Something that needs attention (docs/PROTOCOL.md, "Alerts"): raised live to its
    /// recipients' sessions, and sent again to each of their sessions when it connects, until
    /// someone acknowledges it. The same alert can arrive twice around a (re)connect: its
    /// `alert_id` says so.
    #[serde(rename = "alert")]
    Alert {
        /// Protocol version.
        v: u32,
        /// Its id: acknowledge it with `alert.ack`.
        alert_id: Uuid,
        /// What it is about.
        kind: AlertKind,
        /// Whether it escalates if nobody acknowledges it, and flags the patient until followed up.
        urgent: bool,
        /// The patient concerned (absent for a `sign_in_attack`, which is about no patient).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        patient_id: Option<Uuid>,
        /// The form, for the intake kinds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        assignment_id: Option<Uuid>,
        /// The clinician: who broke the glass, or whose patient submitted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        clinician_id: Option<Uuid>,
        /// The reminder, for `reminder_failed`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reminder_id: Option<Uuid>,
        /// What happened, for `sign_in_attack`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sign_in_attack: Option<SignInAttack>,
        /// Escalation steps taken: 0 as raised, 1 and up when it reached the on-call list.
        #[serde(default)]
        escalation_step: u32,
        /// When it was raised (UTC ms).
        at_ms: i64,
    },
    /// An alert was acknowledged (or its follow-up documented): to every recipient, so it
    /// clears on every device.
    #[serde(rename = "alert.updated")]
    AlertUpdated {
        /// Protocol version.
        v: u32,
        /// The alert.
        alert_id: Uuid,
        /// Where it stands now.
        state: AlertState,
        /// Who acknowledged it (or documented its follow-up).
        by: Uuid,
        /// When (UTC ms).
        at_ms: i64,
    },
    /// A conversation's next handshake or application message, in its order.
    #[serde(rename = "mls.message")]
    MlsMessage {
        /// Protocol version.
        v: u32,
        /// The conversation.
        conversation_id: Uuid,
        /// Its place in the conversation (1, 2, ...): process in this order, ignore repeats.
        seq: u64,
        /// `commit` or `application`.
        kind: MlsKind,
        /// The device that sent it.
        sender_device: Uuid,
        /// Base64 of the `MlsMessageOut`.
        message: String,
    },
    /// The attached device was added to a conversation: join it from this Welcome.
    #[serde(rename = "mls.welcome")]
    MlsWelcome {
        /// Protocol version.
        v: u32,
        /// The conversation.
        conversation_id: Uuid,
        /// The seq of the commit that added the device: process the conversation's messages
        /// after it.
        seq: u64,
        /// Base64 of the Welcome's `MlsMessageOut`.
        welcome: String,
        /// Base64 of the group's ratchet tree (TLS encoding) after that commit.
        ratchet_tree: String,
    },
    /// A commit or application message was accepted, with its place.
    #[serde(rename = "mls.accepted")]
    MlsAccepted {
        /// Protocol version.
        v: u32,
        /// The request it answers.
        id: String,
        /// The conversation.
        conversation_id: Uuid,
        /// Its seq.
        seq: u64,
        /// The conversation's epoch after it.
        epoch: u64,
    },
    /// A commit lost the race for its epoch: clear the pending commit, process the
    /// conversation's messages up to `epoch`, and commit again.
    #[serde(rename = "mls.stale_epoch")]
    MlsStaleEpoch {
        /// Protocol version.
        v: u32,
        /// The request it answers.
        id: String,
        /// The conversation.
        conversation_id: Uuid,
        /// The conversation's current epoch.
        epoch: u64,
    },
    /// How far one account of a conversation has got: its devices took in messages through
    /// `delivered_seq`, the person read through `read_seq`. Each is only ever raised; a field
    /// left out is unchanged. Sent to the sender's device when a message is taken in, and to
    /// every member device when a person reads.
    #[serde(rename = "mls.receipt")]
    MlsReceipt {
        /// Protocol version.
        v: u32,
        /// The conversation.
        conversation_id: Uuid,
        /// The account.
        user_id: Uuid,
        /// Taken in by one of its devices through this seq.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delivered_seq: Option<u64>,
        /// Read by the person through this seq.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        read_seq: Option<u64>,
    },
    /// The attached device has few one-time KeyPackages left: upload more.
    #[serde(rename = "mls.key_packages_low")]
    MlsKeyPackagesLow {
        /// Protocol version.
        v: u32,
        /// The device.
        device_id: Uuid,
        /// One-time KeyPackages left (the last-resort one not counted).
        remaining: u64,
    },
    /// A kind of frame this build does not know: a newer server's push, which an older client
    /// passes over rather than failing on (a terminal client outlives a server upgrade). Never
    /// sent.
    #[serde(other)]
    Unknown,
}

/// What an `mls.message` carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MlsKind {
    /// A commit (an MLS `PublicMessage`): the group's next epoch.
    Commit,
    /// An application message (an MLS `PrivateMessage`): ciphertext only the members can read.
    Application,
}

impl MlsKind {
    /// The stored name.
    pub const fn as_str(self) -> &'static str {
        match self {
            MlsKind::Commit => "commit",
            MlsKind::Application => "application",
        }
    }
}

impl ServerFrame {
    /// An error frame.
    pub fn error(id: Option<String>, code: ErrorCode) -> Self {
        ServerFrame::Error { v: VERSION, id, code, message: code.message().to_owned() }
    }

    /// An error frame with a more precise message (which must not quote the input).
    pub fn error_saying(id: Option<String>, code: ErrorCode, message: String) -> Self {
        ServerFrame::Error { v: VERSION, id, code, message }
    }

    /// An ack frame.
    pub fn ack(id: String) -> Self {
        ServerFrame::Ack { v: VERSION, id }
    }

    /// The request this frame answers: `ack`, `error` (when the request parsed) and the
    /// response frames repeat its id; pushes carry none.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            ServerFrame::Ack { id, .. }
            | ServerFrame::ScheduleSnapshot { id, .. }
            | ServerFrame::IntakeForm { id, .. }
            | ServerFrame::NoteDraft { id, .. }
            | ServerFrame::MlsAccepted { id, .. }
            | ServerFrame::MlsStaleEpoch { id, .. } => Some(id),
            ServerFrame::Error { id, .. } => id.as_deref(),
            ServerFrame::Welcome { .. }
            | ServerFrame::ScheduleChanged { .. }
            | ServerFrame::IntakeSubmitted { .. }
            | ServerFrame::Alert { .. }
            | ServerFrame::AlertUpdated { .. }
            | ServerFrame::MlsMessage { .. }
            | ServerFrame::MlsWelcome { .. }
            | ServerFrame::MlsReceipt { .. }
            | ServerFrame::MlsKeyPackagesLow { .. }
            | ServerFrame::Unknown => None,
        }
    }

    /// The JSON text of the frame.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"v":1,"type":"error","code":"internal_error","message":"internal error"}"#.to_owned()
        })
    }
}

/// Why a frame or request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not a JSON object of a known type with the right fields.
    MalformedFrame,
    /// `v` is not a version this server speaks.
    UnsupportedVersion,
    /// Larger than the frame limit.
    FrameTooLarge,
    /// Binary frames are not used.
    BinaryNotSupported,
    /// Authentication was already done, or is needed first.
    UnexpectedAuth,
    /// The permission matrix refuses this.
    Forbidden,
    /// Staff must prove a second factor first.
    MfaRequired,
    /// No such thing.
    NotFound,
    /// The answers break a rule of the form (the message names the item, never the value).
    InvalidAnswer,
    /// The form was already submitted.
    AlreadySubmitted,
    /// A follow-up note must have 1 to 2,000 characters.
    InvalidFollowUp,
    /// A note's field breaks its template's rule (the message names the field, never the value).
    InvalidNote,
    /// The note is signed: it never changes again (an addendum corrects it).
    NoteLocked,
    /// The MLS message, commit or KeyPackage does not validate (or names a device that may
    /// not be in the conversation).
    InvalidMls,
    /// Attach a device to the session first.
    NoDevice,
    /// Too many requests of this kind: retry later.
    RateLimited,
    /// A dependency is down (or the audit trail cannot record the access): retry later.
    Unavailable,
    /// Our bug.
    InternalError,
}

impl ErrorCode {
    /// The code as the wire spells it (`not_found`).
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedFrame => "malformed_frame",
            ErrorCode::UnsupportedVersion => "unsupported_version",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::BinaryNotSupported => "binary_not_supported",
            ErrorCode::UnexpectedAuth => "unexpected_auth",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::MfaRequired => "mfa_required",
            ErrorCode::NotFound => "not_found",
            ErrorCode::InvalidAnswer => "invalid_answer",
            ErrorCode::AlreadySubmitted => "already_submitted",
            ErrorCode::InvalidFollowUp => "invalid_follow_up",
            ErrorCode::InvalidNote => "invalid_note",
            ErrorCode::NoteLocked => "note_locked",
            ErrorCode::InvalidMls => "invalid_mls",
            ErrorCode::NoDevice => "no_device",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::InternalError => "internal_error",
        }
    }

    /// A sentence for people.
    pub const fn message(self) -> &'static str {
        match self {
            ErrorCode::MalformedFrame => "the frame is not a valid request",
            ErrorCode::UnsupportedVersion => "unsupported protocol version",
            ErrorCode::FrameTooLarge => "the frame is too large",
            ErrorCode::BinaryNotSupported => "binary frames are not supported",
            ErrorCode::UnexpectedAuth => "unexpected auth frame",
            ErrorCode::Forbidden => "not allowed",
            ErrorCode::MfaRequired => "prove a second factor first",
            ErrorCode::NotFound => "not found",
            ErrorCode::InvalidAnswer => "an answer breaks a rule of the form",
            ErrorCode::AlreadySubmitted => "the form was already submitted",
            ErrorCode::InvalidFollowUp => "a follow-up note must have 1 to 2,000 characters",
            ErrorCode::InvalidNote => "a field breaks a rule of the note's template",
            ErrorCode::NoteLocked => "the note is signed and locked; add an addendum instead",
            ErrorCode::InvalidMls => "the MLS message is not valid for this conversation",
            ErrorCode::NoDevice => "attach a device to this session first",
            ErrorCode::RateLimited => "too many requests; retry later",
            ErrorCode::Unavailable => "temporarily unavailable; retry later",
            ErrorCode::InternalError => "internal error",
        }
    }
}

/// A change to an appointment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleChange {
    /// Booked.
    Created,
    /// Moved to another time.
    Rescheduled,
    /// Cancelled.
    Cancelled,
}

/// An appointment as the schedule shows it: ids and times, no PHI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Appointment {
    /// The appointment.
    pub id: Uuid,
    /// With whom.
    pub clinician_id: Uuid,
    /// For whom.
    pub patient_id: Uuid,
    /// Start (UTC ms).
    pub starts_at_ms: i64,
    /// End (UTC ms).
    pub ends_at_ms: i64,
    /// `booked` or `cancelled`.
    pub status: String,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_subscribe_frame_parses_and_unknown_fields_are_refused() {
        let frame = ClientFrame::parse(r#"{"v":1,"type":"schedule.subscribe","id":"r1","scope":"mine"}"#).unwrap();
        assert_eq!(frame.request_id(), Some("r1"));
        let extra = ClientFrame::parse(r#"{"v":1,"type":"schedule.subscribe","id":"r1","scope":"mine","x":1}"#);
        assert_eq!(extra, Err(ErrorCode::MalformedFrame));
    }

    #[test]
    fn other_versions_and_garbage_are_refused_without_echo() {
        assert_eq!(ClientFrame::parse(r#"{"v":2,"type":"activity"}"#), Err(ErrorCode::UnsupportedVersion));
        assert_eq!(ClientFrame::parse("not json"), Err(ErrorCode::MalformedFrame));
        let long_id = format!(r#"{{"v":1,"type":"schedule.unsubscribe","id":"{}","scope":"mine"}}"#, "x".repeat(65));
        assert_eq!(ClientFrame::parse(&long_id), Err(ErrorCode::MalformedFrame));
    }

    #[test]
    fn the_mls_requests_a_client_builds_parse_as_the_server_reads_them() {
        let conversation = Uuid::from_u128(7);
        let commit = ClientFrame::mls_commit("c1".into(), conversation, "AAAA".into(), None);
        let text = serde_json::to_string(&commit).unwrap();
        assert!(!text.contains("welcome"), "{text}");
        assert_eq!(ClientFrame::parse(&text), Ok(commit));
        let ack = ClientFrame::mls_ack("a1".into(), conversation, 9);
        let value: serde_json::Value = serde_json::to_value(&ack).unwrap();
        assert_eq!(
            value,
            serde_json::json!({ "v": 1, "type": "mls.ack", "id": "a1", "conversation_id": conversation, "seq": 9 })
        );
        assert_eq!(ClientFrame::parse(&value.to_string()), Ok(ack));
    }

    #[test]
    fn a_message_names_its_attachments_and_an_older_clients_send_still_parses() {
        let conversation = Uuid::from_u128(7);
        let plain = ClientFrame::mls_send("s1".into(), conversation, "AAAA".into());
        let text = serde_json::to_string(&plain).unwrap();
        assert!(!text.contains("attachments"), "an older server reads what a new client sends: {text}");
        let older =
            format!(r#"{{"v":1,"type":"mls.send","id":"s1","conversation_id":"{conversation}","message":"AAAA"}}"#);
        assert_eq!(ClientFrame::parse(&older), Ok(plain));
        let carrying = ClientFrame::mls_send_with("s2".into(), conversation, "AAAA".into(), vec![Uuid::from_u128(9)]);
        let text = serde_json::to_string(&carrying).unwrap();
        assert_eq!(ClientFrame::parse(&text), Ok(carrying));
    }

    #[test]
    fn a_receipt_leaves_out_what_it_does_not_change() {
        let (conversation, user) = (Uuid::from_u128(7), Uuid::from_u128(8));
        let read = ServerFrame::MlsReceipt {
            v: VERSION,
            conversation_id: conversation,
            user_id: user,
            delivered_seq: None,
            read_seq: Some(4),
        };
        let text = read.to_text();
        assert!(!text.contains("delivered_seq"), "{text}");
        assert_eq!(serde_json::from_str::<ServerFrame>(&text).unwrap(), read);
        let asked = ClientFrame::mls_read("r1".into(), conversation, 4);
        assert_eq!(ClientFrame::parse(&serde_json::to_string(&asked).unwrap()), Ok(asked));
    }

    #[test]
    fn a_frame_of_a_newer_kind_is_passed_over_not_refused() {
        let newer = r#"{"v":1,"type":"mls.something_new","conversation_id":"00000000-0000-0000-0000-000000000007"}"#;
        assert_eq!(serde_json::from_str::<ServerFrame>(newer).unwrap(), ServerFrame::Unknown);
        // A known kind with a broken field is still an error.
        assert!(serde_json::from_str::<ServerFrame>(r#"{"v":1,"type":"mls.receipt","user_id":7}"#).is_err());
    }

    #[test]
    fn answers_name_their_request_and_pushes_none() {
        assert_eq!(ServerFrame::ack("r1".into()).request_id(), Some("r1"));
        assert_eq!(ServerFrame::error(None, ErrorCode::MalformedFrame).request_id(), None);
        let push = ServerFrame::MlsKeyPackagesLow { v: VERSION, device_id: Uuid::from_u128(1), remaining: 3 };
        assert_eq!(push.request_id(), None);
    }

    #[test]
    fn every_error_code_is_spelled_as_serde_writes_it() {
        use ErrorCode::*;
        let codes = [
            MalformedFrame,
            UnsupportedVersion,
            FrameTooLarge,
            BinaryNotSupported,
            UnexpectedAuth,
            Forbidden,
            MfaRequired,
            NotFound,
            InvalidAnswer,
            AlreadySubmitted,
            InvalidFollowUp,
            InvalidMls,
            NoDevice,
            RateLimited,
            Unavailable,
            InternalError,
        ];
        for code in codes {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }

    #[test]
    fn server_frames_carry_their_type_and_version() {
        let text = ServerFrame::error(Some("r1".into()), ErrorCode::Forbidden).to_text();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["type"], "error");
        assert_eq!(value["v"], 1);
        assert_eq!(value["code"], "forbidden");
    }
}
