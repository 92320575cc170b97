//! The audit trail's actor side: what an audit event is ([`event`]) and the single writer per
//! node that batches events into durable, acknowledged appends ([`writer`]). Where and how
//! events are stored (the hash chain, the database) is the [`AuditSink`] port's business,
//! implemented by the server crate.

pub mod event;
pub mod writer;

pub use event::{Action, AuditActor, AuditEvent, Outcome, ReasonCode, ResourceType, Role};
pub use writer::{
    Append, AppendAll, AuditError, AuditSink, AuditWriter, SinkError, SinkFuture, WriterLimits, record, record_all,
};
