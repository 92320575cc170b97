//! `GET /ws`: the upgrade. Refused before any socket exists: a query string (a token must never
//! be in a URL), a browser Origin that is not allowed (403), too many unauthenticated sockets
//! from one address (429). The token comes in the first frame, or as the subprotocol
//! `bearer.<token>` next to `confidant.v1` (the server selects only `confidant.v1`), or is the
//! portal's session cookie, which the browser sends with the upgrade.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use actix_web_actors::ws;
use confidant_protocol::{BEARER_SUBPROTOCOL_PREFIX, MAX_FRAME_BYTES, SUBPROTOCOL};
use zeroize::Zeroizing;

use super::slots::Unauthenticated;
use super::transport::WsTransport;
use crate::state::AppState;
use crate::web::{ApiError, RequestId, browser};

/// Opens a WebSocket session.
#[get("/ws")]
pub async fn connect(
    state: web::Data<AppState>,
    slots: web::Data<Unauthenticated>,
    req: HttpRequest,
    stream: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let request_id = RequestId::of(&req).ok_or(ApiError::Internal)?;
    if !req.query_string().is_empty() {
        return Err(ApiError::invalid(
            "query",
            "is not accepted on /ws: send the token in the first frame or as a subprotocol",
        ));
    }
    if !browser::origin_allowed(&req, &state.settings.ws.allowed_origins) {
        return Err(ApiError::Forbidden(crate::access::Denial::NotPermitted));
    }
    let peer = req.peer_addr().map(|a| a.ip());
    let max = state.settings.ws.max_unauthenticated_per_address;
    if let Some(ip) = peer
        && !slots.acquire(ip, max)
    {
        return Err(ApiError::TooManyAttempts { retry_after_secs: state.settings.ws.auth_timeout_secs });
    }
    let offered = offered_protocols(&req);
    // A native client offers its token as a subprotocol (or sends it first); the portal's
    // browser sends its session cookie with the upgrade.
    let token = offered
        .iter()
        .find_map(|p| p.strip_prefix(BEARER_SUBPROTOCOL_PREFIX))
        .map(str::to_owned)
        .or_else(|| browser::session_token(&req))
        .map(Zeroizing::new);
    let transport =
        WsTransport::new(state.clone().into_inner(), slots.clone().into_inner(), peer, request_id.for_audit(), token);
    let started = ws::WsResponseBuilder::new(transport, &req, stream)
        .protocols(&[SUBPROTOCOL])
        .frame_size(MAX_FRAME_BYTES * 4)
        .start();
    started.map_err(|error| {
        if let Some(ip) = peer {
            slots.release(ip);
        }
        tracing::debug!(%error, "websocket handshake refused");
        ApiError::invalid("upgrade", "is not a valid WebSocket handshake")
    })
}

/// The subprotocols the client offered.
fn offered_protocols(req: &HttpRequest) -> Vec<String> {
    req.headers()
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(',').map(|p| p.trim().to_owned()))
        .filter(|p| !p.is_empty())
        .collect()
}
