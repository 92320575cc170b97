//! [`Pusher`]: what services push live to open sessions (schedule changes, alerts, messages,
//! revocations), through the hub and so, with Redis, to every node. A push that fails is
//! logged here, once, and not returned: what it carried is stored, and a receiver that missed
//! it catches up from the database when it next subscribes or attaches (by event id, cursor,
//! or a periodic session check). This is the one home of "Redis or the hub is down" for pushes.

use std::sync::Arc;

use actix::Addr;
use confidant_actors::hub::{BrokerMessage, Hub, Publish, Topic};
use confidant_actors::ids::{PatientId, SessionId, UserId};
use confidant_protocol::ServerFrame;

/// Publishes to the node's hub.
#[derive(Clone)]
pub struct Pusher {
    hub: Addr<Hub>,
}

impl Pusher {
    /// A pusher through `hub`.
    pub fn new(hub: Addr<Hub>) -> Self {
        Self { hub }
    }

    /// Pushes `frame` on each of `topics` (with the schedule's `event_id`, when it has one).
    /// `patient` names the patient whose PHI the frame carries: each recipient's session records
    /// the delivery before sending it. `what` names the push in the log if it fails.
    pub async fn push(
        &self,
        topics: impl IntoIterator<Item = Topic>,
        (event_id, patient): (Option<u64>, Option<PatientId>),
        frame: &ServerFrame,
        what: &'static str,
    ) {
        let text: Arc<str> = frame.to_text().into();
        for topic in topics {
            let message = BrokerMessage::Publish { topic, event_id, patient, text: text.clone() };
            if !self.publish(message).await {
                tracing::warn!(what, %topic, "could not push; its receivers catch up from the database");
            }
        }
    }

    /// Closes `user`'s sockets (one session's, or all) on every node, with 4003. The sessions
    /// are already ended in the database, which each socket also re-checks periodically, so a
    /// broker outage delays the close but never skips it.
    pub async fn revoke(&self, user: UserId, session: Option<SessionId>) {
        if !self.publish(BrokerMessage::Revoke { user, session }).await {
            tracing::warn!(user_id = %user, "could not announce a revocation; sockets close at their next check");
        }
    }

    /// Whether the hub took `message` (and, with Redis, published it).
    async fn publish(&self, message: BrokerMessage) -> bool {
        matches!(self.hub.send(Publish(message)).await, Ok(Ok(())))
    }
}
