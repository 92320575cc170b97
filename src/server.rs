//! Start-up, serving and shutdown of one node. The order matters and is written down here:
//! data directory, node id, stores (migrated), Redis, TLS, actors, listener; on SIGTERM or
//! SIGINT: tell the actors (sockets close with going-away, writers flush), stop accepting and
//! let in-flight requests finish, record a clean stop, close the pools, exit 0.

use std::fs;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use actix::Actor;
use actix_web::{HttpServer, web};
use confidant_actors::{Lifecycle, ShutdownAll, ShutdownReason};

use crate::http;
use crate::node::{self, NodeIdError};
use crate::redis_link::{RedisError, RedisLink};
use crate::settings::Settings;
use crate::state::AppState;
use crate::storage::nodes::PreviousRun;
use crate::storage::{Location, Storage, StorageError, Store};
use crate::tls::{self, TlsError};

/// The version recorded in the `nodes` table and logs.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Why the node could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data directory cannot be created or used.
    #[error("cannot use the data directory {}", path.display())]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The node id cannot be read or created.
    #[error(transparent)]
    NodeId(#[from] NodeIdError),
    /// A store cannot be reached or migrated.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// Redis is misconfigured.
    #[error(transparent)]
    Redis(#[from] RedisError),
    /// The TLS configuration is unusable.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The listen address cannot be bound (in use, or not ours).
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The HTTP server failed while running.
    #[error("the HTTP server failed")]
    Run(#[source] io::Error),
}

impl ServerError {
    /// Process exit code: 2 for configuration the operator must fix, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            ServerError::Tls(e) if e.is_configuration() => 2,
            ServerError::Redis(RedisError::Url(_)) => 2,
            _ => 1,
        }
    }
}

/// What `confidant migrate` did.
#[derive(Debug, Clone, Copy)]
pub struct MigrationReport {
    /// Migrations applied to the main store now.
    pub main: usize,
    /// Migrations applied to the audit store now.
    pub audit: usize,
}

/// `confidant migrate`: applies pending migrations to both stores.
pub async fn migrate(settings: &Settings) -> Result<MigrationReport, ServerError> {
    prepare_data_dir(&settings.data_dir)?;
    let (main, audit) = open_stores(settings).await?;
    let report = MigrationReport { main: main.migrate().await?, audit: audit.migrate().await? };
    main.close().await;
    audit.close().await;
    Ok(report)
}

/// `confidant serve`: runs the node until SIGTERM or SIGINT.
pub async fn serve(settings: Settings) -> Result<(), ServerError> {
    let settings = Arc::new(settings);
    prepare_data_dir(&settings.data_dir)?;
    let node_id = node::load_or_create(&settings.data_dir)?;

    let (storage, audit_storage) = open_stores(&settings).await?;
    for store in [&storage, &audit_storage] {
        let applied = store.migrate().await?;
        tracing::info!(backend = ?store.backend(), applied, "store ready");
    }
    match storage.record_node_start(&node_id, VERSION, now_ms()).await? {
        PreviousRun::Interrupted => tracing::warn!(%node_id, "the previous run of this node did not stop cleanly"),
        PreviousRun::None | PreviousRun::StoppedCleanly => {}
    }

    let redis = settings.redis_url.as_ref().map(RedisLink::new).transpose()?;
    let tls = tls::server_config(&settings)?;
    let lifecycle = Lifecycle::new().start();

    let state = web::Data::new(AppState {
        settings: settings.clone(),
        node_id,
        storage: storage.clone(),
        audit_storage: audit_storage.clone(),
        redis,
        lifecycle: lifecycle.clone(),
    });
    let shutdown_timeout = settings.http.shutdown_timeout();
    let server = HttpServer::new(move || http::app(state.clone()))
        .disable_signals()
        .shutdown_timeout(shutdown_timeout.as_secs())
        .bind_rustls_0_23(settings.listen, tls)
        .map_err(|source| ServerError::Bind { addr: settings.listen, source })?;
    for addr in server.addrs() {
        tracing::info!(%node_id, version = VERSION, address = %format!("https://{addr}"), "listening");
    }
    let server = server.run();
    let handle = server.handle();
    let mut running = actix_web::rt::spawn(server);

    tokio::select! {
        finished = &mut running => {
            // The server only ends by itself on an error; report it.
            return match finished {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(ServerError::Run(e)),
                Err(join) => Err(ServerError::Run(io::Error::other(join.to_string()))),
            };
        }
        signal = shutdown_signal() => tracing::info!(signal, "shutting down"),
    }

    let report = lifecycle
        .send(ShutdownAll { reason: ShutdownReason::Signal, deadline: shutdown_timeout })
        .await
        .unwrap_or_default();
    tracing::info!(components = report.completed, timed_out = report.timed_out.len(), "components stopped");
    handle.stop(true).await;
    let _ = running.await;

    if let Err(error) = storage.record_node_stop(&node_id, now_ms()).await {
        tracing::warn!(%error, "could not record the clean stop");
    }
    storage.close().await;
    audit_storage.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Connects the main and audit stores.
async fn open_stores(settings: &Settings) -> Result<(Storage, Storage), ServerError> {
    let main = Storage::connect(Store::Main, &Location::of(Store::Main, settings), &settings.database).await?;
    let audit = Storage::connect(Store::Audit, &Location::of(Store::Audit, settings), &settings.database).await?;
    Ok((main, audit))
}

/// Creates the data directory on first run, readable by this user only.
fn prepare_data_dir(path: &Path) -> Result<(), ServerError> {
    let fail = |source| ServerError::DataDir { path: path.to_owned(), source };
    if !path.exists() {
        fs::create_dir_all(path).map_err(fail)?;
        fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(fail)?;
        tracing::info!(path = %path.display(), "created the data directory");
    } else if !path.is_dir() {
        return Err(fail(io::Error::new(io::ErrorKind::NotADirectory, "not a directory")));
    } else if fs::metadata(path).map_err(fail)?.permissions().mode() & 0o077 != 0 {
        tracing::warn!(path = %path.display(), "the data directory is readable by other users; chmod 700 it");
    }
    Ok(())
}

/// Resolves on SIGTERM or SIGINT, naming the signal.
async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = tokio::signal::ctrl_c() => "SIGINT",
        },
        Err(error) => {
            tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the server");
            let _ = tokio::signal::ctrl_c().await;
            "SIGINT"
        }
    }
}

/// Milliseconds since the Unix epoch.
fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
