//! The patient record: demographics and contact details, all PHI, stored encrypted (see
//! [`store`]). Ids and timestamps stay plain so joins and ordering work. [`service`] holds its
//! operations and [`care`] who may reach it (care team, break-glass), each authorized and audited.

pub mod care;
pub mod record;
pub mod service;
pub mod store;

pub use care::{CareAccess, CareAccessError};
pub use record::{EmergencyContact, InvalidField, Patient, PatientRecord};
pub use service::{PatientService, PatientServiceError};
pub use store::{PatientError, Patients};
