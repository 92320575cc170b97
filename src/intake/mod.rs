//! Intake and screening forms: the templates with their validation and scoring
//! ([`templates`]), their storage, sealed ([`store`]), and the operations both transports call
//! ([`service`]). Patients fill them over the socket (docs/PROTOCOL.md); clinicians assign and
//! read them over REST and are alerted live.

pub mod service;
pub mod store;
pub mod templates;

pub use service::{IntakeService, IntakeServiceError, ListedForm, OpenedForm, SubmittedForm};
pub use store::{Assignment, Intake, IntakeError, ScreeningResult};
pub use templates::{FormKind, InvalidAnswer, Score};
