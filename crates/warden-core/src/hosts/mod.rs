//! Hosts that run agents: registering them, approving them, their keys, and their live
//! connections.

use std::time::Duration;

/// How often a connected agent says it is alive; a host silent three times as long counts
/// as gone.
pub const HEARTBEAT: Duration = Duration::from_secs(20);

/// Seen after this time (Unix µs), a host still counts as connected at `now_us`.
pub fn connected_since(now_us: i64) -> i64 {
    now_us - i64::try_from((HEARTBEAT * 3).as_micros()).unwrap_or(i64::MAX)
}
