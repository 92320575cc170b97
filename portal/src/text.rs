//! Every string the portal shows, in one place, so that a translation replaces this file and
//! nothing else. English (United States).

pub const PRODUCT: &str = "Confidant";
pub const LOADING: &str = "Loading…";
pub const SKIP_TO_CONTENT: &str = "Skip to content";

// Sign-in
pub const SIGN_IN: &str = "Sign in";
pub const SIGN_IN_INTRO: &str = "Sign in to your practice's secure portal.";
pub const EMAIL: &str = "Email";
pub const PASSWORD: &str = "Password";
pub const NEW_PASSWORD: &str = "New password";
pub const PASSWORD_HINT: &str = "At least 12 characters. A long phrase is easiest to remember.";
pub const TOTP_STEP_TITLE: &str = "Two-step verification";
pub const TOTP_STEP_INTRO: &str = "Enter the 6-digit code from your authenticator app.";
pub const TOTP_CODE: &str = "Authentication code";
pub const RECOVERY_CODE: &str = "Recovery code";
pub const USE_RECOVERY_CODE: &str = "Use a recovery code instead";
pub const USE_TOTP_CODE: &str = "Use a code from the authenticator app";
pub const VERIFY: &str = "Verify";
pub const HAVE_INVITATION: &str = "I have an invitation";
pub const BACK_TO_SIGN_IN: &str = "Back to sign-in";
pub const INVITATION_TITLE: &str = "Accept your invitation";
pub const INVITATION_INTRO: &str =
    "Enter the invitation code your practice gave you and choose a password for your account.";
pub const INVITATION_CODE: &str = "Invitation code";
pub const ACCEPT_INVITATION: &str = "Create my account";
pub const INVITATION_ACCEPTED: &str = "Your account is ready. Sign in with your email and new password.";
pub const CONNECTION_NOTE: &str = "This connection is encrypted. Never send health information by plain email.";

// TOTP enrollment
pub const ENROLL_TITLE: &str = "Set up two-step verification";
pub const ENROLL_INTRO: &str = "Your role needs a second step at every sign-in. Scan this code with an authenticator app (or type the key), then enter the 6-digit code it shows.";
pub const ENROLL_KEY: &str = "Key";
pub const ENROLL_QR_LABEL: &str = "QR code for your authenticator app";
pub const ENROLL_CONFIRM: &str = "Turn on two-step verification";
pub const RECOVERY_TITLE: &str = "Your recovery codes";
pub const RECOVERY_INTRO: &str =
    "Each code signs you in once if you lose your phone. Store them somewhere safe: they are shown only now.";
pub const RECOVERY_SAVED: &str = "I have saved my recovery codes";

// Session
pub const SIGN_OUT: &str = "Sign out";
pub const SIGN_OUT_EVERYWHERE: &str = "Sign out everywhere";
pub const IDLE_WARNING_TITLE: &str = "Are you still there?";
pub const IDLE_WARNING: &str = "For your privacy you will be signed out soon because of inactivity.";
pub const STAY_SIGNED_IN: &str = "Stay signed in";
pub const ENDED_TITLE: &str = "You are signed out";
pub const ENDED_IDLE: &str = "Your session ended after a time without activity, to protect your information.";
pub const ENDED_ABSOLUTE: &str = "Your session reached the longest time a session may last. Please sign in again.";
pub const ENDED_REVOKED: &str = "Your session was ended (signed out from another place, or the account was changed).";
pub const ENDED_SIGNED_OUT: &str = "You signed out. Nothing of your information stays on this page.";
pub const ENDED_UNKNOWN: &str = "Your session is no longer valid. Please sign in again.";
pub const SIGN_IN_AGAIN: &str = "Sign in again";
pub const RECONNECTING: &str = "Connection lost. Reconnecting…";

// Navigation
pub const NAV_LABEL: &str = "Main";
pub const NAV_HOME: &str = "Home";
pub const NAV_SCHEDULE: &str = "Schedule";
pub const NAV_PATIENTS: &str = "Patients";
pub const NAV_ALERTS: &str = "Alerts";
pub const NAV_USERS: &str = "Staff";
pub const NAV_BREAK_GLASS: &str = "Break-glass";
pub const NAV_AUDIT: &str = "Audit";
pub const NAV_PREFERENCES: &str = "Reminders";

// Patient
pub const PATIENT_HOME: &str = "Your portal";
pub const UPCOMING: &str = "Upcoming appointments";
pub const NO_UPCOMING: &str = "No upcoming appointments.";
pub const FORMS: &str = "Forms to fill in";
pub const NO_FORMS: &str = "No forms to fill in.";
pub const OPEN_FORM: &str = "Open";
pub const CONTINUE_FORM: &str = "Continue";
pub const FORM_SUBMITTED_ON: &str = "Submitted";
pub const SAVING: &str = "Saving…";
pub const SAVED: &str = "Saved";
pub const SAVE_FAILED: &str = "Not saved";
pub const SUBMIT: &str = "Submit";
pub const REQUIRED: &str = "Required";
pub const ANSWER_REQUIRED: &str = "Please answer this question.";
pub const BACK: &str = "Back";
pub const SUBMITTED_TITLE: &str = "Thank you";
pub const SUBMITTED_TEXT: &str = "Your answers were sent to your care team.";
pub const CRISIS_TITLE: &str = "If you are thinking about hurting yourself, help is available now";
pub const CRISIS_TEXT: &str = "Call or text 988 to reach the 988 Suicide & Crisis Lifeline, any time, day or night. If you are in immediate danger, call 911.";
pub const CRISIS_CLINICIAN: &str = "When you submit this form, your clinician is alerted at once.";
pub const CRISIS_ALERTED: &str = "Your clinician has been alerted and will follow up with you.";
pub const PREFERENCES_TITLE: &str = "Reminder preferences";
pub const EMAIL_REMINDERS: &str = "Send me appointment reminders by email";
pub const PGP_KEY: &str = "OpenPGP public key (optional)";
pub const PGP_HINT: &str =
    "With a key, reminders include the appointment's details, encrypted so only you can read them.";
pub const SAVE: &str = "Save";
pub const PREFERENCES_SAVED: &str = "Preferences saved.";

// Clinician and front desk
pub const MY_SCHEDULE: &str = "My schedule";
pub const PRACTICE_SCHEDULE: &str = "Practice schedule";
pub const DAY: &str = "Day";
pub const WEEK: &str = "Week";
pub const PREVIOUS: &str = "Previous";
pub const NEXT: &str = "Next";
pub const TODAY: &str = "Today";
pub const NO_APPOINTMENTS: &str = "No appointments in this period.";
pub const CANCELLED: &str = "Cancelled";
pub const PATIENTS: &str = "Patients";
pub const NO_PATIENTS: &str = "No patients yet.";
pub const CHART: &str = "Chart";
pub const DATE_OF_BIRTH: &str = "Date of birth";
pub const PHONE: &str = "Phone";
pub const INTAKE: &str = "Forms and scores";
pub const NOT_SUBMITTED: &str = "Not submitted yet";
pub const SCORE: &str = "Score";
pub const SEVERITY: &str = "Severity";
pub const ITEM9_FLAG: &str = "Item 9: thoughts of self-harm reported";
pub const SCORES_OVER_TIME: &str = "Scores over time";
pub const URGENT: &str = "Urgent";
pub const ALERTS: &str = "Alerts";
pub const NO_ALERTS: &str = "No open alerts.";
pub const ACKNOWLEDGE: &str = "Acknowledge";
pub const ACKNOWLEDGED: &str = "Acknowledged";
pub const FOLLOW_UP: &str = "Follow-up note";
pub const FOLLOW_UP_HINT: &str = "What you did (required to clear an urgent alert).";
pub const DOCUMENT_FOLLOW_UP: &str = "Save follow-up";
pub const ASSIGN_FORM: &str = "Assign a form";
pub const ASSIGN: &str = "Assign";
pub const TOAST_INTAKE: &str = "A form was submitted";
pub const TOAST_ALERT: &str = "Urgent: a patient needs attention";
pub const TOAST_SIGN_IN_ATTACK: &str = "Sign-in attack noticed: see Alerts";
pub const TOAST_BACKUP_FAILED: &str = "A scheduled backup failed: see Alerts";

// Sign-in attack alerts (owners)
pub const ATTACK_STUFFING: &str =
    "Credential stuffing: one address failed to sign in to several accounts, more often than a person does.";
pub const ATTACK_STUFFING_DONE: &str =
    "That address is locked out for a while; people signing in from elsewhere are not affected.";
pub const ATTACK_GUESSING: &str = "Password guessing: one account failed to sign in from many addresses.";
pub const ATTACK_GUESSING_DONE: &str = "Sign-ins to that account from addresses it has not used lately are locked out for a while; its owner can still sign in from their usual place.";
pub const ATTACK_FROM: &str = "From address";
pub const ATTACK_ACCOUNT: &str = "Account";
pub const ATTACK_NO_ACCOUNT: &str = "an email that is no account here";
pub const ATTACK_PATIENT_ACCOUNT: &str = "a patient's account";
pub const ATTACK_FAILURES: &str = "Failed sign-ins";
pub const ATTACK_WINDOW: &str = "No further alert for this source until";
pub const DISMISS: &str = "Dismiss";

// Front desk
pub const BOOK: &str = "Book an appointment";
pub const CLINICIAN: &str = "Clinician";
pub const PATIENT: &str = "Patient";
pub const STARTS: &str = "Starts";
pub const START_INVALID: &str = "Enter the date and time the appointment starts.";
pub const LENGTH_INVALID: &str = "Enter a length between 5 and 480 minutes.";
pub const CHOOSE_CLINICIAN: &str = "Choose the clinician.";
pub const CHOOSE_PATIENT: &str = "Choose the patient.";
pub const DURATION_MINUTES: &str = "Length (minutes)";
pub const WITH: &str = "with";
pub const FORM: &str = "Form";
pub const RESULTS_GO_TO: &str = "Clinician who reads the results";
pub const CHOOSE_A_FORM: &str = "Choose a form.";
pub const CHOOSE_A_CLINICIAN: &str = "Choose a clinician of the care team.";
pub const FORM_ASSIGNED: &str = "The form was assigned. The patient sees it when they sign in.";
pub const MINUTES: &str = "minutes";
pub const BOOKED: &str = "Booked.";
pub const RESCHEDULE: &str = "Reschedule";
pub const CANCEL_APPOINTMENT: &str = "Cancel appointment";
pub const SEND_REMINDER: &str = "Send reminder now";
pub const REMINDER_STATUS: &str = "Reminders";
pub const NEW_PATIENT: &str = "New patient";
pub const LEGAL_NAME: &str = "Legal name";
pub const PREFERRED_NAME: &str = "Preferred name";
pub const CREATE_PATIENT: &str = "Create patient";
pub const EDIT: &str = "Edit";
pub const EDIT_PATIENT: &str = "Edit the patient's details";
pub const INVITE_TO_PORTAL: &str = "Invite to the portal";
pub const INVITATION_CREATED: &str = "Give the patient this invitation code (it works once):";
pub const CHOOSE: &str = "Choose…";

// Owner
pub const USERS: &str = "Users and invitations";
pub const ROLE: &str = "Role";
pub const STATUS: &str = "Status";
pub const INVITE: &str = "Invite";
pub const DISABLE: &str = "Disable";
pub const CARE_TEAM: &str = "Care team";
pub const ADD_TO_CARE_TEAM: &str = "Add to care team";
pub const BREAK_GLASS: &str = "Break-glass access";
pub const AUDIT_STATUS: &str = "Audit trail";
pub const STAFF: &str = "Staff";
pub const RENAME: &str = "Rename";
pub const CONFIRM_DISABLE: &str = "Confirm: disable and sign out now";
pub const DISPLAY_NAME: &str = "Name as shown";
pub const DISPLAY_NAME_HINT: &str = "As patients and colleagues should see it, e.g. Dr. Ana Ruiz.";
pub const CREDENTIALS: &str = "Credentials";
pub const CREDENTIALS_HINT: &str = "Optional, shown after the name, e.g. PsyD or LCSW.";
pub const CHOOSE_A_ROLE: &str = "Choose a role.";
pub const NAME_REQUIRED: &str = "Enter the name as it should be shown.";
pub const INVITE_STAFF: &str = "Invite a member of staff";
pub const STAFF_INVITATION_CREATED: &str = "Give this invitation code to the new member of staff (it works once):";
pub const NO_TOTP_YET: &str = "No authenticator yet";
pub const BREAK_GLASS_EXPLAINED: &str = "Clinicians who opened a record outside their care team in the last 30 days, and why. New ones appear here as they happen.";
pub const NO_BREAK_GLASS: &str = "Nobody broke the glass in the last 30 days.";
pub const GRANT_ACTIVE: &str = "Open now";
pub const GRANT_EXPIRED: &str = "Ended";
pub const LAST_VERIFICATION: &str = "Verification";
pub const NOT_VERIFIED_YET: &str = "Not verified since this server started.";
pub const INTACT: &str = "Intact, verified";
pub const ENTRIES: &str = "entries";
pub const CHAINS: &str = "chains";
pub const BROKEN: &str = "Broken, found";
pub const VERIFYING: &str = "Verifying…";
pub const VERIFY_NOW: &str = "Verify now";
pub const CHAIN_HEADS: &str = "Newest signed checkpoints";
pub const CHECKPOINTS_SIGNED: &str = "signed checkpoints in the checkpoint files";
pub const CHAIN: &str = "Chain";
pub const SEQ: &str = "Entry";
pub const SIGNED_AT: &str = "Signed";
pub const HASH: &str = "Hash";

// Errors
pub const ERROR_PREFIX: &str = "Something went wrong";
pub const REQUEST_ID: &str = "Reference";
pub const NETWORK_ERROR: &str = "The server could not be reached. Check your connection and try again.";
pub const CONFLICT_BOOKING: &str = "This time overlaps another appointment of the clinician. Choose another time.";

/// The plain-words message for an error `code` of the API (docs/API.md), or `None` to show the
/// server's own message.
pub fn error_message(code: &str) -> Option<&'static str> {
    Some(match code {
        "invalid_credentials" => "The email or password is not right.",
        "invalid_mfa" => "That code is not right, or it was already used. Try the newest code.",
        "too_many_attempts" => "Too many attempts. Wait a few minutes, then try again.",
        "session_expired" | "unauthenticated" => "Your session has ended. Please sign in again.",
        "forbidden" => "You do not have access to this.",
        "mfa_required" => "Two-step verification is needed first.",
        "not_found" => "This item no longer exists.",
        "service_unavailable" => "The service is busy or partly down. Try again in a moment.",
        "internal_error" => "An unexpected error happened on the server.",
        "password_too_short" => "The password is too short: use at least 12 characters.",
        "password_too_long" => "The password is too long.",
        "password_too_common" => "This password is too common. Choose something harder to guess.",
        "password_contains_account_name" => "The password must not contain your email or name.",
        "invalid_grant" => "The invitation code is not valid or has expired.",
        "csrf" => "The request was refused as it did not come from this page. Reload and try again.",
        _ => return None,
    })
}

/// Short weekday names, Sunday first (as `Date.getDay()` counts).
pub const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
/// Short month names, January first.
pub const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// How a form's machine name reads.
pub fn form_title(form: &str) -> &'static str {
    match form {
        "phq9" => "PHQ-9 (mood)",
        "gad7" => "GAD-7 (anxiety)",
        "general_intake" => "General intake",
        _ => "Form",
    }
}

/// A form's short name (a chart's legend).
pub fn form_short(form: &str) -> &'static str {
    match form {
        "phq9" => "PHQ-9",
        "gad7" => "GAD-7",
        _ => form_title(form),
    }
}

/// How a severity band reads.
pub fn severity(band: &str) -> &'static str {
    match band {
        "minimal" => "Minimal",
        "mild" => "Mild",
        "moderate" => "Moderate",
        "moderately_severe" => "Moderately severe",
        "severe" => "Severe",
        _ => "—",
    }
}

/// How a role reads.
pub fn role(role: &str) -> &'static str {
    match role {
        "practice_owner" => "Practice owner",
        "clinician" => "Clinician",
        "front_desk" => "Front desk",
        "billing" => "Billing",
        "patient" => "Patient",
        _ => "Account",
    }
}

/// How an account's state reads.
pub fn account_status(status: &str) -> &'static str {
    match status {
        "invited" => "Invited",
        "active" => "Active",
        "disabled" => "Disabled",
        _ => "Unknown",
    }
}

/// How a reminder's state reads.
pub fn reminder_state(state: &str) -> &'static str {
    match state {
        "queued" => "Waiting to be sent",
        "sending" => "Sending",
        "sent" => "Sent",
        "failed" => "Could not be sent",
        "withdrawn" => "Withdrawn",
        _ => "Unknown",
    }
}

/// Why a reminder failed or was withdrawn, in plain words.
pub fn reminder_reason(code: &str) -> &'static str {
    match code {
        "no_email" => "the patient has no email address",
        "bad_address" => "the patient's email address is not valid",
        "reminders_off" => "the patient turned email reminders off",
        "smtp_unreachable" | "smtp_timeout" | "mailer_stopped" => "the mail server could not be reached",
        "smtp_tls_failed" => "the mail server offered no secure connection",
        "smtp_rejected" => "the mail server refused it",
        "smtp_deferred" => "the mail server asked to try later",
        "smtp_protocol" => "the mail server answered unexpectedly",
        "outcome_unknown" => "it is not known whether it arrived",
        "appointment_changed" => "the appointment changed",
        "appointment_missing" => "the appointment no longer exists",
        _ => "see the server's logs",
    }
}

/// After a sign-in attack's failure count: how many were allowed.
pub fn attack_allowed(threshold: u32) -> String {
    format!("(more than the {threshold} allowed)")
}

/// How an alert kind reads.
pub fn alert_kind(kind: &str) -> &'static str {
    match kind {
        "phq9_item9" => "PHQ-9 item 9: thoughts of self-harm",
        "phq9_severe" => "PHQ-9 in the severe band",
        "gad7_severe" => "GAD-7 in the severe band",
        "intake_submitted" => "Form submitted",
        "break_glass" => "Break-glass access granted",
        "reminder_failed" => "A reminder could not be delivered",
        "sign_in_attack" => "Sign-in attack",
        "backup_failed" => "A scheduled backup failed",
        _ => "Alert",
    }
}

// Messaging (end-to-end encrypted; messenger.rs, screens/messages.rs).
pub const NAV_MESSAGES: &str = "Messages";
pub const SHARED_DEVICE: &str = "This is a shared computer: don't keep my messages here";
pub const SHARED_DEVICE_NOTE: &str =
    "Signing out then removes this browser from your devices and erases its copy of your messages.";
pub const MESSAGES_TITLE: &str = "Messages";
pub const MESSAGES_INTRO: &str = "Messages are encrypted in your browser. Only the devices listed with each conversation can read them; the practice's server cannot.";
pub const MESSAGING_STARTING: &str = "Opening your secure messages…";
pub const MESSAGING_FAILED: &str = "Secure messaging could not start in this browser";
pub const MESSAGING_REVOKED: &str = "This browser was removed from your devices, so its copy of your messages was erased. Sign out and sign in again to set it up anew.";
pub const MESSAGING_OFFLINE: &str = "Not connected. Your message was not sent; try again in a moment.";
pub const NO_CONVERSATIONS: &str = "No conversations yet.";
pub const CONVERSATIONS: &str = "Conversations";
pub const NEW_CONVERSATION: &str = "New conversation";
pub const MESSAGE_CARE_TEAM: &str = "Message your care team";
pub const MESSAGE_PATIENT: &str = "Message a patient";
pub const MESSAGE_STAFF: &str = "Message a colleague";
pub const START: &str = "Start";
pub const YOUR_CARE_TEAM: &str = "Your care team";
pub const STAFF_CONVERSATION: &str = "Staff";
pub const UNREAD: &str = "unread";
pub const BACK_TO_CONVERSATIONS: &str = "Back to conversations";
pub const WHO_CAN_READ: &str = "Who can read this conversation";
pub const DEVICE_ONE: &str = "device";
pub const DEVICES_MANY: &str = "devices";
pub const YOU: &str = "You";
/// Where one of the person's messages stands with the others in the conversation.
pub const RECEIPT_SENT: &str = "Sent";
pub const RECEIPT_DELIVERED: &str = "Delivered";
pub const RECEIPT_READ: &str = "Read";
pub const SOMEONE: &str = "Someone";
pub const UNDECRYPTABLE: &str = "This message could not be decrypted on this device.";
pub const MEMBERSHIP_CHANGED: &str = "The devices in this conversation changed.";
pub const LEFT_CONVERSATION: &str = "This browser is no longer in this conversation: what it received stays here, and nothing more can be sent or received in it.";
pub const MESSAGE_LABEL: &str = "Message";
pub const SEND: &str = "Send";
pub const SHOWING_NEWEST: &str = "Showing the newest messages of";
pub const YOUR_DEVICES: &str = "Your devices";
pub const THIS_BROWSER: &str = "This browser";
pub const REGISTERED: &str = "Added";
pub const REVOKE: &str = "Remove";
pub const REVOKE_NOTE: &str =
    "Remove a device you lost or no longer use: it receives nothing more, and your conversations drop it.";
pub const EMPTY_MESSAGE: &str = "Write a message first.";
pub const ATTACH_FILE: &str = "Attach an image or PDF (optional)";
pub const ATTACHMENT_TOO_LARGE: &str = "This file is larger than 10 MB; choose a smaller one.";
pub const ATTACHMENT_KIND: &str = "Only images and PDF files can be attached.";
pub const OPEN_FILE: &str = "Open";
pub const SAVE_FILE: &str = "Save";
pub const FILE_UNREADABLE: &str = "This file could not be opened: it did not match what the message says it is.";
pub const KB: &str = "KB";
pub const VAULT_REFUSED: &str = "this browser refused to keep your messages (its storage may be full); they stay on the server for this device until it can";

// Clinical notes
pub const NAV_COSIGN: &str = "Co-sign";
pub const NAV_TEMPLATES: &str = "Templates";
pub const NOTES: &str = "Notes";
pub const NO_NOTES: &str = "No notes yet.";
pub const LATE_ENTRY: &str = "Late entry";
pub const CONTINUE_NOTE: &str = "Continue";
pub const OPEN_NOTE: &str = "Open";
pub const CHOOSE_A_TEMPLATE: &str = "Choose a template.";
pub const NOTE_TEMPLATE: &str = "Template";
pub const NOTE_SESSION: &str = "Session (leave empty for a note about no session)";
pub const BEGIN_NOTE: &str = "Begin a note";
pub const COSIGN_QUEUE: &str = "Notes to co-sign";
pub const COSIGN_INTRO: &str =
    "Notes of the clinicians you supervise. Each becomes part of the record only once you co-sign it.";
pub const COSIGN_EMPTY: &str = "No note awaits your co-signature.";
pub const SIGNED_ON: &str = "signed";
pub const REVIEW_AND_COSIGN: &str = "Review and co-sign";
pub const TEMPLATES: &str = "Note templates";
pub const NO_TEMPLATES: &str = "No templates.";
pub const VERSION: &str = "version";
pub const BUILT_IN: &str = "built in";
pub const PRACTICE_OWN: &str = "the practice's own";
pub const BACK_TO_CHART: &str = "Back to the chart";
pub const DATE_OF_SERVICE: &str = "Date of service";
pub const NOTE_KIND: &str = "Kind";
pub const NOTE_STATUS: &str = "Status";
pub const AUTHOR: &str = "Written by";
pub const SIGNED: &str = "Signed";
pub const COSIGNER: &str = "Supervisor";
pub const COSIGNED_ON: &str = "co-signed";
pub const AWAITING: &str = "awaiting co-signature";
pub const SINCE_LAST_NOTE: &str = "since the last note";
pub const NOTE_CONTEXT: &str = "When this note was begun";
pub const DIAGNOSIS: &str = "Diagnosis";
pub const GOALS: &str = "Goals";
pub const CODE_NEEDED: &str = "Enter the 6-digit code from your authenticator app.";
pub const UNSAVED: &str = "Not saved yet…";
pub const SIGN_NOTE: &str = "Sign and lock";
pub const SIGN_NOTE_HINT: &str =
    "Signing locks the note for good: afterwards it can only be corrected by a signed addendum.";
pub const SIGN_AND_LOCK: &str = "Sign note";
pub const SECTION_REQUIRED: &str = "This section is required before the note is signed.";
pub const ONE_PER_LINE: &str = "One per line.";
pub const NOTE_LOCKED: &str = "Signed and locked. Corrections are added as addenda below.";
pub const NOT_FILLED_IN: &str = "Not filled in";
pub const SIGNATURE_DIGEST: &str = "Signature digest";
pub const DOWNLOAD_PDF: &str = "Download PDF (release of records)";
pub const ADDENDA: &str = "Addenda";
pub const NO_ADDENDA: &str = "No addenda.";
pub const ADDENDUM: &str = "Addendum";
pub const ADDENDUM_NEEDED: &str = "Write the addendum first.";
pub const ADD_ADDENDUM: &str = "Add an addendum";
pub const ADDENDUM_HINT: &str = "An addendum is appended to the note, signed, and never replaces it.";
pub const SIGN_ADDENDUM: &str = "Sign addendum";
pub const COSIGN: &str = "Co-sign";
pub const COSIGN_HINT: &str = "Your co-signature makes this note final.";
pub const COSIGN_NOTE: &str = "Co-sign note";
pub const NO_RESULTS_YET: &str = "No results yet.";
pub const RESULTS: &str = "results";
pub const ONE_RESULT: &str = "1 result";
pub const DATE: &str = "Date";
pub const UNCHANGED: &str = "unchanged since the first";
pub const UP: &str = "up";
pub const DOWN: &str = "down";
pub const SINCE_FIRST: &str = "since the first";
pub const LATEST: &str = "latest";

pub const NEW_VERSION: &str = "New version";
pub const NEW_VERSION_OF: &str = "New version of";
pub const ADD_TEMPLATE: &str = "Add a template";
pub const ADD_TEMPLATE_HINT: &str = "The practice's own template: name it, choose the kind of note it makes, and add its sections in order. Notes already written keep the version they were begun on.";
pub const TEMPLATE_NAME: &str = "Template name";
pub const TEMPLATE_KIND: &str = "Kind of note";
pub const CHOOSE_A_KIND: &str = "Choose the kind of note this template makes.";
pub const TEMPLATE_NAME_LETTERS: &str = "Give the template a name with letters or digits.";
pub const TEMPLATE_NAME_TAKEN: &str =
    "A template of this name exists: choose another name, or use that template's New version button.";
pub const TEMPLATE_SAVED: &str = "Template saved:";
pub const SAVE_TEMPLATE: &str = "Save template";
pub const SAVE_VERSION: &str = "Save new version";
pub const CANCEL: &str = "Cancel";
pub const ADD_SECTION: &str = "Add a section";
pub const SECTION: &str = "Section";
pub const SECTION_LABEL: &str = "Label";
pub const SECTION_TYPE: &str = "Type";
pub const SECTION_REQUIRED_TO_SIGN: &str = "Required before the note is signed";
pub const CHOICES: &str = "Choices";
pub const CHOICES_HINT: &str = "One per line: 2 to 30 different choices.";
pub const CHOICE: &str = "Choice";
pub const REMOVE_SECTION: &str = "Remove section";
pub const SUPERVISION: &str = "Supervision";
pub const SUPERVISION_INTRO: &str =
    "A supervised (pre-licensed) clinician's notes become final only once their supervisor co-signs them.";
pub const SUPERVISION_NEEDS_TWO: &str = "Supervision needs at least two active clinicians.";
pub const SUPERVISOR: &str = "Supervisor";
pub const NO_SUPERVISOR: &str = "Not supervised";
pub const NOT_SUPERVISED: &str = "Not supervised";
pub const SUPERVISED_BY: &str = "Supervised by";
pub const SUPERVISES: &str = "Supervises";
pub const NAV_MY_NOTES: &str = "My notes";
pub const MY_NOTES: &str = "My notes";
pub const MY_NOTES_INTRO: &str = "The progress notes your clinicians have signed, with any corrections added since.";
pub const NO_SHARED_NOTES: &str = "No notes are shared with you yet.";
pub const READ_NOTE: &str = "Read";
pub const BACK_TO_MY_NOTES: &str = "Back to my notes";

/// How a template section's type reads where it is chosen.
pub fn section_type(kind: &str) -> &'static str {
    match kind {
        "text" => "Text",
        "choice" => "One choice",
        "multi_choice" => "Several choices",
        "date" => "Date",
        "list" => "List",
        _ => "Field",
    }
}

/// How a note's kind reads.
pub fn note_kind(kind: &str) -> &'static str {
    match kind {
        "progress" => "Progress note",
        "intake_assessment" => "Intake assessment",
        "treatment_plan" => "Treatment plan",
        "discharge_summary" => "Discharge summary",
        "psychotherapy" => "Psychotherapy note",
        _ => "Note",
    }
}

/// How a note's status reads.
pub fn note_status(status: &str) -> &'static str {
    match status {
        "draft" => "Draft",
        "awaiting_cosign" => "Awaiting co-signature",
        "final" => "Signed",
        _ => "—",
    }
}

/// How a template section's type reads.
pub fn section_kind(kind: &str) -> &'static str {
    match kind {
        "text" => "text",
        "choice" => "one choice",
        "multi_choice" => "several choices",
        "date" => "date",
        "list" => "list",
        _ => "field",
    }
}
