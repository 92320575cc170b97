//! The web portal's entry page, compiled into the binary. The portal proper (sign-in, messages,
//! intake forms) arrives with the features it serves.

use actix_web::http::header::ContentType;
use actix_web::{HttpResponse, get};

const INDEX_HTML: &str = include_str!("../../portal/index.html");
const STYLE_CSS: &str = include_str!("../../portal/style.css");

/// `GET /`: the portal page.
#[get("/")]
pub async fn index() -> HttpResponse {
    HttpResponse::Ok().content_type(ContentType::html()).body(INDEX_HTML)
}

/// `GET /style.css`: the portal's stylesheet (external, so the CSP needs no inline styles).
#[get("/style.css")]
pub async fn style() -> HttpResponse {
    HttpResponse::Ok().content_type("text/css; charset=utf-8").body(STYLE_CSS)
}
