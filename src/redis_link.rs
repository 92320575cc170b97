//! The node's connection to Redis for readiness, present only when `redis_url` is configured
//! (several nodes): it proves the URL, credentials and TLS work before traffic arrives. The
//! fan-out itself runs in [`crate::fanout`].
//!
//! The connection is made lazily and re-made after a failure, so a Redis outage at start-up or
//! later makes the node not ready instead of stopping it.

use std::sync::Arc;

use redis::aio::MultiplexedConnection;
use tokio::sync::Mutex;

use crate::settings::RedisUrl;

/// Errors talking to Redis. The URL (which may hold a password) is never part of them.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// The URL was accepted by settings but the client refused it.
    #[error("redis_url cannot be used by the Redis client")]
    Url(#[source] redis::RedisError),
    /// Redis is unreachable or answered with an error.
    #[error("Redis is unavailable")]
    Unavailable(#[source] redis::RedisError),
}

/// Shared, lazily connected handle to Redis.
#[derive(Clone)]
pub struct RedisLink {
    client: redis::Client,
    connection: Arc<Mutex<Option<MultiplexedConnection>>>,
}

impl std::fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisLink")
    }
}

impl RedisLink {
    /// Prepares the client; does not connect yet.
    pub fn new(url: &RedisUrl) -> Result<Self, RedisError> {
        let client = redis::Client::open(url.expose()).map_err(RedisError::Url)?;
        Ok(Self { client, connection: Arc::new(Mutex::new(None)) })
    }

    /// A multiplexed connection, connecting (again) if there is none.
    async fn connection(&self) -> Result<MultiplexedConnection, RedisError> {
        let mut slot = self.connection.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let conn = self.client.get_multiplexed_async_connection().await.map_err(RedisError::Unavailable)?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    /// PING round trip. On failure the cached connection is dropped so the next call reconnects.
    pub async fn ping(&self) -> Result<(), RedisError> {
        let mut conn = self.connection().await?;
        let result: Result<String, _> = redis::cmd("PING").query_async(&mut conn).await;
        if let Err(e) = result {
            *self.connection.lock().await = None;
            return Err(RedisError::Unavailable(e));
        }
        Ok(())
    }
}
