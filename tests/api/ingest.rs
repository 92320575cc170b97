//! The message ingest in-process, both backends: what batches over several conversations store
//! and answer (`messaging::ingest`, `Backend::message_batch_sql`).

use confidant::messaging::ingest::Ingest;
use confidant::settings::{self, DatabaseUrl, Settings};
use confidant::storage::{Location, Storage, Store};
use confidant_actors::audit::{Action, AuditActor, AuditEvent, AuditWriter, Outcome};
use confidant_actors::ids::{ConversationId, DeviceId, NodeId};

use crate::helpers::{Backend, InProcess, TestDatabase, in_process};

/// A staff account with one device, and conversations it may send to (no membership is
/// checked here: the ingest comes after those checks).
struct Fixture {
    storage: Storage,
    audit_storage: Storage,
    ingest: Ingest,
    writer: actix::Addr<AuditWriter>,
    node: NodeId,
    device: DeviceId,
    conversations: Vec<ConversationId>,
    settings: Settings,
    databases: Option<(TestDatabase, TestDatabase)>,
    _dir: tempfile::TempDir,
}

/// Conversations made with each `(epoch, last_seq)`.
async fn fixture(backend: Backend, conversations: &[(u64, i64)]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let env = [("CONFIDANT_DATA_DIR".to_owned(), dir.path().display().to_string())];
    let settings = settings::load_from(None, env).unwrap();
    let InProcess { audit_storage, keyring, node, writer, databases, .. } =
        in_process(backend, &settings, "ingest").await;
    let storage = keyring.storage().clone();
    let pool = storage.pool_for_tests();

    let user = uuid::Uuid::new_v4().to_string();
    let device = DeviceId::from_uuid(uuid::Uuid::new_v4());
    let key_id: i64 = sqlx::query_scalar("SELECT MIN(key_id) FROM data_keys").fetch_one(pool).await.unwrap();
    sqlx::query(
        "INSERT INTO users (user_id, role, status, key_id, created_at_ms, updated_at_ms, email, email_index) \
         VALUES ($1, 'clinician', 'invited', $2, 0, 0, $3, $3)",
    )
    .bind(&user)
    .bind(key_id)
    .bind(vec![1u8; 16])
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO devices (device_id, user_id, registered_at_ms, signature_key) VALUES ($1, $2, 0, $3)")
        .bind(device.to_string())
        .bind(&user)
        .bind(vec![2u8; 32])
        .execute(pool)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for &(epoch, last_seq) in conversations {
        let id = ConversationId::from_uuid(uuid::Uuid::new_v4());
        sqlx::query(
            "INSERT INTO conversations (conversation_id, kind, created_by, created_at_ms, epoch, last_seq, \
             public_group) VALUES ($1, 'staff', $2, 0, $3, $4, $5)",
        )
        .bind(id.to_string())
        .bind(&user)
        .bind(i64::try_from(epoch).unwrap())
        .bind(last_seq)
        .bind(vec![3u8; 16])
        .execute(pool)
        .await
        .unwrap();
        ids.push(id);
    }
    let ingest = Ingest::new(storage.clone(), writer.clone());
    Fixture { storage, audit_storage, ingest, writer, node, device, conversations: ids, settings, databases, _dir: dir }
}

impl Fixture {
    /// A message from the fixture's device to `conversation`, sent in `epoch` through `ingest`.
    fn send(
        &self,
        ingest: &Ingest,
        conversation: usize,
        epoch: u64,
        text: String,
    ) -> impl Future<Output = Result<Option<u64>, confidant::messaging::MessagingError>> {
        let event = AuditEvent::new(self.node, AuditActor::System, Action::Create, Outcome::Success);
        let (ingest, conversation, device) = (ingest.clone(), self.conversations[conversation], self.device);
        async move { ingest.append(conversation, epoch, device, text.into_bytes(), 0, event).await }
    }

    /// Each stored message of `conversation` as (seq, text), by seq.
    async fn stored(&self, conversation: usize) -> Vec<(i64, Vec<u8>)> {
        sqlx::query_as("SELECT seq, message FROM conversation_messages WHERE conversation_id = $1 ORDER BY seq")
            .bind(self.conversations[conversation].to_string())
            .fetch_all(self.storage.pool_for_tests())
            .await
            .unwrap()
    }

    async fn last_seq(&self, conversation: usize) -> i64 {
        sqlx::query_scalar("SELECT last_seq FROM conversations WHERE conversation_id = $1")
            .bind(self.conversations[conversation].to_string())
            .fetch_one(self.storage.pool_for_tests())
            .await
            .unwrap()
    }

    async fn audited(&self) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_entries")
            .fetch_one(self.audit_storage.pool_for_tests())
            .await
            .unwrap()
    }

    /// Another node's connection to the same main database (its own batching writer).
    async fn second_node(&self, backend: Backend) -> Storage {
        let location = match (backend, &self.databases) {
            (Backend::Sqlite, _) => Location::of(Store::Main, &self.settings),
            (Backend::Postgres, Some((main, _))) => Location::Postgres(DatabaseUrl::try_from(main.url()).unwrap()),
            (Backend::Postgres, None) => unreachable!("PostgreSQL fixtures have databases"),
        };
        Storage::connect(Store::Main, &location, &self.settings.database).await.unwrap()
    }
}

async fn one_batch_gives_each_conversation_consecutive_seqs_and_stores_nothing_from_a_past_epoch(backend: Backend) {
    // (epoch, last_seq) as set up; messages go to the three in turn, the third's in an epoch
    // it has left.
    let f = fixture(backend, &[(3, 10), (1, 0), (2, 5)]).await;
    let sent_in = [3, 1, 1];
    let messages = 300;
    let audited_before = f.audited().await;

    // All queued before the writer takes any (the test's runtime has one thread), so the
    // batches hold all three conversations.
    let answers = futures_util::future::join_all(
        (0..messages).map(|i| f.send(&f.ingest, i % 3, sent_in[i % 3], format!("message {i}"))),
    )
    .await;

    for (c, last_seq) in [(0, 10), (1, 0), (2, 5)] {
        // Each message of this conversation as (the seq it was answered, its text).
        let mut answered: Vec<(Option<u64>, Vec<u8>)> = (c..messages)
            .step_by(3)
            .map(|i| (*answers[i].as_ref().unwrap(), format!("message {i}").into_bytes()))
            .collect();
        if c == 2 {
            assert!(answered.iter().all(|(seq, _)| seq.is_none()), "a past epoch's messages are answered stale");
            assert!(f.stored(c).await.is_empty(), "and not stored");
            assert_eq!(f.last_seq(c).await, last_seq, "and the conversation does not move");
            continue;
        }
        // The order they reached the writer in is the runtime's; the seqs they got must be the
        // conversation's next ones, each stored with the message it was answered for.
        answered.sort();
        let answered: Vec<(i64, Vec<u8>)> =
            answered.into_iter().map(|(seq, text)| (i64::try_from(seq.unwrap()).unwrap(), text)).collect();
        let seqs: Vec<i64> = answered.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(seqs, (last_seq + 1..=last_seq + 100).collect::<Vec<_>>(), "conversation {c}: its next seqs");
        assert_eq!(f.stored(c).await, answered, "conversation {c}: each message stored under the seq it was answered");
        assert_eq!(f.last_seq(c).await, last_seq + 100, "conversation {c} moved on by its messages");
    }
    // Every message was recorded before it was stored, the stale ones too (they were attempted).
    assert_eq!(f.audited().await - audited_before, i64::try_from(messages).unwrap());
}

async fn a_batch_holding_a_conversations_past_and_current_epoch_stores_only_the_current(backend: Backend) {
    let f = fixture(backend, &[(2, 7)]).await;
    // Queued together (one runtime thread), so one batch holds both epochs of the conversation.
    let answers = futures_util::future::join_all(
        (0..10).map(|i| f.send(&f.ingest, 0, if i % 2 == 0 { 1 } else { 2 }, format!("message {i}"))),
    )
    .await;
    let answers: Vec<Option<u64>> = answers.into_iter().map(Result::unwrap).collect();
    let past: Vec<Option<u64>> = answers.iter().step_by(2).copied().collect();
    let current: Vec<Option<u64>> = answers.iter().skip(1).step_by(2).copied().collect();
    assert_eq!(past, vec![None; 5], "the past epoch's messages are answered stale");
    assert_eq!(current, (8..=12).map(Some).collect::<Vec<_>>(), "the current epoch's take the next seqs, in order");
    let stored: Vec<(i64, Vec<u8>)> =
        [1, 3, 5, 7, 9].iter().zip(8..).map(|(i, seq)| (seq, format!("message {i}").into_bytes())).collect();
    assert_eq!(f.stored(0).await, stored, "only the current epoch's are stored, each under its seq");
    assert_eq!(f.last_seq(0).await, 12);
}

async fn two_nodes_writing_to_the_same_conversations_in_opposite_orders_lose_nothing(backend: Backend) {
    let conversations = 20;
    let rounds: i64 = 30;
    let f = fixture(backend, &vec![(1, 0); conversations]).await;
    let other = Ingest::new(f.second_node(backend).await, f.writer.clone());

    // Each round, one node's batch runs through the conversations upwards and the other's
    // downwards: transactions that locked them in batch order would deadlock.
    for round in 0..rounds {
        let up = (0..conversations).map(|c| f.send(&f.ingest, c, 1, format!("{round} up {c}")));
        let down = (0..conversations).rev().map(|c| f.send(&other, c, 1, format!("{round} down {c}")));
        let (up, down) = tokio::join!(futures_util::future::join_all(up), futures_util::future::join_all(down));
        for answer in up.iter().chain(&down) {
            assert!(matches!(answer, Ok(Some(_))), "every message is stored: {answer:?}");
        }
    }
    for c in 0..conversations {
        let seqs: Vec<i64> = f.stored(c).await.into_iter().map(|(seq, _)| seq).collect();
        let all = 2 * rounds;
        assert_eq!(seqs, (1..=all).collect::<Vec<_>>(), "conversation {c}: every message, no seq twice or skipped");
        assert_eq!(f.last_seq(c).await, all);
    }
}

/// The batching writers keep their connections between batches (`storage::Writer`); one that
/// was cut fails its batch closed, and the next batch gets a new connection.
#[actix::test]
async fn writers_whose_connections_were_cut_fail_one_batch_closed_and_reconnect_for_the_next() {
    let f = fixture(Backend::Postgres, &[(1, 0)]).await;
    assert!(matches!(f.send(&f.ingest, 0, 1, "before".into()).await, Ok(Some(1))));
    let audited_before = f.audited().await;

    // Ends every other session on both databases: the ingest's and the audit writer's too.
    cut_sessions(&f.storage).await;
    cut_sessions(&f.audit_storage).await;

    let during = f.send(&f.ingest, 0, 1, "on a cut connection".into()).await;
    assert!(
        matches!(during, Err(confidant::messaging::MessagingError::Unavailable)),
        "the batch that finds its connection gone is refused: {during:?}"
    );
    let after = f.send(&f.ingest, 0, 1, "after".into()).await;
    assert!(matches!(after, Ok(Some(2))), "the next batch writes on a new connection: {after:?}");
    assert_eq!(f.stored(0).await, vec![(1, b"before".to_vec()), (2, b"after".to_vec())]);
    assert_eq!(f.audited().await - audited_before, 1, "only the stored message was recorded");

    // The audit writer's alone: the ingest's own connection is fine and stays in use.
    let main_sessions = sessions(&f.storage).await;
    cut_sessions(&f.audit_storage).await;
    let unrecorded = f.send(&f.ingest, 0, 1, "not recorded".into()).await;
    assert!(matches!(unrecorded, Err(confidant::messaging::MessagingError::Unavailable)), "{unrecorded:?}");
    assert!(matches!(f.send(&f.ingest, 0, 1, "last".into()).await, Ok(Some(3))));
    assert_eq!(f.stored(0).await.last(), Some(&(3, b"last".to_vec())));
    let still = sessions(&f.storage).await;
    assert!(
        main_sessions.iter().all(|pid| still.contains(pid)),
        "no session on the main database was replaced: {main_sessions:?} {still:?}"
    );
}

/// A practice holds thousands of conversations, and a batch finds its own by their key.
/// PostgreSQL plans the batch statement once for every batch (a generic plan, which cannot see
/// how many conversations a batch holds): the plan must not read the whole table.
#[actix::test]
async fn a_batch_finds_its_conversations_by_key_among_thousands() {
    use confidant::storage::{Backend as Dialect, MessageBatchSql};
    use sqlx::Executor as _;

    let f = fixture(Backend::Postgres, &[(1, 0)]).await;
    let pool = f.storage.pool_for_tests();
    sqlx::query(
        "INSERT INTO conversations (conversation_id, kind, created_by, created_at_ms, epoch, last_seq, public_group) \
         SELECT gen_random_uuid()::text, kind, created_by, 0, 1, 0, public_group \
         FROM conversations CROSS JOIN generate_series(1, 3000)",
    )
    .execute(pool)
    .await
    .unwrap();
    pool.execute("ANALYZE conversations").await.unwrap();

    let MessageBatchSql::Combined(batch) = Dialect::Postgres.message_batch_sql() else {
        panic!("PostgreSQL writes a batch in one statement")
    };
    let mut conn = pool.acquire().await.unwrap();
    // The statement is the server's own constant.
    let prepare = format!("SET plan_cache_mode = force_generic_plan; PREPARE batch (text, text) AS {batch}");
    sqlx::raw_sql(sqlx::AssertSqlSafe(prepare)).execute(&mut *conn).await.unwrap();
    let plan: Vec<String> =
        sqlx::query_scalar("EXPLAIN EXECUTE batch('[]', '[]')").fetch_all(&mut *conn).await.unwrap();
    sqlx::raw_sql("DEALLOCATE batch; RESET plan_cache_mode").execute(&mut *conn).await.unwrap();
    drop(conn);
    assert!(!plan.iter().any(|line| line.contains("Seq Scan on conversations")), "{plan:#?}");
    assert!(plan.iter().any(|line| line.contains("Index Scan using conversations_pkey")), "{plan:#?}");

    // And among them the batch still moves its conversation and stores its message.
    assert!(matches!(f.send(&f.ingest, 0, 1, "among thousands".into()).await, Ok(Some(1))));
    assert_eq!(f.stored(0).await, vec![(1, b"among thousands".to_vec())]);
}

/// The server processes of every session on `storage`'s PostgreSQL database (the asking one
/// too: the pool may ask on another connection next time).
async fn sessions(storage: &Storage) -> Vec<i32> {
    sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
        .fetch_all(storage.pool_for_tests())
        .await
        .unwrap()
}

/// Ends every session on `storage`'s PostgreSQL database but the one asking.
async fn cut_sessions(storage: &Storage) {
    let cut: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(storage.pool_for_tests())
    .await
    .unwrap();
    assert!(!cut.is_empty() && cut.iter().all(|&ended| ended), "the writer's session was there to end");
}

crate::on_both_backends_actix!(
    one_batch_gives_each_conversation_consecutive_seqs_and_stores_nothing_from_a_past_epoch,
    a_batch_holding_a_conversations_past_and_current_epoch_stores_only_the_current,
    two_nodes_writing_to_the_same_conversations_in_opposite_orders_lose_nothing,
);
