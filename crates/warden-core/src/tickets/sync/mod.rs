//! Ticket sync (licence module `ticket-sync`): a workspace whose ticket source is a GitHub
//! repository or an Azure DevOps project gets its issues (work items) imported as tickets
//! and kept in step both ways — state and comments — on a schedule, through the work queue,
//! with the workspace's personal access token. It acts for the person who last saved the
//! ticket source. `tracker.rs` is the one interface the run (`runner.rs`) talks to;
//! `github.rs` and `azure.rs` speak each API over the shared client in `http.rs`.
//!
//! The rules (README, "Ticket sync"):
//! - An open issue with no ticket becomes one in the backlog (closed issues never seen
//!   before are left alone); the configured labels, if any, select which issues.
//! - Title, body and labels come from the tracker: when an issue changes there, its ticket
//!   takes them (an edit made here lasts until then).
//! - State: a ticket `done` is the issue closed as completed, `rejected` closed as not
//!   planned, any other status open. Each synced ticket remembers the state as last
//!   seen or set, and what its own status stood for then. When the ticket moved here since,
//!   Warden wins: the issue is set to match.
//!   Otherwise, when the state changed there, the ticket moves (closed → `done` or
//!   `rejected`, reopened → `backlog`) if that move exists from where it stands and the
//!   person the sync acts for holds its permission; if not, the refusal is audited and the
//!   ticket stays (the issue keeps its state until either side changes again).
//! - Comments are appended both ways and never edited or deleted by the sync: a tracker's
//!   comment is imported once (keyed on its id), a comment written here goes out once (it
//!   carries a marker naming it, so reading it back does not import it).
//! - The rate limit is honoured (`x-ratelimit-*`, `retry-after`): the run stops and the
//!   next one waits for the reset. Every run records its outcome; the last error is shown.

pub mod azure;
pub mod github;
pub mod http;
pub mod runner;
pub mod tracker;

use serde::Serialize;
use serde_json::json;
use uuid::Uuid;
use warden_domain::license::Feature;
use warden_domain::tenancy::{TicketConfig, TicketProvider};
use warden_domain::tickets::TicketStatus;
use warden_store::jobs::NewJob;
use warden_store::tenancy::{WorkspaceGrant, WorkspaceTx};
use warden_store::ticket_sync::SyncRow;

use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// The sync job's kind.
pub const KIND: &str = "tickets.sync";
/// An open issue.
pub const OPEN: &str = "open";
/// An issue closed as completed.
pub const CLOSED_COMPLETED: &str = "closed:completed";
/// An issue closed as not planned.
pub const CLOSED_NOT_PLANNED: &str = "closed:not_planned";
/// Due workspaces handled per scheduler pass.
const BATCH: i64 = 200;
/// A run started this long ago and not finished died with its node (µs).
pub(crate) const STALE_RUN_US: i64 = 30 * 60 * 1_000_000;

/// The tracker state a ticket's status stands for.
pub fn tracker_state(status: &str) -> &'static str {
    match status {
        "done" => CLOSED_COMPLETED,
        "rejected" => CLOSED_NOT_PLANNED,
        _ => OPEN,
    }
}

/// Where a ticket goes when its issue's state changed in the tracker (`None`: it stays).
pub(crate) fn status_for(remote: &str, current: TicketStatus) -> Option<TicketStatus> {
    let target = match remote {
        CLOSED_COMPLETED => TicketStatus::Done,
        CLOSED_NOT_PLANNED => TicketStatus::Rejected,
        _ if matches!(current, TicketStatus::Done | TicketStatus::Rejected) => {
            TicketStatus::Backlog
        }
        _ => return None,
    };
    (target != current).then_some(target)
}

/// A workspace's sync, as the API and the console show it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncState {
    /// The tracker (`github` or `azure_devops`).
    pub provider: String,
    /// The repository.
    pub project: String,
    /// Whom it acts for (the person who last saved the ticket source).
    pub acting_for: Uuid,
    /// Whether the licence lets it run.
    pub licensed: bool,
    /// When it next runs (RFC 3339).
    pub next_at: String,
    /// When the last run started.
    pub last_started_at: Option<String>,
    /// When the last run ended.
    pub last_finished_at: Option<String>,
    /// When a run last ended without an error.
    pub last_success_at: Option<String>,
    /// Why the last run failed; `null` when it did not.
    pub last_error: Option<String>,
    /// The tracker's rate limit holds the sync until then.
    pub rate_limited_until: Option<String>,
    /// Issues imported or updated, in all.
    pub imported: i64,
    /// Changes written to the tracker, in all.
    pub pushed: i64,
}

impl SyncState {
    fn from_row(ctx: &Ctx, r: SyncRow) -> Self {
        let at = |t: Option<i64>| t.map(crate::op::rfc3339);
        Self {
            provider: r.provider,
            project: r.project,
            acting_for: r.acting_for,
            licensed: ctx.license.feature(Feature::TicketSync),
            next_at: crate::op::rfc3339(r.next_at),
            last_started_at: at(r.last_started_at),
            last_finished_at: at(r.last_finished_at),
            last_success_at: at(r.last_success_at),
            last_error: r.last_error,
            rate_limited_until: at(r.rate_limited_until),
            imported: r.imported,
            pushed: r.pushed,
        }
    }
}

/// The workspace's sync; 404 when its ticket source is not synced.
pub async fn state(ctx: &Ctx, grant: &WorkspaceGrant) -> CoreResult<SyncState> {
    let mut tx = ctx.store.scoped(grant).await?;
    let row = tx.ticket_sync().await?.ok_or(Code::NotFound)?;
    tx.commit().await?;
    Ok(SyncState::from_row(ctx, row))
}

/// Asks for a sync as soon as the tracker's rate limit allows.
pub async fn request(ctx: &Ctx, op: &Op, grant: &WorkspaceGrant) -> CoreResult<SyncState> {
    let mut tx = ctx.store.scoped(grant).await?;
    if !tx.request_ticket_sync(op.now_us()).await? {
        return Err(Code::NotFound.into());
    }
    let event = op.event(
        "ticket_sync.requested",
        "workspace",
        Some(tx.workspace().to_string()),
        json!({}),
    );
    tx.record(&ctx.audit_key, event).await?;
    let row = tx.ticket_sync().await?.ok_or(Code::NotFound)?;
    tx.commit().await?;
    ctx.scheduler.wake();
    Ok(SyncState::from_row(ctx, row))
}

/// Follows a change of the workspace's ticket source (in the settings' transaction): a
/// GitHub source is synced from now on, for the person saving it; anything else is not.
/// The tracker's address must be one this server may call.
pub(crate) async fn configure(
    ctx: &Ctx,
    op: &Op,
    tx: &mut WorkspaceTx,
    config: Option<&TicketConfig>,
) -> CoreResult<()> {
    match config {
        Some(c) if tracker::Tracker::syncs(c.provider) => {
            let base = c.base_url.as_deref().unwrap_or(match c.provider {
                TicketProvider::AzureDevops => azure::DEFAULT_BASE,
                _ => github::DEFAULT_BASE,
            });
            if let Err(e) =
                warden_llm::upstream::check_base_url(base, ctx.tickets.allow_private_trackers)
            {
                return Err(CoreError::noted(
                    Code::InvalidInput,
                    "ticket_config",
                    format!("base_url: {e}"),
                ));
            }
            let provider = match c.provider {
                TicketProvider::AzureDevops => "azure_devops",
                _ => "github",
            };
            tx.set_ticket_sync(provider, &c.project, op.now_us())
                .await?;
            ctx.scheduler.wake();
        }
        _ => tx.clear_ticket_sync().await?,
    }
    Ok(())
}

/// Turns due syncs into queue jobs (the scheduler calls it); how many it looked at.
pub(crate) async fn fire_due(ctx: &Ctx, now: i64) -> Result<usize, warden_store::StoreError> {
    if !ctx.license.feature(Feature::TicketSync) {
        return Ok(0);
    }
    let every = i64::try_from(ctx.tickets.sync_every.as_micros()).unwrap_or(i64::MAX / 4);
    let mut tx = ctx.store.begin_jobs().await?;
    let due = tx.due_ticket_syncs(now, BATCH).await?;
    let mut fired = 0;
    for (ws, at) in &due {
        if !tx.advance_ticket_sync(*ws, *at, now + every).await? {
            continue;
        }
        let payload = json!({ "workspace_id": ws }).to_string();
        let key = format!("ticket-sync:{ws}:{at}");
        tx.tx()
            .enqueue_job(&NewJob {
                kind: KIND,
                workspace_id: Some(*ws),
                dedupe_key: Some(&key),
                payload: &payload,
                max_attempts: 1,
                run_at: now,
                now,
            })
            .await?;
        fired += 1;
    }
    tx.commit().await?;
    if fired > 0 {
        ctx.jobs.wake();
    }
    Ok(due.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_statuses_map_to_tracker_states_and_back() {
        assert_eq!(tracker_state("done"), CLOSED_COMPLETED);
        assert_eq!(tracker_state("rejected"), CLOSED_NOT_PLANNED);
        assert_eq!(tracker_state("in_development"), OPEN);
        use TicketStatus::*;
        assert_eq!(status_for(CLOSED_COMPLETED, ReadyForQa), Some(Done));
        assert_eq!(status_for(CLOSED_NOT_PLANNED, Backlog), Some(Rejected));
        assert_eq!(status_for(OPEN, Done), Some(Backlog));
        assert_eq!(status_for(OPEN, InDevelopment), None);
        assert_eq!(status_for(CLOSED_COMPLETED, Done), None);
    }
}
