//! The REST API: its routes, the `Caller` extractor and the health probes. Handlers parse, call a
//! domain service and map the result; the middleware and error shape they share are in
//! `crate::web`, the WebSocket in `crate::ws` (neither transport imports the other).

mod account;
mod alerts;
mod appointments;
pub mod attachments;
mod audit;
mod auth;
mod browser;
pub mod fields;
mod health;
pub mod idempotency;
mod intake;
pub mod messaging;
mod notes;
mod oauth;
pub mod openapi;
mod patients;
mod portal;
mod reminders;
mod shapes;
mod users;

use actix_web::web;

/// What is served besides the documented API (the probes and the portal's hashed files), as
/// route patterns; the portal's entry page is one resource with its own 405.
const UNDOCUMENTED: [&str; 3] = ["/healthz", "/readyz", "/assets/{name}"];

/// Registers every REST route, the health probes and the portal's files; any other method on
/// their paths is 405 (`crate::web::methods`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(health::healthz)
        .service(health::readyz)
        .service(oauth::authorize)
        .service(oauth::authorize_mfa)
        .service(oauth::token)
        .service(oauth::revoke)
        .service(browser::sign_in)
        .service(browser::sign_in_mfa)
        .service(browser::current)
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
        .service(users::set_name)
        .service(users::staff)
        .service(users::participants)
        .service(audit::status)
        .service(audit::verify)
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
        .service(intake::series)
        .service(notes::templates)
        .service(notes::add_template)
        .service(notes::list)
        .service(notes::create)
        .service(notes::cosign_queue)
        .service(notes::read)
        .service(notes::pdf)
        .service(notes::save_draft)
        .service(notes::sign)
        .service(notes::add_addendum)
        .service(notes::cosign)
        .service(notes::set_supervisor)
        .service(notes::supervisions)
        .service(alerts::list)
        .service(alerts::acknowledge)
        .service(alerts::follow_up)
        .service(alerts::of_patient)
        .service(messaging::register)
        .service(messaging::list_devices)
        .service(messaging::remove_device)
        .service(messaging::upload)
        .service(messaging::claim)
        .service(messaging::create)
        .service(messaging::conversations)
        .service(attachments::upload_attachment)
        .service(attachments::download_attachment)
        .service(openapi::openapi_json)
        .service(portal::asset)
        .service(web::resource(["/", "/portal", "/portal/"]).route(web::get().to(portal::index)))
        .service(crate::web::methods::not_allowed(openapi::paths().chain(UNDOCUMENTED.map(String::from))));
}
