//! Black-box tests: each starts the real `confidant` binary on a free port with a fresh data
//! directory (and, for PostgreSQL, fresh databases) and talks to it over HTTPS like a client.
//! Tests that touch storage run on both backends; none skips a backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod acme;
mod alerts;
mod architecture;
mod attachments;
mod audit;
mod audit_trust;
mod backup;
mod backup_schedule;
mod config;
mod contract;
mod crash;
mod email_witness;
mod errors;
mod escalation;
mod headers;
mod health;
mod helpers;
mod idempotency;
mod identity;
mod ingest;
mod input;
mod messaging;
mod note_pdf;
mod notes;
mod outage;
mod pebble;
mod phi;
mod phi_debug;
mod phi_reads;
mod portal;
mod realtime;
mod reminders;
mod security_alerts;
mod sessions;
mod shutdown;
mod signin;
mod signin_abuse;
mod smtp;
mod staff;
mod storage;
mod tls;
mod wsclient;
