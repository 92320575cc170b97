//! The API's error type and the one place that writes error bodies. Every response with a 4xx or
//! 5xx status, whether it came from a handler, an extractor or actix itself (404, 405), leaves
//! through [`shape_errors`] as `{"error": "...", "code": "...", "request_id": "..."}`. The body
//! never carries a cause chain: details go to the log, keyed by the request id.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, ResponseError};
use serde_json::{Value, json};

use super::request_id::RequestId;
use crate::access::{AccessError, Denial};
use crate::health::ReadinessReport;
use crate::identity::AuthError;
use crate::identity::password::PolicyViolation;
use crate::patients::{InvalidField, PatientError};
use crate::storage::StorageError;

/// Everything a handler can answer instead of success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The body is larger than `http.max_body_bytes` (bad input).
    #[error("request body is larger than {limit} bytes")]
    PayloadTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The body is not in a media type this endpoint reads (bad input).
    #[error("unsupported content type")]
    UnsupportedMediaType,
    /// The body cannot be parsed as the expected JSON document (bad input). The parser's own
    /// message is not passed on: it may quote the input.
    #[error("request body is not the expected JSON document")]
    InvalidBody,
    /// A field breaks its rule (bad input). Names the field and the rule, never the value.
    #[error(transparent)]
    InvalidField(#[from] InvalidField),
    /// A field whose name is data breaks its rule (bad input): a section of a note template,
    /// a place in a template definition. Names the field and the rule, never the value.
    #[error("{field} {rule}")]
    InvalidNamedField {
        /// The field (a template's section id, or a place in a definition).
        field: String,
        /// The rule it breaks.
        rule: &'static str,
    },
    /// No valid access token (401, with `WWW-Authenticate: Bearer`).
    #[error("sign in first")]
    Unauthenticated,
    /// The session ended on its idle or absolute limit (401).
    #[error("the session expired; sign in again")]
    SessionExpired,
    /// Wrong email or password, or an account that cannot sign in (401, one answer for all).
    #[error("the email or password is wrong")]
    InvalidCredentials,
    /// The second-factor code is wrong or was used (401).
    #[error("the second-factor code is wrong or was already used")]
    InvalidMfa,
    /// The permission check refused (403); the denial names the rule, never the record.
    #[error(transparent)]
    Forbidden(#[from] Denial),
    /// A request that changes state, authenticated by the portal's cookie, without the
    /// portal's anti-CSRF header or from another origin (403).
    #[error("the request did not come from this portal's own page")]
    CrossSite,
    /// No such resource, or one the caller may not know about (404).
    #[error("not found")]
    NotFound,
    /// The request conflicts with what is stored (409).
    #[error("{0}")]
    Conflict(&'static str),
    /// A write's `Idempotency-Key` cannot be honoured: malformed (400), its first request still
    /// running or cut off (409), or used with another request (422).
    #[error(transparent)]
    Idempotency(#[from] crate::idempotency::Refusal),
    /// Too many failed attempts (429 with `Retry-After`).
    #[error("too many failed attempts; try again later")]
    TooManyAttempts {
        /// Seconds to wait.
        retry_after_secs: u64,
    },
    /// An OAuth 2.0 error (RFC 6749 section 5.2): `error` and `code` both carry its code.
    #[error("{description}")]
    OAuth {
        /// `invalid_request`, `invalid_client`, `invalid_grant`, `unsupported_grant_type`.
        code: &'static str,
        /// For the developer.
        description: &'static str,
    },
    /// A new password breaks the policy (400, code names the rule).
    #[error(transparent)]
    Password(#[from] PolicyViolation),
    /// A dependency the node needs is down (readiness only).
    #[error("not ready")]
    NotReady(ReadinessReport),
    /// A dependency is down or overloaded; retrying later may succeed.
    #[error("service temporarily unavailable")]
    Unavailable,
    /// Our bug. The cause is logged; the client learns only the request id.
    #[error("internal error")]
    Internal,
}

impl ApiError {
    /// A field breaking its rule (400 `invalid_field`).
    pub fn invalid(field: &'static str, rule: &'static str) -> Self {
        ApiError::InvalidField(InvalidField { field, rule })
    }

    /// Stable snake_case code clients can branch on.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::InvalidBody => "invalid_body",
            ApiError::InvalidField(_) | ApiError::InvalidNamedField { .. } => "invalid_field",
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::SessionExpired => "session_expired",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::InvalidMfa => "invalid_mfa",
            ApiError::Forbidden(Denial::MfaRequired) => "mfa_required",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::CrossSite => "csrf",
            ApiError::NotFound => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::Idempotency(refusal) => refusal.code(),
            ApiError::TooManyAttempts { .. } => "too_many_attempts",
            ApiError::OAuth { code, .. } => code,
            ApiError::Password(violation) => violation.code(),
            ApiError::NotReady(_) => "not_ready",
            ApiError::Unavailable => "service_unavailable",
            ApiError::Internal => "internal_error",
        }
    }

    /// The body fields besides `request_id`.
    fn body(&self) -> Value {
        match self {
            ApiError::NotReady(report) => json!({
                "error": format!("not ready: {} down", report.down().join(", ")),
                "code": self.code(),
                "checks": report,
            }),
            ApiError::OAuth { code, description } => json!({
                "error": code,
                "error_description": description,
                "code": code,
            }),
            ApiError::InvalidField(invalid) => json!({
                "error": self.to_string(),
                "code": self.code(),
                "field": invalid.field,
            }),
            ApiError::InvalidNamedField { field, .. } => json!({
                "error": self.to_string(),
                "code": self.code(),
                "field": field,
            }),
            other => json!({ "error": other.to_string(), "code": other.code() }),
        }
    }
}

impl From<PatientError> for ApiError {
    /// Bad input is the client's to fix; a value failing its integrity check or a database
    /// fault is logged (without values) and reaches the client only as its code.
    fn from(error: PatientError) -> Self {
        match error {
            PatientError::Invalid(field) => ApiError::InvalidField(field),
            PatientError::Storage(e) if e.is_unavailable() => ApiError::Unavailable,
            other => {
                tracing::error!(error = %other, cause = ?std::error::Error::source(&other).map(ToString::to_string), "patient record operation failed");
                ApiError::Internal
            }
        }
    }
}

impl From<AuthError> for ApiError {
    /// Refusals keep their meaning; outages are 503; the rest is logged (no values) and is 500.
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::InvalidCredentials => ApiError::InvalidCredentials,
            AuthError::InvalidMfa => ApiError::InvalidMfa,
            AuthError::Throttled { retry_after_secs } => ApiError::TooManyAttempts { retry_after_secs },
            AuthError::Unauthenticated => ApiError::Unauthenticated,
            AuthError::SessionExpired => ApiError::SessionExpired,
            AuthError::OAuth { code, description } => ApiError::OAuth { code, description },
            AuthError::Policy(violation) => ApiError::Password(violation),
            AuthError::Conflict(what) => ApiError::Conflict(what),
            AuthError::NotFound => ApiError::NotFound,
            AuthError::AuditUnavailable => ApiError::Unavailable,
            AuthError::Storage(e) if e.is_unavailable() => ApiError::Unavailable,
            other => {
                tracing::error!(error = %other, cause = ?std::error::Error::source(&other).map(ToString::to_string), "identity operation failed");
                ApiError::Internal
            }
        }
    }
}

impl From<crate::reminders::ReminderError> for ApiError {
    /// Refusals keep their meaning; outages are 503; the rest is logged (no values) and is 500.
    fn from(error: crate::reminders::ReminderError) -> Self {
        use crate::reminders::ReminderError;
        match error {
            ReminderError::NotFound => ApiError::NotFound,
            ReminderError::NotRemindable => ApiError::Conflict("the appointment is cancelled or already started"),
            ReminderError::Disabled => ApiError::Conflict("the patient turned email reminders off"),
            ReminderError::Storage(e) => ApiError::from(e),
            other => {
                tracing::error!(error = %other, "reminder operation failed");
                ApiError::Internal
            }
        }
    }
}

impl From<crate::idempotency::IdempotencyError> for ApiError {
    /// Refusals keep their meaning; outages are 503; a kept answer failing its integrity check
    /// is logged (no values) and is 500.
    fn from(error: crate::idempotency::IdempotencyError) -> Self {
        use crate::idempotency::IdempotencyError;
        match error {
            IdempotencyError::Refused(refusal) => ApiError::Idempotency(refusal),
            IdempotencyError::AuditUnavailable => ApiError::Unavailable,
            IdempotencyError::Storage(e) => ApiError::from(e),
            IdempotencyError::Crypto(e) => {
                tracing::error!(error = %e, "a kept answer could not be opened");
                ApiError::Internal
            }
        }
    }
}

impl From<AccessError> for ApiError {
    fn from(error: AccessError) -> Self {
        match error {
            AccessError::Denied(denial) => ApiError::Forbidden(denial),
            AccessError::Storage(e) => ApiError::from(e),
            AccessError::AuditUnavailable => ApiError::Unavailable,
        }
    }
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> Self {
        if error.is_unavailable() {
            return ApiError::Unavailable;
        }
        tracing::error!(error = %error, cause = ?std::error::Error::source(&error).map(ToString::to_string), "storage operation failed");
        ApiError::Internal
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::InvalidBody
            | ApiError::InvalidField(_)
            | ApiError::InvalidNamedField { .. }
            | ApiError::Password(_) => StatusCode::BAD_REQUEST,
            ApiError::OAuth { code: "invalid_client", .. } => StatusCode::UNAUTHORIZED,
            ApiError::OAuth { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated
            | ApiError::SessionExpired
            | ApiError::InvalidCredentials
            | ApiError::InvalidMfa => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::CrossSite => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::Idempotency(refusal) => {
                use crate::idempotency::Refusal;
                match refusal {
                    Refusal::InvalidKey => StatusCode::BAD_REQUEST,
                    Refusal::InProgress | Refusal::OutcomeUnknown => StatusCode::CONFLICT,
                    Refusal::Reused => StatusCode::UNPROCESSABLE_ENTITY,
                }
            }
            ApiError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::NotReady(_) | ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The body is written by [`shape_errors`], which also knows the request id; the headers a
    /// status needs are set here.
    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            ApiError::TooManyAttempts { retry_after_secs } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.max(&1).to_string()));
            }
            ApiError::Unauthenticated | ApiError::SessionExpired => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            ApiError::Idempotency(crate::idempotency::Refusal::InProgress) => {
                response.insert_header((header::RETRY_AFTER, "1"));
            }
            _ => {}
        }
        response.finish()
    }
}

/// Body for an error response that did not come from an [`ApiError`] (actix's own 404, 405, a
/// failed extractor): the status's standard reason, as text and as a snake_case code.
fn body_for_status(status: StatusCode) -> Value {
    let reason = status.canonical_reason().unwrap_or("error");
    let code: String = reason
        .chars()
        .filter_map(|c| match c {
            'a'..='z' | '0'..='9' => Some(c),
            'A'..='Z' => Some(c.to_ascii_lowercase()),
            ' ' | '-' => Some('_'),
            _ => None,
        })
        .collect();
    json!({ "error": reason.to_lowercase(), "code": code })
}

/// Middleware: rewrites every error response into the standard JSON body, keeping its status
/// and headers (`Allow`, `Retry-After`). Installed inside the request-id middleware.
pub async fn shape_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    // Inner layers answer errors as responses (actix turns handler and extractor errors into
    // responses), so `Err` here would be a wiring bug; it is passed on for actix to answer.
    // The request cannot be cloned up front to build a response: routing needs it unshared.
    let res = next.call(req).await?.map_into_boxed_body();
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return Ok(res);
    }

    let api_error = res.response().error().and_then(|e| e.as_error::<ApiError>());
    let mut body = api_error.map_or_else(|| body_for_status(status), ApiError::body);
    let request_id = res.request().extensions().get::<RequestId>().cloned();
    if let Some(id) = &request_id {
        body["request_id"] = Value::String(id.to_string());
    }
    if status.is_server_error() {
        // The Display of our error types carries no PHI by construction; the debug form holds
        // the cause chain, which stays in the log.
        let cause = res.response().error().map(|e| format!("{e:?}"));
        tracing::error!(status = status.as_u16(), cause = cause.as_deref().unwrap_or("none"), "request failed");
    }

    let (http_req, response) = res.into_parts();
    let mut shaped = HttpResponse::build(status);
    for (name, value) in response.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            shaped.append_header((name.clone(), value.clone()));
        }
    }
    let mut shaped = shaped.body(body.to_string());
    shaped.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok(ServiceResponse::new(http_req, shaped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_for_plain_statuses_are_snake_case_reasons() {
        assert_eq!(body_for_status(StatusCode::NOT_FOUND)["code"], "not_found");
        assert_eq!(body_for_status(StatusCode::METHOD_NOT_ALLOWED)["code"], "method_not_allowed");
        assert_eq!(body_for_status(StatusCode::URI_TOO_LONG)["code"], "uri_too_long");
    }

    #[test]
    fn an_invalid_body_does_not_echo_the_input() {
        let body = ApiError::InvalidBody.body();
        assert_eq!(body["code"], "invalid_body");
        assert_eq!(body["error"], "request body is not the expected JSON document");
    }

    #[test]
    fn a_value_failing_its_integrity_check_reaches_the_client_only_as_internal_error() {
        let error = ApiError::from(PatientError::Crypto(crate::crypto::CryptoError::Integrity));
        assert_eq!(error.status_code(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(error.body(), json!({ "error": "internal error", "code": "internal_error" }));
    }

    #[test]
    fn an_invalid_field_is_named_without_its_value() {
        let invalid = InvalidField { field: "date_of_birth", rule: "is in the future" };
        let error = ApiError::from(PatientError::Invalid(invalid));
        assert_eq!(error.status_code(), StatusCode::BAD_REQUEST);
        assert_eq!(
            error.body(),
            json!({ "error": "`date_of_birth` is in the future", "code": "invalid_field", "field": "date_of_birth" })
        );
    }
}
