//! Clinical notes over REST (docs/API.md, "Clinical notes"): templates, a patient's notes,
//! writing and autosaving a draft, signing with a fresh TOTP code, addenda, the supervisor's
//! co-signature queue, and who supervises whom. The handlers parse, call
//! [`NoteService`](crate::notes::NoteService) (which checks and audits every read and write
//! before data moves) and map its answer. Drafts are also saved over the socket (`note.draft`).

use actix_web::{HttpResponse, get, post, put, web};
use confidant_actors::ids::{PatientId, UserId};
use confidant_protocol::NoteFields;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use zeroize::Zeroizing;

use super::auth::Caller;
use crate::notes::{
    Addendum, ListedTemplate, NoteContext, NoteError, NoteMeta, NoteServiceError, NoteStatus, OpenedNote, Supervision,
    Template,
};
use crate::state::AppState;
use crate::web::ApiError;

impl From<NoteServiceError> for ApiError {
    /// Refusals keep their meaning; outages are 503; a fault is logged (no values) and is 500.
    fn from(error: NoteServiceError) -> Self {
        match error {
            NoteServiceError::InvalidTemplate(invalid) => {
                ApiError::InvalidNamedField { field: invalid.place, rule: invalid.rule }
            }
            NoteServiceError::InvalidField(invalid) => {
                ApiError::InvalidNamedField { field: invalid.field, rule: invalid.rule }
            }
            NoteServiceError::Invalid { field, rule } => ApiError::invalid(field, rule),
            NoteServiceError::NotAllowed(denial) => ApiError::Forbidden(denial),
            NoteServiceError::NotFound => ApiError::NotFound,
            NoteServiceError::Locked => ApiError::Conflict("the note is signed and locked; add an addendum instead"),
            NoteServiceError::Conflict(why) => ApiError::Conflict(why),
            NoteServiceError::StepUp(error) => error.into(),
            NoteServiceError::AuditUnavailable => ApiError::Unavailable,
            NoteServiceError::Store(NoteError::Storage(e)) => e.into(),
            NoteServiceError::Store(NoteError::Crypto(e)) => crate::patients::PatientError::Crypto(e).into(),
        }
    }
}

/// A template as listed.
#[derive(Serialize, ToSchema)]
pub struct TemplateView {
    /// Its definition (docs/API.md, "Note templates").
    #[schema(value_type = Object)]
    definition: Template,
    /// Shipped with Confidant (`true`) or the practice's own.
    built_in: bool,
}

impl From<ListedTemplate> for TemplateView {
    fn from(listed: ListedTemplate) -> Self {
        Self { definition: listed.template, built_in: listed.built_in }
    }
}

/// A note without its content: what the chart lists (and all front desk and billing see).
#[derive(Serialize, ToSchema)]
pub struct NoteSummaryView {
    /// Its id.
    note_id: Uuid,
    /// Whose record.
    #[schema(value_type = String, format = Uuid)]
    patient_id: PatientId,
    /// The session it documents, if any.
    appointment_id: Option<Uuid>,
    /// Who wrote it.
    #[schema(value_type = String, format = Uuid)]
    author_id: UserId,
    /// The template's key.
    template_key: String,
    /// The template version it was written on.
    template_version: u32,
    /// `progress`, `intake_assessment`, `treatment_plan`, `discharge_summary` or `psychotherapy`.
    kind: &'static str,
    /// `draft`, `awaiting_cosign` or `final`.
    status: &'static str,
    /// The date of service (UTC ms).
    service_at_ms: i64,
    /// When it was signed (UTC ms).
    signed_at_ms: Option<i64>,
    /// Signed later than `notes.late_entry_hours` after the date of service.
    late_entry: bool,
    /// The supervisor who must co-sign, or did.
    #[schema(value_type = Option<String>, format = Uuid)]
    cosigner_id: Option<UserId>,
    /// When it was co-signed (UTC ms).
    cosigned_at_ms: Option<i64>,
}

impl From<&NoteMeta> for NoteSummaryView {
    fn from(n: &NoteMeta) -> Self {
        Self {
            note_id: n.id,
            patient_id: n.patient_id,
            appointment_id: n.appointment_id,
            author_id: n.author_id,
            template_key: n.template_key.clone(),
            template_version: n.template_version,
            kind: n.kind.as_str(),
            status: n.status.as_str(),
            service_at_ms: n.service_at_ms,
            signed_at_ms: n.signed_at_ms,
            late_entry: n.late_entry,
            cosigner_id: n.cosigner_id,
            cosigned_at_ms: n.cosigned_at_ms,
        }
    }
}

/// A signed addendum.
#[derive(Serialize, ToSchema)]
pub struct AddendumView {
    /// Its id.
    addendum_id: Uuid,
    /// Who wrote and signed it.
    #[schema(value_type = String, format = Uuid)]
    author_id: UserId,
    /// What it says.
    text: String,
    /// When it was signed (UTC ms).
    signed_at_ms: i64,
    /// The keyed digest of its text (hex), as the audit trail holds it.
    signed_digest: String,
    /// Written later than `notes.late_entry_hours` after the note's date of service.
    late_entry: bool,
}

impl From<&Addendum> for AddendumView {
    fn from(a: &Addendum) -> Self {
        Self {
            addendum_id: a.id,
            author_id: a.author_id,
            text: a.body.expose().to_owned(),
            signed_at_ms: a.signed_at_ms,
            signed_digest: a.signed_digest.clone(),
            late_entry: a.late_entry,
        }
    }
}

/// A note, whole.
#[derive(Serialize, ToSchema)]
pub struct NoteView {
    /// Its facts.
    #[serde(flatten)]
    summary: NoteSummaryView,
    /// Whether it is part of the record as it stands: signed, and co-signed where needed.
    is_final: bool,
    /// The keyed digest of its content at signing (hex).
    signed_digest: Option<String>,
    /// The template version it was written on (its sections, labels and choices).
    #[schema(value_type = Object)]
    template: Template,
    /// Section id -> value (text, or a list of texts).
    #[schema(value_type = Object)]
    fields: NoteFields,
    /// Filled in when it was begun: `phq9`/`gad7` (total, severity, submitted_at_ms,
    /// change_since_last_note), `diagnosis` and `goals` of the latest treatment plan.
    #[schema(value_type = Object)]
    context: NoteContext,
    /// Its signed addenda, in order.
    addenda: Vec<AddendumView>,
}

impl From<OpenedNote> for NoteView {
    fn from(note: OpenedNote) -> Self {
        Self {
            summary: NoteSummaryView::from(&note.meta),
            is_final: note.meta.status == NoteStatus::Final,
            signed_digest: note.meta.signed_digest.clone(),
            addenda: note.addenda.iter().map(AddendumView::from).collect(),
            template: note.template,
            fields: note.content.fields,
            context: note.content.context,
        }
    }
}

/// A note to begin.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateNoteBody {
    /// The template's key (its latest version is used and kept).
    #[schema(pattern = "^[a-z0-9_]{1,40}$")]
    template_key: String,
    /// The session it documents: one of the caller's appointments with the patient. Left out
    /// for a note about no session.
    #[serde(default)]
    appointment_id: Option<Uuid>,
}

/// A draft's fields (autosave).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftBody {
    /// Section id -> value (text, or a list of texts).
    #[schema(value_type = Object)]
    fields: NoteFields,
}

/// A fresh TOTP code, for a signature.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignBody {
    /// Six digits from the authenticator, not used before.
    #[schema(value_type = String, pattern = "^[0-9]{6}$")]
    totp_code: Zeroizing<String>,
}

/// An addendum to sign.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddendumBody {
    /// What it says: 1 to 20000 characters.
    #[schema(value_type = String, min_length = 1, max_length = 20000)]
    text: Zeroizing<String>,
    /// Six digits from the authenticator, not used before.
    #[schema(value_type = String, pattern = "^[0-9]{6}$")]
    totp_code: Zeroizing<String>,
}

/// A supervised clinician and their supervisor.
#[derive(Serialize, ToSchema)]
pub struct SupervisionView {
    /// The supervised (pre-licensed) clinician.
    #[schema(value_type = String, format = Uuid)]
    clinician_id: UserId,
    /// The clinician who co-signs their record notes.
    #[schema(value_type = String, format = Uuid)]
    supervisor_id: UserId,
    /// When an owner set it (UTC ms).
    set_at_ms: i64,
}

impl From<&Supervision> for SupervisionView {
    fn from(s: &Supervision) -> Self {
        Self { clinician_id: s.clinician, supervisor_id: s.supervisor, set_at_ms: s.set_at_ms }
    }
}

/// Who supervises a clinician.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SupervisorBody {
    /// The supervising clinician; `null` to mark the clinician as no longer supervised.
    #[schema(value_type = Option<String>, format = Uuid)]
    supervisor_id: Option<UserId>,
}

/// Every note template: built-in, then each version of the practice's own.
#[utoipa::path(get, path = "/api/v1/note-templates", tag = "notes", security(("bearer" = [])),
    responses((status = 200, body = Vec<TemplateView>), (status = 401), (status = 403)))]
#[get("/api/v1/note-templates")]
pub async fn templates(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let listed = state.services.notes.templates(&caller.requester()).await?;
    Ok(HttpResponse::Ok().json(listed.into_iter().map(TemplateView::from).collect::<Vec<_>>()))
}

/// Adds a practice's template (owners): checked, stored as the next version of its key.
#[utoipa::path(post, path = "/api/v1/note-templates", tag = "notes", security(("bearer" = [])),
    request_body(content = Object, description = "A template definition (docs/API.md, \"Note templates\")"),
    responses((status = 201, body = TemplateView), (status = 400), (status = 401), (status = 403), (status = 409)))]
#[post("/api/v1/note-templates")]
pub async fn add_template(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    let definition = serde_json::to_vec(&body.into_inner()).map_err(|_| ApiError::InvalidBody)?;
    let template = state.services.notes.add_template(&caller.requester(), &definition).await?;
    Ok(HttpResponse::Created().json(TemplateView { definition: template, built_in: false }))
}

/// A patient's notes: date, kind and status, never content.
#[utoipa::path(get, path = "/api/v1/patients/{patient_id}/notes", tag = "notes", security(("bearer" = [])),
    params(("patient_id" = String, Path, format = Uuid)),
    responses((status = 200, body = Vec<NoteSummaryView>), (status = 401), (status = 403)))]
#[get("/api/v1/patients/{patient_id}/notes")]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<PatientId>,
) -> Result<HttpResponse, ApiError> {
    let notes = state.services.notes.list(&caller.requester(), path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(notes.iter().map(NoteSummaryView::from).collect::<Vec<_>>()))
}

/// Begins a note (a clinician of the patient's care team), pre-filled with the latest PHQ-9
/// and GAD-7 and the treatment plan's diagnosis and goals.
#[utoipa::path(post, path = "/api/v1/patients/{patient_id}/notes", tag = "notes", security(("bearer" = [])),
    params(("patient_id" = String, Path, format = Uuid)), request_body = CreateNoteBody,
    responses((status = 201, body = NoteView), (status = 400), (status = 401), (status = 403), (status = 404)))]
#[post("/api/v1/patients/{patient_id}/notes")]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<PatientId>,
    body: web::Json<CreateNoteBody>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let note = state
        .services
        .notes
        .create(&caller.requester(), path.into_inner(), &body.template_key, body.appointment_id)
        .await?;
    Ok(HttpResponse::Created().json(NoteView::from(note)))
}

/// A note whole, with its addenda.
#[utoipa::path(get, path = "/api/v1/notes/{note_id}", tag = "notes", security(("bearer" = [])),
    params(("note_id" = String, Path, format = Uuid)),
    responses((status = 200, body = NoteView), (status = 401), (status = 403), (status = 404)))]
#[get("/api/v1/notes/{note_id}")]
pub async fn read(state: web::Data<AppState>, caller: Caller, path: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let note = state.services.notes.read(&caller.requester(), path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(NoteView::from(note)))
}

/// A signed record note as a PDF for release of records: what its screen shows, with its
/// addenda and signatures. Audited as a read; `409` for a draft, `403` for a psychotherapy note
/// (never part of an export of the record) to everyone.
#[utoipa::path(get, path = "/api/v1/notes/{note_id}/pdf", tag = "notes", security(("bearer" = [])),
    params(("note_id" = String, Path, format = Uuid)),
    responses((status = 200, description = "The note as a PDF document", content_type = "application/pdf",
            body = super::fields::PdfDocument,
            headers(("Cache-Control" = String, description = "`no-store`"),
                ("Content-Disposition" = String, description = "`attachment; filename=\"note.pdf\"`"))),
        (status = 401), (status = 403), (status = 404), (status = 409)))]
#[get("/api/v1/notes/{note_id}/pdf")]
pub async fn pdf(state: web::Data<AppState>, caller: Caller, path: web::Path<Uuid>) -> Result<HttpResponse, ApiError> {
    let bytes = state.services.notes.export_pdf(&caller.requester(), path.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .insert_header((actix_web::http::header::CONTENT_TYPE, "application/pdf"))
        .insert_header(actix_web::http::header::CacheControl(vec![actix_web::http::header::CacheDirective::NoStore]))
        .insert_header((actix_web::http::header::CONTENT_DISPOSITION, "attachment; filename=\"note.pdf\""))
        .body(bytes))
}

/// Saves the draft's fields (autosave; the socket's `note.draft` does the same). A signed note
/// refuses with 409.
#[utoipa::path(put, path = "/api/v1/notes/{note_id}/draft", tag = "notes", security(("bearer" = [])),
    params(("note_id" = String, Path, format = Uuid)), request_body = DraftBody,
    responses((status = 204), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409)))]
#[put("/api/v1/notes/{note_id}/draft")]
pub async fn save_draft(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: web::Json<DraftBody>,
) -> Result<HttpResponse, ApiError> {
    state.services.notes.save_draft(&caller.requester(), path.into_inner(), body.into_inner().fields).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Signs and locks the caller's draft with a fresh TOTP code.
#[utoipa::path(post, path = "/api/v1/notes/{note_id}/sign", tag = "notes", security(("bearer" = [])),
    params(("note_id" = String, Path, format = Uuid)), request_body = SignBody,
    responses((status = 200, body = NoteSummaryView), (status = 400), (status = 401), (status = 403), (status = 404),
        (status = 409), (status = 429)))]
#[post("/api/v1/notes/{note_id}/sign")]
pub async fn sign(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: web::Json<SignBody>,
) -> Result<HttpResponse, ApiError> {
    let note = state.services.notes.sign(&caller.requester(), path.into_inner(), &body.totp_code).await?;
    Ok(HttpResponse::Ok().json(NoteSummaryView::from(&note)))
}

/// Appends a signed addendum to a signed note, with a fresh TOTP code.
#[utoipa::path(post, path = "/api/v1/notes/{note_id}/addenda", tag = "notes", security(("bearer" = [])),
    params(("note_id" = String, Path, format = Uuid)), request_body = AddendumBody,
    responses((status = 201, body = AddendumView), (status = 400), (status = 401), (status = 403), (status = 404),
        (status = 409), (status = 429)))]
#[post("/api/v1/notes/{note_id}/addenda")]
pub async fn add_addendum(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: web::Json<AddendumBody>,
) -> Result<HttpResponse, ApiError> {
    let addendum =
        state.services.notes.add_addendum(&caller.requester(), path.into_inner(), &body.text, &body.totp_code).await?;
    Ok(HttpResponse::Created().json(AddendumView::from(&addendum)))
}

/// Co-signs a supervisee's signed note (its supervisor), with a fresh TOTP code: it becomes
/// final.
#[utoipa::path(post, path = "/api/v1/notes/{note_id}/cosign", tag = "notes", security(("bearer" = [])),
    params(("note_id" = String, Path, format = Uuid)), request_body = SignBody,
    responses((status = 200, body = NoteSummaryView), (status = 400), (status = 401), (status = 403), (status = 404),
        (status = 409), (status = 429)))]
#[post("/api/v1/notes/{note_id}/cosign")]
pub async fn cosign(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<Uuid>,
    body: web::Json<SignBody>,
) -> Result<HttpResponse, ApiError> {
    let note = state.services.notes.cosign(&caller.requester(), path.into_inner(), &body.totp_code).await?;
    Ok(HttpResponse::Ok().json(NoteSummaryView::from(&note)))
}

/// The notes awaiting the caller's co-signature.
#[utoipa::path(get, path = "/api/v1/cosign-queue", tag = "notes", security(("bearer" = [])),
    responses((status = 200, body = Vec<NoteSummaryView>), (status = 401), (status = 403)))]
#[get("/api/v1/cosign-queue")]
pub async fn cosign_queue(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let queue = state.services.notes.cosign_queue(&caller.requester()).await?;
    Ok(HttpResponse::Ok().json(queue.iter().map(NoteSummaryView::from).collect::<Vec<_>>()))
}

/// Marks a clinician as supervised by another (owners), or no longer supervised (`null`).
#[utoipa::path(put, path = "/api/v1/users/{user_id}/supervisor", tag = "notes", security(("bearer" = [])),
    params(("user_id" = String, Path, format = Uuid)), request_body = SupervisorBody,
    responses((status = 204), (status = 400), (status = 401), (status = 403)))]
#[put("/api/v1/users/{user_id}/supervisor")]
pub async fn set_supervisor(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<UserId>,
    body: web::Json<SupervisorBody>,
) -> Result<HttpResponse, ApiError> {
    state.services.notes.set_supervisor(&caller.requester(), path.into_inner(), body.supervisor_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Who supervises whom: every supervision for owners; for a clinician, those they are part of.
#[utoipa::path(get, path = "/api/v1/supervisions", tag = "notes", security(("bearer" = [])),
    responses((status = 200, body = Vec<SupervisionView>), (status = 401), (status = 403)))]
#[get("/api/v1/supervisions")]
pub async fn supervisions(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let pairs = state.services.notes.supervisions(&caller.requester()).await?;
    Ok(HttpResponse::Ok().json(pairs.iter().map(SupervisionView::from).collect::<Vec<_>>()))
}
