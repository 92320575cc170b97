//! `Hub`: the node's registry of live sessions, by user and by topic, and the fan-out of
//! published frames and revocations. Everything published goes through a [`Broker`]: the
//! in-process one hands it straight back to this hub; the Redis one (in the root crate) hands
//! it to every node's hub. The code above the broker is the same either way.
//!
//! Gaps: a broker can lose messages (Redis restarted, a node's subscription dropped, a publish
//! that could not be made). Whoever notices says so with [`BrokerMessage::Resync`]; the hub then
//! tells every session to [`Resync`], and each catches its subscriptions up from the database
//! after the last event it sent, so every subscriber still gets every change, in order, once.
//!
//! Back-pressure: a session's mailbox is bounded. A push that finds it full drops that session
//! (it is told to close with `SLOW_CONSUMER` and resumes after reconnecting); the other
//! subscribers never wait for it.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;

use actix::prelude::*;
use confidant_protocol::close;

use crate::ids::{DeviceId, PatientId, SessionId, UserId};

/// What sessions subscribe to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topic {
    /// One clinician's schedule.
    ClinicianSchedule(UserId),
    /// One patient's appointments.
    PatientSchedule(PatientId),
    /// The whole practice's schedule.
    PracticeSchedule,
    /// One staff account's alerts (an urgent screening answer, a submitted form, a break-glass
    /// grant, an undeliverable reminder) and their acknowledgements.
    Alerts(UserId),
    /// One messaging device: its conversations' messages and its welcomes.
    Device(DeviceId),
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::ClinicianSchedule(id) => write!(f, "schedule.clinician.{id}"),
            Topic::PatientSchedule(id) => write!(f, "schedule.patient.{id}"),
            Topic::PracticeSchedule => f.write_str("schedule.practice"),
            Topic::Alerts(id) => write!(f, "alerts.user.{id}"),
            Topic::Device(id) => write!(f, "device.{id}"),
        }
    }
}

impl FromStr for Topic {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        if let Some(id) = s.strip_prefix("schedule.clinician.") {
            return id.parse().map(Topic::ClinicianSchedule).map_err(|_| ());
        }
        if let Some(id) = s.strip_prefix("schedule.patient.") {
            return id.parse().map(Topic::PatientSchedule).map_err(|_| ());
        }
        if let Some(id) = s.strip_prefix("alerts.user.") {
            return id.parse().map(Topic::Alerts).map_err(|_| ());
        }
        if let Some(id) = s.strip_prefix("device.") {
            return id.parse().map(Topic::Device).map_err(|_| ());
        }
        match s {
            "schedule.practice" => Ok(Topic::PracticeSchedule),
            _ => Err(()),
        }
    }
}

/// What crosses the broker: a frame for a topic, or a revocation. A frame's text may carry PHI
/// (a screening's result, an alert), so `Debug` shows its topic and event id, never its text.
#[derive(Clone, PartialEq, Eq)]
pub enum BrokerMessage {
    /// A frame for every subscriber of `topic`.
    Publish {
        /// Where.
        topic: Topic,
        /// The event's id, when it is an ordered schedule event (subscribers that are still
        /// receiving their snapshot use it to drop what the snapshot already holds).
        event_id: Option<u64>,
        /// The patient whose PHI the frame carries, if any: each recipient's session records
        /// its delivery as a read of that patient's record before sending it.
        patient: Option<PatientId>,
        /// The frame's JSON text.
        text: Arc<str>,
    },
    /// Close the sessions of `user` (only `session`, when given) with `REVOKED`.
    Revoke {
        /// Whose.
        user: UserId,
        /// Which one; `None`: all.
        session: Option<SessionId>,
    },
    /// Messages may have been lost on the way (a broker outage, a subscription re-established,
    /// a publish dropped): every session catches up from the database.
    Resync,
}

impl fmt::Debug for BrokerMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BrokerMessage::Publish { topic, event_id, patient, text: _ } => f
                .debug_struct("Publish")
                .field("topic", topic)
                .field("event_id", event_id)
                .field("patient", patient)
                .finish_non_exhaustive(),
            BrokerMessage::Revoke { user, session } => {
                f.debug_struct("Revoke").field("user", user).field("session", session).finish()
            }
            BrokerMessage::Resync => f.write_str("Resync"),
        }
    }
}

/// Why the broker could not take a message.
#[derive(Debug, thiserror::Error)]
#[error("the broker is unavailable")]
pub struct BrokerError;

/// Carries hub messages between nodes (or, in-process, back to the one hub).
pub trait Broker: Send + Sync + 'static {
    /// Publishes a message to every node's hub, this one included.
    fn publish(&self, message: BrokerMessage) -> Pin<Box<dyn Future<Output = Result<(), BrokerError>> + Send>>;
}

/// The single-node broker: what is published comes straight back to this node's hub.
#[derive(Default)]
pub struct LocalBroker {
    hub: std::sync::OnceLock<Recipient<FromBroker>>,
}

impl LocalBroker {
    /// Connects the broker to its hub (once, right after the hub starts).
    pub fn attach(&self, hub: Recipient<FromBroker>) {
        let _ = self.hub.set(hub);
    }
}

impl Broker for LocalBroker {
    fn publish(&self, message: BrokerMessage) -> Pin<Box<dyn Future<Output = Result<(), BrokerError>> + Send>> {
        let sent = match self.hub.get() {
            Some(hub) => hub.try_send(FromBroker(message)).map_err(|_| BrokerError),
            None => Err(BrokerError),
        };
        Box::pin(async move { sent })
    }
}

/// A frame pushed to a session. `Debug` never shows the frame's text (it may carry PHI).
#[derive(Message, Clone)]
#[rtype(result = "()")]
pub struct Push {
    /// The topic it came on.
    pub topic: Topic,
    /// The schedule event id, when it has one.
    pub event_id: Option<u64>,
    /// The patient whose PHI it carries, if any (its delivery is recorded first).
    pub patient: Option<PatientId>,
    /// The frame's JSON text.
    pub text: Arc<str>,
}

impl fmt::Debug for Push {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Push")
            .field("topic", &self.topic)
            .field("event_id", &self.event_id)
            .field("patient", &self.patient)
            .finish_non_exhaustive()
    }
}

/// Tells a session to close with `code`.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct CloseSession {
    /// The close code (`confidant_protocol::close`).
    pub code: u16,
}

/// Tells a session that pushes may have been lost: it catches each subscription up from the
/// database.
#[derive(Message, Debug, Clone, Copy)]
#[rtype(result = "()")]
pub struct Resync;

/// A live session's mailboxes.
#[derive(Clone)]
pub struct SessionHandle {
    /// The account.
    pub user: UserId,
    /// The session.
    pub session: SessionId,
    /// Where pushes go (bounded).
    pub push: Recipient<Push>,
    /// Where a close order goes.
    pub close: Recipient<CloseSession>,
    /// Where a resync goes.
    pub resync: Recipient<Resync>,
}

/// Registers a session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Connect {
    /// A per-connection key (one sign-in session may have several sockets).
    pub key: u64,
    /// Its mailboxes.
    pub handle: SessionHandle,
}

/// Removes a session and its subscriptions.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Disconnect {
    /// Its key.
    pub key: u64,
}

/// Adds a subscription; answered once it is in place (so a snapshot taken after cannot miss
/// an event).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe {
    /// The session's key.
    pub key: u64,
    /// What to.
    pub topic: Topic,
}

/// Removes a subscription.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Unsubscribe {
    /// The session's key.
    pub key: u64,
    /// What from.
    pub topic: Topic,
}

/// Publishes through the broker (to every node).
#[derive(Message)]
#[rtype(result = "Result<(), BrokerError>")]
pub struct Publish(pub BrokerMessage);

/// A message arriving from the broker, for local fan-out.
#[derive(Message, Debug)]
#[rtype(result = "()")]
pub struct FromBroker(pub BrokerMessage);

/// How many sessions and subscriptions the hub holds (metrics, tests).
#[derive(Message)]
#[rtype(result = "HubStats")]
pub struct Stats;

/// Counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, MessageResponse)]
pub struct HubStats {
    /// Live sessions.
    pub sessions: usize,
    /// Subscriptions over all topics.
    pub subscriptions: usize,
    /// Sessions dropped as slow consumers since start.
    pub dropped_slow: u64,
}

/// The hub.
pub struct Hub {
    broker: Arc<dyn Broker>,
    sessions: HashMap<u64, SessionHandle>,
    by_user: HashMap<UserId, HashSet<u64>>,
    by_topic: HashMap<Topic, HashSet<u64>>,
    dropped_slow: u64,
    /// Set by `Shutdown`: a session connecting afterwards is closed at once.
    stopping: bool,
}

impl Hub {
    /// A hub publishing through `broker`.
    pub fn new(broker: Arc<dyn Broker>) -> Self {
        Self {
            broker,
            sessions: HashMap::new(),
            by_user: HashMap::new(),
            by_topic: HashMap::new(),
            dropped_slow: 0,
            stopping: false,
        }
    }

    fn remove(&mut self, key: u64) {
        if let Some(handle) = self.sessions.remove(&key)
            && let Some(keys) = self.by_user.get_mut(&handle.user)
        {
            keys.remove(&key);
            if keys.is_empty() {
                self.by_user.remove(&handle.user);
            }
        }
        self.by_topic.retain(|_, keys| {
            keys.remove(&key);
            !keys.is_empty()
        });
    }
}

impl Actor for Hub {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        // Publishers and the broker's subscriber may burst; the hub itself never blocks.
        ctx.set_mailbox_capacity(65_536);
    }
}

impl Handler<Connect> for Hub {
    type Result = ();
    fn handle(&mut self, msg: Connect, _: &mut Context<Self>) {
        if self.stopping {
            msg.handle.close.do_send(CloseSession { code: close::GOING_AWAY });
            return;
        }
        self.by_user.entry(msg.handle.user).or_default().insert(msg.key);
        self.sessions.insert(msg.key, msg.handle);
    }
}

impl Handler<Disconnect> for Hub {
    type Result = ();
    fn handle(&mut self, msg: Disconnect, _: &mut Context<Self>) {
        self.remove(msg.key);
    }
}

impl Handler<Subscribe> for Hub {
    type Result = ();
    fn handle(&mut self, msg: Subscribe, _: &mut Context<Self>) {
        if self.sessions.contains_key(&msg.key) {
            self.by_topic.entry(msg.topic).or_default().insert(msg.key);
        }
    }
}

impl Handler<Unsubscribe> for Hub {
    type Result = ();
    fn handle(&mut self, msg: Unsubscribe, _: &mut Context<Self>) {
        if let Some(keys) = self.by_topic.get_mut(&msg.topic) {
            keys.remove(&msg.key);
            if keys.is_empty() {
                self.by_topic.remove(&msg.topic);
            }
        }
    }
}

impl Handler<Publish> for Hub {
    type Result = ResponseFuture<Result<(), BrokerError>>;
    fn handle(&mut self, msg: Publish, _: &mut Context<Self>) -> Self::Result {
        let sent = self.broker.publish(msg.0);
        Box::pin(sent)
    }
}

impl Handler<FromBroker> for Hub {
    type Result = ();
    fn handle(&mut self, msg: FromBroker, _: &mut Context<Self>) {
        match msg.0 {
            BrokerMessage::Publish { topic, event_id, patient, text } => {
                let Some(keys) = self.by_topic.get(&topic) else { return };
                let mut slow = Vec::new();
                for key in keys {
                    let Some(handle) = self.sessions.get(key) else { continue };
                    let push = Push { topic, event_id, patient, text: text.clone() };
                    if handle.push.try_send(push).is_err() {
                        slow.push(*key);
                    }
                }
                for key in slow {
                    if let Some(handle) = self.sessions.get(&key) {
                        handle.close.do_send(CloseSession { code: close::SLOW_CONSUMER });
                        tracing::warn!(session_id = %handle.session, "dropped a slow consumer");
                    }
                    self.dropped_slow += 1;
                    self.remove(key);
                }
            }
            BrokerMessage::Revoke { user, session } => {
                let Some(keys) = self.by_user.get(&user) else { return };
                for key in keys.clone() {
                    let Some(handle) = self.sessions.get(&key) else { continue };
                    if session.is_none_or(|s| s == handle.session) {
                        handle.close.do_send(CloseSession { code: close::REVOKED });
                    }
                }
            }
            BrokerMessage::Resync => {
                tracing::info!(sessions = self.sessions.len(), "pushes may have been lost: every session catches up");
                for handle in self.sessions.values() {
                    handle.resync.do_send(Resync);
                }
            }
        }
    }
}

impl Handler<crate::lifecycle::Shutdown> for Hub {
    type Result = ResponseFuture<()>;

    /// The node is stopping: every socket is closed with `GOING_AWAY` (clients reconnect to
    /// another node and resume), and a socket opened from now on too. Answered once every
    /// session has handed its close frame to its connection, so the listener stops accepting
    /// only after every client has been told (docs/PROTOCOL.md, "Shutdown").
    fn handle(&mut self, _: crate::lifecycle::Shutdown, _: &mut Context<Self>) -> Self::Result {
        self.stopping = true;
        let closes: Vec<_> =
            self.sessions.values().map(|handle| handle.close.send(CloseSession { code: close::GOING_AWAY })).collect();
        self.sessions.clear();
        self.by_user.clear();
        self.by_topic.clear();
        Box::pin(async move {
            futures_util::future::join_all(closes).await;
        })
    }
}

impl Handler<Stats> for Hub {
    type Result = HubStats;
    fn handle(&mut self, _: Stats, _: &mut Context<Self>) -> HubStats {
        HubStats {
            sessions: self.sessions.len(),
            subscriptions: self.by_topic.values().map(HashSet::len).sum(),
            dropped_slow: self.dropped_slow,
        }
    }
}
