//! Clinical notes (docs/API.md, "Clinical notes"): templates as data with their validation
//! ([`templates`]), what a note holds ([`content`]), its storage, sealed ([`store`]), and the
//! operations both transports call ([`service`]): write and autosave, sign and lock with a fresh
//! second factor, addenda, supervision and co-signature, psychotherapy notes kept apart; a
//! signed note rendered to PDF for release of records ([`pdf`]).

pub mod content;
pub mod pdf;
pub mod service;
pub mod store;
pub mod templates;

pub use content::{Measure, NoteContent, NoteContext};
pub use service::{ListedTemplate, NoteService, NoteServiceError, OpenedNote};
pub use store::{Addendum, NoteError, NoteMeta, NoteStatus, Notes, Supervision};
pub use templates::{InvalidField, InvalidTemplate, NoteKind, Template};
