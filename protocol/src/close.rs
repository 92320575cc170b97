//! Close codes (RFC 6455 section 7.4; 4000-4999 are ours). A client can tell from the code
//! whether to reconnect, sign in again, or stop.

/// The server is stopping or restarting (RFC 6455): reconnect, to this or another node.
pub const GOING_AWAY: u16 = 1001;
/// The server could not send what the session must receive first (the user's stored alerts),
/// for a moment (RFC 6455 "Try Again Later"): reconnect after a short wait.
pub const TRY_AGAIN_LATER: u16 = 1013;
/// The session was idle too long (no user activity; heartbeats do not count): sign in again.
pub const IDLE_TIMEOUT: u16 = 4001;
/// The session reached its absolute lifetime: sign in again.
pub const SESSION_EXPIRED: u16 = 4002;
/// The session was revoked (sign-out, "sign out everywhere", account disabled): sign in again.
pub const REVOKED: u16 = 4003;
/// No valid authentication in time, or an invalid token: sign in, then reconnect.
pub const UNAUTHENTICATED: u16 = 4004;
/// The client did not answer pings: the connection is presumed dead.
pub const HEARTBEAT_TIMEOUT: u16 = 4005;
/// The client read too slowly and fell too far behind: reconnect and resume from the last event.
pub const SLOW_CONSUMER: u16 = 4008;
/// Too many unauthenticated connections from this address (sent before the socket opens as a
/// 429 during the handshake; listed for completeness).
pub const TOO_MANY_CONNECTIONS: u16 = 4029;
