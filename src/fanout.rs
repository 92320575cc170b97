//! Cross-node fan-out: the hub's [`Broker`] over Redis pub/sub, used when `redis_url` is set.
//! Every node publishes to one channel and subscribes to it, so a frame or revocation
//! published on any node reaches every node's hub (its own included, as with the in-process
//! broker).
//!
//! A broker outage never slows a write: `publish` only queues the message (bounded, a few
//! microseconds) and one publisher task per node sends the queue to Redis in order, each command
//! bounded by [`COMMAND_TIMEOUT`]. Pub/sub is at most once, so every way a message can be lost
//! is followed by a [`BrokerMessage::Resync`], on which every session catches its subscriptions
//! up from the database (`hub.rs`): the subscriber sends one to its own hub each time it
//! (re)subscribes, and the publisher, once Redis answers again after it had to drop messages,
//! publishes one to every node before anything else.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{Addr, Recipient};
use confidant_actors::hub::{Broker, BrokerError, BrokerMessage, FromBroker, Hub, Topic};
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::settings::RedisUrl;

/// The longest a connection attempt or a command to Redis may take before it counts as failed.
const COMMAND_TIMEOUT: Duration = Duration::from_millis(500);

/// Messages waiting for the publisher. Beyond this (Redis slow or gone for a while) new ones are
/// dropped at once, and a resync follows.
const QUEUE: usize = 8_192;

/// The Redis broker.
pub struct RedisBroker {
    client: redis::Client,
    channel: String,
    queue: mpsc::Sender<String>,
    /// The publisher's end of the queue, until [`Self::start`] hands it to the publisher task.
    waiting: Mutex<Option<mpsc::Receiver<String>>>,
    /// Set when a message was dropped: the next thing published is a resync.
    lost: Arc<AtomicBool>,
}

impl RedisBroker {
    /// A broker on `channel` of the Redis at `url`; connects once started.
    pub fn new(url: &RedisUrl, channel: String) -> Result<Self, redis::RedisError> {
        let (queue, waiting) = mpsc::channel(QUEUE);
        Ok(Self {
            client: redis::Client::open(url.expose())?,
            channel,
            queue,
            waiting: Mutex::new(Some(waiting)),
            lost: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Starts the subscriber task delivering to `hub` and the publisher task; both run until the
    /// process ends.
    pub fn start(self: &Arc<Self>, hub: Addr<Hub>) {
        let this = self.clone();
        actix::spawn(async move { this.run_subscriber(hub.recipient()).await });
        let waiting = self.waiting.lock().ok().and_then(|mut w| w.take());
        if let Some(queue) = waiting {
            let this = self.clone();
            actix::spawn(async move { this.run_publisher(queue).await });
        }
    }

    async fn run_subscriber(&self, hub: Recipient<FromBroker>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.client.get_async_pubsub().await {
                Ok(mut pubsub) => match pubsub.subscribe(&self.channel).await {
                    Ok(()) => {
                        tracing::info!("subscribed to the fan-out channel");
                        backoff = Duration::from_millis(100);
                        // Whatever was published while this node was not subscribed is lost
                        // for it: its sessions catch up from the database.
                        let mut resync = true;
                        let mut messages = pubsub.on_message();
                        loop {
                            if resync {
                                resync = hub.try_send(FromBroker(BrokerMessage::Resync)).is_err();
                            }
                            let Some(message) = messages.next().await else { break };
                            let Ok(payload) = message.get_payload::<String>() else { continue };
                            match decode(&payload) {
                                Some(decoded) => {
                                    if hub.try_send(FromBroker(decoded)).is_err() {
                                        tracing::warn!("the hub is overloaded; a fan-out message was dropped");
                                        resync = true;
                                    }
                                }
                                None => tracing::warn!("ignored a malformed fan-out message"),
                            }
                        }
                        tracing::warn!("the fan-out subscription ended; reconnecting");
                    }
                    Err(error) => tracing::warn!(%error, "could not subscribe to the fan-out channel"),
                },
                Err(error) => tracing::warn!(%error, "cannot reach Redis for fan-out"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
        }
    }

    /// Sends the queue to Redis in order. When Redis cannot take a message, the queue is
    /// emptied (its receivers will catch up from the database), the publisher waits a moment,
    /// and once Redis answers again it first publishes a resync.
    async fn run_publisher(&self, mut queue: mpsc::Receiver<String>) {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(COMMAND_TIMEOUT))
            .set_response_timeout(Some(COMMAND_TIMEOUT))
            .set_number_of_retries(1);
        let mut connection: Option<ConnectionManager> = None;
        let mut backoff = Duration::from_millis(50);
        loop {
            let next = if self.lost.load(Ordering::Acquire) {
                // Say "resync" as soon as Redis is back, even if nothing else is published.
                match tokio::time::timeout(Duration::from_millis(250), queue.recv()).await {
                    Ok(next) => next.map(Some),
                    Err(_) => Some(None),
                }
            } else {
                queue.recv().await.map(Some)
            };
            let Some(payload) = next else { return }; // the broker is gone: the node is stopping
            if connection.is_none() {
                match ConnectionManager::new_with_config(self.client.clone(), config.clone()).await {
                    Ok(made) => connection = Some(made),
                    Err(error) => tracing::warn!(%error, "cannot reach Redis to publish"),
                }
            }
            let sent = match connection.as_mut() {
                Some(connection) => self.send(connection, payload).await,
                None => false,
            };
            if sent {
                backoff = Duration::from_millis(50);
            } else {
                self.lost.store(true, Ordering::Release);
                let mut dropped = 0usize;
                while queue.try_recv().is_ok() {
                    dropped += 1;
                }
                tracing::warn!(dropped, "could not publish to the fan-out channel; receivers will catch up");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }

    /// Publishes the pending resync, if any, then `payload` (if any); `false` when Redis could
    /// not take them.
    async fn send(&self, connection: &mut ConnectionManager, payload: Option<String>) -> bool {
        if self.lost.load(Ordering::Acquire) {
            if self.command(connection, encode(&BrokerMessage::Resync)).await.is_err() {
                return false;
            }
            self.lost.store(false, Ordering::Release);
            tracing::info!("the fan-out channel takes messages again; every node catches up");
        }
        match payload {
            Some(payload) => self.command(connection, payload).await.is_ok(),
            None => true,
        }
    }

    async fn command(&self, connection: &mut ConnectionManager, payload: String) -> Result<(), redis::RedisError> {
        let published: Result<Result<i64, _>, _> = tokio::time::timeout(
            COMMAND_TIMEOUT,
            redis::cmd("PUBLISH").arg(&self.channel).arg(payload).query_async(connection),
        )
        .await;
        match published {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => {
                tracing::debug!(%error, "PUBLISH failed");
                Err(error)
            }
            Err(_) => Err(redis::RedisError::from((redis::ErrorKind::Io, "PUBLISH timed out"))),
        }
    }
}

impl Broker for RedisBroker {
    /// Queues `message` for the publisher and returns at once: a write never waits for Redis.
    /// A full queue drops the message and makes the next publish a resync.
    fn publish(&self, message: BrokerMessage) -> Pin<Box<dyn Future<Output = Result<(), BrokerError>> + Send>> {
        let queued = self.queue.try_send(encode(&message)).map_err(|_| {
            self.lost.store(true, Ordering::Release);
            BrokerError
        });
        Box::pin(std::future::ready(queued))
    }
}

/// The wire form on the channel.
fn encode(message: &BrokerMessage) -> String {
    match message {
        BrokerMessage::Publish { topic, event_id, patient, text } => json!({
            "kind": "publish", "topic": topic.to_string(), "event_id": event_id,
            "patient": patient.map(|p| p.to_string()), "text": &**text,
        }),
        BrokerMessage::Revoke { user, session } => {
            json!({ "kind": "revoke", "user": user.to_string(), "session": session.map(|s| s.to_string()) })
        }
        BrokerMessage::Resync => json!({ "kind": "resync" }),
    }
    .to_string()
}

fn decode(payload: &str) -> Option<BrokerMessage> {
    let value: Value = serde_json::from_str(payload).ok()?;
    match value["kind"].as_str()? {
        "publish" => Some(BrokerMessage::Publish {
            topic: value["topic"].as_str()?.parse::<Topic>().ok()?,
            event_id: value["event_id"].as_u64(),
            patient: match value["patient"].as_str() {
                Some(p) => Some(p.parse().ok()?),
                None => None,
            },
            text: value["text"].as_str()?.into(),
        }),
        "revoke" => Some(BrokerMessage::Revoke {
            user: value["user"].as_str()?.parse().ok()?,
            session: match value["session"].as_str() {
                Some(s) => Some(s.parse().ok()?),
                None => None,
            },
        }),
        "resync" => Some(BrokerMessage::Resync),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use confidant_actors::ids::{PatientId, SessionId, UserId};

    use super::*;

    #[test]
    fn messages_survive_the_channel_encoding() {
        let messages = [
            BrokerMessage::Publish {
                topic: Topic::PracticeSchedule,
                event_id: Some(9),
                patient: Some(PatientId::generate()),
                text: r#"{"a":"b"}"#.into(),
            },
            BrokerMessage::Publish {
                topic: Topic::Alerts(UserId::generate()),
                event_id: None,
                patient: None,
                text: "x".into(),
            },
            BrokerMessage::Revoke { user: UserId::generate(), session: Some(SessionId::generate()) },
            BrokerMessage::Revoke { user: UserId::generate(), session: None },
            BrokerMessage::Resync,
        ];
        for message in messages {
            assert_eq!(decode(&encode(&message)).unwrap(), message);
        }
        assert_eq!(decode("{}"), None);
        assert_eq!(decode(r#"{"kind":"publish","topic":"nope","text":"x"}"#), None);
    }
}
