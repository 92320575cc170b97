//! What the benchmarks share: a throw-away store on either backend, and a server process.
#![allow(dead_code)] // each benchmark uses part of it

pub mod browser;
pub mod node;

use confidant::settings::{self, DatabaseUrl};
use confidant::storage::{Location, Storage, Store};
use sqlx::Connection;

/// A bare comparison server: this benchmark's own executable started again with `args` on
/// core 0 (where Confidant runs), ready once it has written its port to `dir/port`, using the
/// certificate it made in `dir/tls`. Killed when dropped.
pub struct BareServer {
    pub child: std::process::Child,
    pub port: u16,
    pub cert: std::path::PathBuf,
}

impl BareServer {
    pub fn start(dir: &std::path::Path, args: &[&str]) -> Self {
        use std::time::{Duration, Instant};
        let port_file = dir.join("port");
        let exe = std::env::current_exe().expect("own executable").display().to_string();
        let child = std::process::Command::new("taskset")
            .args(["-c", "0", &exe])
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("bare server");
        let deadline = Instant::now() + Duration::from_secs(20);
        while !port_file.exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let port = std::fs::read_to_string(&port_file).expect("port").trim().parse().expect("port number");
        Self { child, port, cert: dir.join("tls/dev-cert.pem") }
    }
}

impl Drop for BareServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Drops the PostgreSQL database (or the temp dir) when the benchmark ends.
pub enum Guard {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Postgres(String),
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Guard::Postgres(name) = self {
            let name = name.clone();
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                rt.block_on(async move {
                    let mut admin =
                        sqlx::PgConnection::connect(&format!("{}/postgres", pg_url())).await.expect("admin");
                    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                        .execute(&mut admin)
                        .await;
                });
            })
            .join();
        }
    }
}

/// The PostgreSQL server the benchmarks use (as the tests do), without a database name.
pub fn pg_url() -> String {
    std::env::var("CONFIDANT_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// Runs one administrative statement (CREATE or DROP DATABASE) on the PostgreSQL server.
pub async fn pg_admin(sql: &str) {
    let mut admin = sqlx::PgConnection::connect(&format!("{}/postgres", pg_url())).await.expect("PostgreSQL must run");
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut admin).await.expect("admin statement");
}

/// Fresh main and audit databases for Confidant server processes, named `<prefix>_...`, and the
/// environment that points a server at them (through PostgreSQL's Unix socket in `socket_dir`
/// when given, else over TCP). Drop them with [`pg_admin`] when done.
pub async fn server_databases(prefix: &str, socket_dir: Option<&str>) -> (Vec<(&'static str, String)>, [String; 2]) {
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let (main, audit) = (format!("{prefix}_{suffix}"), format!("{prefix}_audit_{suffix}"));
    pg_admin(&format!("CREATE DATABASE {main}")).await;
    pg_admin(&format!("CREATE DATABASE {audit}")).await;
    if let Ok(setting) = std::env::var("BENCH_PG_SET") {
        pg_admin(&format!("ALTER DATABASE {main} SET {setting}")).await;
        pg_admin(&format!("ALTER DATABASE {audit} SET {setting}")).await;
    }
    let (url, via) = (pg_url(), socket_dir.map(|dir| format!("?host={dir}")).unwrap_or_default());
    let env = vec![
        ("CONFIDANT_DATABASE_URL", format!("{url}/{main}{via}")),
        ("CONFIDANT_AUDIT_DATABASE_URL", format!("{url}/{audit}{via}")),
        ("CONFIDANT_MASTER_KEY", "YmVuY2gtbWFzdGVyLWtleS1mb3ItY29uZmlkYW50MDE=".into()),
    ];
    (env, [main, audit])
}

/// Where PostgreSQL's Unix socket lives on this machine, if it runs here.
pub fn postgres_socket_dir() -> Option<String> {
    let dir = std::env::var("CONFIDANT_BENCH_POSTGRES_SOCKET_DIR").unwrap_or_else(|_| "/var/run/postgresql".into());
    std::path::Path::new(&dir).join(".s.PGSQL.5432").exists().then_some(dir)
}

/// A migrated `store` on `backend` ("sqlite": a file in a temp dir; "postgres": a new database
/// over loopback TCP; "postgres-socket": the same over PostgreSQL's Unix socket), removed when
/// the guard drops.
pub async fn open(backend: &str, store: Store) -> (Storage, Guard) {
    let dir = tempfile::tempdir().expect("tempdir");
    let settings = settings::load_from(None, [("CONFIDANT_DATA_DIR".to_owned(), dir.path().display().to_string())])
        .expect("settings");
    let (location, guard) = if backend == "sqlite" {
        (Location::of(store, &settings), Guard::Dir(dir))
    } else {
        let name = format!("confidant_bench_{}", uuid::Uuid::new_v4().simple());
        let mut admin =
            sqlx::PgConnection::connect(&format!("{}/postgres", pg_url())).await.expect("PostgreSQL must run");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut admin)
            .await
            .expect("create");
        let mut url = format!("{}/{name}", pg_url());
        if backend == "postgres-socket" {
            url = format!("{url}?host={}", postgres_socket_dir().expect("PostgreSQL's Unix socket"));
        }
        let url = DatabaseUrl::try_from(url).expect("url");
        (Location::Postgres(url), Guard::Postgres(name))
    };
    let storage = Storage::connect(store, &location, &settings.database).await.expect("connect");
    storage.migrate().await.expect("migrate");
    (storage, guard)
}
