//! The patient record: demographics and contact details, all PHI, stored encrypted (see
//! [`store`]). Ids and timestamps stay plain so joins and ordering work.

pub mod record;
pub mod store;

pub use record::{EmergencyContact, InvalidField, Patient, PatientRecord};
pub use store::{PatientError, Patients};
