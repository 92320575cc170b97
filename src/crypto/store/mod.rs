//! The crypto module's tables: the data keys ([`data_keys`]) and, for key management, the
//! encrypted columns of every table in `tables::ALL` ([`sealed`]). Every SQL statement of
//! `crypto` is here.

pub mod data_keys;
pub mod sealed;
