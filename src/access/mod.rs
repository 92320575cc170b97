//! Authorization, in one place: the permission matrix ([`matrix`]) plus the attributes it
//! cannot express (whose own record, whose care team, which break-glass grant, whether the
//! session proved a second factor). Every service passes [`Gate`] (which asks [`Access::check`]
//! and audits) before touching a resource; nothing else decides. [`CareAccess`] holds the
//! permission changes themselves: care-team membership and break-glass grants.

pub mod break_glass;
mod check;
mod gate;
pub mod matrix;
mod store;

pub use break_glass::{BreakGlass, BreakGlassError, Grant as BreakGlassGrant};
pub use care_team::CareTeam;
pub use check::{Access, AccessError, ConversationKind, Decision, Denial, Principal, Target};
pub use gate::{Gate, Requester, allowed_because};
pub use matrix::{Operation, Resource, Scope};
pub use store::care_team;
