//! `/api/v1/conversations/{conversation_id}/attachments` and `/api/v1/attachments/{attachment_id}`:
//! encrypted attachments (docs/MESSAGING.md, "Attachments"). A device uploads a file it
//! encrypted (the bytes are ciphertext, `application/octet-stream`, up to
//! `messaging.attachment_max_bytes` plus nonce and tag: this route's own body limit, the others
//! keep `http.max_body_bytes`); the message that carries it names its id, and each member device
//! downloads it by that id. Only accounts with an active device in the conversation may do
//! either; the server checks nothing of the bytes but their size, and answers their SHA-256.

use actix_web::http::header::{self, CacheControl, CacheDirective, ContentType};
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use confidant_actors::ids::{AttachmentId, ConversationId};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Caller;
use crate::state::AppState;
use crate::web::ApiError;
use crate::web::limits::read_whole;

/// The upload route, as the router names it: the one route with a body limit of its own.
pub const ATTACHMENT_UPLOAD: &str = "/api/v1/conversations/{conversation_id}/attachments";

/// A stored attachment.
#[derive(Serialize, ToSchema)]
pub struct AttachmentView {
    /// Its id, for the message that carries it (`mls.send`'s `attachments`) and the download.
    #[schema(value_type = String, format = Uuid)]
    attachment_id: AttachmentId,
    /// The conversation it belongs to.
    #[schema(value_type = String, format = Uuid)]
    conversation_id: ConversationId,
    /// Its size in bytes (of ciphertext).
    size: u64,
    /// SHA-256 of the ciphertext as the server received it, 64 lowercase hex digits.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    sha256: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Uploads an encrypted attachment to a conversation the caller has an active device in. The
/// body is the ciphertext (a 12-byte nonce, then AES-256-GCM ciphertext and tag: at least 28
/// bytes); the key stays on the devices. Unless a message names it (`mls.send`), it is deleted a
/// day later; once named, it is deleted with that message.
#[utoipa::path(post, path = "/api/v1/conversations/{conversation_id}/attachments", tag = "messaging",
    security(("bearer" = [])),
    params(("conversation_id" = String, Path, format = Uuid)),
    request_body(content = super::fields::Ciphertext, content_type = "application/octet-stream",
        description = "The attachment's ciphertext: at least 28 bytes, at most `messaging.attachment_max_bytes` + 28"),
    responses((status = 201, body = AttachmentView), (status = 400), (status = 401), (status = 403), (status = 404),
        (status = 413), (status = 415)))]
#[post("/api/v1/conversations/{conversation_id}/attachments")]
pub async fn upload_attachment(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<ConversationId>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let octets = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/octet-stream"))
    });
    if !octets {
        return Err(ApiError::UnsupportedMediaType);
    }
    // A declared length over the limit was refused before routing; a chunked body is cut here.
    let body = read_whole(&mut payload, state.services.attachments.max_ciphertext_bytes()).await?;
    let conversation = path.into_inner();
    let uploaded = state.services.messaging.upload_attachment(&caller.requester(), conversation, &body).await?;
    Ok(HttpResponse::Created().json(AttachmentView {
        attachment_id: uploaded.id,
        conversation_id: conversation,
        size: uploaded.size,
        sha256: hex(&uploaded.sha256),
    }))
}

/// Downloads an attachment's ciphertext, for an account with an active device in its
/// conversation (404 for anyone else, and once it is deleted). The device checks it against the
/// digest its message carries before it decrypts it.
#[utoipa::path(get, path = "/api/v1/attachments/{attachment_id}", tag = "messaging", security(("bearer" = [])),
    params(("attachment_id" = String, Path, format = Uuid)),
    responses((status = 200, description = "The ciphertext, as uploaded", content_type = "application/octet-stream",
            body = super::fields::Ciphertext,
            headers(("Cache-Control" = String, description = "`no-store`"))),
        (status = 401), (status = 403), (status = 404)))]
#[get("/api/v1/attachments/{attachment_id}")]
pub async fn download_attachment(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<AttachmentId>,
) -> Result<HttpResponse, ApiError> {
    let downloaded = state.services.messaging.download_attachment(&caller.requester(), path.into_inner()).await?;
    Ok(HttpResponse::Ok()
        .insert_header(ContentType::octet_stream())
        .insert_header(CacheControl(vec![CacheDirective::NoStore]))
        .body(downloaded.ciphertext))
}
