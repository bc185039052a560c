//! What use cases need from the running node: storage, keys, the clock. Front ends hold one
//! [`Ctx`] and pass it to every use case; nothing in it knows about HTTP.

use std::sync::Arc;

use warden_crypto::Keyring;
use warden_domain::clock::Clock;
use warden_store::Store;
use warden_store::audit::ChainKey;

use warden_crypto::host_ticket::TicketKey;

use crate::audit::AuditMonitor;
use crate::hosts::links::Connections;
use crate::identity::Identity;
use crate::license::License;
use crate::sessions::reports::Feeds;
use crate::settings::HostsConfig;

/// The node's shared parts, as use cases see them. Cheap to share behind the front end's
/// state.
#[derive(Debug)]
pub struct Ctx {
    /// The database.
    pub store: Store,
    /// Keys for secrets at rest.
    pub keyring: Keyring,
    /// The audit chain's HMAC key.
    pub audit_key: Arc<ChainKey>,
    /// Where time comes from.
    pub clock: Arc<dyn Clock>,
    /// Sign-in, tokens, revocation.
    pub identity: Arc<Identity>,
    /// Offline licence enforcement.
    pub license: License,
    /// Outgoing mail (settings and the outbox sender's wake-up call).
    pub mail: crate::mail::Mail,
    /// The origin people reach Warden at (`public_url`, or the listen address when unset):
    /// every link Warden mails or redirects to starts with it, never with a request's `Host`.
    pub public_url: String,
    /// Where hosts may connect from, and how many at once.
    pub hosts: HostsConfig,
    /// This node's live agent connections.
    pub connections: Connections,
    /// Signs host session tickets (a server secret every node shares).
    pub host_tickets: Arc<TicketKey>,
    /// Wakes readers of session output on this node.
    pub session_feeds: Feeds,
    /// The OpenID Connect relying party (provider metadata and keys, cached).
    pub oidc: Arc<warden_oidc::Oidc>,
    /// Background chaining and verification of the audit trail.
    pub audit_monitor: AuditMonitor,
    /// Automations, webhooks and queue settings.
    pub automations: crate::settings::AutomationsConfig,
    /// This node's side of the durable work queue.
    pub jobs: crate::jobs::Queue,
    /// This node's automation scheduler.
    pub scheduler: crate::automations::scheduler::Scheduler,
    /// This node's webhook intake.
    pub webhooks: crate::webhooks::intake::Intake,
    /// Audit events appended in batches, off the request path (agents' read tools).
    pub audit_batch: crate::audit::batch::Batch,
    /// This node's LLM gateway.
    pub llm: Arc<crate::llm::Gateway>,
    /// Ticket sync settings.
    pub tickets: crate::settings::TicketsConfig,
    /// Reaching hosts connected to other nodes.
    pub cluster: crate::cluster::Cluster,
    /// Directory (SCIM) tokens this node has read.
    pub scim_tokens: crate::scim::TokenCache,
}
