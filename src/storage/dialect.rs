//! The one place that knows SQLite and PostgreSQL apart: connection set-up, the migration trees,
//! and the few statements the two dialects cannot share.

use sqlx::Executor;
use sqlx::any::AnyPoolOptions;
use sqlx::migrate::Migrator;

use super::location::Store;

/// The statements of [`Backend::message_batch_sql`].
#[derive(Debug, Clone, Copy)]
pub enum MessageBatchSql {
    /// One statement taking `added` and `rows`.
    Combined(&'static str),
    /// `advance` takes `added` and answers; `append` takes `rows`, after it.
    Separate { advance: &'static str, append: &'static str },
}

/// SQL dialect of a database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded default: one file per store in the data directory.
    Sqlite,
    /// Production: separate databases for the main and audit stores.
    Postgres,
}

static MAIN_SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static MAIN_POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");
static AUDIT_SQLITE: Migrator = sqlx::migrate!("./migrations/audit/sqlite");
static AUDIT_POSTGRES: Migrator = sqlx::migrate!("./migrations/audit/postgres");

impl Backend {
    /// Per-connection set-up. SQLite: write-ahead log (readers never block the writer) and
    /// foreign keys enforced (sqlx enables them too; stating it keeps the guarantee independent
    /// of driver defaults). `synchronous` is NORMAL for the main store (durable across process
    /// crashes) and FULL for the audit store, whose acknowledgements promise durability even
    /// across a power loss. The audit store's automatic WAL checkpoint is off:
    /// `Storage::start_wal_checkpoints` copies its log back in the background.
    pub(super) fn configure(self, store: Store, options: AnyPoolOptions) -> AnyPoolOptions {
        let pragmas = match store {
            // The automatic checkpoint is a backstop at 64 MiB of log: `Storage::start_wal_checkpoints`
            // copies the log back in the background, outside any commit.
            Store::Main => {
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA wal_autocheckpoint = 16384;"
            }
            Store::Audit => {
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 0;"
            }
        };
        match self {
            Backend::Postgres => options,
            Backend::Sqlite => options.after_connect(move |conn, _meta| {
                Box::pin(async move {
                    conn.execute(pragmas).await?;
                    Ok(())
                })
            }),
        }
    }

    /// The statement that opens a transaction whose check-then-write must not interleave with
    /// another's (no double booking): SQLite takes the write lock up front (`BEGIN IMMEDIATE`;
    /// a deferred transaction would fail at its first write instead of waiting); PostgreSQL
    /// starts normally and takes [`Self::lock_schedule_sql`].
    pub fn begin_serialized_sql(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }

    /// Serializes schedule writers until the transaction ends, so that (1) two bookings cannot
    /// both pass the overlap check and (2) event ids commit in the order they were taken: with
    /// concurrent writers a sequence can commit 11 before 10, and a subscriber that resumed
    /// after 11 would never see 10. PostgreSQL takes a transaction-scoped advisory lock; SQLite
    /// already holds the database's write lock (`BEGIN IMMEDIATE`), so nothing is needed.
    pub fn lock_schedule_sql(self) -> Option<&'static str> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres => Some("SELECT pg_advisory_xact_lock(7262646373)"),
        }
    }

    /// The embedded migrations for `store` in this dialect.
    pub(super) fn migrator(self, store: Store) -> &'static Migrator {
        match (store, self) {
            (Store::Main, Backend::Sqlite) => &MAIN_SQLITE,
            (Store::Main, Backend::Postgres) => &MAIN_POSTGRES,
            (Store::Audit, Backend::Sqlite) => &AUDIT_SQLITE,
            (Store::Audit, Backend::Postgres) => &AUDIT_POSTGRES,
        }
    }

    /// Appends a batch of audit entries passed as ONE parameter: a JSON array of rows, each an
    /// array of the 18 columns in `audit_entries` order, hashes in hex. One statement per batch
    /// whatever its size keeps the per-statement cost of the driver (and any Nagle stall on the
    /// wire) out of the per-event cost; this is what lets group commit scale. The statement is
    /// atomic by itself, so it needs no transaction around it (which would cost two more trips
    /// to the database per batch). SQLite reads the rows with `jsonb_each`, whose values stay in
    /// SQLite's binary JSON form: `json_each` turned each row back into text for `->>` to parse
    /// again, a twelfth of the messaging server's CPU.
    pub fn audit_append_sql(self) -> &'static str {
        match self {
            Backend::Sqlite => {
                "INSERT INTO audit_entries (node_id, seq, event_id, at_ms, actor_kind, actor_user_id, actor_role, \
                 session_id, request_id, source_ip, action, resource_type, resource_id, patient_id, outcome, reason, \
                 prev_hash, hash) \
                 SELECT r.value ->> 0, r.value ->> 1, r.value ->> 2, r.value ->> 3, r.value ->> 4, r.value ->> 5, \
                 r.value ->> 6, r.value ->> 7, r.value ->> 8, r.value ->> 9, r.value ->> 10, r.value ->> 11, \
                 r.value ->> 12, r.value ->> 13, r.value ->> 14, r.value ->> 15, unhex(r.value ->> 16), \
                 unhex(r.value ->> 17) FROM jsonb_each($1) AS r"
            }
            Backend::Postgres => {
                "INSERT INTO audit_entries (node_id, seq, event_id, at_ms, actor_kind, actor_user_id, actor_role, \
                 session_id, request_id, source_ip, action, resource_type, resource_id, patient_id, outcome, reason, \
                 prev_hash, hash) \
                 SELECT r ->> 0, (r ->> 1)::bigint, r ->> 2, (r ->> 3)::bigint, r ->> 4, r ->> 5, r ->> 6, r ->> 7, \
                 r ->> 8, r ->> 9, r ->> 10, r ->> 11, r ->> 12, r ->> 13, r ->> 14, r ->> 15, \
                 decode(r ->> 16, 'hex'), decode(r ->> 17, 'hex') FROM jsonb_array_elements($1::jsonb) AS r"
            }
        }
    }

    /// How `messaging::ingest` writes a batch of application messages. Both forms take the batch
    /// as two JSON parameters, the same statements however many conversations and messages it
    /// holds: `added`, an array of `[conversation_id, epoch, count]`, and `rows`, an array of
    /// `[conversation_id, epoch, offset, sender_device, at_ms, hex ciphertext]`, a message's seq
    /// being its conversation's new `last_seq` minus `offset`. A conversation moves on by its
    /// count only while it is still in that epoch; the messages of one that did not move are in
    /// an epoch that is over and are not stored. The batch answers `(conversation_id, epoch,
    /// last_seq)` for each conversation that moved, `last_seq` being the new one.
    pub fn message_batch_sql(self) -> MessageBatchSql {
        match self {
            // SQLite has no data-modifying WITH: the update, then the insert, which reads each
            // conversation's new `last_seq` in the same transaction (a conversation that did not
            // move is in another epoch than its rows and joins none of them).
            Backend::Sqlite => MessageBatchSql::Separate {
                advance: "UPDATE conversations SET last_seq = last_seq + added.value ->> 2 FROM jsonb_each($1) AS added \
                          WHERE conversations.conversation_id = added.value ->> 0 AND conversations.epoch = added.value ->> 1 \
                          RETURNING conversation_id, epoch, last_seq",
                append: "INSERT INTO conversation_messages (conversation_id, seq, kind, epoch, sender_device, message, at_ms) \
                         SELECT c.conversation_id, c.last_seq - (r.value ->> 2), 'application', c.epoch, r.value ->> 3, \
                         unhex(r.value ->> 5), r.value ->> 4 FROM jsonb_each($1) AS r \
                         JOIN conversations AS c ON c.conversation_id = r.value ->> 0 AND c.epoch = r.value ->> 1",
            },
            // One statement: a round trip less on every batch's way to its commit. Two nodes may
            // write to the same conversations at once: each locks them in id order first, so
            // their batches wait for each other instead of deadlocking; a conversation whose
            // epoch changed while waiting for its lock is left out (its row is checked again once
            // locked). The conversations are looked up by `= ANY` of their ids: the planner takes
            // `jsonb_array_elements` for 100 rows whatever the batch, and joined to it scanned the
            // whole table on every batch in a practice of a few thousand conversations.
            Backend::Postgres => MessageBatchSql::Combined(
                "WITH added AS (SELECT a ->> 0 AS conversation_id, (a ->> 1)::bigint AS epoch, (a ->> 2)::bigint AS n \
                 FROM jsonb_array_elements($1::jsonb) AS a), \
                 locked AS MATERIALIZED (SELECT c.conversation_id, added.n FROM conversations AS c \
                 JOIN added ON c.conversation_id = added.conversation_id AND c.epoch = added.epoch \
                 WHERE c.conversation_id = ANY (ARRAY(SELECT conversation_id FROM added)) \
                 ORDER BY c.conversation_id FOR UPDATE OF c), \
                 moved AS (UPDATE conversations AS c SET last_seq = c.last_seq + locked.n FROM locked \
                 WHERE c.conversation_id = locked.conversation_id RETURNING c.conversation_id, c.epoch, c.last_seq), \
                 stored AS (INSERT INTO conversation_messages (conversation_id, seq, kind, epoch, sender_device, message, at_ms) \
                 SELECT m.conversation_id, m.last_seq - (r ->> 2)::bigint, 'application', m.epoch, r ->> 3, \
                 decode(r ->> 5, 'hex'), (r ->> 4)::bigint FROM jsonb_array_elements($2::jsonb) AS r \
                 JOIN moved AS m ON m.conversation_id = r ->> 0 AND m.epoch = (r ->> 1)::bigint) \
                 SELECT conversation_id, epoch, last_seq FROM moved",
            ),
        }
    }

    /// Whether the database lets only one transaction write at a time (SQLite). Other writers
    /// then wait in its busy handler, which sleeps a millisecond or more, so a writing
    /// transaction there must not wait for anything else (`messaging::ingest`).
    pub fn single_writer(self) -> bool {
        matches!(self, Backend::Sqlite)
    }

    /// One page of an audit chain, for verification (`audit::store::pages`): the entries of node `$1`
    /// with `$2 <= seq < $3`, every column but `node_id`. SQLite answers one JSON text of the
    /// columns with the hashes' lengths in place of the hashes, and the hashes concatenated in
    /// one blob (both aggregates see the rows in the same order; raw blobs cost SQLite a fifth
    /// less than hex). PostgreSQL streams the columns as binary `COPY` through a native
    /// connection; `COPY` takes no parameters, so the node (read from the table, never to be
    /// put into SQL text) and the bounds are session settings made first by
    /// [`Self::audit_page_settings_sql`].
    pub fn audit_page_sql(self) -> &'static str {
        match self {
            Backend::Sqlite => {
                "SELECT json_group_array(json_array(seq, event_id, at_ms, actor_kind, actor_user_id, actor_role, \
                 session_id, request_id, source_ip, action, resource_type, resource_id, patient_id, outcome, reason, \
                 octet_length(prev_hash), octet_length(hash))), CAST(group_concat(prev_hash || hash, '') AS BLOB) \
                 FROM audit_entries WHERE node_id = $1 AND seq >= $2 AND seq < $3"
            }
            Backend::Postgres => {
                "COPY (SELECT seq, event_id, at_ms, actor_kind, actor_user_id, actor_role, session_id, request_id, \
                 source_ip, action, resource_type, resource_id, patient_id, outcome, reason, prev_hash, hash \
                 FROM audit_entries WHERE node_id = current_setting('confidant.verify_node') \
                 AND seq >= current_setting('confidant.verify_from')::bigint \
                 AND seq < current_setting('confidant.verify_to')::bigint) TO STDOUT (FORMAT binary)"
            }
        }
    }

    /// PostgreSQL: sets node `$1` and bounds `$2` and `$3` (as text) for [`Self::audit_page_sql`].
    pub fn audit_page_settings_sql(self) -> Option<&'static str> {
        match self {
            Backend::Sqlite => None,
            Backend::Postgres => Some(
                "SELECT set_config('confidant.verify_node', $1, false), set_config('confidant.verify_from', $2, false), \
                 set_config('confidant.verify_to', $3, false)",
            ),
        }
    }

    /// Lets DELETE through the audit tables' triggers for the rest of the current transaction
    /// (SQLite: the guard row, closed again before commit; PostgreSQL: a transaction-local
    /// setting). Only `confidant audit purge` runs it, and on PostgreSQL only the owner of the
    /// audit database has DELETE at all.
    pub fn open_purge_guard_sql(self) -> &'static str {
        match self {
            Backend::Sqlite => "UPDATE audit_purge_guard SET open = 1 WHERE id = 1",
            Backend::Postgres => "SET LOCAL confidant.audit_purge = 'on'",
        }
    }

    /// Closes the guard [`Self::open_purge_guard_sql`] opened, before the purge commits: SQLite's
    /// guard is a row, closed again; PostgreSQL's setting ends with the transaction.
    pub fn close_purge_guard_sql(self) -> Option<&'static str> {
        match self {
            Backend::Sqlite => Some("UPDATE audit_purge_guard SET open = 0 WHERE id = 1"),
            Backend::Postgres => None,
        }
    }

    /// The statement that checkpoints the audit store's write-ahead log without blocking its
    /// writer (see `AuditStore`); PostgreSQL has nothing to do.
    pub fn wal_checkpoint_sql(self) -> Option<&'static str> {
        match self {
            Backend::Sqlite => Some("PRAGMA wal_checkpoint(PASSIVE)"),
            Backend::Postgres => None,
        }
    }

    /// A query listing the store's own tables by name (sqlx's migration table included, the
    /// engine's own excluded): what a backup counts and a store copy moves, so a table added by
    /// a later migration is covered without naming it anywhere.
    pub fn tables_sql(self) -> &'static str {
        match self {
            Backend::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            }
            Backend::Postgres => {
                "SELECT CAST(table_name AS TEXT) FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name"
            }
        }
    }

    /// A query returning 1 when sqlx's migration table exists, else 0.
    pub(super) fn migrations_table_exists_sql(self) -> &'static str {
        match self {
            Backend::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            Backend::Postgres => {
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '_sqlx_migrations'"
            }
        }
    }
}
