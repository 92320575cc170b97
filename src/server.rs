//! Start-up, serving and shutdown of one node, and `confidant migrate`. The order matters and is
//! written down here: data directory, node id, stores (migrated), Redis, TLS, actors, listener,
//! certificate renewal (development or ACME); on SIGTERM or SIGINT: audit the stop, close every
//! socket with going-away (and any opened meanwhile), stop accepting and let in-flight requests
//! finish with every component still running (their audit records and pushes included), then
//! tell the other components (writers flush, the audit chain is sealed), record a clean stop,
//! close the pools, exit 0.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use actix::Actor;
use actix_web::{HttpServer, web};
use confidant_actors::audit::{Action, AuditWriter, Outcome, ResourceType, WriterLimits};
use confidant_actors::clock::{SystemClock, now_ms};
use confidant_actors::hub::{FromBroker, Hub, LocalBroker};
use confidant_actors::{Lifecycle, Register, Shutdown, ShutdownAll, ShutdownReason};

use crate::audit::checkpoint::{CheckpointLog, load_or_create_signing_key};
use crate::audit::status::AuditStatus;
use crate::audit::{AuditStore, Witnesses};
use crate::auditor::{Auditor, reason};
use crate::crypto::rotation::Reencryptor;
use crate::fanout::RedisBroker;
use crate::health::Readiness;
use crate::push::Pusher;
use crate::redis_link::{RedisError, RedisLink};
use crate::services::Services;
use crate::settings::Settings;
use crate::startup::{ServerError, open_keyring, open_stores, prepare_data_dir};
use crate::state::AppState;
use crate::storage::nodes::PreviousRun;
use crate::{http, node, tls, web as shared, ws};

/// The version recorded in the `nodes` table and logs.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// How often each store's write-ahead log is copied back in the background (SQLite; see
/// `Storage::start_wal_checkpoints`).
const WAL_CHECKPOINT_EVERY: Duration = Duration::from_millis(50);

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
    let witnesses = Witnesses::new(settings.audit.witness_dirs.iter().cloned(), Some(storage.clone()));
    let audit_store = AuditStore::new(audit_storage.clone(), node_id)
        .with_checkpoints(
            signing_key.clone(),
            CheckpointLog::new(settings.audit_checkpoint_dir()),
            settings.audit.checkpoint_every_entries,
        )
        .witnessed_by(witnesses.clone());
    // Every verifier, on any node, finds this node's key (unless the operator pinned keys).
    audit_store.register_key(signing_key.verifying_key().as_bytes()).await?;
    let limits = WriterLimits {
        checkpoint_every: Duration::from_secs(settings.audit.checkpoint_every_secs),
        ..WriterLimits::default()
    };
    let audit = AuditWriter::new(node_id, Arc::new(audit_store), limits).start();
    let registered = lifecycle.send(Register { component: "audit_writer", recipient: audit.clone().recipient() }).await;
    debug_assert!(matches!(registered, Ok(Ok(()))), "nothing can stop the lifecycle actor during start-up");
    let auditor = Auditor::new(node_id, audit.clone());
    let server_event =
        |action, outcome| auditor.system(action, outcome).on(ResourceType::Server, Some(*node_id.as_uuid()));

    let keyring = match open_keyring(&settings, &storage).await {
        Ok(keyring) => Arc::new(keyring),
        Err(error) => {
            if error.is_configuration() {
                let event = server_event(Action::ConfigurationError, Outcome::Error).because(reason("master_key"));
                if auditor.record(event).await.is_err() {
                    tracing::error!("could not audit the configuration error");
                }
            }
            return Err(error.into());
        }
    };
    let reencryptor = Reencryptor::new(keyring.clone(), auditor.clone(), settings.keys.clone()).start();
    let registered = lifecycle.send(Register { component: "reencryptor", recipient: reencryptor.recipient() }).await;
    debug_assert!(matches!(registered, Ok(Ok(()))), "nothing can stop the lifecycle actor during start-up");

    let redis = settings.redis_url.as_ref().map(RedisLink::new).transpose()?;
    let tls = match tls::ListenerTls::prepare(&settings, Arc::new(SystemClock)) {
        Ok(tls) => tls,
        Err(error) => {
            if error.is_configuration() {
                let event =
                    server_event(Action::ConfigurationError, Outcome::Error).because(reason("tls_configuration"));
                if auditor.record(event).await.is_err() {
                    tracing::error!("could not audit the configuration error");
                }
            }
            return Err(error.into());
        }
    };

    let hub = match &settings.redis_url {
        Some(url) => {
            let broker = Arc::new(RedisBroker::new(url, settings.hub.redis_channel.clone()).map_err(RedisError::Url)?);
            let hub = Hub::new(broker.clone()).start();
            broker.start(hub.clone());
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
    let pusher = Pusher::new(hub.clone());
    let services = Services::new(&settings, keyring.clone(), auditor.clone(), pusher, Arc::new(SystemClock));
    // Make the dummy hash now, so the first sign-in for an unknown account costs what any does.
    let hasher = services.identity.hasher.clone();
    actix_web::rt::spawn(async move {
        let _ = hasher.verify_or_dummy("warm-up", None).await;
    });
    ws::sweep::start(services.identity.sessions.clone(), hub.clone(), services.identity.clock.clone());
    storage.start_wal_checkpoints(WAL_CHECKPOINT_EVERY);
    audit_storage.start_wal_checkpoints(WAL_CHECKPOINT_EVERY);
    crate::messaging::start_purge(
        storage.clone(),
        std::time::Duration::from_secs(settings.messaging.retention_secs),
        services.identity.clock.clone(),
    );
    services.kept_answers.start_purge();
    if let Some(scheduler) = start_reminders(&settings, &services)? {
        let registered =
            lifecycle.send(Register { component: "reminder_scheduler", recipient: scheduler.recipient() }).await;
        debug_assert!(matches!(registered, Ok(Ok(()))), "nothing can stop the lifecycle actor during start-up");
    }
    let escalator = start_escalation(&services);
    let registered = lifecycle.send(Register { component: "alert_escalator", recipient: escalator.recipient() }).await;
    debug_assert!(matches!(registered, Ok(Ok(()))), "nothing can stop the lifecycle actor during start-up");
    if let Some(witness) = start_email_witness(&settings, &services, &audit_storage, signing_key.verifying_key()) {
        let registered = lifecycle.send(Register { component: "email_witness", recipient: witness.recipient() }).await;
        debug_assert!(matches!(registered, Ok(Ok(()))), "nothing can stop the lifecycle actor during start-up");
    }
    let mut readiness = Readiness::new(
        storage.clone(),
        audit_storage.clone(),
        redis.clone(),
        auditor.clone(),
        settings.http.readiness_timeout(),
    );
    if let Some((scheduler, status)) =
        start_backups(&settings, &services, (&storage, &audit_storage), keyring.master().fingerprint())?
    {
        let registered =
            lifecycle.send(Register { component: "backup_scheduler", recipient: scheduler.recipient() }).await;
        debug_assert!(matches!(registered, Ok(Ok(()))), "nothing can stop the lifecycle actor during start-up");
        readiness = readiness.with_backups(status);
    }
    let audit_status = AuditStatus::new(
        audit_storage.clone(),
        (settings.audit_checkpoint_dir(), node::local_chains(&settings.data_dir)),
        (settings.pinned_audit_keys(), witnesses),
        services.gate.clone(),
        services.identity.clock.clone(),
    );
    let state = web::Data::new(AppState {
        settings: settings.clone(),
        hub: hub.clone(),
        readiness,
        services,
        audit_status,
        push_records: Arc::default(),
    });
    let sockets = web::Data::new(ws::Unauthenticated::default());
    // Every route takes `http.max_body_bytes` but the attachment upload, which takes a file.
    let body_limit = shared::limits::BodyLimit::new(settings.http.max_body_bytes)
        .with_route(http::attachments::ATTACHMENT_UPLOAD, state.services.attachments.max_ciphertext_bytes());
    let hsts = settings.http.hsts_max_age_secs;
    let shutdown_timeout = settings.http.shutdown_timeout();
    // Live pushes are small frames written one after another: with Nagle's algorithm each waits
    // for the client's delayed ACK of the one before (~40 ms on Linux), which was the
    // messaging fan-out's p99.
    let server = HttpServer::new(move || {
        let (state, sockets, body_limit) = (state.clone(), sockets.clone(), body_limit.clone());
        shared::app(body_limit, hsts, http::idempotency::keep_answers, move |routes| {
            routes.app_data(state);
            http::routes(routes);
            ws::routes(routes, &sockets);
        })
    })
    .tcp_nodelay(true)
    .disable_signals()
    .shutdown_timeout(shutdown_timeout.as_secs())
    .bind_rustls_0_23(settings.listen, tls.server_config())
    .map_err(|source| ServerError::Bind { addr: settings.listen, source })?;
    auditor.record(server_event(Action::ServerStart, Outcome::Success)).await?;
    for addr in server.addrs() {
        tracing::info!(%node_id, version = VERSION, address = %format!("https://{addr}"), "listening");
    }
    let server = server.run();
    let handle = server.handle();
    let mut running = actix_web::rt::spawn(server);
    // Renewal starts once the listener accepts: ACME's validation connects to it.
    tls.keep_current();

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

    if auditor.record(server_event(Action::ServerStop, Outcome::Success)).await.is_err() {
        tracing::error!("could not audit the stop");
    }
    // Every client is told (1001) before the listener stops accepting (docs/PROTOCOL.md).
    let told = tokio::time::timeout(shutdown_timeout, hub.send(Shutdown { reason: ShutdownReason::Signal })).await;
    if !matches!(told, Ok(Ok(()))) {
        tracing::warn!("not every socket was told of the shutdown in time");
    }
    // The close frames are handed to the connections; give them a moment to reach the clients
    // before the listener goes.
    tokio::time::sleep(CLOSE_FRAMES_GRACE.min(shutdown_timeout)).await;
    // In-flight requests finish while the audit writer and the other components still run: a
    // booking that committed is answered (and audited) before the node goes.
    handle.stop(true).await;
    let _ = running.await;
    let report = lifecycle
        .send(ShutdownAll { reason: ShutdownReason::Signal, deadline: shutdown_timeout })
        .await
        .unwrap_or_default();
    tracing::info!(components = report.completed, timed_out = report.timed_out.len(), "components stopped");
    record_clean_stop(&storage, &node_id).await;
    storage.close().await;
    audit_storage.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// How long the listener keeps accepting after every socket was handed its going-away close.
const CLOSE_FRAMES_GRACE: Duration = Duration::from_millis(250);

/// Records that this node stopped cleanly, so its next start does not warn of a crash. On a
/// store opened for it ([`Storage::reopened`]): the pool's connections may belong to the HTTP
/// workers' stopped runtimes (a stop under load on PostgreSQL failed all three tries on them).
/// Retried a few times all the same: the database may be briefly busy.
async fn record_clean_stop(storage: &crate::storage::Storage, node_id: &node::NodeId) {
    for attempt in 1..=3 {
        let recorded = match storage.reopened().await {
            Ok(own) => {
                let recorded = own.record_node_stop(node_id, now_ms()).await;
                own.close().await;
                recorded
            }
            Err(error) => Err(error),
        };
        match recorded {
            Ok(()) => return,
            Err(error) if attempt == 3 => {
                tracing::error!(%error, cause = ?std::error::Error::source(&error), "could not record the clean stop");
            }
            Err(error) => {
                tracing::warn!(%error, attempt, "recording the clean stop failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// Starts the mailer and the reminder scheduler when `smtp_url` is set (without it reminders
/// are queued and wait). Every setting they need is checked here, before the node serves.
pub fn start_reminders(
    settings: &Settings,
    services: &Services,
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
        auditor: services.auditor.clone(),
        alerts: services.alerts.clone(),
        clock: services.identity.clock.clone(),
        settings: settings.reminders.clone(),
    };
    tracing::info!(implicit_tls = url.implicit_tls, port = url.port(), "reminders are sent over TLS");
    Ok(Some(ReminderScheduler::new(deps).start()))
}

/// Starts this node's email witness when `smtp_url` is set: each period, every owner is emailed
/// the newest signed heads of this node's chains (without SMTP nothing would send them, and a
/// backlog of old periods would go out once it is configured).
pub fn start_email_witness(
    settings: &Settings,
    services: &Services,
    audit_storage: &crate::storage::Storage,
    public_key: ed25519_dalek::VerifyingKey,
) -> Option<actix::Addr<crate::audit::email_witness::EmailWitness>> {
    use crate::audit::email_witness::{EmailWitness, EmailWitnessDeps};
    settings.smtp_url.as_ref()?;
    let deps = EmailWitnessDeps {
        node_id: services.auditor.node_id(),
        data_dir: settings.data_dir.clone(),
        public_key,
        audit_storage: audit_storage.clone(),
        outbox: services.outbox.clone(),
        accounts: services.identity.accounts.clone(),
        auditor: services.auditor.clone(),
        clock: services.identity.clock.clone(),
        every_ms: settings.audit_head_email_every_ms(),
        check_every: Duration::from_secs(settings.audit.checkpoint_every_secs.max(1)),
    };
    Some(EmailWitness::new(deps).start())
}

/// Starts this node's scheduled-backup worker when `backup.schedule` is not off, with the
/// reader of its status for `/readyz`. The directory must exist (it is the operator's: another
/// disk, a mounted store); a missing one is a failure of each backup, alerted, not a refusal to
/// start.
pub fn start_backups(
    settings: &Settings,
    services: &Services,
    (main, audit): (&crate::storage::Storage, &crate::storage::Storage),
    master_key_fingerprint: &str,
) -> Result<
    Option<(actix::Addr<crate::backup::schedule::BackupScheduler>, crate::backup::schedule::BackupStatusReader)>,
    ServerError,
> {
    use crate::backup::schedule::{BackupDeps, BackupScheduler, BackupStatusReader, Plan};
    let Some(plan) = Plan::of(&settings.backup)? else { return Ok(None) };
    let deps = BackupDeps {
        main: main.clone(),
        audit: audit.clone(),
        checkpoint_dir: settings.audit_checkpoint_dir(),
        data_dir: settings.data_dir.clone(),
        master_key_fingerprint: master_key_fingerprint.to_owned(),
        auditor: services.auditor.clone(),
        alerts: services.alerts.clone(),
        clock: services.identity.clock.clone(),
    };
    let status = BackupStatusReader::new(main.clone(), plan.clone());
    Ok(Some((BackupScheduler::new(deps, plan).start(), status)))
}

/// Starts this node's alert escalation worker (every node runs one; a step is taken once).
pub fn start_escalation(services: &Services) -> actix::Addr<crate::alerts::escalation::Escalator> {
    crate::alerts::escalation::Escalator::new(services.alerts.clone()).start()
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
