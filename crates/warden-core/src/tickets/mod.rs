//! Tickets: a workspace's work items, numbered within it, moving backlog → ready for
//! development → in development → ready for QA → done (or rejected). Which move exists and
//! which permission it needs is `warden_domain::tickets::transition`; every move is audited
//! with who made it and why. Starting development can open an agent session with the
//! workspace's `development` prompt and the ticket as its context.

pub mod comments;
pub mod markdown;
pub mod sync;

use serde::Serialize;
use serde_json::json;
use uuid::Uuid;
use warden_domain::access::Permission;
use warden_domain::audit::Outcome;
use warden_domain::tickets::{
    TicketStatus, check_body, check_labels, check_reason, check_title, transition,
};
use warden_store::tenancy::{WorkspaceGrant, WorkspaceTx};
use warden_store::tickets::{NewTicket, TicketQuery, TicketRow};

use crate::sessions::StartSession;
use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// The name of the workspace prompt that opens a ticket's development session.
pub const DEVELOPMENT_PROMPT: &str = "development";

/// A ticket as the API, the console and agents read it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ticket {
    /// Id.
    pub id: Uuid,
    /// Workspace.
    pub workspace_id: Uuid,
    /// Number within the workspace (`#12`).
    pub number: i64,
    /// Title.
    pub title: String,
    /// Markdown body, as written.
    pub body: String,
    /// `backlog`, `ready_for_development`, `in_development`, `ready_for_qa`, `done` or
    /// `rejected`.
    pub status: String,
    /// Who works on it.
    pub assignee_id: Option<Uuid>,
    /// Labels.
    pub labels: Vec<String>,
    /// Who wrote it.
    pub created_by: Uuid,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Last changed (RFC 3339).
    pub updated_at: String,
    /// The tracker issue it mirrors, for a synced ticket.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_url: Option<String>,
}

impl Ticket {
    fn from_row(row: TicketRow) -> Self {
        Self {
            id: row.id,
            workspace_id: row.workspace_id,
            number: row.number,
            labels: serde_json::from_str(&row.labels).unwrap_or_default(),
            title: row.title,
            body: row.body,
            status: row.status,
            assignee_id: row.assignee_id,
            created_by: row.created_by,
            created_at: crate::op::rfc3339(row.created_at),
            updated_at: crate::op::rfc3339(row.updated_at),
            external_url: row.external_url.filter(|u| !u.is_empty()),
        }
    }
}

/// A ticket with its body rendered and the sessions that worked on it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TicketDetail {
    /// The ticket.
    #[serde(flatten)]
    pub ticket: Ticket,
    /// The body as safe HTML (raw HTML shown as text; links only to http, https, mailto).
    pub body_html: String,
    /// Sessions linked to it, oldest first.
    pub session_ids: Vec<Uuid>,
}

/// A ticket to write or the new text of one, parsed.
#[derive(Debug, Clone)]
pub struct TicketInput {
    title: String,
    body: String,
    labels: Vec<String>,
    assignee: Option<Uuid>,
}

impl TicketInput {
    /// Parses a title, a Markdown body, labels and an assignee (a user id).
    pub fn parse(
        title: &str,
        body: &str,
        labels: &[String],
        assignee: Option<&str>,
    ) -> CoreResult<Self> {
        let title = check_title(title)?;
        check_body(body)?;
        let labels = check_labels(labels)?;
        let assignee = assignee
            .map(|a| {
                a.parse::<Uuid>()
                    .map_err(|_| CoreError::invalid("assignee_id", "must be a user id"))
            })
            .transpose()?;
        Ok(Self {
            title,
            body: body.to_owned(),
            labels,
            assignee,
        })
    }
}

/// What to search for.
#[derive(Debug, Clone, Default)]
pub struct Search {
    query: TicketQuery,
}

impl Search {
    /// Parses a search: words (at most 200 characters), a status, a label, a limit (1–200,
    /// default 50).
    pub fn parse(
        text: Option<&str>,
        status: Option<&str>,
        label: Option<&str>,
        limit: Option<i64>,
    ) -> CoreResult<Self> {
        let text = text.map(str::trim).filter(|t| !t.is_empty());
        if text.is_some_and(|t| t.chars().count() > 200) {
            return Err(CoreError::invalid("q", "must be at most 200 characters"));
        }
        let status =
            status
                .map(|s| {
                    TicketStatus::parse(s).map(|s| s.as_str().to_owned()).ok_or_else(|| {
                    CoreError::invalid(
                        "status",
                        "must be backlog, ready_for_development, in_development, ready_for_qa, \
                         done or rejected",
                    )
                })
                })
                .transpose()?;
        let limit = limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(CoreError::invalid("limit", "must be 1 to 200"));
        }
        Ok(Self {
            query: TicketQuery {
                text: text.map(str::to_owned),
                status,
                label: label
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned),
                limit,
            },
        })
    }
}

/// A ticket named in a path: its number in the workspace (`12` or `#12`) or its id. One that
/// parses as neither names no ticket.
pub(crate) async fn find(tx: &mut WorkspaceTx, reference: &str) -> CoreResult<TicketRow> {
    let reference = reference.trim();
    let found = if let Ok(id) = reference.parse::<Uuid>() {
        tx.ticket(id).await?
    } else if let Ok(n) = reference.trim_start_matches('#').parse::<i64>() {
        tx.ticket_by_number(n).await?
    } else {
        None
    };
    Ok(found.ok_or(Code::NotFound)?)
}

fn labels_json(labels: &[String]) -> CoreResult<String> {
    serde_json::to_string(labels).map_err(|e| CoreError::internal(&e))
}

async fn check_assignee(tx: &mut WorkspaceTx, assignee: Option<Uuid>) -> CoreResult<()> {
    if let Some(a) = assignee
        && !tx.is_active_member(a).await?
    {
        return Err(CoreError::invalid(
            "assignee_id",
            "must be an active member of the workspace",
        ));
    }
    Ok(())
}

/// Writes a ticket into the backlog.
pub async fn create(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    input: TicketInput,
) -> CoreResult<Ticket> {
    let mut tx = ctx.store.scoped(grant).await?;
    let row = create_in(ctx, op, &mut tx, input).await?;
    tx.commit().await?;
    Ok(Ticket::from_row(row))
}

/// Writes a ticket in an open transaction (the API's and an agent's use case share it).
pub(crate) async fn create_in(
    ctx: &Ctx,
    op: &Op,
    tx: &mut WorkspaceTx,
    input: TicketInput,
) -> CoreResult<TicketRow> {
    check_assignee(tx, input.assignee).await?;
    let id = Uuid::now_v7();
    let labels = labels_json(&input.labels)?;
    let number = tx
        .insert_ticket(&NewTicket {
            id,
            title: &input.title,
            body: &input.body,
            labels: &labels,
            assignee_id: input.assignee,
            now: op.now_us(),
        })
        .await?;
    let event = op.event(
        "ticket.created",
        "ticket",
        Some(id.to_string()),
        json!({ "number": number, "title": input.title, "body_bytes": input.body.len(),
                "labels": input.labels }),
    );
    tx.record(&ctx.audit_key, event).await?;
    Ok(tx.ticket(id).await?.ok_or(Code::NotFound)?)
}

/// The workspace's tickets matching a search, newest first.
pub async fn list(ctx: &Ctx, grant: &WorkspaceGrant, search: &Search) -> CoreResult<Vec<Ticket>> {
    let mut tx = ctx.store.scoped(grant).await?;
    let rows = tx.tickets(&search.query).await?;
    tx.commit().await?;
    Ok(rows.into_iter().map(Ticket::from_row).collect())
}

/// One ticket, rendered, with its sessions.
pub async fn get(ctx: &Ctx, grant: &WorkspaceGrant, reference: &str) -> CoreResult<TicketDetail> {
    let mut tx = ctx.store.scoped(grant).await?;
    let detail = detail_in(&mut tx, reference).await?;
    tx.commit().await?;
    Ok(detail)
}

pub(crate) async fn detail_in(tx: &mut WorkspaceTx, reference: &str) -> CoreResult<TicketDetail> {
    let row = find(tx, reference).await?;
    let session_ids = tx.ticket_sessions(row.id).await?;
    let ticket = Ticket::from_row(row);
    Ok(TicketDetail {
        body_html: markdown::render(&ticket.body),
        ticket,
        session_ids,
    })
}

/// Replaces a ticket's title, body, labels and assignee.
pub async fn update(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    reference: &str,
    input: TicketInput,
) -> CoreResult<Ticket> {
    let mut tx = ctx.store.scoped(grant).await?;
    let row = find(&mut tx, reference).await?;
    check_assignee(&mut tx, input.assignee).await?;
    let labels = labels_json(&input.labels)?;
    tx.update_ticket(
        row.id,
        &input.title,
        &input.body,
        &labels,
        input.assignee,
        op.now_us(),
    )
    .await?;
    let event = op.event(
        "ticket.updated",
        "ticket",
        Some(row.id.to_string()),
        json!({ "number": row.number, "title": input.title, "body_bytes": input.body.len(),
                "labels": input.labels,
                "assignee_id": input.assignee.map(|a| a.to_string()) }),
    );
    tx.record(&ctx.audit_key, event).await?;
    let row = tx.ticket(row.id).await?.ok_or(Code::NotFound)?;
    tx.commit().await?;
    Ok(Ticket::from_row(row))
}

/// Deletes a ticket.
pub async fn delete(ctx: &Ctx, op: &Op, grant: &WorkspaceGrant, reference: &str) -> CoreResult<()> {
    let mut tx = ctx.store.scoped(grant).await?;
    let row = find(&mut tx, reference).await?;
    tx.delete_ticket(row.id).await?;
    let event = op.event(
        "ticket.deleted",
        "ticket",
        Some(row.id.to_string()),
        json!({ "number": row.number, "title": row.title }),
    );
    tx.record(&ctx.audit_key, event).await?;
    tx.commit().await?;
    Ok(())
}

/// A move asked for, parsed.
#[derive(Debug, Clone)]
pub struct Move {
    to: TicketStatus,
    reason: Option<String>,
    start: Option<StartSession>,
}

impl Move {
    /// Parses the status to move to, the reason (needed for rejections, sending work back
    /// and reopening) and, when moving into development, the session to open for it.
    pub fn parse(to: &str, reason: Option<&str>, start: Option<StartSession>) -> CoreResult<Self> {
        let to = TicketStatus::parse(to).ok_or_else(|| {
            CoreError::invalid(
                "to",
                "must be backlog, ready_for_development, in_development, ready_for_qa, done or \
                 rejected",
            )
        })?;
        if start.is_some() && to != TicketStatus::InDevelopment {
            return Err(CoreError::invalid(
                "session",
                "a session opens only when development starts",
            ));
        }
        Ok(Self {
            to,
            reason: reason.map(str::to_owned),
            start,
        })
    }
}

/// What a move did.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Moved {
    /// The ticket after the move.
    pub ticket: Ticket,
    /// The session opened for it, when development started with one.
    pub session_id: Option<Uuid>,
}

/// Moves a ticket to another status, if the workflow has that move and the caller holds the
/// permission it needs (a refusal is audited too). Moving into development with a session
/// opens it on the workspace's `development` prompt followed by the ticket.
pub async fn move_to(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    reference: &str,
    m: Move,
) -> CoreResult<Moved> {
    let mut tx = ctx.store.scoped(grant).await?;
    let row = find(&mut tx, reference).await?;
    let from = TicketStatus::parse(&row.status)
        .ok_or_else(|| CoreError::internal(&"stored ticket status is not a status"))?;
    let Some(rule) = transition(from, m.to) else {
        return Err(Code::TicketMoveUnknown.into());
    };
    let needs_session = m.start.is_some();
    let lacking = [
        Some(rule.needs),
        needs_session.then_some(Permission::SESSIONS_CREATE),
    ]
    .into_iter()
    .flatten()
    .find(|p| !grant.holds(*p));
    if let Some(lacking) = lacking {
        tx.commit().await?;
        let mut tx = ctx.store.scoped(grant).await?;
        let event = op.event_with(
            "ticket.moved",
            "ticket",
            Some(row.id.to_string()),
            Outcome::Denied,
            json!({ "number": row.number, "from": from.as_str(), "to": m.to.as_str(),
                    "needs": lacking.to_string() }),
        );
        tx.record(&ctx.audit_key, event).await?;
        tx.commit().await?;
        return Err(Code::TicketMoveForbidden.into());
    }
    let reason = check_reason(m.reason.as_deref(), rule.needs_reason)?;
    let prompt = match &m.start {
        Some(_) => Some(development_prompt(&mut tx, &row).await?),
        None => None,
    };
    tx.commit().await?;

    let session_id = match m.start {
        Some(start) => {
            let start = start.with_prompt(prompt.unwrap_or_default())?;
            Some(crate::sessions::start(ctx, op, grant, start).await?.id)
        }
        None => None,
    };

    let mut tx = ctx.store.scoped(grant).await?;
    if let Some(s) = session_id {
        tx.link_ticket_session(row.id, s, op.now_us()).await?;
    }
    if !tx
        .move_ticket(row.id, from.as_str(), m.to.as_str(), op.now_us())
        .await?
    {
        tx.commit().await?;
        return Err(Code::TicketMoved.into());
    }
    let event = op.event(
        "ticket.moved",
        "ticket",
        Some(row.id.to_string()),
        json!({ "number": row.number, "from": from.as_str(), "to": m.to.as_str(),
                "reason": reason, "permission": rule.needs.to_string(),
                "session_id": session_id.map(|s| s.to_string()) }),
    );
    tx.record(&ctx.audit_key, event).await?;
    let started = crate::workflows::ticket_moved(ctx, op, &mut tx, row.id, m.to.as_str()).await?;
    let row = tx.ticket(row.id).await?.ok_or(Code::NotFound)?;
    tx.commit().await?;
    if started > 0 {
        ctx.jobs.wake();
    }
    Ok(Moved {
        ticket: Ticket::from_row(row),
        session_id,
    })
}

/// The prompt a ticket's development session starts with: the workspace's `development`
/// prompt (when it has one), then the ticket's number, title and body.
async fn development_prompt(tx: &mut WorkspaceTx, row: &TicketRow) -> CoreResult<String> {
    let template = tx
        .prompts()
        .await?
        .into_iter()
        .find(|p| p.name == DEVELOPMENT_PROMPT)
        .map(|p| p.template);
    let mut prompt = template.unwrap_or_default();
    if !prompt.is_empty() {
        prompt.push_str("\n\n");
    }
    prompt.push_str(&format!(
        "Ticket #{}: {}\n\n{}",
        row.number, row.title, row.body
    ));
    Ok(prompt)
}
