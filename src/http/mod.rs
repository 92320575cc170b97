//! The HTTP surface: the app factory with its middleware stack, and the routes. Only this module
//! knows actix-web's request types; handlers call into the layers below.

mod account;
mod appointments;
mod auth;
mod error;
mod guard;
mod headers;
mod health;
mod intake;
mod limits;
pub mod messaging;
mod oauth;
pub mod openapi;
mod patients;
mod portal;
mod reminders;
mod request_id;
mod users;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{App, web};

pub use error::ApiError;
pub use headers::CONTENT_SECURITY_POLICY;
pub use health::{Check, ReadinessMemory, ReadinessReport};
pub use request_id::{REQUEST_ID_HEADER, RequestId};

use crate::state::AppState;

/// Builds the application for one worker. Middleware, outermost first: request id and request
/// log; security headers; error bodies; body limit. So every response, including a 413 refused
/// before routing and actix's own 404, has an id, the security headers and the JSON error shape.
pub fn app(
    state: web::Data<AppState>,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let http = &state.settings.http;
    let (max_body, hsts) = (http.max_body_bytes, http.hsts_max_age_secs);
    App::new()
        .app_data(state)
        .app_data(limits::BodyLimit(max_body))
        .app_data(limits::json_config(max_body))
        .app_data(limits::payload_config(max_body))
        .app_data(limits::form_config(max_body))
        .service(health::healthz)
        .service(health::readyz)
        .service(oauth::authorize)
        .service(oauth::authorize_mfa)
        .service(oauth::token)
        .service(oauth::revoke)
        .service(account::me)
        .service(account::begin_totp)
        .service(account::confirm_totp)
        .service(account::verify_totp)
        .service(account::sign_out)
        .service(account::sign_out_everywhere)
        .service(account::accept_invitation)
        .service(users::invite)
        .service(users::list)
        .service(users::disable)
        .service(patients::create)
        .service(patients::list)
        .service(patients::read)
        .service(patients::update)
        .service(patients::care_team)
        .service(patients::assign)
        .service(patients::unassign)
        .service(patients::break_glass)
        .service(patients::break_glass_list)
        .service(appointments::book)
        .service(appointments::reschedule)
        .service(appointments::cancel)
        .service(reminders::send_now)
        .service(reminders::status)
        .service(reminders::get_preferences)
        .service(reminders::set_preferences)
        .service(intake::assign)
        .service(intake::list)
        .service(intake::read)
        .service(messaging::register)
        .service(messaging::list_devices)
        .service(messaging::remove_device)
        .service(messaging::upload)
        .service(messaging::claim)
        .service(messaging::create)
        .service(messaging::conversations)
        .service(crate::ws::connect)
        .service(openapi::openapi_json)
        .service(portal::index)
        .service(portal::style)
        .wrap(from_fn(limits::refuse_oversized))
        .wrap(from_fn(error::shape_errors))
        .wrap(headers::security_headers(hsts))
        .wrap(from_fn(request_id::trace_requests))
}
