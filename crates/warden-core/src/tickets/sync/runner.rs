//! One run of a workspace's ticket sync (a `tickets.sync` job): read the tracker's changes —
//! issues, then comments — and then write Warden's (states that moved here, comments written
//! here), by the rules in the parent module. One run per workspace at a time; its outcome is
//! recorded on the workspace's sync and audited.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;
use warden_domain::access::Permission;
use warden_domain::audit::{Actor, Outcome};
use warden_domain::identity::Principal;
use warden_domain::tenancy::{TicketConfig, WorkspaceId};
use warden_domain::tickets::{BODY_MAX, TicketStatus, check_labels, transition};
use warden_store::jobs::ClaimedJob;
use warden_store::tenancy::{SecretKind, WorkspaceGrant, WorkspaceTx};
use warden_store::ticket_sync::{NewComment, SyncOutcome, SyncRow};
use warden_store::tickets::NewTicket;

use super::http::CallError;
use super::tracker::{RemoteIssue, Tracker};
use super::{OPEN, STALE_RUN_US, status_for, tracker_state};
use crate::jobs::{Done, Failed};
use crate::op::unix_us;
use crate::{CoreError, Ctx, Op, Origin};

/// Pages (of 100) of issues, and of comments, read in one run; the next run goes on.
const PAGES_PER_RUN: usize = 20;

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
    let store_err = |e: warden_store::StoreError| Failed::retry(e.to_string());
    let mut tx = ctx.store.begin_jobs().await.map_err(store_err)?;
    let Some(row) = tx.ticket_sync_of(ws).await.map_err(store_err)? else {
        return Ok(Done::Finished);
    };
    // Read the clock only now that the transaction holds its lock, so the start mark is
    // not older than a run that ended while this one waited.
    let now = unix_us(ctx.clock.now());
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
        Some(until) => Err(SyncError::Call(CallError::RateLimited(
            if row.provider == "azure_devops" {
                "Azure DevOps"
            } else {
                "GitHub"
            },
            until / 1_000_000,
        ))),
        None => sync(ctx, &row, &mut outcome).await,
    };
    if let Err(e) = result {
        if let SyncError::Call(CallError::RateLimited(_, until)) = &e {
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
    let who = Principal::for_job(row.acting_for, row.workspace_id);
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
            .filter(|c| Tracker::syncs(c.provider))
            .ok_or_else(|| SyncError::Setup("the ticket source is no longer synced".into()))?;
        let sealed = tx.sealed_secret(SecretKind::Pat, "pat").await?;
        tx.commit().await?;
        let sealed = sealed.ok_or_else(|| {
            SyncError::Setup(
                "the workspace has no personal access token to reach its tracker".into(),
            )
        })?;
        let token = crate::secrets::open_value(ctx, ws, SecretKind::Pat, "pat", &sealed)
            .map_err(|e| SyncError::Setup(e.to_owned()))?;
        (config, token)
    };
    let clock = ctx.clock.clone();
    let gh = Tracker::for_source(
        &config,
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
        let changed = pull_issues(ctx, &op, &grant, &gh, &config, &mut cursor, out).await?;
        pull_comments(ctx, &grant, &gh, &mut cursor, &changed, out).await?;
        push(ctx, &op, &grant, &gh, out).await
    }
    .await;
    out.cursor = serde_json::to_string(&cursor).ok();
    result
}

/// Imports the issues changed since the cursor; the ids of those that mirror a ticket.
async fn pull_issues(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    gh: &Tracker,
    config: &TicketConfig,
    cursor: &mut Cursor,
    out: &mut SyncOutcome,
) -> Result<Vec<String>, SyncError> {
    let mut next: Option<String> = None;
    let mut changed = Vec::new();
    for _ in 0..PAGES_PER_RUN {
        let page = gh.issues(cursor.issues.as_deref(), next.as_deref()).await?;
        let mut tx = ctx.store.scoped(grant).await?;
        for issue in &page.items {
            if selected(issue, config)
                && import_issue(ctx, op, &mut tx, grant, gh, issue, out).await?
            {
                changed.push(issue.id.clone());
            }
        }
        tx.commit().await?;
        if let Some(c) = page.cursor {
            cursor.issues = Some(c);
        }
        match page.next {
            Some(n) => next = Some(n),
            None => break,
        }
    }
    Ok(changed)
}

/// A tracker's link for people, kept only when it is an http(s) address (a page shows it as
/// a link: a `javascript:` one from a hostile tracker must never get there).
fn web_link(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "https" | "http") && url.len() <= 2048 => u.to_string(),
        _ => String::new(),
    }
}

fn selected(issue: &RemoteIssue, config: &TicketConfig) -> bool {
    config.labels.is_empty()
        || issue
            .labels
            .iter()
            .any(|l| config.labels.iter().any(|c| c.eq_ignore_ascii_case(l)))
}

/// A tracker's title, body and labels made to fit a ticket.
fn fitted(issue: &RemoteIssue) -> (String, String, Vec<String>) {
    let line: String = issue
        .title
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect();
    let title = match line.trim() {
        "" => format!("Issue {}", issue.id),
        t => t.to_owned(),
    };
    let mut body = issue.body.replace('\0', "");
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
        .map(|l| l.chars().take(100).collect())
        .take(20)
        .collect();
    let labels = check_labels(&names).unwrap_or_default();
    (title, body, labels)
}

/// Imports or updates one issue; whether it mirrors a ticket (new or not).
async fn import_issue(
    ctx: &Ctx,
    op: &Op,
    tx: &mut WorkspaceTx,
    grant: &WorkspaceGrant,
    tracker: &Tracker,
    issue: &RemoteIssue,
    out: &mut SyncOutcome,
) -> Result<bool, SyncError> {
    let external = issue.id.clone();
    let remote = issue.state;
    let (title, body, labels) = fitted(issue);
    let labels_json = serde_json::to_string(&labels).unwrap_or_else(|_| "[]".into());
    let Some(ticket) = tx.ticket_by_external(&external).await? else {
        if remote != OPEN {
            return Ok(false);
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
        tx.link_external(id, &external, &web_link(&issue.url), remote)
            .await?;
        let event = op.event(
            "ticket.created",
            "ticket",
            Some(id.to_string()),
            json!({ "number": number, "title": title, "body_bytes": body.len(),
                    "labels": labels, "via": "ticket-sync", "issue": issue.id,
                    "acting_for": grant.user_id().to_string() }),
        );
        tx.record(&ctx.audit_key, event).await?;
        out.imported += 1;
        return Ok(true);
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
                    "labels": labels, "via": "ticket-sync", "issue": issue.id }),
        );
        tx.record(&ctx.audit_key, event).await?;
        out.imported += 1;
    }
    let seen = ticket.external_state.as_deref().unwrap_or(OPEN);
    let synced = ticket.synced_state.as_deref().unwrap_or(OPEN);
    if tracker_state(&ticket.status) != synced || remote == seen {
        // Moved here since (Warden wins: the push sets the issue), or nothing changed there.
        return Ok(true);
    }
    let current = TicketStatus::parse(&ticket.status)
        .ok_or_else(|| CoreError::internal(&"stored ticket status is not a status"))?;
    // The ticket's status after this: moved, or (refused, or no move needed) where it is.
    let mut now_stands = current;
    if let Some(target) = status_for(remote, current) {
        let rule = transition(current, target);
        let allowed = rule.is_some_and(|r| grant.holds(r.needs));
        let summary = json!({ "number": ticket.number, "from": current.as_str(),
            "to": target.as_str(), "via": "ticket-sync", "issue": issue.id,
            "reason": format!("{} {} is {}", tracker.name(), issue.id, remote.replace(':', ", ")),
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
    Ok(true)
}

/// Imports the comments changed since the cursor, on synced tickets.
async fn pull_comments(
    ctx: &Ctx,
    grant: &WorkspaceGrant,
    gh: &Tracker,
    cursor: &mut Cursor,
    changed: &[String],
    out: &mut SyncOutcome,
) -> Result<(), SyncError> {
    let mut next: Option<String> = None;
    for _ in 0..PAGES_PER_RUN {
        let page = gh
            .comments(cursor.comments.as_deref(), next.as_deref(), changed)
            .await?;
        let mut tx = ctx.store.scoped(grant).await?;
        for c in &page.items {
            let Some(ticket) = tx.ticket_by_external(&c.issue).await? else {
                continue;
            };
            let body = c.body.replace('\0', "");
            let external = c.id.clone();
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
            let author: String = c.author.chars().take(200).collect();
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
        if let Some(c) = page.cursor {
            cursor.comments = Some(c);
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
    gh: &Tracker,
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
        let Some(number) = t.external_id.as_deref() else {
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
        let issue = tx.ticket(c.ticket_id).await?.and_then(|t| t.external_id);
        tx.commit().await?;
        let Some(issue) = issue else { continue };
        let body = format!("{}\n\n— {} in Warden", c.body.trim_end(), c.author_name);
        let made = gh
            .add_comment(&issue, &body, &crate::tickets::comments::marker(c.id))
            .await?;
        let mut tx = ctx.store.scoped(grant).await?;
        tx.set_comment_external(c.id, &made).await?;
        tx.commit().await?;
        out.pushed += 1;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_web_links_are_kept() {
        assert_eq!(
            web_link("https://github.com/a/b/issues/1"),
            "https://github.com/a/b/issues/1"
        );
        for bad in [
            "javascript:alert(1)",
            "data:text/html,x",
            "JAVASCRIPT:alert(1)",
            "//x",
            "",
        ] {
            assert_eq!(web_link(bad), "", "{bad}");
        }
    }
}
