//! `Idempotency-Key` on the REST API (docs/API.md, "Retrying a write"): [`keep_answers`], the
//! middleware that claims the key, runs the write and keeps its answer through
//! `crate::idempotency::KeptAnswers`.
//!
//! Every write takes the header but those in `confidant_protocol::retry::WRITES_NOT_KEPT` (the
//! portal reads the same list). The document is the one list here: the middleware serves the
//! operations `super::openapi::Documented` gave the header to.

use std::collections::HashSet;
use std::sync::LazyLock;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};
use utoipa::OpenApi;
use zeroize::Zeroizing;

use super::auth::Caller;
use super::openapi::{ApiDoc, takes_key};
use crate::auditor::noting_patients;
use crate::idempotency::{Answer, Begun, Claim, IdempotencyKey, KeptAnswers, MAX_ANSWER_BYTES, RequestDigest};
use crate::state::AppState;
use crate::web::ApiError;
use crate::web::limits::{BodyLimit, read_whole};

/// The request header (draft-ietf-httpapi-idempotency-key-header), `retry::IDEMPOTENCY_KEY`.
const HEADER: HeaderName = HeaderName::from_static("idempotency-key");

/// Set to `true` on an answer that repeats a kept one, `retry::IDEMPOTENT_REPLAYED`.
const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// The `(method, route pattern)` of every operation that takes the key.
static KEPT: LazyLock<HashSet<(&'static str, String)>> = LazyLock::new(|| {
    let mut kept = HashSet::new();
    for (path, item) in ApiDoc::openapi().paths.paths {
        let writes = [("PUT", item.put), ("POST", item.post), ("DELETE", item.delete), ("PATCH", item.patch)];
        for (method, operation) in writes {
            if operation.as_ref().is_some_and(takes_key) {
                kept.insert((method, path.clone()));
            }
        }
    }
    kept
});

/// Middleware: a write with `Idempotency-Key` on a route that takes it is claimed under the key,
/// then run, then its answer kept (or, if it failed, the key released); a retry gets the kept
/// answer. Without the header, or on another route, the request passes untouched. The caller is
/// authenticated here (and handed on, not asked again); without a valid session the route
/// answers its 401 as it would without a key.
pub async fn keep_answers(
    mut req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(value) = req.headers().get(&HEADER).map(|v| v.as_bytes().to_vec()) else {
        return next.call(req).await;
    };
    let method = req.method().as_str().to_owned();
    if !req.match_pattern().is_some_and(|pattern| KEPT.contains(&(method.as_str(), pattern))) {
        return next.call(req).await;
    }
    let key = match IdempotencyKey::parse(&value) {
        Ok(key) => key,
        Err(refusal) => return Ok(req.error_response(ApiError::from(refusal))),
    };
    let Ok(caller) = req.extract::<Caller>().await else { return next.call(req).await };
    req.extensions_mut().insert(caller);
    let limit = req.app_data::<BodyLimit>().map_or(usize::MAX, |l| l.of(&req));
    let body = match read_whole(&mut req.take_payload(), limit).await {
        Ok(body) => body,
        Err(refused) => return Ok(req.error_response(refused)),
    };
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let path = req.uri().path_and_query().map_or_else(|| req.path().to_owned(), |p| p.as_str().to_owned());
    let digest = RequestDigest::of(&method, &path, content_type.as_deref(), &body);
    req.set_payload(actix_web::dev::Payload::from(body));

    let Some(kept) = req.app_data::<web::Data<AppState>>().map(|s| s.services.kept_answers.clone()) else {
        return Ok(req.error_response(ApiError::Internal));
    };
    match kept.begin(&caller.requester(), &key, digest).await {
        Err(error) => Ok(req.error_response(ApiError::from(error))),
        Ok(Begun::Replay(answer)) => Ok(req.into_response(replayed(answer))),
        Ok(Begun::Claimed(claim)) => {
            // In a task of its own, so the write and the keeping of its answer finish together
            // even when the client goes away mid-request: that is the retry this exists for.
            let run = actix_web::rt::spawn(async move {
                let (answered, named) = noting_patients(next.call(req)).await;
                finish(&kept, claim, answered, named).await
            });
            run.await.map_err(|_| actix_web::Error::from(ApiError::Internal))?
        }
    }
}

/// Keeps a successful answer (or releases the key of a failed write) and hands the answer on.
async fn finish(
    kept: &KeptAnswers,
    claim: Claim,
    answered: Result<ServiceResponse<BoxBody>, actix_web::Error>,
    named: crate::auditor::Named,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let response = match answered {
        Ok(response) if response.status().is_success() => response,
        other => {
            release(kept, claim).await;
            return other;
        }
    };
    let fits = matches!(response.response().body().size(), BodySize::Sized(n) if n <= MAX_ANSWER_BYTES as u64)
        || matches!(response.response().body().size(), BodySize::None);
    if !fits {
        release(kept, claim).await;
        return Ok(response);
    }
    let (request, response) = response.into_parts();
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (head, body) = response.into_parts();
    let Ok(bytes) = actix_web::body::to_bytes(body).await else {
        release(kept, claim).await;
        return Err(ApiError::Internal.into());
    };
    let answer = Answer { status: status.as_u16(), content_type, body: Zeroizing::new(bytes.to_vec()) };
    if let Err(error) = kept.keep(claim, &answer, named).await {
        // The write is done: answer it. A retry within a minute hears it is in progress, then
        // that its outcome is unknown, never a second write.
        tracing::warn!(%error, "could not keep the answer of a write for its Idempotency-Key");
    }
    Ok(ServiceResponse::new(request, head.set_body(BoxBody::new(bytes))))
}

async fn release(kept: &KeptAnswers, claim: Claim) {
    if let Err(error) = kept.release(claim).await {
        tracing::warn!(%error, "could not release an Idempotency-Key after a failed write");
    }
}

/// The kept answer, as it was, marked as a replay.
fn replayed(answer: Answer) -> HttpResponse {
    let status = actix_web::http::StatusCode::from_u16(answer.status).unwrap_or(actix_web::http::StatusCode::OK);
    let mut response = HttpResponse::build(status);
    response.insert_header((REPLAYED, "true"));
    if let Some(content_type) = &answer.content_type {
        response.insert_header((header::CONTENT_TYPE, content_type.as_str()));
    }
    response.body(answer.body.to_vec())
}

#[cfg(test)]
mod tests {
    use confidant_protocol::retry;

    use super::*;

    #[test]
    fn every_write_behind_a_session_takes_a_key_but_those_whose_answer_is_a_secret() {
        let doc = ApiDoc::openapi();
        let mut writes_seen = HashSet::new();
        for (path, item) in &doc.paths.paths {
            let writes = [&item.put, &item.post, &item.delete, &item.patch];
            for operation in writes.into_iter().flatten() {
                writes_seen.insert(path.as_str());
                let session = operation.security.as_ref().is_some_and(|s| !s.is_empty());
                assert_eq!(takes_key(operation), retry::keeps_answer(path), "{path}");
                // A write before a session has no account to keep its answer for.
                assert!(session || !retry::keeps_answer(path), "{path} needs no session: list it");
            }
            assert!(!item.get.as_ref().is_some_and(takes_key), "{path}");
        }
        assert!(HEADER.as_str().eq_ignore_ascii_case(retry::IDEMPOTENCY_KEY));
        assert!(REPLAYED.as_str().eq_ignore_ascii_case(retry::IDEMPOTENT_REPLAYED));
        for path in retry::WRITES_NOT_KEPT {
            assert!(writes_seen.contains(path), "{path} is listed but is no documented write");
        }
        assert!(KEPT.contains(&("POST", "/api/v1/appointments".to_owned())));
        assert!(KEPT.contains(&("POST", "/api/v1/patients".to_owned())));
        assert!(!KEPT.contains(&("POST", "/api/v1/me/totp".to_owned())));
        assert!(!KEPT.contains(&("POST", "/oauth/token".to_owned())));
    }

    #[test]
    fn the_documented_pattern_is_the_rule_the_server_applies() {
        let pattern = regex::Regex::new(crate::http::openapi::KEY_PATTERN).unwrap();
        for value in ["abc", "\"abc\"", "8e03978e-40d5-43e8-bc93-6894a57f9324", "a\"b", "\"", "", "a b", "\"\""] {
            assert_eq!(pattern.is_match(value), IdempotencyKey::parse(value.as_bytes()).is_ok(), "{value:?}");
        }
    }
}
