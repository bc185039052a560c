//! Ticket sync (licence module `ticket-sync`): a workspace whose ticket source is a GitHub
//! repository gets its issues imported as tickets and kept in step both ways — state and
//! comments — on a schedule, through the work queue, with the workspace's personal access
//! token. It acts for the person who last saved the ticket source.
//!
//! The rules (README, "Ticket sync"):
//! - An open issue with no ticket becomes one in the backlog (closed issues never seen
//!   before are left alone); the configured labels, if any, select which issues.
//! - Title, body and labels come from the tracker: when an issue changes there, its ticket
//!   takes them (an edit made here lasts until then).
//! - State: a ticket `done` is the issue closed as completed, `rejected` closed as not
//!   planned, any other status open. Each synced ticket remembers the issue's state as last
//!   seen or set, and what its own status stood for then. When the ticket moved here since,
//!   Warden wins: the issue is set to match.
//!   Otherwise, when the issue's state changed there, the ticket moves (closed → `done` or
//!   `rejected`, reopened → `backlog`) if that move exists from where it stands and the
//!   person the sync acts for holds its permission; if not, the refusal is audited and the
//!   ticket stays (the issue keeps its state until either side changes again).
//! - Comments are appended both ways and never edited or deleted by the sync: a tracker's
//!   comment is imported once (keyed on its id), a comment written here goes out once (it
//!   carries a marker naming it, so reading it back does not import it).
//! - The rate limit is honoured (`x-ratelimit-*`, `retry-after`): the run stops and the
//!   next one waits for the reset. Every run records its outcome; the last error is shown.

pub mod github;

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;
use warden_domain::access::Permission;
use warden_domain::audit::{Actor, Outcome};
use warden_domain::identity::Principal;
use warden_domain::license::Feature;
use warden_domain::tenancy::{TicketConfig, TicketProvider, WorkspaceId};
use warden_domain::tickets::{BODY_MAX, TicketStatus, check_labels, transition};
use warden_store::jobs::{ClaimedJob, NewJob};
use warden_store::tenancy::{SecretKind, WorkspaceGrant, WorkspaceTx};
use warden_store::ticket_sync::{NewComment, SyncOutcome, SyncRow};
use warden_store::tickets::NewTicket;

use self::github::{CallError, GitHub, Issue};
use crate::jobs::{Done, Failed};
use crate::op::unix_us;
use crate::{Code, CoreError, CoreResult, Ctx, Op, Origin};

/// The sync job's kind.
pub const KIND: &str = "tickets.sync";
/// An open issue.
pub const OPEN: &str = "open";
/// An issue closed as completed.
pub const CLOSED_COMPLETED: &str = "closed:completed";
/// An issue closed as not planned.
pub const CLOSED_NOT_PLANNED: &str = "closed:not_planned";
/// Pages (of 100) of issues, and of comments, read in one run; the next run goes on.
const PAGES_PER_RUN: usize = 20;
/// Due workspaces handled per scheduler pass.
const BATCH: i64 = 200;
/// A run started this long ago and not finished died with its node (µs).
const STALE_RUN_US: i64 = 30 * 60 * 1_000_000;

/// The tracker state a ticket's status stands for.
pub fn tracker_state(status: &str) -> &'static str {
    match status {
        "done" => CLOSED_COMPLETED,
        "rejected" => CLOSED_NOT_PLANNED,
        _ => OPEN,
    }
}

/// Where a ticket goes when its issue's state changed in the tracker (`None`: it stays).
fn status_for(remote: &str, current: TicketStatus) -> Option<TicketStatus> {
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

/// Whether Warden syncs tickets with this tracker.
pub fn syncs(provider: TicketProvider) -> bool {
    provider == TicketProvider::Github
}

/// A workspace's sync, as the API and the console show it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncState {
    /// The tracker (`github`).
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
        Some(c) if syncs(c.provider) => {
            let base = c.base_url.as_deref().unwrap_or(github::DEFAULT_BASE);
            if let Err(e) =
                warden_llm::upstream::check_base_url(base, ctx.tickets.allow_private_trackers)
            {
                return Err(CoreError::noted(
                    Code::InvalidInput,
                    "ticket_config",
                    format!("base_url: {e}"),
                ));
            }
            tx.set_ticket_sync("github", &c.project, op.now_us())
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

#[derive(Deserialize)]
struct Payload {
    workspace_id: Uuid,
}

/// Where reading the tracker resumes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Cursor {
    #[serde(default)]
    issues: Option<String>,
    #[serde(default)]
    comments: Option<String>,
}

/// Runs one sync of a workspace (the queue calls it). Its outcome is recorded on the
/// workspace's sync, not as a job failure: the schedule tries again.
pub(crate) async fn run(ctx: &Arc<Ctx>, job: &ClaimedJob) -> Result<Done, Failed> {
    let p: Payload = serde_json::from_str(&job.payload)
        .map_err(|_| Failed::permanent("the job's payload is not a ticket sync's"))?;
    let ws = p.workspace_id;
    let now = unix_us(ctx.clock.now());
    let store_err = |e: warden_store::StoreError| Failed::retry(e.to_string());
    let mut tx = ctx.store.begin_jobs().await.map_err(store_err)?;
    let Some(row) = tx.ticket_sync_of(ws).await.map_err(store_err)? else {
        return Ok(Done::Finished);
    };
    // One run per workspace at a time; a run older than the stale mark died with its node.
    if !tx
        .ticket_sync_started(ws, now, now - STALE_RUN_US)
        .await
        .map_err(store_err)?
    {
        return Ok(Done::Later(std::time::Duration::from_secs(2)));
    }
    tx.commit().await.map_err(store_err)?;

    let mut outcome = SyncOutcome::default();
    let held = row.rate_limited_until.filter(|until| *until > now);
    let result = match held {
        // Still held by the rate limit: no call until the reset.
        Some(until) => Err(SyncError::Call(CallError::RateLimited(until / 1_000_000))),
        None => sync(ctx, &row, &mut outcome).await,
    };
    if let Err(e) = result {
        if let SyncError::Call(CallError::RateLimited(until)) = &e {
            outcome.rate_limited_until = Some(until.saturating_mul(1_000_000));
        }
        outcome.error = Some(e.to_string());
    }
    let now = unix_us(ctx.clock.now());
    let op = Op::new(Actor::system(), Origin::default(), ctx.clock.as_ref());
    let mut event = op.event_with(
        "ticket_sync.ran",
        "workspace",
        Some(ws.to_string()),
        if outcome.error.is_some() {
            Outcome::Failed
        } else {
            Outcome::Success
        },
        json!({ "provider": row.provider, "project": row.project,
                "acting_for": row.acting_for.to_string(),
                "imported": outcome.imported, "pushed": outcome.pushed,
                "error": outcome.error }),
    );
    event.workspace_id = Some(ws.to_string());
    let mut tx = ctx.store.begin_jobs().await.map_err(store_err)?;
    tx.ticket_sync_finished(ws, &outcome, now)
        .await
        .map_err(store_err)?;
    tx.tx()
        .record(&ctx.audit_key, &event)
        .await
        .map_err(store_err)?;
    tx.commit().await.map_err(store_err)?;
    Ok(Done::Finished)
}

/// Why a run stopped, in words safe to show.
#[derive(Debug)]
enum SyncError {
    Call(CallError),
    Setup(String),
    Core(CoreError),
}

impl std::fmt::Display for SyncError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Call(e) => e.fmt(f),
            Self::Setup(s) => f.write_str(s),
            Self::Core(e) => write!(f, "Warden could not record the sync ({})", e.code.as_str()),
        }
    }
}

impl From<CallError> for SyncError {
    fn from(e: CallError) -> Self {
        Self::Call(e)
    }
}

impl From<CoreError> for SyncError {
    fn from(e: CoreError) -> Self {
        Self::Core(e)
    }
}

impl From<warden_store::tenancy::Refusal> for SyncError {
    fn from(e: warden_store::tenancy::Refusal) -> Self {
        Self::Core(e.into())
    }
}

impl From<warden_store::StoreError> for SyncError {
    fn from(e: warden_store::StoreError) -> Self {
        Self::Core(e.into())
    }
}

/// One run: read the tracker's changes, then write ours.
async fn sync(ctx: &Arc<Ctx>, row: &SyncRow, out: &mut SyncOutcome) -> Result<(), SyncError> {
    let ws = WorkspaceId::from_uuid(row.workspace_id);
    let who = Principal::session(row.acting_for, row.workspace_id);
    let grant = ctx
        .store
        .authorize(&who, ws, Permission::TICKETS_UPDATE)
        .await
        .map_err(|_| {
            SyncError::Setup(
                "the person who set up the ticket source may no longer update tickets here; \
                 someone who may should save it again"
                    .into(),
            )
        })?;
    let (config, token) = {
        let mut tx = ctx.store.scoped(&grant).await?;
        let w = tx.get().await?;
        let config = w
            .ticket_config
            .as_deref()
            .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok())
            .and_then(|v| TicketConfig::parse(&v).ok())
            .filter(|c| syncs(c.provider))
            .ok_or_else(|| SyncError::Setup("the ticket source is no longer GitHub".into()))?;
        let sealed = tx.sealed_secret(SecretKind::Pat, "pat").await?;
        tx.commit().await?;
        let sealed = sealed.ok_or_else(|| {
            SyncError::Setup("the workspace has no personal access token to reach GitHub".into())
        })?;
        let token = crate::secrets::open_value(ctx, ws, SecretKind::Pat, "pat", &sealed)
            .map_err(|e| SyncError::Setup(e.to_owned()))?;
        (config, token)
    };
    let clock = ctx.clock.clone();
    let gh = GitHub::new(
        config.base_url.as_deref().unwrap_or(github::DEFAULT_BASE),
        &config.project,
        token,
        ctx.tickets.allow_private_trackers,
        Arc::new(move || clock.now().unix_timestamp()),
    )?;
    let mut cursor: Cursor = row
        .cursor
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_default();
    let op = Op::new(Actor::system(), Origin::default(), ctx.clock.as_ref());
    let result = async {
        pull_issues(ctx, &op, &grant, &gh, &config, &mut cursor, out).await?;
        pull_comments(ctx, &grant, &gh, &mut cursor, out).await?;
        push(ctx, &op, &grant, &gh, out).await
    }
    .await;
    out.cursor = serde_json::to_string(&cursor).ok();
    result
}

/// Imports the issues changed since the cursor.
async fn pull_issues(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    gh: &GitHub,
    config: &TicketConfig,
    cursor: &mut Cursor,
    out: &mut SyncOutcome,
) -> Result<(), SyncError> {
    let mut next: Option<String> = None;
    for _ in 0..PAGES_PER_RUN {
        let page = gh.issues(cursor.issues.as_deref(), next.as_deref()).await?;
        let mut tx = ctx.store.scoped(grant).await?;
        for issue in &page.items {
            if issue.pull_request.is_none() && selected(issue, config) {
                import_issue(ctx, op, &mut tx, grant, issue, out).await?;
            }
        }
        tx.commit().await?;
        if let Some(last) = page.items.last() {
            cursor.issues = Some(last.updated_at.clone());
        }
        match page.next {
            Some(n) => next = Some(n),
            None => break,
        }
    }
    Ok(())
}

fn selected(issue: &Issue, config: &TicketConfig) -> bool {
    config.labels.is_empty()
        || issue.labels.iter().any(|l| {
            config
                .labels
                .iter()
                .any(|c| c.eq_ignore_ascii_case(&l.name))
        })
}

/// A tracker's title, body and labels made to fit a ticket.
fn fitted(issue: &Issue) -> (String, String, Vec<String>) {
    let line: String = issue
        .title
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    let title = match line.trim() {
        "" => format!("Issue {}", issue.number),
        t => t.to_owned(),
    };
    let mut body = issue.body.clone().unwrap_or_default().replace('\0', "");
    if body.len() > BODY_MAX {
        let mut end = BODY_MAX - 64;
        while !body.is_char_boundary(end) {
            end -= 1;
        }
        body.truncate(end);
        body.push_str("\n\n… (cut; the whole text is in the tracker)");
    }
    let names: Vec<String> = issue
        .labels
        .iter()
        .map(|l| l.name.chars().take(100).collect())
        .take(20)
        .collect();
    let labels = check_labels(&names).unwrap_or_default();
    (title, body, labels)
}

async fn import_issue(
    ctx: &Ctx,
    op: &Op,
    tx: &mut WorkspaceTx,
    grant: &WorkspaceGrant,
    issue: &Issue,
    out: &mut SyncOutcome,
) -> Result<(), SyncError> {
    let external = issue.number.to_string();
    let remote = issue.sync_state();
    let (title, body, labels) = fitted(issue);
    let labels_json = serde_json::to_string(&labels).unwrap_or_else(|_| "[]".into());
    let Some(ticket) = tx.ticket_by_external(&external).await? else {
        if remote != OPEN {
            return Ok(());
        }
        let id = Uuid::now_v7();
        let number = tx
            .insert_ticket(&NewTicket {
                id,
                title: &title,
                body: &body,
                labels: &labels_json,
                assignee_id: None,
                now: op.now_us(),
            })
            .await?;
        tx.link_external(id, &external, &issue.html_url, remote)
            .await?;
        let event = op.event(
            "ticket.created",
            "ticket",
            Some(id.to_string()),
            json!({ "number": number, "title": title, "body_bytes": body.len(),
                    "labels": labels, "via": "ticket-sync", "issue": issue.number,
                    "acting_for": grant.user_id().to_string() }),
        );
        tx.record(&ctx.audit_key, event).await?;
        out.imported += 1;
        return Ok(());
    };
    if ticket.title != title || ticket.body != body || ticket.labels != labels_json {
        tx.update_ticket(
            ticket.id,
            &title,
            &body,
            &labels_json,
            ticket.assignee_id,
            op.now_us(),
        )
        .await?;
        let event = op.event(
            "ticket.updated",
            "ticket",
            Some(ticket.id.to_string()),
            json!({ "number": ticket.number, "title": title, "body_bytes": body.len(),
                    "labels": labels, "via": "ticket-sync", "issue": issue.number }),
        );
        tx.record(&ctx.audit_key, event).await?;
        out.imported += 1;
    }
    let seen = ticket.external_state.as_deref().unwrap_or(OPEN);
    let synced = ticket.synced_state.as_deref().unwrap_or(OPEN);
    if tracker_state(&ticket.status) != synced || remote == seen {
        // Moved here since (Warden wins: the push sets the issue), or nothing changed there.
        return Ok(());
    }
    let current = TicketStatus::parse(&ticket.status)
        .ok_or_else(|| CoreError::internal(&"stored ticket status is not a status"))?;
    // The ticket's status after this: moved, or (refused, or no move needed) where it is.
    let mut now_stands = current;
    if let Some(target) = status_for(remote, current) {
        let rule = transition(current, target);
        let allowed = rule.is_some_and(|r| grant.holds(r.needs));
        let summary = json!({ "number": ticket.number, "from": current.as_str(),
            "to": target.as_str(), "via": "ticket-sync", "issue": issue.number,
            "reason": format!("issue {} is {} in GitHub", issue.number, remote.replace(':', ", ")),
            "acting_for": grant.user_id().to_string(),
            "permission": rule.map(|r| r.needs.to_string()) });
        if allowed
            && tx
                .move_ticket(ticket.id, current.as_str(), target.as_str(), op.now_us())
                .await?
        {
            let event = op.event(
                "ticket.moved",
                "ticket",
                Some(ticket.id.to_string()),
                summary,
            );
            tx.record(&ctx.audit_key, event).await?;
            crate::workflows::ticket_moved(ctx, op, tx, ticket.id, target.as_str()).await?;
            now_stands = target;
            out.imported += 1;
        } else {
            let event = op.event_with(
                "ticket.moved",
                "ticket",
                Some(ticket.id.to_string()),
                Outcome::Denied,
                summary,
            );
            tx.record(&ctx.audit_key, event).await?;
        }
    }
    // A refused move leaves the two sides apart until either changes again: the issue's
    // state is noted as seen, the ticket's as unchanged, so neither is pushed back.
    tx.set_external_state(ticket.id, remote, tracker_state(now_stands.as_str()))
        .await?;
    Ok(())
}

/// Imports the comments changed since the cursor, on synced tickets.
async fn pull_comments(
    ctx: &Ctx,
    grant: &WorkspaceGrant,
    gh: &GitHub,
    cursor: &mut Cursor,
    out: &mut SyncOutcome,
) -> Result<(), SyncError> {
    let mut next: Option<String> = None;
    for _ in 0..PAGES_PER_RUN {
        let page = gh
            .comments(cursor.comments.as_deref(), next.as_deref())
            .await?;
        let mut tx = ctx.store.scoped(grant).await?;
        for c in &page.items {
            let Some(number) = c.issue_number() else {
                continue;
            };
            let Some(ticket) = tx.ticket_by_external(&number.to_string()).await? else {
                continue;
            };
            let body = c.body.clone().unwrap_or_default().replace('\0', "");
            let external = c.id.to_string();
            if let Some(ours) = crate::tickets::comments::marked_id(&body)
                && tx
                    .ticket_comments(ticket.id)
                    .await?
                    .iter()
                    .any(|m| m.id == ours)
            {
                // Ours, read back: note its id there if the push did not get to.
                let _ = tx.set_comment_external(ours, &external).await?;
                continue;
            }
            if body.len() > BODY_MAX {
                continue;
            }
            let author = c
                .user
                .as_ref()
                .map_or_else(|| "someone on GitHub".to_owned(), |u| u.login.clone());
            let written = time::OffsetDateTime::parse(
                &c.created_at,
                &time::format_description::well_known::Rfc3339,
            )
            .map_or_else(
                |_| unix_us(ctx.clock.now()),
                |t| i64::try_from(t.unix_timestamp_nanos() / 1000).unwrap_or(0),
            );
            if tx
                .insert_comment(&NewComment {
                    ticket_id: ticket.id,
                    body: &body,
                    author_id: None,
                    author_name: &author,
                    external_id: Some(&external),
                    created_at: written,
                })
                .await?
                .is_some()
            {
                out.imported += 1;
            }
        }
        tx.commit().await?;
        if let Some(last) = page.items.last() {
            cursor.comments = Some(last.updated_at.clone());
        }
        match page.next {
            Some(n) => next = Some(n),
            None => break,
        }
    }
    Ok(())
}

/// Writes our side: states that moved here, then comments written here.
async fn push(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    gh: &GitHub,
    out: &mut SyncOutcome,
) -> Result<(), SyncError> {
    let tickets = {
        let mut tx = ctx.store.scoped(grant).await?;
        let t = tx.synced_tickets().await?;
        tx.commit().await?;
        t
    };
    for t in tickets {
        let local = tracker_state(&t.status);
        if t.synced_state.as_deref() == Some(local) {
            continue;
        }
        let Some(number) = t.external_id.as_deref().and_then(|n| n.parse::<i64>().ok()) else {
            continue;
        };
        gh.set_state(number, local).await?;
        let mut tx = ctx.store.scoped(grant).await?;
        tx.set_external_state(t.id, local, local).await?;
        let event = op.event(
            "ticket_sync.pushed",
            "ticket",
            Some(t.id.to_string()),
            json!({ "number": t.number, "issue": number, "state": local }),
        );
        tx.record(&ctx.audit_key, event).await?;
        tx.commit().await?;
        out.pushed += 1;
    }
    let comments = {
        let mut tx = ctx.store.scoped(grant).await?;
        let c = tx.unexported_comments(500).await?;
        tx.commit().await?;
        c
    };
    for c in comments {
        let mut tx = ctx.store.scoped(grant).await?;
        let issue = tx
            .ticket(c.ticket_id)
            .await?
            .and_then(|t| t.external_id)
            .and_then(|n| n.parse::<i64>().ok());
        tx.commit().await?;
        let Some(issue) = issue else { continue };
        let body = format!(
            "{}\n\n— {} in Warden\n\n{}",
            c.body.trim_end(),
            c.author_name,
            crate::tickets::comments::marker(c.id)
        );
        let made = gh.add_comment(issue, &body).await?;
        let mut tx = ctx.store.scoped(grant).await?;
        tx.set_comment_external(c.id, &made.id.to_string()).await?;
        tx.commit().await?;
        out.pushed += 1;
    }
    Ok(())
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
