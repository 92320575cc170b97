//! The tables the access decision consults: who treats whom ([`care_team`]). Every SQL
//! statement of `access` is here.

pub mod care_team;
