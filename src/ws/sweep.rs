//! The revocation sweep: every [`SWEEP_EVERY`] each node reads the sessions that ended since
//! its last look and closes their sockets (4003). Sign-out and disabling announce themselves
//! through the hub at once; this catches what nobody announced (a reused refresh token or
//! authorization code ending a session, an announcement lost while Redis was down) with one
//! query per node instead of one per socket.

use std::time::Duration;

use actix::Addr;
use confidant_actors::hub::{BrokerMessage, FromBroker, Hub};

use crate::identity::sessions::Sessions;

/// How often a node looks for ended sessions.
pub const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// Runs the sweep for this node's `hub` until the process ends.
pub fn start(sessions: Sessions, hub: Addr<Hub>, clock: std::sync::Arc<dyn confidant_actors::clock::Clock>) {
    actix::spawn(async move {
        // Overlap the windows a little: a session ended by a transaction that committed late
        // is still seen.
        let mut since = clock.now_ms() - 5_000;
        loop {
            tokio::time::sleep(SWEEP_EVERY).await;
            let now = clock.now_ms();
            match sessions.ended_since(since).await {
                Ok(ended) => {
                    for (session, user) in ended {
                        hub.do_send(FromBroker(BrokerMessage::Revoke { user, session: Some(session) }));
                    }
                    since = now - 5_000;
                }
                Err(error) => tracing::warn!(%error, "the revocation sweep could not read ended sessions"),
            }
        }
    });
}
