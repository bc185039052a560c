//! What happened lately that a person may see, for the console's start page: sessions
//! started and ended in their workspaces (each read through that workspace's grant, so a
//! workspace they may not read adds nothing), and — with platform `hosts.read` — hosts that
//! went offline, and hosts waiting for an approval they may give.

use uuid::Uuid;
use warden_domain::access::Permission;
use warden_domain::hosts::HostStatus;
use warden_domain::identity::Principal;
use warden_domain::tenancy::WorkspaceId;

use crate::hosts::admin::{self, Scope};
use crate::workspaces::{self, Listing};
use crate::{CoreResult, Ctx, Op};

/// The most workspaces whose sessions are read for the feed (the most recent first).
const WORKSPACES: usize = 10;
/// Sessions read per workspace.
const PER_WORKSPACE: usize = 5;

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Activity {
    /// A session started (or is waiting for its host).
    SessionStarted {
        /// Workspace id and name.
        workspace: (Uuid, String),
        /// Session id.
        session: Uuid,
        /// Its prompt's first line.
        prompt: String,
    },
    /// A session ended, with its final status.
    SessionEnded {
        /// Workspace id and name.
        workspace: (Uuid, String),
        /// Session id.
        session: Uuid,
        /// Its prompt's first line.
        prompt: String,
        /// `done`, `failed`, `canceled` or `lost`.
        status: String,
    },
    /// A host that was connected is not any more.
    HostOffline {
        /// Its name.
        name: String,
    },
    /// A host waits for an approval the reader may give.
    HostWaiting {
        /// Its name.
        name: String,
    },
}

/// The newest `limit` activities, newest first, each with its time (Unix µs).
pub async fn recent(
    ctx: &Ctx,
    op: &Op,
    principal: &Principal,
    limit: usize,
) -> CoreResult<Vec<(i64, Activity)>> {
    let mut out = Vec::new();
    let listing = Listing {
        all: false,
        archived: false,
        cursor: None,
        limit: Some(200),
    };
    let mut mine = workspaces::list(ctx, op, principal, listing).await?.items;
    mine.sort_by_key(|w| std::cmp::Reverse(w.updated_at));
    for w in mine.into_iter().take(WORKSPACES) {
        let id = WorkspaceId::from_uuid(w.id);
        let Ok(grant) = ctx
            .store
            .authorize(principal, id, Permission::SESSIONS_READ)
            .await
        else {
            continue;
        };
        let sessions = crate::sessions::list(ctx, &grant).await?;
        for s in sessions.into_iter().take(PER_WORKSPACE) {
            let workspace = (w.id, w.name.clone());
            let prompt = s
                .prompt
                .lines()
                .next()
                .unwrap_or("")
                .chars()
                .take(80)
                .collect();
            match s.ended_at {
                Some(at) => out.push((
                    at,
                    Activity::SessionEnded {
                        workspace,
                        session: s.id,
                        prompt,
                        status: s.status,
                    },
                )),
                None => out.push((
                    s.started_at.unwrap_or(s.created_at),
                    Activity::SessionStarted {
                        workspace,
                        session: s.id,
                        prompt,
                    },
                )),
            }
        }
    }
    if let Ok(grant) = ctx
        .store
        .authorize_platform(principal, Permission::HOSTS_READ)
        .await
    {
        let may_approve = grant.platform().contains(Permission::HOSTS_APPROVE);
        let now = op.now_us();
        for h in admin::list(ctx, Scope::Platform(&grant)).await? {
            if h.status == HostStatus::Pending.as_str() {
                if may_approve {
                    out.push((h.created_at, Activity::HostWaiting { name: h.name }));
                }
            } else if h.status == HostStatus::Approved.as_str()
                && !admin::online(&h, now)
                && let Some(seen) = h.last_seen_at
            {
                out.push((seen, Activity::HostOffline { name: h.name }));
            }
        }
    }
    out.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    out.truncate(limit);
    Ok(out)
}
