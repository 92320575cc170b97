//! The tables the access decision consults: who treats whom ([`care_team`]) and the break-glass
//! grants ([`break_glass`]). Every SQL statement of `access` is here.

pub mod break_glass;
pub mod care_team;
