//! `WsTransport`: the actor that owns one socket. Until it is authenticated it accepts only an
//! `auth` frame (or was given the token as a subprotocol) and closes with 4004 when the auth
//! timeout passes; then it starts the connection's `SessionActor` and relays frames both ways.
//!
//! Back-pressure, outbound: this actor only runs while actix-web polls the socket's response
//! stream, and that stops while the client does not read. Its mailbox (bounded) then fills, the
//! session's `try_send` fails, and the session closes with 4008 instead of queueing without limit.
//!
//! Back-pressure, inbound: when the session's mailbox is full (it is behind the client), this
//! actor stops reading the socket until the session has room, so a client that sends faster
//! than the server works is slowed down by TCP rather than disconnected. Only a session that
//! takes no frame for [`INBOUND_WAIT`] ends the connection (4008).

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix::prelude::*;
use actix_web_actors::ws::{self, CloseCode, CloseReason, ProtocolError};
use confidant_actors::ids::RequestId;
use confidant_actors::session::{Inbound, Outbound, SessionActor, SessionIdentity, SessionLimits};
use confidant_protocol::{ClientFrame, ErrorCode, ServerFrame, close};
use zeroize::Zeroizing;

use super::ports::ServerPorts;
use super::slots::Unauthenticated;
use crate::identity::Origin;
use crate::state::AppState;

/// Frames waiting to be written; more means the client does not read. Room for the answers to
/// one batch of messages (`messaging::ingest::MAX_BATCH`), which arrive together: at 64, a
/// client sending ~12,000 messages/s was disconnected by its own acknowledgements.
const OUTBOUND_QUEUE: usize = 1024;

/// How long a frame may wait for room in a session that is behind before the connection ends.
pub const INBOUND_WAIT: Duration = Duration::from_secs(10);

/// Connection keys, unique per process.
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// One socket.
pub struct WsTransport {
    state: Arc<AppState>,
    slots: Arc<Unauthenticated>,
    peer: Option<IpAddr>,
    request_id: RequestId,
    token: Option<Zeroizing<String>>,
    session: Option<Addr<SessionActor>>,
    holds_slot: bool,
    authenticating: bool,
}

impl WsTransport {
    /// A transport for a socket from `peer`, holding an unauthenticated slot.
    pub fn new(
        state: Arc<AppState>,
        slots: Arc<Unauthenticated>,
        peer: Option<IpAddr>,
        request_id: RequestId,
        token: Option<Zeroizing<String>>,
    ) -> Self {
        let holds_slot = peer.is_some();
        Self { state, slots, peer, request_id, token, session: None, holds_slot, authenticating: false }
    }

    fn release_slot(&mut self) {
        if self.holds_slot {
            self.holds_slot = false;
            if let Some(ip) = self.peer {
                self.slots.release(ip);
            }
        }
    }

    fn close(&mut self, code: u16, ctx: &mut ws::WebsocketContext<Self>) {
        ctx.close(Some(CloseReason { code: CloseCode::Other(code), description: None }));
        ctx.stop();
    }

    fn authenticate(&mut self, token: Zeroizing<String>, ctx: &mut ws::WebsocketContext<Self>) {
        if self.authenticating || self.session.is_some() {
            ctx.text(ServerFrame::error(None, ErrorCode::UnexpectedAuth).to_text());
            return;
        }
        self.authenticating = true;
        let state = self.state.clone();
        let origin = Origin { request_id: Some(self.request_id), source_ip: self.peer, session_id: None };
        let lookup = async move { state.services.identity.authenticate(&token, origin).await };
        ctx.spawn(lookup.into_actor(self).map(|owner, act, ctx| {
            act.authenticating = false;
            let Ok(owner) = owner else {
                act.close(close::UNAUTHENTICATED, ctx);
                return;
            };
            act.release_slot();
            let settings = &act.state.settings;
            let who = SessionIdentity {
                session_id: owner.session_id,
                user_id: owner.user_id,
                role: owner.role,
                patient_id: owner.patient_id,
                mfa: owner.mfa,
                device_id: None,
            };
            let limits = SessionLimits {
                idle: Duration::from_secs(settings.identity.session_idle_secs),
                expires_at_ms: owner.expires_at_ms,
                heartbeat_interval: Duration::from_secs(settings.ws.heartbeat_interval_secs),
                heartbeat_timeout: Duration::from_secs(settings.ws.heartbeat_timeout_secs),
            };
            let ports = Arc::new(ServerPorts::new(act.state.clone(), owner, act.peer));
            let session = SessionActor::new(
                NEXT_KEY.fetch_add(1, Ordering::Relaxed),
                who,
                limits,
                act.state.services.identity.clock.clone(),
                ctx.address().recipient(),
                act.state.hub.clone(),
                ports,
            );
            act.session = Some(session.start());
        }));
    }

    /// Hands a frame to the session. A session that is behind makes this socket wait: nothing
    /// more is read from it (`ctx.wait`) until the session takes the frame.
    fn relay(&mut self, inbound: Inbound, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(session) = &self.session else { return };
        match session.try_send(inbound) {
            Ok(()) => {}
            Err(SendError::Full(inbound)) => {
                let delivery = tokio::time::timeout(INBOUND_WAIT, session.send(inbound));
                ctx.wait(delivery.into_actor(self).map(|delivered, act, ctx| {
                    if !matches!(delivered, Ok(Ok(()))) {
                        act.close(close::SLOW_CONSUMER, ctx);
                    }
                }));
            }
            Err(SendError::Closed(_)) => self.close(close::SLOW_CONSUMER, ctx),
        }
    }
}

impl Actor for WsTransport {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(OUTBOUND_QUEUE);
        if let Some(token) = self.token.take() {
            self.authenticate(token, ctx);
        }
        let timeout = Duration::from_secs(self.state.settings.ws.auth_timeout_secs);
        ctx.run_later(timeout, |act, ctx| {
            if act.session.is_none() {
                act.close(close::UNAUTHENTICATED, ctx);
            }
        });
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        self.release_slot();
        if let Some(session) = self.session.take() {
            session.do_send(Inbound::Closed);
        }
    }
}

impl StreamHandler<Result<ws::Message, ProtocolError>> for WsTransport {
    fn handle(&mut self, msg: Result<ws::Message, ProtocolError>, ctx: &mut Self::Context) {
        let msg = match msg {
            Ok(msg) => msg,
            Err(ProtocolError::Overflow) => {
                ctx.close(Some(CloseReason { code: CloseCode::Size, description: None }));
                ctx.stop();
                return;
            }
            Err(_) => {
                ctx.close(Some(CloseReason { code: CloseCode::Protocol, description: None }));
                ctx.stop();
                return;
            }
        };
        match msg {
            ws::Message::Ping(payload) => ctx.pong(&payload),
            ws::Message::Pong(_) => self.relay(Inbound::Pong, ctx),
            ws::Message::Close(_) => {
                ctx.close(None);
                ctx.stop();
            }
            ws::Message::Text(text) if self.session.is_some() => self.relay(Inbound::Text(text.to_string()), ctx),
            ws::Message::Binary(_) if self.session.is_some() => self.relay(Inbound::Binary, ctx),
            ws::Message::Text(text) => match ClientFrame::parse(&text) {
                Ok(ClientFrame::Auth { token, .. }) => self.authenticate(Zeroizing::new(token.into_inner()), ctx),
                _ => self.close(close::UNAUTHENTICATED, ctx),
            },
            // Fragmented messages are not part of the protocol (frames are small JSON objects).
            ws::Message::Continuation(_) => {
                ctx.close(Some(CloseReason { code: CloseCode::Unsupported, description: None }));
                ctx.stop();
            }
            ws::Message::Binary(_) => self.close(close::UNAUTHENTICATED, ctx),
            ws::Message::Nop => {}
        }
    }
}

impl Handler<Outbound> for WsTransport {
    type Result = ();

    fn handle(&mut self, msg: Outbound, ctx: &mut Self::Context) {
        match msg {
            Outbound::Text(text) => ctx.text(&*text),
            Outbound::Ping => ctx.ping(b""),
            Outbound::Close(code) => {
                self.session = None;
                self.close(code, ctx);
            }
        }
    }
}
