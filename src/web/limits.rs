//! Request body limits. A declared `Content-Length` above the limit is refused with 413 before
//! routing, so no handler ever starts reading it; chunked bodies are cut off by the extractor
//! limits configured here, with the same 413.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::{JsonPayloadError, PayloadError};
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::middleware::Next;
use actix_web::web;

use super::error::ApiError;

/// The configured maximum body size, shared with the middleware through app data.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Middleware: 413 for a declared body larger than the limit.
pub async fn refuse_oversized(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let limit = req.app_data::<BodyLimit>().map_or(usize::MAX, |l| l.0);
    let declared = req.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        let response = actix_web::HttpResponse::from_error(ApiError::PayloadTooLarge { limit });
        return Ok(req.into_response(response));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// Extractor configuration: the same limit for JSON and raw bodies, with sanitized errors.
pub fn json_config(limit: usize) -> web::JsonConfig {
    web::JsonConfig::default().limit(limit).error_handler(move |error, _req| {
        let api = match error {
            JsonPayloadError::Overflow { .. } | JsonPayloadError::OverflowKnownLength { .. } => {
                ApiError::PayloadTooLarge { limit }
            }
            JsonPayloadError::ContentType => ApiError::UnsupportedMediaType,
            JsonPayloadError::Payload(PayloadError::Overflow) => ApiError::PayloadTooLarge { limit },
            _ => ApiError::InvalidBody,
        };
        api.into()
    })
}

/// Form extractor (the OAuth endpoints): the same limit; a malformed form is an OAuth
/// `invalid_request`, as RFC 6749 section 5.2 asks.
pub fn form_config(limit: usize) -> web::FormConfig {
    web::FormConfig::default().limit(limit).error_handler(move |error, _req| {
        let api = match error {
            actix_web::error::UrlencodedError::Overflow { .. } => ApiError::PayloadTooLarge { limit },
            actix_web::error::UrlencodedError::ContentType => ApiError::UnsupportedMediaType,
            _ => {
                ApiError::OAuth { code: "invalid_request", description: "the form is malformed or misses a parameter" }
            }
        };
        api.into()
    })
}

/// Raw-body extractor limit (`Bytes`, `String`).
pub fn payload_config(limit: usize) -> web::PayloadConfig {
    web::PayloadConfig::new(limit)
}
