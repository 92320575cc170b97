//! Request body limits. A declared `Content-Length` above the limit is refused with 413 before
//! routing, so no handler ever starts reading it; chunked bodies are cut off by the extractor
//! limits configured here, with the same 413. One limit holds for every route but those given a
//! larger one of their own ([`BodyLimit::with_route`], the attachment upload): the others keep
//! `http.max_body_bytes`.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::error::{JsonPayloadError, PayloadError};
use actix_web::http::header::CONTENT_LENGTH;
use actix_web::middleware::Next;
use actix_web::web;

use super::error::ApiError;

/// The configured maximum body sizes, shared with the middleware through app data: one for
/// every route, and a larger one for each route pattern given its own.
#[derive(Debug, Clone)]
pub struct BodyLimit {
    /// Every route's limit (`http.max_body_bytes`).
    default: usize,
    /// Route patterns (`/api/v1/conversations/{conversation_id}/attachments`) with their own.
    routes: std::sync::Arc<[(String, usize)]>,
}

impl BodyLimit {
    /// `default` bytes on every route.
    pub fn new(default: usize) -> Self {
        Self { default, routes: std::sync::Arc::new([]) }
    }

    /// The same, with `limit` bytes on the route `pattern` (as the router names it).
    #[must_use]
    pub fn with_route(self, pattern: &str, limit: usize) -> Self {
        let mut routes = self.routes.to_vec();
        routes.push((pattern.to_owned(), limit));
        Self { default: self.default, routes: routes.into() }
    }

    /// Every route's limit.
    pub fn default_limit(&self) -> usize {
        self.default
    }

    /// The limit of the route `req` is for (found before routing, from the resource map).
    pub fn of(&self, req: &ServiceRequest) -> usize {
        if self.routes.is_empty() {
            return self.default;
        }
        let Some(pattern) = req.match_pattern() else { return self.default };
        self.routes.iter().find(|(p, _)| *p == pattern).map_or(self.default, |(_, limit)| *limit)
    }
}

/// A body read whole, refused with 413 past `limit` bytes: a chunked body has no declared length
/// for [`refuse_oversized`] to refuse up front. Malformed transfer is `invalid_body`.
pub async fn read_whole(
    payload: &mut (impl futures_util::Stream<Item = Result<web::Bytes, PayloadError>> + Unpin),
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    use futures_util::StreamExt;
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| ApiError::InvalidBody)?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Middleware: 413 for a declared body larger than the limit.
pub async fn refuse_oversized(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let limit = req.app_data::<BodyLimit>().map_or(usize::MAX, |l| l.of(&req));
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
