//! The OpenAPI 3 document of the API, served at `GET /api/v1/openapi.json`. It is generated
//! from the handlers' annotations, which name each route's own answers (success, and the refusals
//! only it gives: 409, 429...); [`SharedErrors`] adds the error answers that follow from a route's
//! shape (a body, a path id, a session) with the one error body every error has. A test compares
//! its paths with the routes the app serves, and schemathesis checks the server against it
//! (tests/api/contract.rs).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get};
use confidant_protocol::retry;
use utoipa::openapi::path::{Operation, Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{AuthorizationCode, Flow, Http, HttpAuthScheme, OAuth2, Scopes, SecurityScheme};
use utoipa::openapi::{ContentBuilder, ObjectBuilder, Ref, RefOr, ResponseBuilder, Type};
use utoipa::{Modify, OpenApi, ToSchema};

use super::shapes::{Shapes, one_of};
use super::{
    account, alerts, appointments, attachments, audit, browser, intake, messaging, notes, oauth, patients, reminders,
    users,
};

/// The document.
#[derive(OpenApi)]
#[openapi(
    info(title = "Confidant API", description = "Sign-in (OAuth 2.0 + PKCE), accounts and patient records. See docs/API.md."),
    paths(
        oauth::authorize,
        oauth::authorize_mfa,
        oauth::token,
        oauth::revoke,
        account::me,
        account::begin_totp,
        account::confirm_totp,
        account::verify_totp,
        account::sign_out,
        account::sign_out_everywhere,
        account::accept_invitation,
        users::invite,
        users::list,
        users::disable,
        users::set_name,
        users::staff,
        users::participants,
        audit::status,
        audit::verify,
        browser::sign_in,
        browser::sign_in_mfa,
        browser::current,
        patients::create,
        patients::list,
        patients::read,
        patients::update,
        patients::care_team,
        patients::assign,
        patients::unassign,
        patients::break_glass,
        patients::break_glass_list,
        appointments::book,
        appointments::reschedule,
        appointments::cancel,
        reminders::send_now,
        reminders::status,
        reminders::get_preferences,
        reminders::set_preferences,
        intake::assign,
        intake::list,
        intake::read,
        intake::series,
        notes::templates,
        notes::add_template,
        notes::list,
        notes::create,
        notes::read,
        notes::pdf,
        notes::save_draft,
        notes::sign,
        notes::add_addendum,
        notes::cosign,
        notes::cosign_queue,
        notes::set_supervisor,
        notes::supervisions,
        alerts::list,
        alerts::acknowledge,
        alerts::follow_up,
        alerts::of_patient,
        messaging::register,
        messaging::list_devices,
        messaging::remove_device,
        messaging::upload,
        messaging::claim,
        messaging::create,
        messaging::conversations,
        attachments::upload_attachment,
        attachments::download_attachment,
        openapi_json,
    ),
    components(schemas(ErrorBody)),
    modifiers(&SecuritySchemes, &BodyShapes, &Documented, &SharedErrors, &OperationIds)
)]
pub struct ApiDoc;

/// The body of every error answer, as `crate::web::error::shape_errors` writes it. Documentation
/// only: the middleware builds the body.
#[derive(serde::Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code, reason = "describes a body `shape_errors` writes; never built")]
pub struct ErrorBody {
    /// What went wrong, for a person. It names a field or a rule, never a value sent.
    error: String,
    /// A stable snake_case code to branch on: `invalid_body`, `invalid_field`, `unauthenticated`,
    /// `forbidden`, `not_found`, `method_not_allowed`, `conflict`, `payload_too_large`,
    /// `unsupported_media_type`, `too_many_attempts`, `service_unavailable`, `internal_error`,
    /// an `Idempotency-Key` refusal (`invalid_idempotency_key`, `idempotency_key_in_progress`,
    /// `idempotency_outcome_unknown`, `idempotency_key_reused`),
    /// a password rule (`password_too_short`...) or an OAuth 2.0 error code.
    code: String,
    /// The request's id, as in `X-Request-Id`: quote it when reporting a problem.
    #[schema(format = Uuid)]
    request_id: String,
    /// With `invalid_field`: the field breaking its rule.
    #[schema(nullable = false)]
    field: Option<String>,
    /// With an OAuth 2.0 error: a description for the developer.
    #[schema(nullable = false)]
    error_description: Option<String>,
}

/// The paths the document describes, as route patterns (`/api/v1/patients/{patient_id}`).
pub fn paths() -> impl Iterator<Item = String> {
    ApiDoc::openapi().paths.paths.into_keys()
}

/// Declares the `bearer` security scheme the paths refer to, and the OAuth 2.0 flow that issues
/// its tokens (authorization code with PKCE; the password step is this API's own JSON
/// `POST /oauth/authorize`, docs/API.md).
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
        let flow = AuthorizationCode::new("/oauth/authorize", "/oauth/token", Scopes::new());
        components.add_security_scheme("oauth2", SecurityScheme::OAuth2(OAuth2::new([Flow::AuthorizationCode(flow)])));
    }
}

/// States the shapes of the bodies whose fields depend on one another (`super::shapes`).
struct BodyShapes;

impl Modify for BodyShapes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let bodies: [(&str, Shapes); 6] = [
            ("MfaBody", oauth::MfaBody::shapes),
            // The browser's second factor takes the same two codes.
            ("BrowserFactor", oauth::MfaBody::shapes),
            ("TokenForm", oauth::TokenForm::shapes),
            ("InviteBody", users::InviteBody::shapes),
            ("ClaimBody", messaging::conversation_shapes),
            ("CreateBody", messaging::conversation_shapes),
        ];
        let Some(components) = openapi.components.as_mut() else { return };
        for (name, shapes) in bodies {
            if let Some(schema) = components.schemas.remove(name) {
                components.schemas.insert(name.to_owned(), one_of(schema, shapes()));
            }
        }
    }
}

/// Adds to each operation the error answers that follow from its shape rather than from what it
/// does, and gives every error answer (these and the handler's own) the shared [`ErrorBody`]:
/// - a request body: 400 (not the JSON document or form expected, or a field breaking its rule),
///   413 (larger than `http.max_body_bytes`), 415 (another media type);
/// - a session: 401 (no valid session), 403 (the permission check, a missing second factor, or a
///   cookie-authenticated change from another page);
/// - an id in the path: 404 (malformed, unknown, or not the caller's to know about);
/// - every route but this document: 500 (our bug; the request id leads to the log) and 503 (a
///   database or the audit trail is down).
struct SharedErrors;

impl SharedErrors {
    fn statuses(operation: &Operation) -> Vec<(&'static str, &'static str)> {
        let mut statuses = vec![
            ("500", "Internal error: our bug; quote the request id"),
            ("503", "A database or the audit trail is unavailable; retry later"),
        ];
        if operation.request_body.is_some() {
            statuses.push(("400", "The body is not the document expected, or a field breaks its rule"));
            statuses.push(("413", "The body is larger than the server accepts"));
            statuses.push(("415", "The body is not in the media type this operation reads"));
        }
        if operation.security.as_ref().is_some_and(|s| !s.is_empty()) {
            statuses.push(("401", "No valid session: sign in (again)"));
            statuses.push(("403", "Not allowed (the permission check, a missing second factor, or CSRF)"));
        }
        let in_path = |p: &RefOr<utoipa::openapi::path::Parameter>| matches!(p, RefOr::T(p) if matches!(p.parameter_in, ParameterIn::Path));
        if operation.parameters.iter().flatten().any(in_path) {
            statuses.push(("404", "No such resource, or not one the caller may know about"));
        }
        statuses
    }
}

impl Modify for SharedErrors {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let error_body =
            || ContentBuilder::new().schema(Some(RefOr::Ref(Ref::from_schema_name(ErrorBody::name())))).build();
        for (path, item) in &mut openapi.paths.paths {
            if path == "/api/v1/openapi.json" {
                continue;
            }
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                for (status, description) in Self::statuses(operation) {
                    let responses = &mut operation.responses.responses;
                    let response =
                        responses.entry(status.to_owned()).or_insert_with(|| ResponseBuilder::new().build().into());
                    if let RefOr::T(response) = response
                        && response.description.is_empty()
                    {
                        description.clone_into(&mut response.description);
                    }
                }
                for (status, response) in &mut operation.responses.responses {
                    let RefOr::T(response) = response else { continue };
                    if (status.starts_with('4') || status.starts_with('5')) && response.content.is_empty() {
                        response.content.insert("application/json".to_owned(), error_body().into());
                    }
                    if response.description.is_empty() {
                        let reason = status.parse().ok().and_then(|s| StatusCode::from_u16(s).ok());
                        response.description = reason.and_then(|s| s.canonical_reason()).unwrap_or("Answer").to_owned();
                    }
                }
            }
        }
    }
}

/// Names each operation `{tag}_{handler}` (`patients_read`): handlers of different domains share
/// names (`read`, `list`), and an operation id must be unique in the document.
struct OperationIds;

impl Modify for OperationIds {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                let tag = operation.tags.iter().flatten().next().map(|t| t.replace(' ', "_"));
                if let (Some(tag), Some(id)) = (tag, operation.operation_id.as_mut()) {
                    *id = format!("{tag}_{id}");
                }
            }
        }
    }
}

/// The pattern a documented key matches: 1 to 255 visible ASCII characters but `"`, bare or in
/// double quotes (the draft's structured-field string).
pub(super) const KEY_PATTERN: &str = r#"^("[!#-~]{1,255}"|[!#-~]{1,255})$"#;

/// Gives every write but `confidant_protocol::retry::WRITES_NOT_KEPT` its optional `Idempotency-Key` header
/// and the answers that come with it: 400 for a malformed key, 409 while the first request runs
/// or when it was cut off, 422 for a key used with another request (`super::idempotency` serves
/// exactly the operations given the header). Runs before `SharedErrors`, which gives them the
/// error body.
pub struct Documented;

impl Documented {
    fn parameter() -> Parameter {
        let schema = ObjectBuilder::new().schema_type(Type::String).pattern(Some(KEY_PATTERN)).max_length(Some(257));
        ParameterBuilder::new()
            .name(retry::IDEMPOTENCY_KEY)
            .parameter_in(ParameterIn::Header)
            .required(utoipa::openapi::Required::False)
            .description(Some(
                "Any unique value (a UUID) per intended write, the same on each retry of it: a retry \
                 gets the first answer (with `Idempotent-Replayed: true`) instead of writing twice. \
                 Kept 24 hours per account.",
            ))
            .schema(Some(schema))
            .build()
    }
}

impl Modify for Documented {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in &mut openapi.paths.paths {
            if !retry::keeps_answer(path) {
                continue;
            }
            let writes = [&mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in writes.into_iter().flatten() {
                operation.parameters.get_or_insert_with(Vec::new).push(RefOr::T(Self::parameter()));
                let answers = [
                    ("400", "The body or a field breaks its rule, or the Idempotency-Key is malformed"),
                    (
                        "409",
                        "A conflict with what is stored, or the first request with this Idempotency-Key is still in progress or was interrupted",
                    ),
                    ("422", "This Idempotency-Key was used with another request"),
                ];
                for (status, description) in answers {
                    let responses = &mut operation.responses.responses;
                    let response = responses
                        .entry(status.to_owned())
                        .or_insert_with(|| ResponseBuilder::new().description(description).build().into());
                    if let RefOr::T(response) = response
                        && response.description.is_empty()
                    {
                        description.clone_into(&mut response.description);
                    }
                }
            }
        }
    }
}

/// Whether an operation takes the key (the document says so).
pub(super) fn takes_key(operation: &Operation) -> bool {
    let is_key = |p: &RefOr<Parameter>| matches!(p, RefOr::T(p) if p.name == retry::IDEMPOTENCY_KEY);
    operation.parameters.iter().flatten().any(is_key)
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", responses((status = 200, description = "OpenAPI 3 document")))]
#[get("/api/v1/openapi.json")]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;

    fn operations() -> Vec<(String, Value)> {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let mut found = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                found.push((format!("{} {path}", method.to_uppercase()), operation.clone()));
            }
        }
        found
    }

    #[test]
    fn attachments_go_up_and_down_as_raw_bytes_and_their_upload_takes_a_key() {
        let operations: std::collections::BTreeMap<String, Value> = operations().into_iter().collect();
        let upload = &operations["POST /api/v1/conversations/{conversation_id}/attachments"];
        let body = &upload["requestBody"]["content"]["application/octet-stream"]["schema"];
        assert_eq!(body["$ref"], "#/components/schemas/Ciphertext", "{upload}");
        assert!(upload["responses"]["413"].is_object() && upload["responses"]["201"].is_object());
        assert!(takes_key(
            ApiDoc::openapi().paths.paths[super::super::attachments::ATTACHMENT_UPLOAD].post.as_ref().unwrap()
        ));
        let download = &operations["GET /api/v1/attachments/{attachment_id}"];
        let bytes = &download["responses"]["200"]["content"]["application/octet-stream"]["schema"];
        assert_eq!(bytes["$ref"], "#/components/schemas/Ciphertext", "{download}");
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let ciphertext = &doc["components"]["schemas"]["Ciphertext"];
        assert_eq!((ciphertext["type"].as_str(), ciphertext["format"].as_str()), (Some("string"), Some("binary")));
    }

    #[test]
    fn operation_ids_are_unique() {
        let operations = operations();
        let ids: BTreeSet<&str> = operations.iter().map(|(_, o)| o["operationId"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), operations.len(), "{ids:?}");
    }

    #[test]
    fn every_answer_is_described_and_every_error_has_the_error_body() {
        for (operation, body) in operations() {
            for (status, response) in body["responses"].as_object().unwrap() {
                assert!(!response["description"].as_str().unwrap_or_default().is_empty(), "{operation} {status}");
                if status.starts_with('4') || status.starts_with('5') {
                    let schema = &response["content"]["application/json"]["schema"]["$ref"];
                    assert_eq!(schema, "#/components/schemas/ErrorBody", "{operation} {status}");
                }
            }
        }
    }

    #[test]
    fn a_route_with_a_body_documents_its_refusal_and_one_behind_a_session_its_401() {
        for (operation, body) in operations().into_iter().filter(|(o, _)| !o.ends_with("openapi.json")) {
            let responses = body["responses"].as_object().unwrap();
            let has = |status: &str| responses.contains_key(status);
            assert!(has("500") && has("503"), "{operation}");
            if body.get("requestBody").is_some() {
                assert!(has("400") && has("413") && has("415"), "{operation}");
            }
            if body.get("security").is_some() {
                assert!(has("401") && has("403"), "{operation}");
            }
        }
    }
}
