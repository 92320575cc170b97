//! The bodies of the `confidant audit ...` commands, and the audit record of a start refused on
//! bad settings. Commands that change or reveal the audit trail (export, purge) record
//! themselves first, on the command line's own chain, and do nothing if that fails.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use actix::Actor;
use confidant_actors::audit::{Action, AuditWriter, Outcome, ResourceType, WriterLimits};
use confidant_actors::clock::now_ms;

use crate::audit::checkpoint::{
    Checkpoint, CheckpointLog, load_or_create_signing_key, load_signing_key, newest_per_node,
};
use crate::audit::export::{ExportError, ExportFormat, export, parse_time};
use crate::audit::purge::{Purged, purge_before, retention_cutoff_ms};
use crate::audit::role::{RoleError, RoleName, setup_role};
use crate::audit::signed_head::SignedHead;
use crate::audit::trust::parse_public_key;
use crate::audit::{AuditStore, Evidence, TrailReport, Witnesses, verify_trail};
use crate::auditor::{Auditor, reason};
use crate::node;
use crate::settings::{AuditStoreHint, DatabaseSettings, Settings};
use crate::startup::ServerError;
use crate::storage::{Location, Storage, Store};

/// Best effort: records that the node refused to start on its configuration, in the audit store
/// the configuration names (if that much of it is usable and the store already exists).
pub async fn refused_start(hint: &AuditStoreHint) -> Result<(), ServerError> {
    let location = match &hint.audit_database_url {
        Some(url) => Location::Postgres(url.clone()),
        None if hint.data_dir.is_dir() => Location::Sqlite(hint.data_dir.join("audit.db")),
        None => return Ok(()), // never started here: there is no audit trail to write to yet
    };
    let pool = DatabaseSettings { max_connections: 1, acquire_timeout_secs: 3 };
    let storage = Storage::connect(Store::Audit, &location, &pool).await?;
    storage.migrate().await?;
    let node_id = node::load_or_create(&hint.data_dir)?;
    let writer =
        AuditWriter::new(node_id, Arc::new(AuditStore::new(storage.clone(), node_id)), WriterLimits::default()).start();
    let auditor = Auditor::new(node_id, writer);
    let event = auditor
        .system(Action::ConfigurationError, Outcome::Error)
        .on(ResourceType::Server, Some(*node_id.as_uuid()))
        .because(reason("invalid_settings"));
    auditor.record(event).await?;
    storage.close().await;
    Ok(())
}

/// `confidant audit verify`: one whole verification (`audit/trail.rs`), trusting `trusted_keys`
/// when given (else `audit.trusted_keys`, else the keys registered in the audit store), against
/// the checkpoint files, the main store's witness table, every witness directory and the signed
/// `heads` given (lines from the owners' emails). Reads no private key.
pub async fn verify(
    settings: &Settings,
    trusted_keys: &[String],
    witness_dirs: Vec<PathBuf>,
    heads: &[String],
) -> Result<TrailReport, ServerError> {
    let heads = heads
        .iter()
        .map(|line| SignedHead::parse(line))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| ServerError::Usage("--head must be a signed head line as the owners' email gives it (confidant-audit-head/1 node=... seq=... at_ms=... hash=... key=... signature=...)"))?;
    let pinned = if trusted_keys.is_empty() {
        settings.pinned_audit_keys()
    } else {
        trusted_keys
            .iter()
            .map(|k| parse_public_key(k))
            .collect::<Result<_, _>>()
            .map_err(|_| ServerError::Usage("--trusted-key must be an Ed25519 public key (64 hex digits)"))?
    };
    let storage = Storage::connect(Store::Audit, &Location::of(Store::Audit, settings), &settings.database).await?;
    let main = Storage::connect(Store::Main, &Location::of(Store::Main, settings), &settings.database).await?;
    let dirs = settings.audit.witness_dirs.iter().cloned().chain(witness_dirs);
    let witnesses = Witnesses::new(dirs, Some(main.clone()));
    let evidence = Evidence {
        checkpoint_dir: settings.audit_checkpoint_dir(),
        witnesses: &witnesses,
        heads,
        pinned,
        local_chains: node::local_chains(&settings.data_dir),
    };
    let report = verify_trail(&storage, evidence).await;
    storage.close().await;
    main.close().await;
    report.map_err(ServerError::from)
}

/// `confidant audit setup-role`: creates the insert-only audit role.
pub async fn setup_audit_role(settings: &Settings, role: &str, password: &str) -> Result<(), ServerError> {
    let role = RoleName::parse(role).ok_or(ServerError::Usage("--role must be 1-63 characters of a-z, 0-9 and _"))?;
    let location = Location::of(Store::Audit, settings);
    let storage = Storage::connect(Store::Audit, &location, &settings.database).await?;
    let result = setup_role(&storage, &role, password).await;
    storage.close().await;
    result.map_err(|e| match e {
        RoleError::Storage(e) => ServerError::Storage(e),
        RoleError::NotPostgres => {
            ServerError::Usage("the audit store is SQLite: setup-role applies to PostgreSQL only")
        }
        RoleError::WeakPassword => ServerError::Usage("the password must be at least 16 characters, on one line"),
    })
}

/// `confidant audit export`: records the export (durably, or fails), then writes the entries.
pub async fn export_entries(
    settings: &Settings,
    since: &str,
    until: &str,
    format: ExportFormat,
) -> Result<u64, ServerError> {
    let since_ms =
        parse_time(since).ok_or(ServerError::Usage("--since must be a date (2026-11-23) or an RFC 3339 time"))?;
    let until_ms =
        parse_time(until).ok_or(ServerError::Usage("--until must be a date (2026-11-23) or an RFC 3339 time"))?;
    if since_ms >= until_ms {
        return Err(ServerError::Usage("--since must be before --until"));
    }
    let storage = Storage::connect(Store::Audit, &Location::of(Store::Audit, settings), &settings.database).await?;
    let code = match format {
        ExportFormat::Jsonl => "format_jsonl",
        ExportFormat::Fhir => "format_fhir",
    };
    record_cli_event(settings, &storage, Action::Export, (ResourceType::AuditLog, None), code).await?;
    let mut out = io::BufWriter::new(io::stdout().lock());
    let written = export(&storage, since_ms, until_ms, format, &mut out).await.map_err(|e| match e {
        ExportError::Storage(e) => ServerError::Storage(e),
        ExportError::Output(e) => ServerError::Output(e),
    })?;
    storage.close().await;
    Ok(written)
}

/// Durably records an audit event of a command-line operation on the CLI's own chain (sealed
/// with a checkpoint at once), before the operation touches anything.
pub(crate) async fn record_cli_event(
    settings: &Settings,
    storage: &Storage,
    action: Action,
    resource: (ResourceType, Option<uuid::Uuid>),
    code: &'static str,
) -> Result<(), ServerError> {
    let cli = CliAudit::start(settings, storage)?;
    cli.register_key().await?;
    let auditor = Auditor::new(cli.node_id, cli.writer.clone());
    let event = auditor.system(action, Outcome::Success).on(resource.0, resource.1).because(reason(code));
    auditor.record(event).await?;
    cli.checkpoint().await;
    Ok(())
}

/// An audit writer on the command line's own chain (commands run beside serving nodes, which
/// each own their chain).
pub(crate) struct CliAudit {
    /// The command line's chain id.
    pub node_id: node::NodeId,
    /// Its writer.
    pub writer: actix::Addr<AuditWriter>,
    store: Arc<AuditStore>,
    public_key: [u8; 32],
}

impl CliAudit {
    /// Starts the writer over the audit store `storage`.
    pub fn start(settings: &Settings, storage: &Storage) -> Result<Self, ServerError> {
        let node_id = node::load_or_create_cli(&settings.data_dir)?;
        let signing_key =
            load_or_create_signing_key(&settings.audit_signing_key_file()).map_err(ServerError::AuditKey)?;
        let public_key = signing_key.verifying_key().to_bytes();
        let store = Arc::new(
            AuditStore::new(storage.clone(), node_id)
                .with_checkpoints(
                    signing_key,
                    CheckpointLog::new(settings.audit_checkpoint_dir()),
                    settings.audit.checkpoint_every_entries,
                )
                .witnessed_by(Witnesses::new(settings.audit.witness_dirs.iter().cloned(), None)),
        );
        let writer = AuditWriter::new(node_id, store.clone(), WriterLimits::default()).start();
        Ok(Self { node_id, writer, store, public_key })
    }

    /// Registers the key this chain signs with, so verification finds it.
    pub async fn register_key(&self) -> Result<(), ServerError> {
        self.store.register_key(&self.public_key).await?;
        Ok(())
    }

    /// Signs a checkpoint over what the command recorded, so a short-lived chain is anchored too.
    pub async fn checkpoint(&self) {
        if confidant_actors::audit::AuditSink::checkpoint(&*self.store).await.is_err() {
            tracing::warn!("could not checkpoint the command's audit record");
        }
    }
}

/// `confidant audit purge`: checks the retention period, records the purge, then purges.
pub async fn purge(settings: &Settings, before: &str) -> Result<Vec<Purged>, ServerError> {
    let before_ms =
        parse_time(before).ok_or(ServerError::Usage("--before must be a date (2019-01-01) or an RFC 3339 time"))?;
    let now = time::OffsetDateTime::now_utc();
    if before_ms > retention_cutoff_ms(now, settings.audit.retention_years) {
        return Err(ServerError::Retention { years: settings.audit.retention_years });
    }
    let storage = Storage::connect(Store::Audit, &Location::of(Store::Audit, settings), &settings.database).await?;
    record_cli_event(settings, &storage, Action::Purge, (ResourceType::AuditLog, None), "retention_expired").await?;
    let key = load_signing_key(&settings.audit_signing_key_file()).map_err(ServerError::AuditKey)?;
    let purged = purge_before(&storage, &key, before_ms, now_ms()).await?;
    storage.close().await;
    Ok(purged)
}

/// `confidant audit head`: the newest checkpoint of each node, from the checkpoint files.
pub fn head(settings: &Settings) -> Result<Vec<Checkpoint>, ServerError> {
    let all = CheckpointLog::new(settings.audit_checkpoint_dir()).read_all().map_err(ServerError::Checkpoints)?;
    Ok(newest_per_node(all))
}

/// `confidant audit public-key`: the key that verifies this node's checkpoints, in hex (read
/// from the key file, never made here).
pub fn public_key(settings: &Settings) -> Result<String, ServerError> {
    let key = load_signing_key(&settings.audit_signing_key_file()).map_err(ServerError::AuditKey)?;
    Ok(crate::audit::checkpoint::to_hex(key.verifying_key().as_bytes()))
}
