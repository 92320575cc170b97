//! `/api/v1/devices`, `/api/v1/key-packages/claim`, `/api/v1/conversations`: the REST half of
//! end-to-end encrypted messaging (docs/MESSAGING.md). A device registers its signature key,
//! uploads KeyPackages, claims those of the people it may converse with, and starts a
//! conversation from its new MLS group; messages and commits go over the socket. A
//! conversation is about a patient (the matrix's `message` row: the patient, their clinicians)
//! or among staff (`staff_message`: every staff role); devices are the matrix's `device` row.
//! Each handler parses its body (ids, base64, the conversation's kind), calls
//! [`crate::messaging::MessagingService`] (permission, audit, storage) and maps the answer.

use actix_web::{HttpResponse, delete, get, post, web};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use confidant_actors::ids::{ConversationId, DeviceId, PatientId, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Caller;
use super::shapes::Shape;
use crate::access::{ConversationKind, Denial};
use crate::messaging::{Conversation, Device, MessagingServiceError};
use crate::state::AppState;
use crate::web::ApiError;

/// A device to register.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    /// Base64 of the device's Ed25519 signature public key (32 bytes).
    #[schema(value_type = super::fields::SignatureKey)]
    signature_key: String,
}

/// A registered device.
#[derive(Serialize, ToSchema)]
pub struct DeviceView {
    /// Its id.
    #[schema(value_type = String, format = Uuid)]
    device_id: DeviceId,
    /// Base64 of the identity its MLS basic credential must carry.
    identity: String,
    /// Base64 of its signature key.
    signature_key: String,
    /// When it was registered (UTC ms).
    registered_at_ms: i64,
}

impl From<&Device> for DeviceView {
    fn from(d: &Device) -> Self {
        Self {
            device_id: d.id,
            identity: B64.encode(d.identity()),
            signature_key: B64.encode(&d.signature_key),
            registered_at_ms: d.registered_at_ms,
        }
    }
}

/// KeyPackages to upload.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UploadBody {
    /// Base64 of each TLS-encoded KeyPackage (at most 100; one may be last-resort).
    #[schema(value_type = Vec<super::fields::Base64>, max_items = 100)]
    key_packages: Vec<String>,
}

/// How many one-time KeyPackages the device has.
#[derive(Serialize, ToSchema)]
pub struct StockView {
    /// One-time KeyPackages left.
    remaining: u64,
}

/// The kind of a conversation, as the API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConversationKindName {
    /// About one patient (`patient_id`): the patient and the clinicians on their care team.
    Care,
    /// Among staff, about no patient: owners, clinicians, front desk and billing.
    Staff,
}

impl From<ConversationKind> for ConversationKindName {
    fn from(kind: ConversationKind) -> Self {
        match kind {
            ConversationKind::Care(_) => ConversationKindName::Care,
            ConversationKind::Staff => ConversationKindName::Staff,
        }
    }
}

/// What [`kind_of`] takes: a patient (`kind` absent, null or `care`), or `kind` `staff` and no
/// patient.
pub(super) fn conversation_shapes() -> Vec<Shape> {
    vec![
        Shape::new().uuid("patient_id").optional_value("kind", ["care"]),
        Shape::new().value("kind", ["staff"]).without("patient_id"),
    ]
}

/// The conversation a body names: a patient (`kind` absent or `care`), or `kind` `staff` and no
/// patient. Anything else is refused before anything is looked up or recorded.
fn kind_of(patient: Option<PatientId>, kind: Option<ConversationKindName>) -> Result<ConversationKind, ApiError> {
    match (kind, patient) {
        (None | Some(ConversationKindName::Care), Some(patient)) => Ok(ConversationKind::Care(patient)),
        (Some(ConversationKindName::Staff), None) => Ok(ConversationKind::Staff),
        (Some(ConversationKindName::Staff), Some(_)) => {
            Err(ApiError::invalid("patient_id", "must be absent for a staff conversation"))
        }
        (None | Some(ConversationKindName::Care), None) => {
            Err(ApiError::invalid("patient_id", "is required unless `kind` is `staff`"))
        }
    }
}

/// A claim of someone's KeyPackages, for a conversation about a patient or among staff
/// ([`conversation_shapes`]).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimBody {
    /// Whose devices.
    #[schema(value_type = String, format = Uuid)]
    user_id: UserId,
    /// The patient the conversation is about: both the caller and that account must be
    /// allowed in it. Absent for a staff conversation.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Uuid)]
    patient_id: Option<PatientId>,
    /// `staff` for a staff conversation (both accounts must be staff); `care` or absent when
    /// `patient_id` names the patient.
    #[serde(default)]
    kind: Option<ConversationKindName>,
}

/// A claimed KeyPackage.
#[derive(Serialize, ToSchema)]
pub struct ClaimedView {
    /// The device it adds.
    #[schema(value_type = String, format = Uuid)]
    device_id: DeviceId,
    /// Base64 of the TLS-encoded KeyPackage.
    key_package: String,
}

/// A conversation to start, about a patient or among staff ([`conversation_shapes`]).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// The caller's device that created the group.
    #[schema(value_type = String, format = Uuid)]
    device_id: DeviceId,
    /// The patient it is about; absent for a staff conversation.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Uuid)]
    patient_id: Option<PatientId>,
    /// `staff` for a conversation among staff about no patient; `care` or absent when
    /// `patient_id` names the patient.
    #[serde(default)]
    kind: Option<ConversationKindName>,
    /// Base64 of the group's GroupInfo `MlsMessageOut` (the group id is a fresh UUID).
    #[schema(value_type = super::fields::Base64)]
    group_info: String,
    /// Base64 of its TLS-encoded ratchet tree.
    #[schema(value_type = super::fields::Base64)]
    ratchet_tree: String,
}

/// A conversation.
#[derive(Serialize, ToSchema)]
pub struct ConversationView {
    /// Its id (the MLS group id).
    #[schema(value_type = String, format = Uuid)]
    conversation_id: ConversationId,
    /// About a patient or among staff.
    kind: ConversationKindName,
    /// The patient it is about; null for a staff conversation.
    #[schema(value_type = Option<String>, format = Uuid)]
    patient_id: Option<PatientId>,
    /// Its epoch.
    epoch: u64,
    /// Its newest seq.
    last_seq: u64,
    /// Devices still in the group that must go: removed at the server (a revoked device, a
    /// disabled account) or of an account no longer allowed in (a clinician off the care team).
    /// Commit their removal (any member may).
    removed_devices: Vec<RemovedDevice>,
    /// How far each account with a device in it has got: what a sender shows as delivered and
    /// read. Live changes follow as `mls.receipt` frames.
    receipts: Vec<ReceiptView>,
}

/// One account's progress in a conversation.
#[derive(Serialize, ToSchema)]
pub struct ReceiptView {
    /// The account.
    #[schema(value_type = String, format = Uuid)]
    user_id: UserId,
    /// The newest seq one of its devices took in.
    delivered_seq: u64,
    /// The newest seq the person read (0: none yet).
    read_seq: u64,
}

/// A device to commit out of a conversation.
#[derive(Serialize, ToSchema)]
pub struct RemovedDevice {
    /// Its account.
    #[schema(value_type = String, format = Uuid)]
    user_id: UserId,
    /// The device.
    #[schema(value_type = String, format = Uuid)]
    device_id: DeviceId,
}

impl From<&Conversation> for ConversationView {
    fn from(c: &Conversation) -> Self {
        Self {
            conversation_id: c.id,
            kind: c.kind.into(),
            patient_id: c.kind.patient(),
            epoch: c.epoch,
            last_seq: c.last_seq,
            removed_devices: c
                .removed_devices
                .iter()
                .map(|(user_id, device_id)| RemovedDevice { user_id: *user_id, device_id: *device_id })
                .collect(),
            receipts: c
                .receipts
                .iter()
                .map(|r| ReceiptView { user_id: r.user, delivered_seq: r.delivered_seq, read_seq: r.read_seq })
                .collect(),
        }
    }
}

impl From<MessagingServiceError> for ApiError {
    fn from(error: MessagingServiceError) -> Self {
        match error {
            MessagingServiceError::InvalidMls(reason) => {
                tracing::info!(%reason, "MLS structure refused");
                ApiError::invalid("mls", "does not validate for this device or conversation")
            }
            MessagingServiceError::AttachmentTooLarge { limit } => ApiError::PayloadTooLarge { limit },
            MessagingServiceError::AttachmentTooShort => {
                ApiError::invalid("body", "is shorter than a nonce and a tag (28 bytes)")
            }
            MessagingServiceError::SignatureKey => {
                ApiError::invalid("signature_key", "is not a 32-byte Ed25519 public key")
            }
            MessagingServiceError::Conflict => ApiError::Conflict("already_exists"),
            MessagingServiceError::TooManyKeyPackages => ApiError::Conflict("too_many_key_packages"),
            MessagingServiceError::Denied(denial) => ApiError::Forbidden(denial),
            MessagingServiceError::NotAllowed => ApiError::Forbidden(Denial::NotPermitted),
            MessagingServiceError::TooManyClaims { retry_after_secs } => ApiError::TooManyAttempts { retry_after_secs },
            // Only a socket has an attached device; over REST a device that is not the caller's
            // own active one is not found.
            MessagingServiceError::NoDevice | MessagingServiceError::NotFound => ApiError::NotFound,
            MessagingServiceError::AuditUnavailable(_) | MessagingServiceError::Unavailable => ApiError::Unavailable,
            MessagingServiceError::Storage(e) => e.into(),
            MessagingServiceError::Internal => ApiError::Internal,
        }
    }
}

fn decode(field: &'static str, text: &str) -> Result<Vec<u8>, ApiError> {
    B64.decode(text).map_err(|_| ApiError::invalid(field, "is not base64"))
}

/// Registers a device of the caller's account: its MLS credential will name
/// `confidant/<user>/<device>` with this signature key, and nothing else is accepted for it.
#[utoipa::path(post, path = "/api/v1/devices", tag = "messaging", security(("bearer" = [])),
    request_body = RegisterBody,
    responses((status = 201, body = DeviceView), (status = 400), (status = 401), (status = 403), (status = 409)))]
#[post("/api/v1/devices")]
pub async fn register(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<RegisterBody>,
) -> Result<HttpResponse, ApiError> {
    let key = decode("signature_key", &body.signature_key)?;
    let device = state.services.messaging.register(&caller.requester(), &key).await?;
    Ok(HttpResponse::Created().json(DeviceView::from(&device)))
}

/// The caller's active devices.
#[utoipa::path(get, path = "/api/v1/devices", tag = "messaging", security(("bearer" = [])),
    responses((status = 200, body = Vec<DeviceView>), (status = 401), (status = 403)))]
#[get("/api/v1/devices")]
pub async fn list_devices(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let devices = state.services.messaging.devices(&caller.requester()).await?;
    Ok(HttpResponse::Ok().json(devices.iter().map(DeviceView::from).collect::<Vec<_>>()))
}

/// Removes one of the caller's devices: it is sent nothing more, cannot attach or be added,
/// and its KeyPackages are gone. The other members then commit its removal from each group.
#[utoipa::path(delete, path = "/api/v1/devices/{device_id}", tag = "messaging", security(("bearer" = [])),
    params(("device_id" = String, Path, format = Uuid)),
    responses((status = 204), (status = 401), (status = 403), (status = 404)))]
#[delete("/api/v1/devices/{device_id}")]
pub async fn remove_device(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<DeviceId>,
) -> Result<HttpResponse, ApiError> {
    state.services.messaging.remove_device(&caller.requester(), path.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Uploads KeyPackages of one of the caller's devices (each must validate and carry that
/// device's credential).
#[utoipa::path(post, path = "/api/v1/devices/{device_id}/key-packages", tag = "messaging", security(("bearer" = [])),
    params(("device_id" = String, Path, format = Uuid)), request_body = UploadBody,
    responses((status = 200, body = StockView), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409)))]
#[post("/api/v1/devices/{device_id}/key-packages")]
pub async fn upload(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<DeviceId>,
    body: web::Json<UploadBody>,
) -> Result<HttpResponse, ApiError> {
    let packages = body.key_packages.iter().map(|p| decode("key_packages", p)).collect::<Result<Vec<_>, _>>()?;
    let remaining = state.services.messaging.upload(&caller.requester(), path.into_inner(), &packages).await?;
    Ok(HttpResponse::Ok().json(StockView { remaining }))
}

/// Claims one KeyPackage per active device of `user_id`, for a conversation (about
/// `patient_id`, or among staff) that both the caller and that account may be in (RFC 9420
/// section 16.8). One-time packages are consumed by the claim.
#[utoipa::path(post, path = "/api/v1/key-packages/claim", tag = "messaging", security(("bearer" = [])),
    request_body = ClaimBody,
    responses((status = 200, body = Vec<ClaimedView>), (status = 400), (status = 401), (status = 403), (status = 429)))]
#[post("/api/v1/key-packages/claim")]
pub async fn claim(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<ClaimBody>,
) -> Result<HttpResponse, ApiError> {
    let kind = kind_of(body.patient_id, body.kind)?;
    let claimed = state.services.messaging.claim(&caller.requester(), body.user_id, kind).await?;
    let view: Vec<ClaimedView> = claimed
        .into_iter()
        .map(|c| ClaimedView { device_id: c.device_id, key_package: B64.encode(c.key_package) })
        .collect();
    Ok(HttpResponse::Ok().json(view))
}

/// Starts a conversation, about a patient or among staff, from the caller's device's new MLS
/// group (it holds only that device; others are added by commits over the socket).
#[utoipa::path(post, path = "/api/v1/conversations", tag = "messaging", security(("bearer" = [])),
    request_body = CreateBody,
    responses((status = 201, body = ConversationView), (status = 400), (status = 401), (status = 403), (status = 404), (status = 409)))]
#[post("/api/v1/conversations")]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<CreateBody>,
) -> Result<HttpResponse, ApiError> {
    let kind = kind_of(body.patient_id, body.kind)?;
    let group_info = decode("group_info", &body.group_info)?;
    let tree = decode("ratchet_tree", &body.ratchet_tree)?;
    let conversation =
        state.services.messaging.create(&caller.requester(), body.device_id, kind, &group_info, &tree).await?;
    Ok(HttpResponse::Created().json(ConversationView::from(&conversation)))
}

/// The conversations one of the caller's devices is a member of.
#[utoipa::path(get, path = "/api/v1/devices/{device_id}/conversations", tag = "messaging", security(("bearer" = [])),
    params(("device_id" = String, Path, format = Uuid)),
    responses((status = 200, body = Vec<ConversationView>), (status = 401), (status = 403), (status = 404)))]
#[get("/api/v1/devices/{device_id}/conversations")]
pub async fn conversations(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<DeviceId>,
) -> Result<HttpResponse, ApiError> {
    let list = state.services.messaging.conversations(&caller.requester(), path.into_inner()).await?;
    Ok(HttpResponse::Ok().json(list.iter().map(ConversationView::from).collect::<Vec<_>>()))
}
