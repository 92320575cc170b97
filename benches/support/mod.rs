//! What the benchmarks share: a throw-away store on either backend.

use confidant::settings::{self, DatabaseUrl};
use confidant::storage::{Location, Storage, Store};
use sqlx::Connection;

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

fn pg_url() -> String {
    std::env::var("CONFIDANT_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A migrated `store` on `backend` ("sqlite": a file in a temp dir; "postgres": a new database),
/// removed when the guard drops.
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
        let url = DatabaseUrl::try_from(format!("{}/{name}", pg_url())).expect("url");
        (Location::Postgres(url), Guard::Postgres(name))
    };
    let storage = Storage::connect(store, &location, &settings.database).await.expect("connect");
    storage.migrate().await.expect("migrate");
    (storage, guard)
}
