//! Intake and screening forms: the templates with their validation and scoring
//! ([`templates`]), and their storage, sealed ([`store`]). Patients fill them over the socket
//! (docs/PROTOCOL.md); clinicians assign and read them over REST and are alerted live.

pub mod store;
pub mod templates;

pub use store::{Assignment, Intake, IntakeError};
pub use templates::{FormKind, InvalidAnswer, Score};
