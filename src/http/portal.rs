//! The web portal's files, compiled into the binary by `build.rs`: the entry page at `/` (and
//! `/portal/`, where reminder emails link), and `/assets/{name}-{hash}.{ext}`, named by content
//! hash so they can be cached for a year. Each asset is stored precompressed (brotli and gzip)
//! and sent in the best encoding the browser accepts. The entry page is `no-store`, like every
//! response (it is tiny, and a stale one would point at assets that no longer exist).

use actix_web::http::header::{self, ContentType};
use actix_web::{HttpRequest, HttpResponse, get, web};

/// One embedded file.
pub struct Asset {
    /// Its URL path.
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// As built.
    pub plain: &'static [u8],
    /// Brotli, quality 11.
    pub brotli: &'static [u8],
    /// Gzip, level 9.
    pub gzip: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/portal_assets.rs"));

const INDEX_HTML: &str = include_str!(concat!(env!("OUT_DIR"), "/index.html"));

/// A year: the URL changes whenever the content does.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// `GET /` and `GET /portal/`: the portal's entry page.
pub async fn index() -> HttpResponse {
    HttpResponse::Ok().content_type(ContentType::html()).body(INDEX_HTML)
}

/// `GET /assets/{name}`: a hashed file, in the best encoding the browser accepts.
#[get("/assets/{name}")]
pub async fn asset(req: HttpRequest, name: web::Path<String>) -> HttpResponse {
    let path = format!("/assets/{}", name.into_inner());
    let Some(asset) = ASSETS.iter().find(|a| a.path == path) else {
        return HttpResponse::NotFound().finish();
    };
    let accepted = accepted_encodings(&req);
    let (encoding, body) = if accepted.contains(&"br") {
        (Some("br"), asset.brotli)
    } else if accepted.contains(&"gzip") {
        (Some("gzip"), asset.gzip)
    } else {
        (None, asset.plain)
    };
    let mut response = HttpResponse::Ok();
    response
        .content_type(asset.content_type)
        .insert_header((header::CACHE_CONTROL, IMMUTABLE))
        .insert_header((header::VARY, "Accept-Encoding"));
    if let Some(encoding) = encoding {
        response.insert_header((header::CONTENT_ENCODING, encoding));
    }
    response.body(body)
}

/// The codings of `Accept-Encoding` with a non-zero quality.
fn accepted_encodings(req: &HttpRequest) -> Vec<&str> {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|part| {
            let mut pieces = part.split(';').map(str::trim);
            let coding = pieces.next()?;
            let refused = pieces.any(|p| p.strip_prefix("q=").and_then(|q| q.parse::<f32>().ok()) == Some(0.0));
            (!refused && !coding.is_empty()).then_some(coding)
        })
        .collect()
}
