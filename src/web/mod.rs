//! What every HTTP request shares, whichever transport serves it (the REST routes of `http/`,
//! the WebSocket upgrade of `ws/`): the server-generated request id, the error type with the one
//! middleware that writes every error body, the security headers, the body limits, the 405 for a
//! known path asked with another method, and [`app`], which stacks them over the routes it is
//! given. It imports neither transport.

pub mod browser;
pub mod error;
pub mod headers;
pub mod limits;
pub mod methods;
pub mod request_id;

use std::future::Future;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, web};

pub use error::ApiError;
pub use headers::CONTENT_SECURITY_POLICY;
pub use request_id::{REQUEST_ID_HEADER, RequestId};

/// Builds the application for one worker over `routes` (which also registers the shared state),
/// refusing bodies over `limits` (one for every route, larger ones for the routes given their own).
/// Middleware, outermost first: request id and request log; security headers; error bodies;
/// body limit; then `inner`, the transports' own (the REST API's `Idempotency-Key`, which needs
/// the caller and the services this module does not know). So every response, including a 413
/// refused before routing and actix's own 404, has an id, the security headers and the JSON
/// error shape.
pub fn app<Inner, Answered>(
    limits: limits::BodyLimit,
    hsts_max_age_secs: u64,
    inner: Inner,
    routes: impl FnOnce(&mut web::ServiceConfig) + 'static,
) -> App<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
>
where
    Inner: Fn(ServiceRequest, Next<BoxBody>) -> Answered + 'static,
    Answered: Future<Output = Result<ServiceResponse<BoxBody>, actix_web::Error>> + 'static,
{
    let max_body = limits.default_limit();
    App::new()
        .app_data(limits)
        .app_data(limits::json_config(max_body))
        .app_data(limits::payload_config(max_body))
        .app_data(limits::form_config(max_body))
        .configure(routes)
        .wrap(from_fn(inner))
        .wrap(from_fn(limits::refuse_oversized))
        .wrap(from_fn(error::shape_errors))
        .wrap(headers::security_headers(hsts_max_age_secs))
        .wrap(from_fn(request_id::trace_requests))
}
