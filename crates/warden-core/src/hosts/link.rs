//! One agent connection as use cases see it, whatever transport carries it: the agent says
//! hello, the connection claims a place under the host cap and registers on this node, then
//! each message the agent sends is one method here. Refusals are protocol messages the
//! transport sends before closing.

use std::sync::Arc;

use uuid::Uuid;
use warden_domain::hosts::{HostKind, HostStatus};
use warden_domain::sessions::SessionStatus;
use warden_protocol::{
    AgentMessage, EndStatus, PROTOCOL_VERSION, Refusal, SUPPORTED, ServerMessage,
};
use warden_store::sessions::HostReport;

use super::agent::{Claiming, Greeted, Report, hello_claiming};
use super::links::Mailbox;
use super::{HEARTBEAT, HostCaller, connected_since, ticket_for};
use crate::sessions::reports;
use crate::{Ctx, Op};

/// A registered connection of `host` on this node.
#[derive(Debug)]
pub struct Link {
    host: HostCaller,
    /// `node/connection`: who holds the host in the database.
    node: String,
    conn: u64,
    connected_at: i64,
    /// Where this node's use cases leave signals for the connection.
    pub mailbox: Arc<Mailbox>,
}

/// Checks the agent's hello: a version this server speaks, and what it reports.
pub fn check_hello(
    protocol: u32,
    hostname: &str,
    os: &str,
    agent_version: &str,
) -> Result<Report, Box<ServerMessage>> {
    if !SUPPORTED.contains(&protocol) {
        return Err(Box::new(ServerMessage::refused(
            Refusal::UpgradeRequired,
            &format!(
                "this server speaks protocol versions {}..={}; upgrade warden-agent",
                SUPPORTED.start(),
                SUPPORTED.end()
            ),
        )));
    }
    Report::parse(hostname, os, agent_version)
        .map_err(|_| Box::new(Refusal::InvalidMessage.message()))
}

fn gone() -> ServerMessage {
    ServerMessage::refused(Refusal::Revoked, "this host is no longer registered")
}

/// Records the hello and, in the same transaction, claims a place under the concurrent-host
/// cap of the host's kind (a reconnect takes its own place); then registers the connection on
/// this node, replacing an older one here. Returns the link and the welcome to send.
pub async fn connect(
    ctx: &Ctx,
    op: &Op,
    host: HostCaller,
    protocol: u32,
    report: &Report,
) -> Result<(Link, ServerMessage), Box<ServerMessage>> {
    let conn = ctx.connections.next_id();
    let node = format!("{}/{conn}", ctx.identity.node_id.simple());
    let now = op.now_us();
    let configured = match host.kind {
        HostKind::Session => ctx.hosts.max_session_hosts,
        HostKind::Deploy => ctx.hosts.max_deploy_hosts,
    };
    let claim = Claiming {
        connection: &node,
        fresh_after: connected_since(now),
        cap: ctx.license.host_cap(host.kind, configured),
    };
    match hello_claiming(ctx, op, &host, report, Some("websocket"), Some(claim)).await {
        Ok(Greeted::Recorded) => {}
        Ok(Greeted::LimitReached) => {
            return Err(Box::new(ServerMessage::refused(
                Refusal::HostLimit,
                "concurrent host limit reached; try again when a host of this kind disconnects",
            )));
        }
        Ok(Greeted::Gone) => return Err(Box::new(gone())),
        Err(e) => {
            tracing::error!(error = %e, "cannot record an agent connection");
            return Err(Box::new(gone()));
        }
    }
    let mailbox = ctx.connections.register(host.host_id, conn, protocol);
    let ticket = ticket_for(&ctx.host_tickets, ctx.clock.as_ref(), &host).unwrap_or_default();
    let welcome = ServerMessage::Welcome {
        protocol: protocol.min(PROTOCOL_VERSION),
        host_id: host.host_id.to_string(),
        status: host.status.as_str().to_owned(),
        may_work: host.status.may_work(),
        heartbeat_secs: HEARTBEAT.as_secs(),
        ticket,
    };
    let link = Link {
        host,
        node,
        conn,
        connected_at: crate::identity::now_us(ctx.clock.as_ref()),
        mailbox,
    };
    Ok((link, welcome))
}

impl Link {
    /// The host on the other end.
    pub fn host(&self) -> &HostCaller {
        &self.host
    }

    /// Whether this connection still holds its host, by the database: a refusal when the
    /// host is gone, connected anew elsewhere, or rejected since this connection began.
    /// Refreshes the host's last-seen time when it does hold it. Every heartbeat asks this.
    pub async fn verdict(&self, ctx: &Ctx) -> Option<ServerMessage> {
        let now = crate::identity::now_us(ctx.clock.as_ref());
        let beat = ctx
            .store
            .host_heartbeat(&self.host.grant, &self.node, now)
            .await;
        match beat {
            Ok(None) => Some(gone()),
            Ok(Some((_, holder))) if holder.as_deref() != Some(self.node.as_str()) => {
                Some(ServerMessage::refused(
                    Refusal::Replaced,
                    "a newer connection of this host replaced this one",
                ))
            }
            Ok(Some((s, _)))
                if HostStatus::parse(&s) == Some(HostStatus::Rejected)
                    && self.host.status != HostStatus::Rejected =>
            {
                Some(ServerMessage::refused(
                    Refusal::Revoked,
                    "this host was rejected",
                ))
            }
            _ => None,
        }
    }

    /// The agent says which sessions it runs: its other unfinished sessions created before
    /// this connection began are lost.
    pub async fn running(&self, ctx: &Ctx, session_ids: &[String]) {
        let ids: Vec<Uuid> = session_ids.iter().filter_map(|s| s.parse().ok()).collect();
        let now = crate::identity::now_us(ctx.clock.as_ref());
        match ctx
            .store
            .reconcile_host_sessions(&self.host.grant, &ids, self.connected_at, now)
            .await
        {
            Ok(r) => {
                if r.lost > 0 {
                    tracing::warn!(host = %self.host.host_id, sessions = r.lost, "sessions lost: the host no longer runs them");
                }
                if r.revived > 0 {
                    tracing::info!(host = %self.host.host_id, sessions = r.revived, "sessions marked lost run again: their host is back and still runs them");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot reconcile a host's sessions"),
        }
    }

    /// A session of this host started, isolated as it says. `true` once stored (or known
    /// already): the agent may forget the report.
    pub async fn session_started(
        &self,
        ctx: &Ctx,
        op: &Op,
        session_id: &str,
        isolation: &str,
    ) -> bool {
        let report = HostReport::Started { isolation };
        reports::report(ctx, op, &self.host, session_id, report).await
    }

    /// A burst of output (session id, seq, stream, text), recorded in one transaction; `true`
    /// once stored.
    pub async fn session_output(&self, ctx: &Ctx, burst: &[(String, u64, String, String)]) -> bool {
        reports::report_output(ctx, &self.host, burst).await
    }

    /// A session of this host ended, as the host says; `true` once stored.
    pub async fn session_ended(
        &self,
        ctx: &Ctx,
        op: &Op,
        session_id: &str,
        status: EndStatus,
        exit_code: Option<i32>,
        error: Option<&str>,
    ) -> bool {
        let status = match status {
            EndStatus::Done => SessionStatus::Done,
            EndStatus::Canceled => SessionStatus::Canceled,
            EndStatus::Failed => SessionStatus::Failed,
        };
        let report = HostReport::Ended {
            status,
            exit_code,
            error,
        };
        reports::report(ctx, op, &self.host, session_id, report).await
    }

    /// The answer to a request a use case sent this host (a worktree file).
    pub fn answer(&self, ctx: &Ctx, answer: AgentMessage) {
        if let AgentMessage::FileResponse { request_id, .. } = &answer {
            let id = *request_id;
            ctx.connections.answer(self.host.host_id, id, answer);
        }
    }

    /// The connection ended. Its sessions are not lost yet: the agent may be back in a
    /// moment (or, after a server restart, already connected elsewhere) and say it still runs
    /// them; the sweep marks them lost once the host stays away.
    pub async fn close(self, ctx: &Ctx) {
        ctx.connections.deregister(self.host.host_id, self.conn);
        let now = crate::identity::now_us(ctx.clock.as_ref());
        let _ = ctx
            .store
            .host_disconnected(&self.host.grant, &self.node, now)
            .await;
    }
}

/// Every heartbeat interval: sessions whose host has been away for three heartbeats (or was
/// deleted) are lost.
pub fn spawn_session_sweep(ctx: Arc<Ctx>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(HEARTBEAT).await;
            let now = crate::identity::now_us(ctx.clock.as_ref());
            match ctx
                .store
                .lose_sessions_of_absent_hosts(connected_since(now), now)
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::warn!(sessions = n, "sessions lost: their host went away"),
                Err(e) => tracing::warn!(error = %e, "cannot sweep sessions of absent hosts"),
            }
        }
    })
}

/// Listens for host changes made on any node and has this node's connection of each changed
/// host check itself at once. On SQLite (one node) there is nothing to listen to: use cases
/// end local connections directly.
pub fn spawn_watch(ctx: Arc<Ctx>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mine = format!("{}/", ctx.identity.node_id.simple());
        loop {
            let mut changes = match ctx.store.host_changes().await {
                Ok(Some(c)) => c,
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot listen for host changes; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    continue;
                }
            };
            loop {
                match changes.next().await {
                    // A takeover by a connection of this node was handled when it registered.
                    Ok((_, Some(holder))) if holder.starts_with(&mine) => {}
                    Ok((host, _)) => ctx.connections.check(host),
                    Err(e) => {
                        tracing::warn!(error = %e, "host change listener failed; reconnecting");
                        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        break;
                    }
                }
            }
        }
    })
}
