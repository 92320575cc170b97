//! `spawn_app()`: the real server as a child process, plus a client that trusts its
//! development certificate; and throw-away PostgreSQL databases.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::Connection;
use sqlx::postgres::PgConnection;

/// Which database backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates `mod NAME { sqlite, postgres }` running `NAME(Backend)` on each backend.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            use $crate::helpers::Backend;
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name(Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name(Backend::Postgres).await
            }
        }
    )+};
}

/// Like `on_both_backends!`, inside an actix system (for tests that start actors in-process).
#[macro_export]
macro_rules! on_both_backends_actix {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            use $crate::helpers::Backend;
            #[actix::test]
            async fn sqlite() {
                super::$name(Backend::Sqlite).await
            }
            #[actix::test]
            async fn postgres() {
                super::$name(Backend::Postgres).await
            }
        }
    )+};
}

/// The master key test servers on PostgreSQL get unless a test gives its own (base64 of 32 bytes).
pub const TEST_MASTER_KEY: &str = "dGVzdC1tYXN0ZXIta2V5LWZvci1jb25maWRhbnQtMDE=";

/// Administrative connection to the test PostgreSQL server (trust auth on the test machine).
pub fn postgres_admin_url() -> String {
    std::env::var("CONFIDANT_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A database created for one test and dropped when this value is dropped.
pub struct TestDatabase {
    pub name: String,
}

impl TestDatabase {
    pub async fn create(label: &str) -> Self {
        let name = format!("confidant_test_{}_{}", label, uuid::Uuid::new_v4().simple());
        let mut admin = admin_connection().await;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut admin).await.unwrap();
        Self { name }
    }

    pub fn url(&self) -> String {
        format!("{}/{}", postgres_admin_url(), self.name)
    }

    /// Drops the database now, terminating the server's connections: "the database went away".
    pub async fn drop_now(&self) {
        let mut admin = admin_connection().await;
        sqlx::raw_sql(drop_database_sql(&self.name)).execute(&mut admin).await.unwrap();
    }
}

/// Test database names are generated above from a UUID, never from input.
fn drop_database_sql(name: &str) -> sqlx::AssertSqlSafe<String> {
    sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
}

async fn admin_connection() -> PgConnection {
    let url = format!("{}/postgres", postgres_admin_url());
    PgConnection::connect(&url)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL must be running for these tests (scripts/test starts it): {e}"))
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        // Drop runs inside the test's runtime, which cannot be blocked on; use a thread with its own.
        let name = self.name.clone();
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let mut admin = admin_connection().await;
                sqlx::raw_sql(drop_database_sql(&name)).execute(&mut admin).await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(_))) {
            eprintln!("could not drop test database {}", self.name);
        }
    }
}

/// In-process tests: the main store (through the keyring) and the audit store, migrated, with a keyring (a fixed test master
/// key) and a started audit writer. SQLite lives in the settings' data directory; PostgreSQL
/// gets two fresh databases named after `label`, dropped with the returned pair.
pub struct InProcess {
    pub audit_storage: confidant::storage::Storage,
    pub keyring: Arc<confidant::crypto::Keyring>,
    pub node: confidant_actors::ids::NodeId,
    pub writer: actix::Addr<confidant_actors::audit::AuditWriter>,
    /// Records through `writer` on `node`'s chain.
    pub auditor: confidant::auditor::Auditor,
    /// Pushes through an in-process hub.
    pub pusher: confidant::push::Pusher,
    pub databases: Option<(TestDatabase, TestDatabase)>,
}

pub async fn in_process(backend: Backend, settings: &confidant::settings::Settings, label: &str) -> InProcess {
    use actix::Actor;
    use confidant::storage::{Location, Storage, Store};
    let (main, audit, databases) = match backend {
        Backend::Sqlite => (Location::of(Store::Main, settings), Location::of(Store::Audit, settings), None),
        Backend::Postgres => {
            let (m, a) = (TestDatabase::create(label).await, TestDatabase::create(&format!("{label}_audit")).await);
            let url =
                |db: &TestDatabase| Location::Postgres(confidant::settings::DatabaseUrl::try_from(db.url()).unwrap());
            (url(&m), url(&a), Some((m, a)))
        }
    };
    let storage = Storage::connect(Store::Main, &main, &settings.database).await.unwrap();
    let audit_storage = Storage::connect(Store::Audit, &audit, &settings.database).await.unwrap();
    storage.migrate().await.unwrap();
    audit_storage.migrate().await.unwrap();
    let master = confidant::crypto::MasterKey::from_key(confidant::crypto::KeyBytes::from_slice(&[7; 32]).unwrap());
    let keyring = Arc::new(confidant::crypto::Keyring::open(storage.clone(), master).await.unwrap());
    let node = confidant_actors::ids::NodeId::generate();
    let sink = Arc::new(confidant::audit::AuditStore::new(audit_storage.clone(), node));
    let writer =
        confidant_actors::audit::AuditWriter::new(node, sink, confidant_actors::audit::WriterLimits::default()).start();
    let auditor = confidant::auditor::Auditor::new(node, writer.clone());
    let broker = Arc::new(confidant_actors::hub::LocalBroker::default());
    let hub = confidant_actors::hub::Hub::new(broker.clone()).start();
    broker.attach(hub.clone().recipient());
    let pusher = confidant::push::Pusher::new(hub);
    InProcess { audit_storage, keyring, node, writer, auditor, pusher, databases }
}

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub address: SocketAddr,
    pub client: reqwest::Client,
    pub data_dir: tempfile::TempDir,
    pub main_db: Option<TestDatabase>,
    pub audit_db: Option<TestDatabase>,
    child: Option<Child>,
    logs: Arc<Mutex<Vec<String>>>,
}

/// Options for [`spawn_app_with`].
#[derive(Default)]
pub struct Options<'a> {
    /// Extra `CONFIDANT_*` variables.
    pub env: Vec<(&'a str, String)>,
    /// Reuse this data directory (a restart) instead of a fresh one.
    pub data_dir: Option<tempfile::TempDir>,
    /// Reuse these databases (a restart).
    pub databases: Option<(TestDatabase, TestDatabase)>,
    /// Share another node's databases (main, audit URLs), owned by that node's `TestApp`.
    pub shared_databases: Option<(String, String)>,
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, Options::default()).await
}

pub async fn spawn_app_with(backend: Backend, options: Options<'_>) -> TestApp {
    let data_dir = options.data_dir.unwrap_or_else(|| tempfile::tempdir().unwrap());
    let databases = match (backend, options.databases) {
        (Backend::Postgres, None) if options.shared_databases.is_some() => None,
        (Backend::Postgres, None) => Some((TestDatabase::create("main").await, TestDatabase::create("audit").await)),
        (_, reused) => reused,
    };
    let mut command = server_command(data_dir.path());
    command.arg("serve");
    if let Some((main, audit)) = &databases {
        command.env("CONFIDANT_DATABASE_URL", main.url()).env("CONFIDANT_AUDIT_DATABASE_URL", audit.url());
    }
    if let Some((main, audit)) = &options.shared_databases {
        command.env("CONFIDANT_DATABASE_URL", main).env("CONFIDANT_AUDIT_DATABASE_URL", audit);
    }
    if backend == Backend::Postgres && !options.env.iter().any(|(k, _)| *k == "CONFIDANT_MASTER_KEY") {
        command.env("CONFIDANT_MASTER_KEY", TEST_MASTER_KEY);
    }
    for (key, value) in &options.env {
        command.env(key, value);
    }
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let (logs, lines) = collect_output(&mut child);

    let address = wait_for_listening(&lines, &mut child, &logs);
    let served_cert = options.env.iter().find(|(k, _)| *k == "CONFIDANT_TLS_CERT").map(|(_, v)| PathBuf::from(v));
    let client = client_trusting(&served_cert.unwrap_or_else(|| data_dir.path().join("tls/dev-cert.pem")));
    let (main_db, audit_db) = databases.map_or((None, None), |(m, a)| (Some(m), Some(a)));
    TestApp { address, client, data_dir, main_db, audit_db, child: Some(child), logs }
}

/// The binary with a clean `CONFIDANT_*` environment: JSON logs, an ephemeral port.
pub fn server_command(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_confidant"));
    for (key, _) in std::env::vars() {
        if key.starts_with("CONFIDANT_") || key == "RUST_LOG" {
            command.env_remove(key);
        }
    }
    command
        .env("CONFIDANT_DATA_DIR", data_dir)
        .env("CONFIDANT_LISTEN", "127.0.0.1:0")
        .env("CONFIDANT_LOG__FORMAT", "json")
        .env("CONFIDANT_HTTP__SHUTDOWN_TIMEOUT_SECS", "5");
    command
}

/// Reads the child's stdout and stderr into a shared log and a line channel.
fn collect_output(child: &mut Child) -> (Arc<Mutex<Vec<String>>>, Receiver<String>) {
    let logs = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = channel();
    let stdout = child.stdout.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
    let stderr = child.stderr.take().map(|s| Box::new(s) as Box<dyn std::io::Read + Send>);
    for stream in [stdout, stderr].into_iter().flatten() {
        let (logs, tx) = (logs.clone(), tx.clone());
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if std::env::var_os("TEST_LOG").is_some() {
                    eprintln!("{line}");
                }
                logs.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
    }
    (logs, rx)
}

fn wait_for_listening(lines: &Receiver<String>, child: &mut Child, logs: &Mutex<Vec<String>>) -> SocketAddr {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let event = lines.recv_timeout(Duration::from_millis(100)).ok().and_then(|line| parse_json(&line));
        if let Some(event) = event.filter(|e| e["message"] == "listening") {
            let url = event["address"].as_str().unwrap();
            return url.trim_start_matches("https://").parse().unwrap();
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("server exited with {status} before listening:\n{}", logs.lock().unwrap().join("\n"));
        }
    }
    panic!("server did not start listening within 60 s:\n{}", logs.lock().unwrap().join("\n"));
}

fn parse_json(line: &str) -> Option<serde_json::Value> {
    serde_json::from_str(line).ok()
}

/// An HTTPS client that trusts exactly the given certificate and nothing else.
pub fn client_trusting(cert: &Path) -> reqwest::Client {
    client_builder(cert).build().unwrap()
}

/// Like [`client_trusting`], connecting from `source` (another loopback address, 127.0.0.2...),
/// so the server sees another source address.
pub fn client_from(cert: &Path, source: std::net::IpAddr) -> reqwest::Client {
    client_builder(cert).local_address(source).build().unwrap()
}

fn client_builder(cert: &Path) -> reqwest::ClientBuilder {
    let pem = std::fs::read(cert).unwrap();
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .https_only(true)
        .timeout(Duration::from_secs(30))
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("https://{}{}", self.address, path)
    }

    pub fn dev_cert(&self) -> PathBuf {
        self.data_dir.path().join("tls/dev-cert.pem")
    }

    /// Everything the server has printed so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// Fails, quoting each line that holds `phrase`, when the server has printed it: a test that
    /// finds a secret in the logs says where, so a failure on CI can be traced to its source.
    pub fn assert_logs_free_of(&self, phrase: &str) {
        let lines: Vec<String> = self.logs().into_iter().filter(|line| line.contains(phrase)).collect();
        assert!(lines.is_empty(), "the logs hold {phrase:?} in {} line(s):\n{}", lines.len(), lines.join("\n"));
    }

    /// Sends `signal` (e.g. "TERM", "KILL") and waits for the process to exit.
    pub fn stop_with(&mut self, signal: &str) -> ExitStatus {
        // Close our pooled keep-alive connections first, as a departing client would; the server
        // otherwise waits for them until its shutdown timeout.
        self.client = reqwest::Client::new();
        self.signal(signal);
        self.wait_for_exit()
    }

    /// Sends `signal` and returns at once.
    pub fn signal(&self, signal: &str) {
        let child = self.child.as_ref().expect("server already stopped");
        let sent = Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()).status().unwrap();
        assert!(sent.success(), "kill -{signal} failed");
    }

    /// Waits (up to 20 s) for the process to exit.
    pub fn wait_for_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("server already stopped");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not exit within 20 s of the signal");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (SIGTERM) and hands back its data directory and databases for a restart.
    pub fn into_parts_after(mut self, signal: &str) -> (ExitStatus, Options<'static>) {
        let status = self.stop_with(signal);
        (status, self.into_parts())
    }

    /// Hands back the data directory and databases of a server that has exited, for a restart.
    pub fn into_parts(mut self) -> Options<'static> {
        assert!(self.child.is_none(), "the server is still running");
        let data_dir = std::mem::replace(&mut self.data_dir, tempfile::tempdir().unwrap());
        let databases = self.main_db.take().zip(self.audit_db.take());
        Options { env: vec![], data_dir: Some(data_dir), databases, shared_databases: None }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if self.child.is_some() {
            let _ = self.stop_with("TERM");
        }
    }
}

/// Runs the binary to completion (for commands that exit by themselves) and returns its exit
/// code and combined output.
pub fn run_to_exit(mut command: Command) -> (Option<i32>, String) {
    let output = command.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.code(), text)
}

impl TestApp {
    /// `confidant ARGS` against this server's stores and master key, with `stdin` as input.
    pub fn cli(&self, args: &[&str], stdin: &str) -> (Option<i32>, String) {
        self.cli_at(self.data_dir.path(), args, stdin)
    }

    /// `confidant ARGS` against this server's stores, in another node's data directory.
    pub fn cli_in(&self, data_dir: &Path, args: &[&str]) -> (Option<i32>, String) {
        self.cli_at(data_dir, args, "")
    }

    fn cli_at(&self, data_dir: &Path, args: &[&str], stdin: &str) -> (Option<i32>, String) {
        use std::io::Write;
        let mut command = server_command(data_dir);
        command.args(args);
        if let (Some(main), Some(audit)) = (&self.main_db, &self.audit_db) {
            command
                .env("CONFIDANT_DATABASE_URL", main.url())
                .env("CONFIDANT_AUDIT_DATABASE_URL", audit.url())
                .env("CONFIDANT_MASTER_KEY", TEST_MASTER_KEY);
        }
        let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
        let output = child.wait_with_output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        (output.status.code(), text)
    }

    /// Every audit entry so far, as `confidant audit export` writes them (JSON lines).
    pub fn audit_entries(&self) -> Vec<serde_json::Value> {
        let (code, output) = self.cli(&["audit", "export", "--since", "2000-01-01", "--until", "2100-01-01"], "");
        assert_eq!(code, Some(0), "{output}");
        output
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v.get("action").is_some() && v.get("hash").is_some())
            .collect()
    }
}

/// The python of scripts/python-tools' virtual environment (the audit document's verifier, the
/// FHIR validator), installed on first use.
pub fn python_tools() -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new(format!("{root}/scripts/python-tools")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}
