//! The session actor alone: a recording transport, scripted ports and a manual clock. Time
//! moves by `advance_ms` and `Tick`, never by sleeping.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::prelude::*;
use confidant_actors::audit::Role;
use confidant_actors::clock::ManualClock;
use confidant_actors::hub::{BrokerMessage, FromBroker, Hub, LocalBroker, Publish, Topic};
use confidant_actors::ids::{DeviceId, PatientId, SessionId, UserId};
use confidant_actors::session::{
    CatchUp, Ended, Inbound, MAX_OPEN_REQUESTS, Outbound, PortFuture, SessionActor, SessionIdentity, SessionLimits,
    SessionPorts, Tick,
};
use confidant_protocol::{ClientFrame, ErrorCode, ScheduleScope, ServerFrame, close};
use tokio::sync::Notify;

const MINUTE: i64 = 60_000;

/// Records what the session writes.
#[derive(Default, Clone)]
struct Wire(Arc<Mutex<Vec<Outbound>>>);

/// The session's transport. With a gate it is a client that stops reading: after the first
/// message it takes nothing more until the gate opens, and its queue holds 4 (the server's
/// transport is not polled while its client does not read).
struct Transport {
    wire: Wire,
    gate: Option<Arc<Notify>>,
}
impl Actor for Transport {
    type Context = Context<Self>;
    fn started(&mut self, ctx: &mut Context<Self>) {
        if self.gate.is_some() {
            ctx.set_mailbox_capacity(4);
        }
    }
}
impl Handler<Outbound> for Transport {
    type Result = ();
    fn handle(&mut self, msg: Outbound, ctx: &mut Context<Self>) {
        self.wire.0.lock().unwrap().push(msg);
        if let Some(gate) = self.gate.take() {
            ctx.wait(async move { gate.notified().await }.into_actor(self));
        }
    }
}

impl Wire {
    fn texts(&self) -> Vec<serde_json::Value> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter_map(|o| match o {
                Outbound::Text(t) => serde_json::from_str(t).ok(),
                _ => None,
            })
            .collect()
    }
    fn closed_with(&self) -> Option<u16> {
        self.0.lock().unwrap().iter().find_map(|o| match o {
            Outbound::Close(code) => Some(*code),
            _ => None,
        })
    }
}

struct Ports {
    ended: Mutex<Vec<Ended>>,
    /// What the standing alert topic's replay answers (nothing stored, by default).
    stored_alerts: Mutex<Result<Vec<ServerFrame>, ErrorCode>>,
    /// Requests whose id starts with "held" wait here for a permit, first come first served.
    held: Arc<tokio::sync::Semaphore>,
}

impl Default for Ports {
    fn default() -> Self {
        Self {
            ended: Mutex::default(),
            stored_alerts: Mutex::new(Ok(Vec::new())),
            held: Arc::new(tokio::sync::Semaphore::new(0)),
        }
    }
}

impl SessionPorts for Ports {
    fn device(&self, _: SessionIdentity, device: DeviceId) -> PortFuture<Result<Topic, ErrorCode>> {
        Box::pin(async move { Ok(Topic::Device(device)) })
    }
    fn subscription(&self, who: SessionIdentity, scope: ScheduleScope) -> PortFuture<Result<Topic, ErrorCode>> {
        let topic = match scope {
            ScheduleScope::Mine => Ok(Topic::ClinicianSchedule(who.user_id)),
            ScheduleScope::Practice => Err(ErrorCode::Forbidden),
        };
        Box::pin(async move { topic })
    }
    fn catch_up(
        &self,
        _: SessionIdentity,
        topic: Topic,
        id: String,
        _: Option<u64>,
    ) -> PortFuture<Result<CatchUp, ErrorCode>> {
        if let Topic::Alerts(_) = topic {
            let stored = self.stored_alerts.lock().unwrap().clone();
            return Box::pin(async move { stored.map(|frames| CatchUp { frames, last_event_id: 0 }) });
        }
        let snapshot = ServerFrame::ScheduleSnapshot {
            v: 1,
            id,
            scope: ScheduleScope::Mine,
            last_event_id: 7,
            appointments: vec![],
        };
        Box::pin(async move { Ok(CatchUp { frames: vec![snapshot], last_event_id: 7 }) })
    }
    fn touch(&self, _: SessionIdentity) -> PortFuture<()> {
        Box::pin(async {})
    }
    fn ended(&self, _: SessionIdentity, why: Ended) -> PortFuture<()> {
        self.ended.lock().unwrap().push(why);
        Box::pin(async {})
    }
    fn request(&self, _: SessionIdentity, frame: ClientFrame) -> PortFuture<Vec<ServerFrame>> {
        let id = frame.request_id().unwrap_or_default().to_owned();
        let held = id.starts_with("held").then(|| self.held.clone());
        Box::pin(async move {
            if let Some(held) = held {
                held.acquire().await.unwrap().forget();
            }
            vec![ServerFrame::ack(id)]
        })
    }
    fn standing_topics(&self, who: SessionIdentity) -> Vec<Topic> {
        vec![Topic::Alerts(who.user_id)]
    }
    fn record_pushes(&self, _: SessionIdentity, _: Vec<(Topic, PatientId)>) -> PortFuture<bool> {
        Box::pin(async { true })
    }
}

struct Harness {
    clock: Arc<ManualClock>,
    wire: Wire,
    ports: Arc<Ports>,
    session: Addr<SessionActor>,
    hub: Addr<Hub>,
    who: SessionIdentity,
}

async fn start() -> Harness {
    start_with(None).await
}

/// A session whose client reads until its first frame, then only once `gate` opens.
async fn start_with(gate: Option<Arc<Notify>>) -> Harness {
    start_over(gate, Ports::default()).await
}

/// A session over `ports`.
async fn start_over(gate: Option<Arc<Notify>>, ports: Ports) -> Harness {
    let clock = Arc::new(ManualClock::at(1_800_000_000_000));
    let wire = Wire::default();
    let transport = Transport { wire: wire.clone(), gate }.start();
    let broker = Arc::new(LocalBroker::default());
    let hub = Hub::new(broker.clone()).start();
    broker.attach(hub.clone().recipient::<FromBroker>());
    let ports = Arc::new(ports);
    let who = SessionIdentity {
        session_id: SessionId::generate(),
        user_id: UserId::generate(),
        role: Role::Clinician,
        patient_id: None,
        mfa: true,
        device_id: None,
    };
    let limits = SessionLimits {
        idle: Duration::from_secs(15 * 60),
        expires_at_ms: 1_800_000_000_000 + 12 * 60 * MINUTE,
        heartbeat_interval: Duration::from_secs(3600),
        heartbeat_timeout: Duration::from_secs(30),
    };
    let session =
        SessionActor::new(1, who, limits, clock.clone(), transport.recipient(), hub.clone(), ports.clone()).start();
    settle().await;
    Harness { clock, wire, ports, session, hub, who }
}

/// Lets queued messages run.
async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    actix::clock::sleep(Duration::from_millis(5)).await;
}

impl Harness {
    async fn after(&self, ms: i64) {
        self.clock.advance_ms(ms);
        self.session.do_send(Inbound::Pong); // the peer is alive; only the limits are under test
        self.session.do_send(Tick);
        settle().await;
    }
    async fn say(&self, text: &str) {
        self.session.do_send(Inbound::Text(text.to_owned()));
        settle().await;
    }
}

#[actix::test]
async fn the_session_greets_with_its_limits() {
    let h = start().await;
    let welcome = &h.wire.texts()[0];
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["idle_timeout_secs"], 900);
    assert_eq!(welcome["user_id"], h.who.user_id.to_string());
}

#[actix::test]
async fn an_idle_session_is_closed_with_4001_and_reported() {
    let h = start().await;
    h.after(15 * MINUTE - 1).await;
    assert_eq!(h.wire.closed_with(), None);
    h.after(1).await;
    assert_eq!(h.wire.closed_with(), Some(close::IDLE_TIMEOUT));
    assert_eq!(*h.ports.ended.lock().unwrap(), [Ended::Idle]);
    assert!(!h.session.connected(), "the actor stopped");
}

#[actix::test]
async fn activity_postpones_the_idle_limit_but_heartbeats_do_not() {
    let h = start().await;
    h.after(10 * MINUTE).await;
    h.say(r#"{"v":1,"type":"activity"}"#).await;
    h.after(14 * MINUTE).await; // pongs on the way do not count
    assert_eq!(h.wire.closed_with(), None);
    h.after(MINUTE).await;
    assert_eq!(h.wire.closed_with(), Some(close::IDLE_TIMEOUT));
}

#[actix::test]
async fn the_absolute_lifetime_closes_with_4002_however_active() {
    let h = start().await;
    for _ in 0..(12 * 6 - 1) {
        h.after(10 * MINUTE).await;
        h.say(r#"{"v":1,"type":"activity"}"#).await;
    }
    assert_eq!(h.wire.closed_with(), None);
    h.after(10 * MINUTE).await;
    assert_eq!(h.wire.closed_with(), Some(close::SESSION_EXPIRED));
    assert_eq!(*h.ports.ended.lock().unwrap(), [Ended::Expired]);
}

#[actix::test]
async fn a_silent_peer_is_dropped_with_4005() {
    let h = start().await;
    h.clock.advance_ms(31_000);
    h.session.do_send(Tick);
    settle().await;
    assert_eq!(h.wire.closed_with(), Some(close::HEARTBEAT_TIMEOUT));
}

#[actix::test]
async fn bad_frames_get_error_frames_and_the_session_lives_on() {
    let h = start().await;
    h.say("{not json").await;
    h.say(r#"{"v":9,"type":"activity"}"#).await;
    h.session.do_send(Inbound::Binary);
    h.session.do_send(Inbound::Text(format!(r#"{{"v":1,"type":"activity","x":"{}"}}"#, "y".repeat(70_000))));
    settle().await;
    let codes: Vec<String> = h
        .wire
        .texts()
        .iter()
        .filter(|f| f["type"] == "error")
        .map(|f| f["code"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(codes, ["malformed_frame", "unsupported_version", "binary_not_supported", "frame_too_large"]);
    assert_eq!(h.wire.closed_with(), None);
    assert!(h.session.connected());
}

#[actix::test]
async fn standing_topics_are_received_without_subscribing_and_requests_are_answered() {
    let h = start().await;
    let alert = BrokerMessage::Publish {
        patient: None,
        topic: Topic::Alerts(h.who.user_id),
        event_id: None,
        text: r#"{"v":1,"type":"alert"}"#.into(),
    };
    h.hub.send(Publish(alert)).await.unwrap().unwrap();
    h.say(&format!(r#"{{"v":1,"type":"intake.open","id":"o1","assignment_id":"{}"}}"#, uuid::Uuid::nil())).await;
    let types: Vec<String> = h.wire.texts().iter().map(|f| f["type"].as_str().unwrap().to_owned()).collect();
    assert_eq!(types, ["welcome", "alert", "ack"]);
}

fn stored_alert(n: u128) -> ServerFrame {
    ServerFrame::Alert {
        v: 1,
        alert_id: uuid::Uuid::from_u128(n),
        kind: confidant_protocol::AlertKind::Phq9Item9,
        urgent: true,
        patient_id: Some(uuid::Uuid::from_u128(99)),
        assignment_id: None,
        clinician_id: None,
        reminder_id: None,
        sign_in_attack: None,
        escalation_step: 0,
        at_ms: 0,
    }
}

#[actix::test]
async fn stored_alerts_come_right_after_the_welcome_and_before_live_ones() {
    let ports = Ports::default();
    *ports.stored_alerts.lock().unwrap() = Ok(vec![stored_alert(1), stored_alert(2)]);
    let h = start_over(None, ports).await;
    let live = stored_alert(3);
    let live = BrokerMessage::Publish {
        patient: None,
        topic: Topic::Alerts(h.who.user_id),
        event_id: None,
        text: live.to_text().into(),
    };
    h.hub.send(Publish(live)).await.unwrap().unwrap();
    settle().await;
    let ids: Vec<String> = h.wire.texts().iter().skip(1).map(|f| f["alert_id"].as_str().unwrap().to_owned()).collect();
    let expected: Vec<String> = (1..=3).map(|n| uuid::Uuid::from_u128(n).to_string()).collect();
    assert_eq!(ids, expected);
}

#[actix::test]
async fn a_replay_that_fails_closes_with_1013_so_the_client_comes_back_for_it() {
    let ports = Ports::default();
    *ports.stored_alerts.lock().unwrap() = Err(ErrorCode::Unavailable);
    let h = start_over(None, ports).await;
    let frames = h.wire.texts();
    assert_eq!((frames[1]["type"].as_str(), frames[1]["id"].as_str()), (Some("error"), Some("alerts.replay")));
    assert_eq!(h.wire.closed_with(), Some(close::TRY_AGAIN_LATER));
}

#[actix::test]
async fn a_finished_request_is_answered_while_the_session_waits_for_a_free_place() {
    let h = start().await;
    let open =
        |id: &str| format!(r#"{{"v":1,"type":"intake.open","id":"{id}","assignment_id":"{}"}}"#, uuid::Uuid::nil());
    for n in 0..MAX_OPEN_REQUESTS {
        h.session.do_send(Inbound::Text(open(&format!("held-{n}"))));
    }
    // Two more: the first takes the place the next finished request frees, the second then
    // makes the session wait for another.
    h.session.do_send(Inbound::Text(open("held-next-1")));
    h.session.do_send(Inbound::Text(open("held-next-2")));
    settle().await;

    h.ports.held.add_permits(1); // the first request finishes
    settle().await;

    let acks: Vec<String> = h.wire.texts().iter().filter_map(|f| f["id"].as_str().map(str::to_owned)).collect();
    assert_eq!(acks, ["held-0"], "answered at once, not after the session's wait");
    h.ports.held.add_permits(MAX_OPEN_REQUESTS + 2);
    settle().await;
    assert_eq!(h.wire.texts().iter().filter(|f| f["type"] == "ack").count(), MAX_OPEN_REQUESTS + 2);
}

#[actix::test]
async fn a_client_that_reads_its_answers_slowly_gets_them_all_once_it_reads_again() {
    let gate = Arc::new(Notify::new());
    let h = start_with(Some(gate.clone())).await; // reads the welcome, then nothing
    let open =
        |id: &str| format!(r#"{{"v":1,"type":"intake.open","id":"{id}","assignment_id":"{}"}}"#, uuid::Uuid::nil());
    for n in 0..20 {
        h.session.do_send(Inbound::Text(open(&format!("r-{n}"))));
    }
    settle().await;
    assert!(h.session.connected(), "answers beyond the queue's bound do not close the session");

    gate.notify_one();
    settle().await;
    let acks: Vec<String> = h.wire.texts().iter().filter_map(|f| f["id"].as_str().map(str::to_owned)).collect();
    assert_eq!(acks, (0..20).map(|n| format!("r-{n}")).collect::<Vec<_>>(), "every answer, in order");
    assert_eq!(h.wire.closed_with(), None);
}

#[actix::test]
async fn pushes_to_a_client_that_reads_nothing_close_it_with_4008_once_its_queue_is_full() {
    let gate = Arc::new(Notify::new());
    let h = start_with(Some(gate.clone())).await;
    for _ in 0..10 {
        let alert = BrokerMessage::Publish {
            patient: None,
            topic: Topic::Alerts(h.who.user_id),
            event_id: None,
            text: r#"{"v":1,"type":"alert"}"#.into(),
        };
        h.hub.send(Publish(alert)).await.unwrap().unwrap();
    }
    settle().await;
    assert!(!h.session.connected(), "a push the queue cannot take ends the session");
    gate.notify_one();
    settle().await;
    assert_eq!(h.wire.closed_with(), Some(close::SLOW_CONSUMER));
}

#[actix::test]
async fn a_revocation_through_the_hub_closes_with_4003() {
    let h = start().await;
    let revoke = BrokerMessage::Revoke { user: h.who.user_id, session: None };
    h.hub.send(Publish(revoke)).await.unwrap().unwrap();
    settle().await;
    assert_eq!(h.wire.closed_with(), Some(close::REVOKED));
}

#[actix::test]
async fn a_subscription_gets_its_snapshot_then_only_newer_changes() {
    let h = start().await;
    h.say(r#"{"v":1,"type":"schedule.subscribe","id":"s1","scope":"mine"}"#).await;
    let topic = Topic::ClinicianSchedule(h.who.user_id);
    for event_id in [7, 8] {
        let text = format!(r#"{{"v":1,"type":"test","event_id":{event_id}}}"#);
        let message = BrokerMessage::Publish { topic, event_id: Some(event_id), patient: None, text: text.into() };
        h.hub.send(Publish(message)).await.unwrap().unwrap();
    }
    settle().await;
    let frames = h.wire.texts();
    let kinds: Vec<String> = frames.iter().map(|f| format!("{}{}", f["type"], f["event_id"])).collect();
    assert_eq!(kinds, ["\"welcome\"null", "\"schedule.snapshot\"null", "\"test\"8"], "event 7 is in the snapshot");

    h.say(r#"{"v":1,"type":"schedule.subscribe","id":"s2","scope":"practice"}"#).await;
    let last = h.wire.texts().pop().unwrap();
    assert_eq!(
        (last["type"].as_str(), last["code"].as_str(), last["id"].as_str()),
        (Some("error"), Some("forbidden"), Some("s2"))
    );
}
