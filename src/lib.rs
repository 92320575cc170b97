//! Confidant's server: composition root, configuration, HTTP API, storage, TLS. The actor layer
//! lives in the `confidant-actors` crate; see docs/ARCHITECTURE.md for the map.
#![forbid(unsafe_code)]

pub mod access;
pub mod alerts;
pub mod audit;
pub mod audit_commands;
pub mod auditor;
pub mod backup;
pub mod backup_commands;
pub mod cli;
pub mod crypto;
pub mod email;
pub mod fanout;
pub mod health;
pub mod http;
pub mod idempotency;
pub mod identity;
pub mod intake;
pub mod key_commands;
pub mod messaging;
pub mod node;
pub mod notes;
pub mod patients;
pub mod phi;
pub mod plain_text;
pub mod push;
pub mod redis_link;
pub mod reminders;
pub mod schedule;
pub mod server;
pub mod services;
pub mod settings;
pub mod startup;
pub mod state;
pub mod storage;
pub mod telemetry;
pub mod tls;
pub mod user_commands;
pub mod users;
pub mod web;
pub mod ws;
