//! `SessionActor`: one per authenticated WebSocket connection. It keeps the connection alive
//! (heartbeat) or ends it on time (idle, absolute lifetime, revocation), answers the client's
//! frames through its [`SessionPorts`], and forwards what the hub pushes. It knows nothing of
//! the socket: a transport actor (in the root crate's `ws` module) hands it [`Inbound`] frames
//! and writes the [`Outbound`] ones.
//!
//! Time comes from an injected [`Clock`]; the timers only decide when to look. Tests move a
//! manual clock and send [`Tick`] instead of sleeping.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use confidant_protocol::{ClientFrame, ErrorCode, MAX_FRAME_BYTES, ServerFrame, close};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::audit::Role;
use crate::clock::Clock;
use crate::hub::{CloseSession, Connect, Disconnect, Hub, Push, Resync, SessionHandle, Subscribe, Topic, Unsubscribe};
use crate::ids::{DeviceId, PatientId, SessionId, UserId};

/// A boxed future, as the ports return them.
pub type PortFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Who the session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionIdentity {
    /// The sign-in session.
    pub session_id: SessionId,
    /// The account.
    pub user_id: UserId,
    /// Its role.
    pub role: Role,
    /// For a patient account, the patient.
    pub patient_id: Option<PatientId>,
    /// Whether the session proved a second factor.
    pub mfa: bool,
    /// The messaging device attached to this session (`mls.attach`), once one is.
    pub device_id: Option<DeviceId>,
}

/// The frames of a subscription's start: a snapshot, or the events missed since `after`.
#[derive(Debug, Clone)]
pub struct CatchUp {
    /// To send, in order.
    pub frames: Vec<ServerFrame>,
    /// The newest event they cover; pushes up to it are dropped.
    pub last_event_id: u64,
}

/// Why a socket closed on a limit, for the sign-in session and the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// No user activity for the idle limit.
    Idle,
    /// The absolute lifetime passed.
    Expired,
}

/// What the session needs from the rest of the server (storage, permissions, audit).
pub trait SessionPorts: Send + Sync + 'static {
    /// The topic of a messaging device, if it is one of the caller's registered, active
    /// devices. Its catch-up ([`SessionPorts::catch_up`]) is what the device missed.
    fn device(&self, who: SessionIdentity, device: DeviceId) -> PortFuture<Result<Topic, ErrorCode>>;

    /// The topic a schedule subscription maps to, if the permission matrix allows it.
    fn subscription(
        &self,
        who: SessionIdentity,
        scope: confidant_protocol::ScheduleScope,
    ) -> PortFuture<Result<Topic, ErrorCode>>;
    /// The snapshot of `topic` (or the events after `after`), answering request `id`.
    fn catch_up(
        &self,
        who: SessionIdentity,
        topic: Topic,
        id: String,
        after: Option<u64>,
    ) -> PortFuture<Result<CatchUp, ErrorCode>>;
    /// The user was active: keep the sign-in session from idling (called at most every
    /// [`TOUCH_EVERY`]).
    fn touch(&self, who: SessionIdentity) -> PortFuture<()>;
    /// The socket closes on a limit: end the sign-in session and audit the timeout.
    fn ended(&self, who: SessionIdentity, why: Ended) -> PortFuture<()>;
    /// Answers a request that needs no subscription (intake forms): the frames to send back.
    fn request(&self, who: SessionIdentity, frame: ClientFrame) -> PortFuture<Vec<ServerFrame>>;
    /// Topics the session receives from its start without asking (the user's alerts); what is
    /// stored for them is sent first, through [`SessionPorts::catch_up`].
    fn standing_topics(&self, who: SessionIdentity) -> Vec<Topic>;
    /// Records that the session is about to deliver these pushes, each carrying PHI of its
    /// patient (a read by the session's user); `true` once all are durable. A push is sent only
    /// after: if they cannot be recorded, the session closes with 1013 and the client resumes.
    fn record_pushes(&self, who: SessionIdentity, pushes: Vec<(Topic, PatientId)>) -> PortFuture<bool>;
}

/// The request id of the `error` frame sent when a standing topic's replay failed (the alerts
/// stored for the user could not be read): reconnect to receive them.
pub const STANDING_REPLAY_ID: &str = "alerts.replay";

/// The request id a resync's catch-up is asked under (after a broker gap). Its `ack` is not
/// sent; a schedule snapshot taken instead of a replay (too many changes missed) carries it.
pub const RESYNC_ID: &str = "resync";

/// The longest a close order waits for the connection to take its close frame.
const CLOSE_HANDOVER: std::time::Duration = std::time::Duration::from_secs(2);

/// How often the activity of a busy session is written through [`SessionPorts::touch`].
pub const TOUCH_EVERY: Duration = Duration::from_secs(30);
/// How long one frame of a catch-up may wait for room in the transport's queue.
pub const CATCH_UP_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Pushes held for a topic whose catch-up is still being written; more means the client
/// cannot keep up.
pub const MAX_HELD_PUSHES: usize = 1024;

/// Requests (intake and messaging frames) one session may have open at once; the next waits,
/// and with it everything the client sends after it.
pub const MAX_OPEN_REQUESTS: usize = 256;

/// Messages (pushes and client frames) queued for one session before pushes close it (4008)
/// and client frames wait (the transport stops reading its socket).
pub const SESSION_QUEUE: usize = 2048;

/// Limits of one session.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    /// Idle limit.
    pub idle: Duration,
    /// When the sign-in session ends (UTC ms).
    pub expires_at_ms: i64,
    /// How often to ping.
    pub heartbeat_interval: Duration,
    /// A peer silent this long is dropped.
    pub heartbeat_timeout: Duration,
}

/// A frame from the client, as the transport read it. `Debug` never shows a text frame's
/// content (an access token, a form's answers).
#[derive(Message)]
#[rtype(result = "()")]
pub enum Inbound {
    /// A text frame.
    Text(String),
    /// A binary frame (not used by the protocol).
    Binary,
    /// A pong (heartbeat; not user activity).
    Pong,
    /// The peer closed or the connection broke.
    Closed,
}

impl fmt::Debug for Inbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Inbound::Text(_) => f.write_str("Text(..)"),
            Inbound::Binary => f.write_str("Binary"),
            Inbound::Pong => f.write_str("Pong"),
            Inbound::Closed => f.write_str("Closed"),
        }
    }
}

/// What the transport writes. `Debug` never shows a text frame's content (a form's draft, a
/// screening's result).
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub enum Outbound {
    /// A text frame.
    Text(Arc<str>),
    /// A ping.
    Ping,
    /// A close frame with this code; then the transport stops.
    Close(u16),
}

impl fmt::Debug for Outbound {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outbound::Text(_) => f.write_str("Text(..)"),
            Outbound::Ping => f.write_str("Ping"),
            Outbound::Close(code) => f.debug_tuple("Close").field(code).finish(),
        }
    }
}

/// Checks the limits and the heartbeat now (the timers send it; tests send it after moving
/// the clock).
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Tick;

/// The session actor.
pub struct SessionActor {
    key: u64,
    who: SessionIdentity,
    limits: SessionLimits,
    clock: Arc<dyn Clock>,
    transport: Recipient<Outbound>,
    hub: Addr<Hub>,
    ports: Arc<dyn SessionPorts>,
    last_activity_ms: i64,
    last_touch_ms: i64,
    last_pong_ms: i64,
    subscribed: HashSet<Topic>,
    /// Topics whose snapshot is being taken: pushes wait here, then those newer than the
    /// snapshot are sent after it.
    pending: HashMap<Topic, Vec<Push>>,
    /// The newest event sent per topic: an older or repeated one (already in a snapshot, or
    /// delivered twice) is dropped.
    last_event: HashMap<Topic, u64>,
    /// Pushes waiting, in order, for the audit record of the PHI they carry (and those behind
    /// them, so that the order holds).
    outgoing: VecDeque<Push>,
    /// Whether a batch of `outgoing` is being recorded.
    recording: bool,
    limit_timer: Option<SpawnHandle>,
    closing: bool,
    /// Places for requests being worked on ([`MAX_OPEN_REQUESTS`]).
    requests: Arc<Semaphore>,
}

impl SessionActor {
    /// A session for `who` writing through `transport`. `key` is unique per connection.
    pub fn new(
        key: u64,
        who: SessionIdentity,
        limits: SessionLimits,
        clock: Arc<dyn Clock>,
        transport: Recipient<Outbound>,
        hub: Addr<Hub>,
        ports: Arc<dyn SessionPorts>,
    ) -> Self {
        let now = clock.now_ms();
        Self {
            key,
            who,
            limits,
            clock,
            transport,
            hub,
            ports,
            last_activity_ms: now,
            last_touch_ms: now,
            last_pong_ms: now,
            subscribed: HashSet::new(),
            pending: HashMap::new(),
            last_event: HashMap::new(),
            outgoing: VecDeque::new(),
            recording: false,
            limit_timer: None,
            closing: false,
            requests: Arc::new(Semaphore::new(MAX_OPEN_REQUESTS)),
        }
    }

    /// The welcome frame the transport sends first.
    pub fn welcome(&self) -> ServerFrame {
        ServerFrame::Welcome {
            v: confidant_protocol::VERSION,
            session_id: *self.who.session_id.as_uuid(),
            user_id: *self.who.user_id.as_uuid(),
            role: self.who.role.as_str().to_owned(),
            idle_timeout_secs: self.limits.idle.as_secs(),
            expires_at_ms: self.limits.expires_at_ms,
        }
    }

    /// Writes a frame; a transport that cannot take it (its bounded queue is full because the
    /// client reads too slowly) ends the session.
    fn send(&mut self, frame: &ServerFrame, ctx: &mut Context<Self>) {
        self.send_text(frame.to_text().into(), ctx);
    }

    fn send_text(&mut self, text: Arc<str>, ctx: &mut Context<Self>) {
        if self.closing {
            return;
        }
        if self.transport.try_send(Outbound::Text(text)).is_err() {
            self.close(close::SLOW_CONSUMER, ctx);
        }
    }

    /// Closes with `code` and stops.
    fn close(&mut self, code: u16, ctx: &mut Context<Self>) {
        if self.closing {
            return;
        }
        self.closing = true;
        self.transport.do_send(Outbound::Close(code));
        ctx.stop();
    }

    fn idle_ms(&self) -> i64 {
        i64::try_from(self.limits.idle.as_millis()).unwrap_or(i64::MAX)
    }

    /// Ends the session if a limit passed; otherwise arms a timer for the nearest one.
    fn check_limits(&mut self, ctx: &mut Context<Self>) {
        if self.closing {
            return;
        }
        let now = self.clock.now_ms();
        let ended = if now >= self.limits.expires_at_ms {
            Some((Ended::Expired, close::SESSION_EXPIRED))
        } else if now - self.last_activity_ms >= self.idle_ms() {
            Some((Ended::Idle, close::IDLE_TIMEOUT))
        } else {
            None
        };
        if let Some((why, code)) = ended {
            let ports = self.ports.clone();
            let who = self.who;
            self.close(code, ctx);
            // The audit record and the end of the sign-in session outlive the actor.
            actix::spawn(ports.ended(who, why));
            return;
        }
        let next = (self.last_activity_ms + self.idle_ms()).min(self.limits.expires_at_ms) - now;
        let wait = Duration::from_millis(u64::try_from(next.max(1)).unwrap_or(1));
        if let Some(previous) = self.limit_timer.take() {
            ctx.cancel_future(previous);
        }
        self.limit_timer = Some(ctx.run_later(wait, |act, ctx| act.check_limits(ctx)));
    }

    fn check_heartbeat(&mut self, ctx: &mut Context<Self>) {
        let silent = self.clock.now_ms() - self.last_pong_ms;
        if silent > i64::try_from(self.limits.heartbeat_timeout.as_millis()).unwrap_or(i64::MAX) {
            self.close(close::HEARTBEAT_TIMEOUT, ctx);
        } else if self.transport.try_send(Outbound::Ping).is_err() {
            self.close(close::SLOW_CONSUMER, ctx);
        }
    }

    fn activity(&mut self) {
        let now = self.clock.now_ms();
        self.last_activity_ms = now;
        if now - self.last_touch_ms >= i64::try_from(TOUCH_EVERY.as_millis()).unwrap_or(i64::MAX) {
            self.last_touch_ms = now;
            actix::spawn(self.ports.touch(self.who));
        }
    }

    fn handle_frame(&mut self, frame: ClientFrame, ctx: &mut Context<Self>) {
        match frame {
            ClientFrame::Auth { .. } => self.send(&ServerFrame::error(None, ErrorCode::UnexpectedAuth), ctx),
            ClientFrame::Activity { .. } => {}
            ClientFrame::ScheduleUnsubscribe { id, scope, .. } => {
                let (ports, who) = (self.ports.clone(), self.who);
                let fut =
                    async move { ports.subscription(who, scope).await }.into_actor(self).map(move |topic, act, ctx| {
                        if let Ok(topic) = topic {
                            act.subscribed.remove(&topic);
                            act.pending.remove(&topic);
                            act.last_event.remove(&topic);
                            act.hub.do_send(Unsubscribe { key: act.key, topic });
                        }
                        act.send(&ServerFrame::ack(id), ctx);
                    });
                ctx.spawn(fut);
            }
            ClientFrame::ScheduleSubscribe { id, scope, after, .. } => self.subscribe(id, scope, after, ctx),
            ClientFrame::MlsAttach { id, device_id, .. } => self.attach(id, DeviceId::from_uuid(device_id), ctx),
            frame @ (ClientFrame::IntakeOpen { .. }
            | ClientFrame::IntakeDraft { .. }
            | ClientFrame::IntakeSubmit { .. }
            | ClientFrame::NoteOpen { .. }
            | ClientFrame::NoteDraft { .. }
            | ClientFrame::MlsSend { .. }
            | ClientFrame::MlsCommit { .. }
            | ClientFrame::MlsAck { .. }
            | ClientFrame::MlsRead { .. }
            | ClientFrame::AlertAck { .. }) => {
                match self.requests.clone().try_acquire_owned() {
                    Ok(permit) => self.answer(frame, permit, ctx),
                    Err(_) => {
                        // As many of this socket's requests as one session may have open are
                        // being worked on: take no further message (the transport then stops
                        // reading the socket, and TCP slows the client) until one is answered.
                        // Unbounded, an overloaded server queued work it answered too late.
                        let requests = self.requests.clone();
                        ctx.wait(async move { requests.acquire_owned().await }.into_actor(self).map(
                            move |permit, act, ctx| match permit {
                                Ok(permit) => act.answer(frame, permit, ctx),
                                Err(_) => act.close(close::GOING_AWAY, ctx),
                            },
                        ));
                    }
                }
            }
        }
    }

    /// Works on a request frame and sends its answers; `permit` is its place among the
    /// session's open requests, freed once they are queued for the socket.
    ///
    /// The work and its answers run as a task of its own, outside this actor's context, for two
    /// reasons. While the session waits for a free place (`ctx.wait`) its context runs nothing
    /// else, and the work that frees one must go on. And an actix context polls every future
    /// spawned in it whenever any of them wakes: with an answer future per open request, an
    /// overloaded session (256 open) polled 256 futures per answer, which took the CPU the
    /// messages needed (1:1 at 48,000 msg/s offered: 15% of the server's samples in those polls,
    /// and throughput fell below what the server keeps up with at 20,000).
    fn answer(&mut self, frame: ClientFrame, permit: OwnedSemaphorePermit, ctx: &mut Context<Self>) {
        let work = self.ports.request(self.who, frame);
        let (transport, session) = (self.transport.clone(), ctx.address().downgrade());
        actix::spawn(async move {
            let frames = work.await;
            for frame in &frames {
                // Each task writes through a clone of the transport's address, a sender of its
                // own, and actix lets every sender put one message in a full queue: so the
                // queue may outgrow its bound by one answer per task writing while it is full.
                // That is still bounded (a transport that is not polled reads no new frames, so
                // the tasks are at most the session's open requests and queued frames), and the
                // session's own writes (pushes, pings) still fail on a full queue, after the one
                // message its sender may add, and close the session. Waiting for room instead
                // (tried) makes a cycle under overload: the transport takes no outbound frame
                // while it waits for room in this session's queue, the session waits for a free
                // request place, and the places would wait for their answers to be taken (1:1
                // at 48,000-64,000 msg/s offered fell from ~50,000 to 2,000-11,000 delivered).
                if transport.try_send(Outbound::Text(frame.to_text().into())).is_err() {
                    // The client does not read its answers: as `send_text` does, close.
                    if let Some(session) = session.upgrade() {
                        session.do_send(CloseSession { code: close::SLOW_CONSUMER });
                    }
                    break;
                }
            }
            drop(permit);
        });
    }

    /// Attaches a messaging device: subscribes to its topic first, then sends what it missed
    /// (welcomes, then each conversation's messages after its acknowledged seq), holding live
    /// messages meanwhile, as a schedule subscription does. One device per session.
    fn attach(&mut self, id: String, device: DeviceId, ctx: &mut Context<Self>) {
        if self.who.device_id.is_some_and(|attached| attached != device) {
            self.send(&ServerFrame::error(Some(id), ErrorCode::Forbidden), ctx);
            return;
        }
        let (ports, who, hub, key) = (self.ports.clone(), self.who, self.hub.clone(), self.key);
        let request_id = id.clone();
        let fut = async move {
            let topic = ports.device(who, device).await?;
            hub.send(Subscribe { key, topic }).await.map_err(|_| ErrorCode::Unavailable)?;
            Ok::<Topic, ErrorCode>(topic)
        }
        .into_actor(self)
        .map(move |topic, act, ctx| match topic {
            Err(code) => act.send(&ServerFrame::error(Some(request_id), code), ctx),
            Ok(topic) => {
                act.who.device_id = Some(device);
                act.subscribed.insert(topic);
                act.pending.entry(topic).or_default();
                let (ports, who) = (act.ports.clone(), act.who);
                let missed = async move { ports.catch_up(who, topic, id.clone(), None).await.map_err(|e| (id, e)) }
                    .into_actor(act)
                    .map(move |caught, act, ctx| act.finish_subscribe(topic, caught, ctx));
                ctx.spawn(missed);
            }
        });
        ctx.spawn(fut);
    }

    /// Subscribes to a standing topic (the user's alerts), then sends what is stored for it (the
    /// alerts nobody acknowledged yet), holding pushes meanwhile, as [`Self::subscribe`] does. A
    /// replay that fails must not leave the user believing nothing is waiting: the session gets
    /// an `error` frame whose id is [`STANDING_REPLAY_ID`] and is closed with 1013 (try again
    /// later), so the client reconnects and is replayed again.
    fn stand(&mut self, topic: Topic, ctx: &mut Context<Self>) {
        self.subscribed.insert(topic);
        self.pending.entry(topic).or_default();
        let (ports, who, hub, key) = (self.ports.clone(), self.who, self.hub.clone(), self.key);
        let replay = async move {
            let id = STANDING_REPLAY_ID.to_owned();
            hub.send(Subscribe { key, topic }).await.map_err(|_| (id.clone(), ErrorCode::Unavailable))?;
            ports.catch_up(who, topic, id.clone(), None).await.map_err(|e| (id, e))
        }
        .into_actor(self)
        .map(move |caught, act, ctx| match caught {
            Ok(caught) => act.finish_subscribe(topic, Ok(caught), ctx),
            Err((id, code)) => {
                act.send(&ServerFrame::error(Some(id), code), ctx);
                act.close(close::TRY_AGAIN_LATER, ctx);
            }
        });
        ctx.spawn(replay);
    }

    /// Subscribes first, then takes the snapshot, holding pushes meanwhile: nothing published
    /// after the subscription is missed, nothing in the snapshot is sent twice.
    fn subscribe(
        &mut self,
        id: String,
        scope: confidant_protocol::ScheduleScope,
        after: Option<u64>,
        ctx: &mut Context<Self>,
    ) {
        let (ports, who, hub, key) = (self.ports.clone(), self.who, self.hub.clone(), self.key);
        let topic_id = id.clone();
        let fut = async move {
            let topic = ports.subscription(who, scope).await?;
            hub.send(Subscribe { key, topic }).await.map_err(|_| ErrorCode::Unavailable)?;
            Ok::<Topic, ErrorCode>(topic)
        }
        .into_actor(self)
        .map(move |topic, act, ctx| match topic {
            Err(code) => act.send(&ServerFrame::error(Some(topic_id), code), ctx),
            Ok(topic) => {
                act.subscribed.insert(topic);
                act.pending.entry(topic).or_default();
                let (ports, who) = (act.ports.clone(), act.who);
                let snapshot = async move { ports.catch_up(who, topic, id.clone(), after).await.map_err(|e| (id, e)) }
                    .into_actor(act)
                    .map(move |caught, act, ctx| act.finish_subscribe(topic, caught, ctx));
                ctx.spawn(snapshot);
            }
        });
        ctx.spawn(fut);
    }

    fn finish_subscribe(
        &mut self,
        topic: Topic,
        caught: Result<CatchUp, (String, ErrorCode)>,
        ctx: &mut Context<Self>,
    ) {
        let catch_up = match caught {
            Ok(catch_up) => catch_up,
            Err((id, code)) => {
                self.pending.remove(&topic);
                self.subscribed.remove(&topic);
                self.hub.do_send(Unsubscribe { key: self.key, topic });
                self.send(&ServerFrame::error(Some(id), code), ctx);
                return;
            }
        };
        // A catch-up can be long (a snapshot, or up to a thousand missed changes): it is written
        // as fast as the client reads, waiting for room in the transport's bounded queue rather
        // than failing on it, with a deadline. Pushes stay held until it is through.
        let transport = self.transport.clone();
        let texts: Vec<Arc<str>> = catch_up.frames.iter().map(|f| f.to_text().into()).collect();
        let delivery = async move {
            for text in texts {
                match tokio::time::timeout(CATCH_UP_WRITE_TIMEOUT, transport.send(Outbound::Text(text))).await {
                    Ok(Ok(())) => {}
                    _ => return false,
                }
            }
            true
        };
        let last = catch_up.last_event_id;
        ctx.spawn(delivery.into_actor(self).map(move |delivered, act, ctx| {
            let held = act.pending.remove(&topic).unwrap_or_default();
            if !delivered {
                act.close(close::SLOW_CONSUMER, ctx);
                return;
            }
            act.last_event.insert(topic, last);
            for push in held {
                act.forward(push, ctx);
            }
        }));
    }
}

impl SessionActor {
    /// Sends a push of a subscribed topic, unless its event was already sent. A push that
    /// carries a patient's PHI is sent only once its delivery to this user is on record; the
    /// pushes behind it wait with it, so the client sees them in order.
    fn forward(&mut self, push: Push, ctx: &mut Context<Self>) {
        if let Some(event_id) = push.event_id {
            let last = self.last_event.entry(push.topic).or_default();
            if event_id <= *last {
                return;
            }
            *last = event_id;
        }
        if push.patient.is_none() && self.outgoing.is_empty() {
            self.send_text(push.text, ctx);
            return;
        }
        self.outgoing.push_back(push);
        if self.outgoing.len() > MAX_HELD_PUSHES {
            self.close(close::SLOW_CONSUMER, ctx);
            return;
        }
        self.send_outgoing(ctx);
    }

    /// Sends the waiting pushes in order: those without PHI at once, and each run of those
    /// with PHI after one audit group records them all (the audit writer commits concurrent
    /// groups together).
    fn send_outgoing(&mut self, ctx: &mut Context<Self>) {
        if self.recording {
            return;
        }
        while self.outgoing.front().is_some_and(|push| push.patient.is_none()) {
            if let Some(push) = self.outgoing.pop_front() {
                self.send_text(push.text, ctx);
            }
        }
        let batch: Vec<(Topic, PatientId)> =
            self.outgoing.iter().map_while(|push| push.patient.map(|patient| (push.topic, patient))).collect();
        if batch.is_empty() {
            return;
        }
        self.recording = true;
        let count = batch.len();
        let recorded = self.ports.record_pushes(self.who, batch);
        ctx.spawn(recorded.into_actor(self).map(move |recorded, act, ctx| {
            act.recording = false;
            if !recorded {
                act.outgoing.clear();
                act.close(close::TRY_AGAIN_LATER, ctx);
                return;
            }
            for _ in 0..count {
                if let Some(push) = act.outgoing.pop_front() {
                    act.send_text(push.text, ctx);
                }
            }
            act.send_outgoing(ctx);
        }));
    }
}

impl Actor for SessionActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Pushes beyond this many unread frames mean the client cannot keep up. Room for a whole
        // batch of messages committed at once (the server's ingest batches up to 1,024): at 256,
        // a device receiving ~16,000 messages/s was closed by one large batch.
        ctx.set_mailbox_capacity(SESSION_QUEUE);
        let handle = SessionHandle {
            user: self.who.user_id,
            session: self.who.session_id,
            push: ctx.address().recipient(),
            close: ctx.address().recipient(),
            resync: ctx.address().recipient(),
        };
        self.hub.do_send(Connect { key: self.key, handle });
        let welcome = self.welcome();
        self.send(&welcome, ctx);
        for topic in self.ports.standing_topics(self.who) {
            self.stand(topic, ctx);
        }
        ctx.run_interval(self.limits.heartbeat_interval, |act, ctx| act.check_heartbeat(ctx));
        self.check_limits(ctx);
    }

    fn stopping(&mut self, _: &mut Self::Context) -> Running {
        self.hub.do_send(Disconnect { key: self.key });
        if !self.closing {
            self.closing = true;
            self.transport.do_send(Outbound::Close(close::GOING_AWAY));
        }
        Running::Stop
    }
}

impl Handler<Inbound> for SessionActor {
    type Result = ();
    fn handle(&mut self, msg: Inbound, ctx: &mut Context<Self>) {
        match msg {
            Inbound::Pong => self.last_pong_ms = self.clock.now_ms(),
            Inbound::Closed => {
                self.closing = true;
                ctx.stop();
            }
            Inbound::Binary => self.send(&ServerFrame::error(None, ErrorCode::BinaryNotSupported), ctx),
            Inbound::Text(text) if text.len() > MAX_FRAME_BYTES => {
                self.send(&ServerFrame::error(None, ErrorCode::FrameTooLarge), ctx);
            }
            Inbound::Text(text) => {
                // Any text frame shows the peer is alive; only a valid one counts as user activity.
                self.last_pong_ms = self.clock.now_ms();
                match ClientFrame::parse(&text) {
                    Ok(frame) => {
                        self.activity();
                        self.handle_frame(frame, ctx);
                    }
                    Err(code) => self.send(&ServerFrame::error(None, code), ctx),
                }
            }
        }
    }
}

impl Handler<Push> for SessionActor {
    type Result = ();
    fn handle(&mut self, msg: Push, ctx: &mut Context<Self>) {
        if let Some(held) = self.pending.get_mut(&msg.topic) {
            held.push(msg);
            if held.len() > MAX_HELD_PUSHES {
                self.close(close::SLOW_CONSUMER, ctx);
            }
        } else if self.subscribed.contains(&msg.topic) {
            self.forward(msg, ctx);
        }
    }
}

impl Handler<Resync> for SessionActor {
    type Result = ();

    /// Pushes may have been lost between nodes: every subscription is caught up from the
    /// database after the last event this session sent, holding live pushes meanwhile (as a
    /// subscription does), so the client gets every change in order and none twice. A topic
    /// whose catch-up is already running is left to it. A catch-up that fails closes the
    /// session with 1013: the client reconnects and resumes from what it has.
    fn handle(&mut self, _: Resync, ctx: &mut Context<Self>) {
        let topics: Vec<Topic> =
            self.subscribed.iter().copied().filter(|topic| !self.pending.contains_key(topic)).collect();
        for topic in topics {
            self.pending.insert(topic, Vec::new());
            let after = self.last_event.get(&topic).copied().filter(|last| *last > 0);
            let (ports, who) = (self.ports.clone(), self.who);
            let caught = async move {
                let id = RESYNC_ID.to_owned();
                ports.catch_up(who, topic, id.clone(), after).await.map_err(|code| (id, code))
            }
            .into_actor(self)
            .map(move |caught, act, ctx| match caught {
                Ok(mut catch_up) => {
                    catch_up.frames.retain(|f| !matches!(f, ServerFrame::Ack { id, .. } if id == RESYNC_ID));
                    act.finish_subscribe(topic, Ok(catch_up), ctx);
                }
                Err(_) => {
                    act.pending.remove(&topic);
                    act.close(close::TRY_AGAIN_LATER, ctx);
                }
            });
            ctx.spawn(caught);
        }
    }
}

impl Handler<CloseSession> for SessionActor {
    type Result = ResponseActFuture<Self, ()>;

    /// Answered once the connection has taken the close frame (at most [`CLOSE_HANDOVER`]), so
    /// a node stopping knows its clients were told before it stops accepting.
    fn handle(&mut self, msg: CloseSession, _: &mut Context<Self>) -> Self::Result {
        if self.closing {
            return Box::pin(actix::fut::ready(()));
        }
        self.closing = true;
        let handed = self.transport.send(Outbound::Close(msg.code));
        Box::pin(
            async move {
                let _ = tokio::time::timeout(CLOSE_HANDOVER, handed).await;
            }
            .into_actor(self)
            .map(|(), _, ctx| ctx.stop()),
        )
    }
}

impl Handler<Tick> for SessionActor {
    type Result = ();
    fn handle(&mut self, _: Tick, ctx: &mut Context<Self>) {
        self.check_heartbeat(ctx);
        self.check_limits(ctx);
    }
}
