//! The connection of a store's batching writer (the audit store's appends and seals, the
//! message ingest), kept from one batch to the next.
//!
//! sqlx tests a pooled connection each time it hands one out and again each time it takes one
//! back, a round trip to the database each (on PostgreSQL a wake-up of its backend, on SQLite of
//! the connection's worker thread), and the next batch cannot start until the connection is back.
//! For a writer that commits batch after batch on its one connection those round trips sat in
//! every batch's critical path: on PostgreSQL, 1:1 messaging at 12,000 msg/s spent a median
//! 0.6-0.8 ms of each batch just to begin its transaction. So the writer's connection is taken
//! out of its pool (detached) when the store connects and kept; after the database failed on it
//! it is dropped and the pool, which runs the store's connection set-up, makes the next one.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use sqlx::{AnyConnection, AnyPool, Connection as _};
use tokio::sync::{Mutex, MutexGuard};

use super::StorageError;

/// The writer's connection, and the pool that makes a new one when it failed.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    pool: AnyPool,
    kept: Arc<Mutex<Option<AnyConnection>>>,
}

impl Writer {
    /// Connects now: a connection made on first use makes the batch that needs it wait for the
    /// connect (tens of ms on PostgreSQL).
    pub(super) async fn connect(pool: AnyPool) -> Result<Self, sqlx::Error> {
        let conn = pool.acquire().await?.detach();
        Ok(Self { pool, kept: Arc::new(Mutex::new(Some(conn))) })
    }

    /// The writer's connection, for one batch: waits while another batch has it. Call
    /// [`WriterConnection::keep`] unless the database failed on it; dropping it instead closes
    /// the connection, and the next batch gets a new one.
    pub(crate) async fn connection(&self) -> Result<WriterConnection<'_>, StorageError> {
        let mut kept = self.kept.lock().await;
        let conn = match kept.take() {
            Some(conn) => conn,
            None => self.pool.acquire().await?.detach(),
        };
        Ok(WriterConnection { kept, conn })
    }

    /// Waits for the batch in progress, then closes the connection and the pool.
    pub(super) async fn close(&self) {
        if let Some(conn) = self.kept.lock().await.take()
            && let Err(error) = conn.close().await
        {
            tracing::debug!(%error, "the writer's connection did not close cleanly");
        }
        self.pool.close().await;
    }
}

/// The writer's connection, lent to one batch.
pub(crate) struct WriterConnection<'a> {
    kept: MutexGuard<'a, Option<AnyConnection>>,
    conn: AnyConnection,
}

impl WriterConnection<'_> {
    /// Keeps the connection for the next batch (nothing the database did on it failed).
    pub(crate) fn keep(self) {
        let Self { mut kept, conn } = self;
        *kept = Some(conn);
    }
}

impl Deref for WriterConnection<'_> {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.conn
    }
}

impl DerefMut for WriterConnection<'_> {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.conn
    }
}
