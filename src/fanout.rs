//! Cross-node fan-out: the hub's [`Broker`] over Redis pub/sub, used when `redis_url` is set.
//! Every node publishes to one channel and subscribes to it, so a frame or revocation
//! published on any node reaches every node's hub (its own included, as with the in-process
//! broker). The subscriber reconnects with back-off after any failure.
//!
//! Delivery is at most once: what is published while a node's subscription is down is lost
//! for that node's live sockets, which miss those changes until they next resume (by event id)
//! or re-subscribe. Revocations are not lost for good: every socket re-checks its session in
//! the database every 30 s.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use actix::{Addr, Recipient};
use confidant_actors::hub::{Broker, BrokerError, BrokerMessage, FromBroker, Hub, Topic};
use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use crate::settings::RedisUrl;

/// The Redis broker.
pub struct RedisBroker {
    client: redis::Client,
    channel: String,
    publisher: Arc<OnceCell<ConnectionManager>>,
}

impl RedisBroker {
    /// A broker on `channel` of the Redis at `url`; connects on first use.
    pub fn new(url: &RedisUrl, channel: String) -> Result<Self, redis::RedisError> {
        Ok(Self { client: redis::Client::open(url.expose())?, channel, publisher: Arc::new(OnceCell::new()) })
    }

    /// Starts the subscriber task delivering to `hub`; it runs until the process ends.
    pub fn subscribe(self: &Arc<Self>, hub: Addr<Hub>) {
        let this = self.clone();
        actix::spawn(async move { this.run_subscriber(hub.recipient()).await });
    }

    async fn run_subscriber(&self, hub: Recipient<FromBroker>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            match self.client.get_async_pubsub().await {
                Ok(mut pubsub) => match pubsub.subscribe(&self.channel).await {
                    Ok(()) => {
                        tracing::info!("subscribed to the fan-out channel");
                        backoff = Duration::from_millis(100);
                        let mut messages = pubsub.on_message();
                        while let Some(message) = messages.next().await {
                            let Ok(payload) = message.get_payload::<String>() else { continue };
                            match decode(&payload) {
                                Some(decoded) => {
                                    if hub.try_send(FromBroker(decoded)).is_err() {
                                        tracing::warn!("the hub is overloaded; a fan-out message was dropped");
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
}

impl Broker for RedisBroker {
    fn publish(&self, message: BrokerMessage) -> Pin<Box<dyn Future<Output = Result<(), BrokerError>> + Send>> {
        let payload = encode(&message);
        let (channel, cell, client) = (self.channel.clone(), self.publisher.clone(), self.client.clone());
        let fut = async move {
            // One connection manager per node, made on first use; it reconnects by itself.
            let connection = cell.get_or_try_init(|| ConnectionManager::new(client)).await.map_err(|error| {
                tracing::warn!(%error, "cannot reach Redis to publish");
                BrokerError
            })?;
            let mut connection = connection.clone();
            let sent: Result<i64, _> =
                redis::cmd("PUBLISH").arg(&channel).arg(payload).query_async(&mut connection).await;
            sent.map(|_| ()).map_err(|error| {
                tracing::warn!(%error, "publishing to the fan-out channel failed");
                BrokerError
            })
        };
        Box::pin(fut)
    }
}

/// The wire form on the channel.
fn encode(message: &BrokerMessage) -> String {
    match message {
        BrokerMessage::Publish { topic, event_id, text } => {
            json!({ "kind": "publish", "topic": topic.to_string(), "event_id": event_id, "text": &**text })
        }
        BrokerMessage::Revoke { user, session } => {
            json!({ "kind": "revoke", "user": user.to_string(), "session": session.map(|s| s.to_string()) })
        }
    }
    .to_string()
}

fn decode(payload: &str) -> Option<BrokerMessage> {
    let value: Value = serde_json::from_str(payload).ok()?;
    match value["kind"].as_str()? {
        "publish" => Some(BrokerMessage::Publish {
            topic: value["topic"].as_str()?.parse::<Topic>().ok()?,
            event_id: value["event_id"].as_u64(),
            text: value["text"].as_str()?.into(),
        }),
        "revoke" => Some(BrokerMessage::Revoke {
            user: value["user"].as_str()?.parse().ok()?,
            session: match value["session"].as_str() {
                Some(s) => Some(s.parse().ok()?),
                None => None,
            },
        }),
        _ => None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use confidant_actors::ids::{SessionId, UserId};

    use super::*;

    #[test]
    fn messages_survive_the_channel_encoding() {
        let messages = [
            BrokerMessage::Publish { topic: Topic::PracticeSchedule, event_id: Some(9), text: r#"{"a":"b"}"#.into() },
            BrokerMessage::Publish { topic: Topic::Alerts(UserId::generate()), event_id: None, text: "x".into() },
            BrokerMessage::Revoke { user: UserId::generate(), session: Some(SessionId::generate()) },
            BrokerMessage::Revoke { user: UserId::generate(), session: None },
        ];
        for message in messages {
            assert_eq!(decode(&encode(&message)).unwrap(), message);
        }
        assert_eq!(decode("{}"), None);
        assert_eq!(decode(r#"{"kind":"publish","topic":"nope","text":"x"}"#), None);
    }
}
