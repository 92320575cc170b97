//! The REST API as the portal calls it: same origin, the session cookie sent by the browser
//! (never seen by this code), the anti-CSRF header on every request, nothing cached, and every
//! failure turned into a [`Failure`] that a screen shows in plain words with its request id.
//!
//! Every write the server keeps answers for (`confidant_protocol::retry`) carries a fresh
//! `Idempotency-Key`, and is retried with the same key when its answer was lost (the network, a
//! node stopping, a write still in progress): the retry gets the first answer, so a booking
//! whose answer never arrived is neither lost nor made twice.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Request, RequestCache, RequestCredentials, RequestInit, RequestMode, Response};

use crate::text;

/// The header the server requires on every cookie-authenticated request that changes state. A
/// cross-site page cannot send it without a CORS preflight, which the server never allows.
pub const CSRF_HEADER: &str = "X-Confidant-Csrf";

/// A refused or failed request.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// HTTP status, 0 when the server could not be reached.
    pub status: u16,
    /// The API's stable error code.
    pub code: String,
    /// What to show.
    pub message: String,
    /// The field at fault, for `invalid_field`.
    pub field: Option<String>,
    /// The server's request id, for support.
    pub request_id: Option<String>,
}

impl Failure {
    fn network() -> Self {
        Self { status: 0, code: "network".into(), message: text::NETWORK_ERROR.into(), field: None, request_id: None }
    }

    /// A problem found on this page before anything was sent, shown at `field`.
    pub fn on_field(field: &str, message: &str) -> Self {
        Self {
            status: 0,
            code: "invalid_field".into(),
            message: message.into(),
            field: Some(field.into()),
            request_id: None,
        }
    }

    /// Whether the session is gone (the screen must say so and show nothing else).
    pub fn ends_session(&self) -> bool {
        self.status == 401 && matches!(self.code.as_str(), "unauthenticated" | "session_expired")
    }

    /// The message and reference, as one line.
    pub fn describe(&self) -> String {
        match &self.request_id {
            Some(id) => format!("{} ({}: {id})", self.message, text::REQUEST_ID),
            None => self.message.clone(),
        }
    }

    /// This failure's message when it is about `field`.
    pub fn at(&self, field: &str) -> Option<String> {
        (self.field.as_deref() == Some(field)).then(|| self.message.clone())
    }
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    code: String,
    #[serde(default)]
    field: Option<String>,
    #[serde(default)]
    request_id: Option<String>,
}

/// What the tab does when the server answers, set once by the session module (which sits above
/// this one): an answer is activity the server saw; a 401 for the session means it is gone.
#[derive(Clone, Copy)]
pub struct Hooks {
    pub answered: fn(),
    pub session_gone: fn(),
}

thread_local! {
    static HOOKS: std::cell::RefCell<Option<Hooks>> = const { std::cell::RefCell::new(None) };
}

/// Sets the [`Hooks`].
pub fn on_answers(hooks: Hooks) {
    HOOKS.with(|h| *h.borrow_mut() = Some(hooks));
}

/// Something went wrong: the session's end is reported to the portal, everything else goes
/// back to the screen.
pub type Result<T> = std::result::Result<T, Failure>;

/// How long to wait before each retry of a write whose answer was lost.
const RETRY_DELAYS_MS: [i32; 3] = [300, 1_000, 2_500];

impl Failure {
    /// Whether the same write, with the same key, may get an answer if sent again.
    fn worth_retrying(&self) -> bool {
        matches!(self.status, 0 | 503) || (self.status == 409 && self.code == "idempotency_key_in_progress")
    }
}

/// A request's body: JSON, or raw bytes (an attachment's ciphertext).
enum Body {
    Json(String),
    Bytes(Vec<u8>),
}

async fn send(method: &str, path: &str, body: Option<Body>) -> Result<Response> {
    let route = path.split('?').next().unwrap_or(path);
    let key = (method != "GET" && confidant_protocol::retry::keeps_answer(route)).then(new_key).flatten();
    let mut delays = RETRY_DELAYS_MS.iter();
    loop {
        let answered = send_once(method, path, body.as_ref(), key.as_deref()).await;
        match (&answered, &key, delays.next()) {
            (Err(failure), Some(_), Some(delay)) if failure.worth_retrying() => sleep(*delay).await,
            _ => return answered,
        }
    }
}

/// A fresh key for one intended write (`crypto.randomUUID()`).
fn new_key() -> Option<String> {
    Some(web_sys::window()?.crypto().ok()?.random_uuid())
}

/// Waits `ms` milliseconds.
pub(crate) async fn sleep(ms: i32) {
    let promise = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = JsFuture::from(promise).await;
}

async fn send_once(method: &str, path: &str, body: Option<&Body>, key: Option<&str>) -> Result<Response> {
    let init = RequestInit::new();
    init.set_method(method);
    init.set_credentials(RequestCredentials::SameOrigin);
    init.set_mode(RequestMode::SameOrigin);
    init.set_cache(RequestCache::NoStore);
    match body {
        Some(Body::Json(text)) => init.set_body(&wasm_bindgen::JsValue::from_str(text)),
        Some(Body::Bytes(bytes)) => init.set_body(&js_sys::Uint8Array::from(bytes.as_slice())),
        None => {}
    }
    let request = Request::new_with_str_and_init(path, &init).map_err(|_| Failure::network())?;
    let headers = request.headers();
    let _ = headers.set(CSRF_HEADER, "1");
    let _ = headers.set("Accept", "application/json");
    match body {
        Some(Body::Json(_)) => {
            let _ = headers.set("Content-Type", "application/json");
        }
        Some(Body::Bytes(_)) => {
            let _ = headers.set("Content-Type", "application/octet-stream");
        }
        None => {}
    }
    if let Some(key) = key {
        let _ = headers.set(confidant_protocol::retry::IDEMPOTENCY_KEY, key);
    }
    let window = web_sys::window().ok_or_else(Failure::network)?;
    let response = JsFuture::from(window.fetch_with_request(&request)).await.map_err(|_| Failure::network())?;
    let response: Response = response.dyn_into().map_err(|_| Failure::network())?;
    if let Some(hooks) = HOOKS.with(|h| *h.borrow()) {
        (hooks.answered)();
    }
    if response.ok() {
        return Ok(response);
    }
    let status = response.status();
    let text = body_text(&response).await.unwrap_or_default();
    let failure = match serde_json::from_str::<ErrorBody>(&text) {
        Ok(e) => Failure {
            status,
            message: text::error_message(&e.code).map(str::to_owned).unwrap_or(e.error),
            code: e.code,
            field: e.field,
            request_id: e.request_id,
        },
        Err(_) => Failure { status, ..Failure::network() },
    };
    if failure.ends_session()
        && let Some(hooks) = HOOKS.with(|h| *h.borrow())
    {
        (hooks.session_gone)();
    }
    Err(failure)
}

async fn body_text(response: &Response) -> Option<String> {
    let promise = response.text().ok()?;
    JsFuture::from(promise).await.ok()?.as_string()
}

async fn decode<T: DeserializeOwned>(response: Response) -> Result<T> {
    let text = body_text(&response).await.unwrap_or_default();
    let text = if text.is_empty() { "null".to_owned() } else { text };
    serde_json::from_str(&text).map_err(|_| Failure {
        status: response.status(),
        code: "unexpected_answer".into(),
        message: text::ERROR_PREFIX.into(),
        field: None,
        request_id: None,
    })
}

/// `GET path`.
pub async fn get<T: DeserializeOwned>(path: &str) -> Result<T> {
    decode(send("GET", path, None).await?).await
}

/// `method path` with a JSON body.
pub async fn call<B: Serialize, T: DeserializeOwned>(method: &str, path: &str, body: &B) -> Result<T> {
    let body = serde_json::to_string(body).map_err(|_| Failure::network())?;
    decode(send(method, path, Some(Body::Json(body))).await?).await
}

/// `POST path` with raw bytes (an attachment's ciphertext), decoding the JSON answer.
pub async fn post_bytes<T: DeserializeOwned>(path: &str, bytes: Vec<u8>) -> Result<T> {
    decode(send("POST", path, Some(Body::Bytes(bytes))).await?).await
}

/// `GET path` as bytes (an attachment's ciphertext).
pub async fn get_bytes(path: &str) -> Result<Vec<u8>> {
    let response = send("GET", path, None).await?;
    let promise = response.array_buffer().map_err(|_| Failure::network())?;
    let buffer = JsFuture::from(promise).await.map_err(|_| Failure::network())?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// `POST path` without a body, ignoring the answer's body.
pub async fn post_empty(path: &str) -> Result<()> {
    send("POST", path, None).await.map(|_| ())
}

/// `DELETE path`, ignoring the answer's body.
pub async fn send_delete(path: &str) -> Result<()> {
    send("DELETE", path, None).await.map(|_| ())
}

/// `method path` with a JSON body, ignoring the answer's body.
pub async fn call_empty<B: Serialize>(method: &str, path: &str, body: &B) -> Result<()> {
    let body = serde_json::to_string(body).map_err(|_| Failure::network())?;
    send(method, path, Some(Body::Json(body))).await.map(|_| ())
}

/// The signed-in account and its session's limits (`GET /api/v1/browser/session`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Me {
    pub user_id: Uuid,
    pub role: String,
    pub patient_id: Option<Uuid>,
    pub display_name: String,
    pub mfa: bool,
    pub totp_enabled: bool,
    pub mfa_required: bool,
    pub idle_timeout_secs: u64,
    pub expires_at_ms: i64,
    /// The practice shares patients' final progress notes with them (`notes.open_notes`).
    #[serde(default)]
    pub open_notes: bool,
}

impl Me {
    /// Whether the account must enroll TOTP before it can reach anything.
    pub fn must_enroll(&self) -> bool {
        self.mfa_required && !self.totp_enabled
    }
}

/// The answer of a sign-in step.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum SignIn {
    SignedIn { session: Me },
    MfaRequired,
}

/// A patient record as the API returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct PatientRecord {
    #[serde(default, skip_serializing)]
    pub id: Option<Uuid>,
    pub legal_name: String,
    #[serde(default)]
    pub preferred_name: Option<String>,
    pub date_of_birth: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub phone: Option<String>,
}

impl PatientRecord {
    /// The name to address the patient by.
    pub fn name(&self) -> String {
        match &self.preferred_name {
            Some(p) if !p.is_empty() => format!("{p} ({})", self.legal_name),
            _ => self.legal_name.clone(),
        }
    }
}

/// An account as `GET /api/v1/users` lists it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct UserRow {
    pub user_id: Uuid,
    pub role: String,
    pub status: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default)]
    pub credentials: Option<String>,
    #[serde(default)]
    pub patient_id: Option<Uuid>,
    pub totp_enabled: bool,
}

impl UserRow {
    /// How the account appears on screen: "Dr. Ana Ruiz, PsyD", or its email until named.
    pub fn label(&self) -> String {
        match (&self.display_name, &self.credentials) {
            (Some(name), Some(c)) => format!("{name}, {c}"),
            (Some(name), None) => name.clone(),
            _ => self.email.clone().unwrap_or_else(|| self.user_id.to_string()),
        }
    }
}

/// A clinician on a patient's care team (`GET /api/v1/patients/{id}/care-team`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct CareTeamMember {
    pub clinician_id: Uuid,
}

/// A made invitation (`POST /api/v1/users/invitations`): the code to give, once.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Invitation {
    pub user_id: Uuid,
    pub invitation_token: String,
    pub expires_at_ms: i64,
}

/// A break-glass grant (`GET /api/v1/break-glass`, owners).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BreakGlassGrant {
    pub grant_id: Uuid,
    pub clinician_id: Uuid,
    pub patient_id: Uuid,
    #[serde(default)]
    pub reason: Option<String>,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
}

/// The newest signed checkpoint of one audit chain.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AuditHead {
    pub node_id: String,
    pub seq: i64,
    pub hash: String,
    pub at_ms: i64,
}

/// One verification of the audit trail.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AuditVerification {
    pub at_ms: i64,
    pub intact: bool,
    pub entries: u64,
    pub chains: usize,
    #[serde(default)]
    pub broken: Option<String>,
    /// What it trusted and read (each key and where from, each witness).
    #[serde(default)]
    pub basis: Vec<String>,
}

/// The audit trail's state (`GET /api/v1/audit/status`, owners).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct AuditStatus {
    pub heads: Vec<AuditHead>,
    pub checkpoints: usize,
    #[serde(default)]
    pub last_verification: Option<AuditVerification>,
}

/// An intake assignment (`GET /api/v1/patients/{id}/intake-forms`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Assignment {
    pub assignment_id: Uuid,
    pub form: String,
    pub status: String,
    pub assigned_at_ms: i64,
    #[serde(default)]
    pub submitted_at_ms: Option<i64>,
    #[serde(default)]
    pub urgent: bool,
}

/// A submitted form with its score (`GET /api/v1/intake-forms/{id}`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Submitted {
    pub assignment_id: Uuid,
    pub form: String,
    #[serde(default)]
    pub submitted_at_ms: Option<i64>,
    #[serde(default)]
    pub score: Option<Score>,
    #[serde(default)]
    pub answers: serde_json::Value,
}

/// A screening score.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Score {
    pub total: u32,
    pub severity: String,
    pub urgent: bool,
}

pub use confidant_protocol::alerts::{AlertKind, AlertState, AlertView, AttackPattern, FollowUpNote, SignInAttack};

/// A reminder's state (`GET /api/v1/appointments/{id}/reminders`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Reminder {
    pub id: Uuid,
    pub state: String,
    /// Why it failed or was withdrawn (a code; `text::reminder_reason` words it).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Reminder preferences of a patient.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preferences {
    pub email_enabled: bool,
    #[serde(default)]
    pub lead_minutes: Option<Vec<u32>>,
    #[serde(default)]
    pub pgp_public_key: Option<String>,
}

/// A member of staff as the directory lists them (`GET /api/v1/staff`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct StaffMember {
    pub user_id: Uuid,
    pub role: String,
    /// "Dr. Ana Ruiz, PsyD"; `None` to a patient for staff not named yet.
    #[serde(default)]
    pub display_name: Option<String>,
}

impl StaffMember {
    /// How the person appears on screen: their name, or their role while they have none.
    pub fn label(&self) -> String {
        self.display_name.clone().unwrap_or_else(|| crate::text::role(&self.role).to_owned())
    }
}

/// A patient's urgent flag and alerts (`GET /api/v1/patients/{id}/alerts`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ChartAlerts {
    pub urgent: bool,
    pub alerts: Vec<AlertView>,
}

pub use confidant_protocol::{FieldValue, NoteFields};

/// A note without its content (`GET /api/v1/patients/{id}/notes`, `GET /api/v1/cosign-queue`):
/// all that front desk and billing ever see.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct NoteSummary {
    pub note_id: Uuid,
    pub patient_id: Uuid,
    #[serde(default)]
    pub appointment_id: Option<Uuid>,
    pub author_id: Uuid,
    pub template_key: String,
    pub template_version: u32,
    /// `progress`, `intake_assessment`, `treatment_plan`, `discharge_summary`, `psychotherapy`.
    pub kind: String,
    /// `draft`, `awaiting_cosign` or `final`.
    pub status: String,
    pub service_at_ms: i64,
    #[serde(default)]
    pub signed_at_ms: Option<i64>,
    #[serde(default)]
    pub late_entry: bool,
    #[serde(default)]
    pub cosigner_id: Option<Uuid>,
    #[serde(default)]
    pub cosigned_at_ms: Option<i64>,
}

/// One section of a note template.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TemplateSection {
    pub id: String,
    pub label: String,
    /// `text`, `choice`, `multi_choice`, `date` or `list`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub options: Vec<String>,
    #[serde(default)]
    pub required: bool,
}

/// A note template's definition (docs/API.md, "Note templates").
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Template {
    pub key: String,
    pub version: u32,
    pub title: String,
    pub kind: String,
    pub sections: Vec<TemplateSection>,
}

/// A template as `GET /api/v1/note-templates` lists it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ListedTemplate {
    pub definition: Template,
    pub built_in: bool,
}

/// Who supervises whom (`GET /api/v1/supervisions`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Supervision {
    pub clinician_id: Uuid,
    pub supervisor_id: Uuid,
    pub set_at_ms: i64,
}

/// A screening's latest result, as a note was pre-filled with it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Measure {
    pub total: u32,
    pub severity: String,
    pub submitted_at_ms: i64,
    #[serde(default)]
    pub change_since_last_note: Option<i64>,
}

/// What a note was pre-filled with when it was begun.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct NoteContext {
    #[serde(default)]
    pub phq9: Option<Measure>,
    #[serde(default)]
    pub gad7: Option<Measure>,
    #[serde(default)]
    pub diagnosis: Vec<String>,
    #[serde(default)]
    pub goals: Vec<String>,
}

/// A signed addendum.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Addendum {
    pub addendum_id: Uuid,
    pub author_id: Uuid,
    pub text: String,
    pub signed_at_ms: i64,
    pub signed_digest: String,
    #[serde(default)]
    pub late_entry: bool,
}

/// A note whole (`GET /api/v1/notes/{id}`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Note {
    #[serde(flatten)]
    pub summary: NoteSummary,
    pub is_final: bool,
    #[serde(default)]
    pub signed_digest: Option<String>,
    pub template: Template,
    #[serde(default)]
    pub fields: NoteFields,
    #[serde(default)]
    pub context: NoteContext,
    #[serde(default)]
    pub addenda: Vec<Addendum>,
}

/// One PHQ-9 or GAD-7 result in a patient's series.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ScreeningPoint {
    pub form: String,
    pub assignment_id: Uuid,
    pub submitted_at_ms: i64,
    pub total: u32,
    pub severity: String,
}

/// A patient's PHQ-9 and GAD-7 results, oldest first (`GET /api/v1/patients/{id}/screening-series`).
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
pub struct ScreeningSeries {
    #[serde(default)]
    pub phq9: Vec<ScreeningPoint>,
    #[serde(default)]
    pub gad7: Vec<ScreeningPoint>,
}
