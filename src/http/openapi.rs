//! The OpenAPI 3 document of the API, served at `GET /api/v1/openapi.json`. It is generated
//! from the handlers' annotations; a test compares its paths with the routes the app serves.

use actix_web::{HttpResponse, get};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{account, alerts, appointments, audit, browser, intake, messaging, oauth, patients, reminders, users};

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
        openapi_json,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// Declares the `bearer` security scheme the paths refer to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    }
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", responses((status = 200, description = "OpenAPI 3 document")))]
#[get("/api/v1/openapi.json")]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
