//! Alerts as the wire carries them: what an alert is about ([`AlertKind`]), where it stands
//! ([`AlertState`]), the list entry of `GET /api/v1/alerts` ([`AlertView`]), the follow-up
//! note a clinician documents ([`FollowUpNote`]) and what a sign-in attack alert reports
//! ([`SignInAttack`]). An alert beside a patient id is PHI (a patient reported thoughts of
//! self-harm), so none of these shows its content in `Debug`. A sign-in attack alert names no
//! patient: it is about the practice's accounts, for its owners.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// What an alert is about.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// A patient answered PHQ-9 item 9 (thoughts of self-harm) above zero, whatever the total.
    Phq9Item9,
    /// A PHQ-9 total in the severe band (20 to 27).
    Phq9Severe,
    /// A GAD-7 total in the severe band (15 to 21).
    Gad7Severe,
    /// A patient submitted a form.
    IntakeSubmitted,
    /// A clinician opened a patient's record outside their care team (to owners).
    BreakGlass,
    /// An appointment reminder could not be delivered (to front desk and owners).
    ReminderFailed,
    /// Sign-in failures formed an attack pattern (credential stuffing from one address, or
    /// guessing one account's password from many): to owners. About no patient.
    SignInAttack,
    /// A scheduled backup failed (to owners; once per run of failures). About no patient: what
    /// failed is in `/readyz` and the server's log.
    BackupFailed,
}

impl AlertKind {
    /// Every kind.
    pub const ALL: [AlertKind; 8] = [
        AlertKind::Phq9Item9,
        AlertKind::Phq9Severe,
        AlertKind::Gad7Severe,
        AlertKind::IntakeSubmitted,
        AlertKind::BreakGlass,
        AlertKind::ReminderFailed,
        AlertKind::SignInAttack,
        AlertKind::BackupFailed,
    ];

    /// Urgent alerts escalate when nobody acknowledges them in time, and flag the patient's
    /// forms and chart until a clinician documented follow-up.
    pub const fn is_urgent(self) -> bool {
        matches!(self, AlertKind::Phq9Item9 | AlertKind::Phq9Severe | AlertKind::Gad7Severe)
    }

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AlertKind::Phq9Item9 => "phq9_item9",
            AlertKind::Phq9Severe => "phq9_severe",
            AlertKind::Gad7Severe => "gad7_severe",
            AlertKind::IntakeSubmitted => "intake_submitted",
            AlertKind::BreakGlass => "break_glass",
            AlertKind::ReminderFailed => "reminder_failed",
            AlertKind::SignInAttack => "sign_in_attack",
            AlertKind::BackupFailed => "backup_failed",
        }
    }

    /// Whether alerts of this kind are about a patient (and so carry a `patient_id` and are
    /// audited as an access to that patient's PHI). A sign-in attack is about accounts, a
    /// failed backup about the practice.
    pub const fn is_about_a_patient(self) -> bool {
        !matches!(self, AlertKind::SignInAttack | AlertKind::BackupFailed)
    }
}

impl std::fmt::Debug for AlertKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AlertKind(..)")
    }
}

/// Where an alert stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    /// Nobody acknowledged it yet: every recipient's sessions receive it when they connect.
    Open,
    /// A recipient acknowledged it (escalation stopped); an urgent alert still awaits a
    /// clinician's follow-up note.
    Acknowledged,
    /// Done: acknowledged, and for an urgent alert its follow-up documented.
    Resolved,
}

/// What a clinician did after an urgent alert (called the patient, arranged a session): 1 to
/// 2,000 characters. Clinical content, so `Debug` does not show it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct FollowUpNote(String);

impl FollowUpNote {
    /// The longest note, in characters.
    pub const MAX_CHARS: usize = 2000;

    /// A note, if it has 1 to [`Self::MAX_CHARS`] characters once trimmed.
    pub fn new(text: &str) -> Option<Self> {
        let text = text.trim();
        (1..=Self::MAX_CHARS).contains(&text.chars().count()).then(|| FollowUpNote(text.to_owned()))
    }

    /// Whether it keeps the rule of [`Self::new`] (a parsed note may not).
    pub fn is_valid(&self) -> bool {
        let text = self.0.trim();
        (1..=Self::MAX_CHARS).contains(&text.chars().count()) && text.len() == self.0.len()
    }

    /// The text.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for FollowUpNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FollowUpNote(..)")
    }
}

/// The pattern a sign-in attack alert reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttackPattern {
    /// One address failed to sign in more often (over any accounts) than one person does:
    /// credentials tried in bulk. The address is locked out for a while.
    CredentialStuffing,
    /// One account failed to sign in more often than its cap, from many addresses: someone
    /// guessing its password. Addresses it has not signed in from lately are locked out.
    AccountGuessing,
}

/// What a `sign_in_attack` alert reports: the pattern, where it came from, how many failures
/// set it off and the window it covers. Never a password or an email address: an account is
/// named by its id, and only when the email tried is an account's.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInAttack {
    /// Which pattern.
    pub pattern: AttackPattern,
    /// For credential stuffing: the address the failures came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_ip: Option<IpAddr>,
    /// For account guessing: the account whose password was guessed (absent when the email
    /// tried is no account's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<Uuid>,
    /// Failed sign-ins counted when the pattern was noticed.
    pub failures: u32,
    /// The failures allowed before it counts as a pattern (the lock's threshold).
    pub threshold: u32,
    /// The window this alert covers (UTC ms, start included): the same pattern from the same
    /// source raises no other alert before `window_ends_at_ms`.
    pub window_starts_at_ms: i64,
    /// The end of that window (excluded).
    pub window_ends_at_ms: i64,
}

impl std::fmt::Debug for SignInAttack {
    /// The pattern and counts only: an address is an identifier.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignInAttack")
            .field("pattern", &self.pattern)
            .field("failures", &self.failures)
            .finish_non_exhaustive()
    }
}

/// An alert as `GET /api/v1/alerts` and a patient's alert list show it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertView {
    /// Its id.
    pub alert_id: Uuid,
    /// What it is about.
    pub kind: AlertKind,
    /// Whether it escalates and flags the patient until followed up.
    pub urgent: bool,
    /// The patient concerned (absent for a `sign_in_attack`, which is about no patient).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patient_id: Option<Uuid>,
    /// The form, for the intake kinds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignment_id: Option<Uuid>,
    /// The clinician: who broke the glass, or whose patient submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clinician_id: Option<Uuid>,
    /// The reminder, for `reminder_failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminder_id: Option<Uuid>,
    /// What happened, for `sign_in_attack`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sign_in_attack: Option<SignInAttack>,
    /// When it was raised (UTC ms).
    pub raised_at_ms: i64,
    /// Where it stands.
    pub state: AlertState,
    /// Escalation steps taken (0: none).
    pub escalation_step: u32,
    /// Who acknowledged it, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<Uuid>,
    /// When (UTC ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_at_ms: Option<i64>,
    /// The follow-up note, once documented.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<FollowUpNote>,
    /// Who documented it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followed_up_by: Option<Uuid>,
    /// When (UTC ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followed_up_at_ms: Option<i64>,
}

impl std::fmt::Debug for AlertView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertView")
            .field("alert_id", &self.alert_id)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}
