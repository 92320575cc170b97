//! Start-up, serving and shutdown of one node, and `confidant migrate`. The order matters and is written down here:
//! data directory, node id, stores (migrated), Redis, TLS, actors, listener; on SIGTERM or
//! SIGINT: tell the actors (sockets close with going-away, writers flush), stop accepting and
//! let in-flight requests finish, record a clean stop, close the pools, exit 0.

use std::fs;
use std::io;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use actix_web::{HttpServer, web};
use confidant_actors::audit::{
    Action, AuditActor, AuditError, AuditEvent, AuditWriter, Outcome, ReasonCode, ResourceType, WriterLimits, record,
};
use confidant_actors::clock::now_ms;
use confidant_actors::{Lifecycle, Register, ShutdownAll, ShutdownReason};

use crate::audit::AuditStore;
use crate::audit::checkpoint::{CheckpointLog, load_or_create_signing_key};

use confidant_actors::clock::{Clock, SystemClock};
use confidant_actors::hub::{FromBroker, Hub, LocalBroker};

use crate::access::{Access, BreakGlass, CareTeam};
use crate::crypto::master::{self, MasterKeySource};
use crate::crypto::rotation::Reencryptor;
use crate::crypto::{KeyError, Keyring};
use crate::fanout::RedisBroker;
use crate::http;
use crate::identity::Identity;
use crate::identity::password::PasswordHasher;
use crate::node::{self, NodeIdError};
use crate::patients::Patients;
use crate::redis_link::{RedisError, RedisLink};
use crate::settings::Settings;
use crate::state::AppState;
use crate::storage::nodes::PreviousRun;
use crate::storage::{Location, Storage, StorageError, Store};
use crate::tls::{self, TlsError};

/// The version recorded in the `nodes` table and logs.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How often each store's write-ahead log is copied back in the background (SQLite; see
/// `Storage::start_wal_checkpoints`).
const WAL_CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

/// How long start-up and shutdown wait for their audit events to be durable.
pub(crate) const AUDIT_ACK_TIMEOUT: Duration = Duration::from_secs(5);

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
    /// The audit trail cannot record the start, so the node must not serve.
    #[error("cannot write to the audit trail")]
    Audit(#[from] AuditError),
    /// The field-encryption keyring cannot be opened (no, malformed or wrong master key).
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// An account operation was refused or failed.
    #[error(transparent)]
    Auth(#[from] crate::identity::AuthError),
    /// The audit signing key cannot be read or created.
    #[error("cannot use the audit signing key")]
    AuditKey(#[source] io::Error),
    /// The checkpoint files cannot be read.
    #[error("cannot read the audit checkpoint files")]
    Checkpoints(#[source] io::Error),
    /// A command's output could not be written.
    #[error("cannot write the output")]
    Output(#[source] io::Error),
    /// A purge would remove entries younger than the retention period.
    #[error(
        "refused: audit entries younger than {years} years are kept (audit.retention_years); choose an earlier --before"
    )]
    Retention {
        /// The configured retention.
        years: u16,
    },
    /// A command was given arguments it cannot use.
    #[error("{0}")]
    Usage(&'static str),
    /// Reminders cannot be set up (an SMTP, template or DKIM setting is unusable).
    #[error(transparent)]
    Reminders(#[from] crate::reminders::ReminderError),
    /// SIGTERM/SIGINT handlers cannot be installed, so the node could not stop gracefully.
    #[error("cannot install signal handlers")]
    Signals(#[source] io::Error),
    /// The HTTP server failed while running.
    #[error("the HTTP server failed")]
    Run(#[source] io::Error),
}

impl ServerError {
    /// Process exit code: 2 for configuration the operator must fix, 1 for everything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            ServerError::Tls(e) if e.is_configuration() => 2,
            ServerError::Keys(e) if e.is_configuration() => 2,
            ServerError::Auth(crate::identity::AuthError::Policy(_) | crate::identity::AuthError::Conflict(_)) => 2,
            ServerError::Redis(RedisError::Url(_)) | ServerError::Usage(_) | ServerError::Retention { .. } => 2,
            ServerError::Reminders(crate::reminders::ReminderError::Configuration(_)) => 2,
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
    let mut signals = ShutdownSignals::install()?;
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

    let lifecycle = Lifecycle::new().start();
    let signing_key = load_or_create_signing_key(&settings.audit_signing_key_file()).map_err(ServerError::AuditKey)?;
    let audit_store = AuditStore::new(audit_storage.clone(), node_id).with_checkpoints(
        signing_key,
        CheckpointLog::new(settings.audit_checkpoint_dir()),
        settings.audit.checkpoint_every_entries,
    );
    let limits = WriterLimits {
        checkpoint_every: Duration::from_secs(settings.audit.checkpoint_every_secs),
        ..WriterLimits::default()
    };
    let audit = AuditWriter::new(node_id, Arc::new(audit_store), limits).start();
    let registered = lifecycle.send(Register { component: "audit_writer", recipient: audit.clone().recipient() }).await;
    debug_assert!(matches!(registered, Ok(Ok(()))), "nothing can stop the lifecycle actor during start-up");
    let server_event = |action, outcome| {
        AuditEvent::new(node_id, AuditActor::System, action, outcome).on(ResourceType::Server, Some(*node_id.as_uuid()))
    };

    let keyring = match open_keyring(&settings, &storage).await {
        Ok(keyring) => Arc::new(keyring),
        Err(error) => {
            if error.is_configuration() {
                let event = server_event(Action::ConfigurationError, Outcome::Error).because(reason("master_key"));
                if let Err(audit_error) = record(&audit, event, AUDIT_ACK_TIMEOUT).await {
                    tracing::error!(%audit_error, "could not audit the configuration error");
                }
            }
            return Err(error.into());
        }
    };
    let reencryptor = Reencryptor::new(keyring.clone(), audit.clone(), node_id, settings.keys.clone()).start();
    let registered = lifecycle.send(Register { component: "reencryptor", recipient: reencryptor.recipient() }).await;
    debug_assert!(matches!(registered, Ok(Ok(()))), "nothing can stop the lifecycle actor during start-up");

    let redis = settings.redis_url.as_ref().map(RedisLink::new).transpose()?;
    let tls = match tls::server_config(&settings) {
        Ok(tls) => tls,
        Err(error) => {
            if error.is_configuration() {
                let event =
                    server_event(Action::ConfigurationError, Outcome::Error).because(reason("tls_configuration"));
                if let Err(audit_error) = record(&audit, event, AUDIT_ACK_TIMEOUT).await {
                    tracing::error!(%audit_error, "could not audit the configuration error");
                }
            }
            return Err(error.into());
        }
    };

    let hub = match &settings.redis_url {
        Some(url) => {
            let broker = Arc::new(RedisBroker::new(url, settings.hub.redis_channel.clone()).map_err(RedisError::Url)?);
            let hub = Hub::new(broker.clone()).start();
            broker.subscribe(hub.clone());
            hub
        }
        None => {
            let broker = Arc::new(LocalBroker::default());
            let hub = Hub::new(broker.clone()).start();
            broker.attach(hub.clone().recipient::<FromBroker>());
            hub
        }
    };
    let registered = lifecycle.send(Register { component: "hub", recipient: hub.clone().recipient() }).await;
    debug_assert!(matches!(registered, Ok(Ok(()))), "nothing can stop the lifecycle actor during start-up");
    let services = Services::new(&settings, keyring.clone(), audit.clone(), node_id, Arc::new(SystemClock));
    // Make the dummy hash now, so the first sign-in for an unknown account costs what any does.
    let hasher = services.identity.hasher.clone();
    actix_web::rt::spawn(async move {
        let _ = hasher.verify_or_dummy("warm-up", None).await;
    });
    crate::ws::sweep::start(services.identity.sessions.clone(), hub.clone(), services.identity.clock.clone());
    storage.start_wal_checkpoints(WAL_CHECKPOINT_EVERY);
    audit_storage.start_wal_checkpoints(WAL_CHECKPOINT_EVERY);
    crate::messaging::start_purge(
        services.conversations.clone(),
        std::time::Duration::from_secs(settings.messaging.retention_secs),
        services.identity.clock.clone(),
    );
    if let Some(scheduler) = start_reminders(&settings, &services, audit.clone(), node_id)? {
        let registered =
            lifecycle.send(Register { component: "reminder_scheduler", recipient: scheduler.recipient() }).await;
        debug_assert!(matches!(registered, Ok(Ok(()))), "nothing can stop the lifecycle actor during start-up");
    }
    let state = web::Data::new(AppState {
        settings: settings.clone(),
        node_id,
        storage: storage.clone(),
        audit_storage: audit_storage.clone(),
        keyring,
        identity: services.identity,
        access: services.access,
        patients: services.patients,
        care_team: services.care_team,
        break_glass: services.break_glass,
        schedule: services.schedule,
        intake: services.intake,
        devices: services.devices,
        conversations: services.conversations,
        claims: Arc::new(crate::messaging::ClaimLimiter::default()),
        outbox: services.outbox,
        reminder_preferences: services.reminder_preferences,
        hub: hub.clone(),
        unauthenticated: Default::default(),
        redis,
        lifecycle: lifecycle.clone(),
        audit: audit.clone(),
        readiness: Default::default(),
    });
    let shutdown_timeout = settings.http.shutdown_timeout();
    // Live pushes are small frames written one after another: with Nagle's algorithm each waits
    // for the client's delayed ACK of the one before (~40 ms on Linux), which was the
    // messaging fan-out's p99.
    let server = HttpServer::new(move || http::app(state.clone()))
        .tcp_nodelay(true)
        .disable_signals()
        .shutdown_timeout(shutdown_timeout.as_secs())
        .bind_rustls_0_23(settings.listen, tls)
        .map_err(|source| ServerError::Bind { addr: settings.listen, source })?;
    record(&audit, server_event(Action::ServerStart, Outcome::Success), AUDIT_ACK_TIMEOUT).await?;
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
        signal = signals.recv() => tracing::info!(signal, "shutting down"),
    }

    if let Err(error) = record(&audit, server_event(Action::ServerStop, Outcome::Success), AUDIT_ACK_TIMEOUT).await {
        tracing::error!(%error, "could not audit the stop");
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

/// The request-serving layers over the main store, built once per node.
pub struct Services {
    /// Accounts, sign-in and sessions.
    pub identity: Identity,
    /// The authorization decision.
    pub access: Access,
    /// Patient records.
    pub patients: Patients,
    /// Care teams.
    pub care_team: CareTeam,
    /// Break-glass grants.
    pub break_glass: BreakGlass,
    /// Appointments.
    pub schedule: crate::schedule::Schedule,
    /// Intake and screening forms.
    pub intake: crate::intake::Intake,
    /// Messaging devices and their KeyPackages.
    pub devices: crate::messaging::Devices,
    /// End-to-end encrypted conversations.
    pub conversations: crate::messaging::Conversations,
    /// The reminder outbox.
    pub outbox: crate::reminders::Outbox,
    /// Patients' reminder preferences and OpenPGP keys.
    pub reminder_preferences: crate::reminders::PreferenceStore,
}

impl Services {
    /// Builds them over `keyring`'s store with `clock` (the system clock, or a test's).
    pub fn new(
        settings: &Settings,
        keyring: Arc<Keyring>,
        audit: actix::Addr<AuditWriter>,
        node_id: node::NodeId,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let storage = keyring.storage().clone();
        let hasher = PasswordHasher::new(settings.identity.password_hashing_concurrency);
        let identity =
            Identity::new(keyring.clone(), hasher, clock.clone(), &settings.identity, audit.clone(), node_id);
        let care_team = CareTeam::new(storage.clone());
        let break_glass = BreakGlass::new(storage.clone(), keyring.clone());
        let access = Access::new(care_team.clone(), break_glass.clone(), clock, settings.identity.patient_mfa);
        let devices = crate::messaging::Devices::new(storage.clone());
        Self {
            identity,
            access,
            patients: Patients::new(storage.clone(), keyring.clone()),
            care_team,
            break_glass,
            schedule: crate::schedule::Schedule::new(storage.clone(), settings.reminders.lead_minutes.clone()),
            outbox: crate::reminders::Outbox::new(storage.clone()),
            reminder_preferences: crate::reminders::PreferenceStore::new(
                keyring.clone(),
                settings.reminders.lead_minutes.clone(),
            ),
            devices: devices.clone(),
            conversations: crate::messaging::Conversations::new(storage, devices, audit),
            intake: crate::intake::Intake::new(keyring),
        }
    }
}

/// Starts the mailer and the reminder scheduler when `smtp_url` is set (without it reminders
/// are queued and wait). Every setting they need is checked here, before the node serves.
pub fn start_reminders(
    settings: &Settings,
    services: &Services,
    audit: actix::Addr<AuditWriter>,
    node_id: node::NodeId,
) -> Result<Option<actix::Addr<crate::reminders::scheduler::ReminderScheduler>>, ServerError> {
    use crate::reminders::content::Templates;
    use crate::reminders::mailer::Mailer;
    use crate::reminders::scheduler::{ReminderScheduler, SchedulerDeps};
    let templates = Arc::new(Templates::new(&settings.reminders)?);
    let Some(url) = &settings.smtp_url else {
        tracing::info!("smtp_url is not set: reminders are queued but not sent");
        return Ok(None);
    };
    let mailer = Mailer::new(url, &settings.reminders)?.start();
    let deps = SchedulerDeps {
        outbox: services.outbox.clone(),
        preferences: services.reminder_preferences.clone(),
        schedule: services.schedule.clone(),
        patients: services.patients.clone(),
        accounts: services.identity.accounts.clone(),
        templates,
        mailer,
        audit,
        node_id,
        clock: services.identity.clock.clone(),
        settings: settings.reminders.clone(),
    };
    tracing::info!(implicit_tls = url.implicit_tls, port = url.port(), "reminders are sent over TLS");
    Ok(Some(ReminderScheduler::new(deps).start()))
}

/// Finds the master key and opens the keyring of the main store.
pub(crate) async fn open_keyring(settings: &Settings, storage: &Storage) -> Result<Keyring, KeyError> {
    let (master_key, source) = master::locate(settings)?;
    match &source {
        MasterKeySource::Generated(path) => tracing::warn!(
            path = %path.display(),
            fingerprint = master_key.fingerprint(),
            "generated a master key for field encryption: back it up apart from the database (without it the PHI is unreadable), and set CONFIDANT_MASTER_KEY in production"
        ),
        MasterKeySource::File(path) => {
            tracing::info!(path = %path.display(), fingerprint = master_key.fingerprint(), "master key loaded")
        }
        MasterKeySource::Setting => tracing::info!(fingerprint = master_key.fingerprint(), "master key loaded"),
    }
    Keyring::open(storage.clone(), master_key).await
}

/// Connects the main and audit stores.
pub(crate) async fn open_stores(settings: &Settings) -> Result<(Storage, Storage), ServerError> {
    let main = Storage::connect(Store::Main, &Location::of(Store::Main, settings), &settings.database).await?;
    let audit = Storage::connect(Store::Audit, &Location::of(Store::Audit, settings), &settings.database).await?;
    Ok((main, audit))
}

/// Creates the data directory on first run, readable by this user only.
pub(crate) fn prepare_data_dir(path: &Path) -> Result<(), ServerError> {
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

/// SIGTERM and SIGINT listeners, installed at the very start of `serve` so a signal arriving
/// during start-up is not lost (or fatal): it is acted on as soon as the node is serving.
struct ShutdownSignals {
    terminate: tokio::signal::unix::Signal,
    interrupt: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> Result<Self, ServerError> {
        use tokio::signal::unix::{SignalKind, signal};
        let fail = |source| ServerError::Signals(source);
        Ok(Self {
            terminate: signal(SignalKind::terminate()).map_err(fail)?,
            interrupt: signal(SignalKind::interrupt()).map_err(fail)?,
        })
    }

    /// Resolves on SIGTERM or SIGINT, naming the signal.
    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.terminate.recv() => "SIGTERM",
            _ = self.interrupt.recv() => "SIGINT",
        }
    }
}

/// A reason code written as a literal in this crate; all are valid.
pub(crate) fn reason(code: &'static str) -> ReasonCode {
    ReasonCode::new(code).unwrap_or_else(|| unreachable!("invalid reason code literal {code}"))
}
