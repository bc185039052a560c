//! Hosts that run agents: registering them, approving them, their keys, and their live
//! connections.

use std::net::IpAddr;
use std::time::Duration;

use uuid::Uuid;
use warden_crypto::host_ticket::{self, TicketKey};
use warden_domain::audit::{Actor, ActorKind};
use warden_domain::clock::Clock;
use warden_domain::hosts::{HostKind, HostStatus};
use warden_store::hosts::HostGrant;

pub mod admin;
pub mod agent;
pub mod gate;
pub mod link;
pub mod links;

/// How often a connected agent says it is alive; a host silent three times as long counts
/// as gone.
pub const HEARTBEAT: Duration = Duration::from_secs(20);

/// Seen after this time (Unix µs), a host still counts as connected at `now_us`.
pub fn connected_since(now_us: i64) -> i64 {
    now_us - i64::try_from((HEARTBEAT * 3).as_micros()).unwrap_or(i64::MAX)
}

/// How long a host session ticket is valid; the agent gets a fresh one at every hello.
pub const TICKET_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// An authenticated host, left in the request's extensions for the handler.
#[derive(Debug, Clone)]
pub struct HostCaller {
    /// The host.
    pub host_id: Uuid,
    /// What it runs.
    pub kind: HostKind,
    /// Its approval status: only approved hosts get work.
    pub status: HostStatus,
    /// The key id it used.
    pub key_id: String,
    /// The address it connected from.
    pub ip: IpAddr,
    /// The store's proof that it authenticated: what acting as this host on storage takes.
    pub grant: HostGrant,
}

impl HostCaller {
    /// The audit actor for this host.
    pub fn actor(&self) -> Actor {
        Actor {
            kind: ActorKind::Host,
            id: Some(self.host_id.to_string()),
        }
    }
}

/// A session ticket for an authenticated host, valid for [`TICKET_LIFETIME`].
pub fn ticket_for(tickets: &TicketKey, clock: &dyn Clock, caller: &HostCaller) -> Option<String> {
    let expires = crate::identity::now_us(clock) + micros(TICKET_LIFETIME);
    host_ticket::issue(tickets, *caller.host_id.as_bytes(), &caller.key_id, expires)
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}
