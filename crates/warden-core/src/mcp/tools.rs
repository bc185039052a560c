//! The tools an agent calls over MCP, one use case each. Every call asks for a grant as the
//! token's owner (within the token's ceiling and workspace), reaches only the token's own
//! session, and is audited (`mcp.tool_called`, with the tool, the session and the outcome).

use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;
use warden_domain::access::Permission;
use warden_domain::audit::Outcome;
use warden_domain::sessions::SessionStatus;
use warden_store::tenancy::WorkspaceTx;

use super::McpCaller;
use crate::sessions::messages::{self, PLAN_MAX, check_text};
use crate::tickets::{self, Search, TicketInput};
use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// How long `ask_user_question` waits by default, and at most (seconds).
pub const ASK_DEFAULT_SECS: u64 = 300;
/// The longest wait a question may ask for (seconds).
pub const ASK_MAX_SECS: u64 = 900;
/// How often a waiting question looks for its answer.
const ASK_POLL: Duration = Duration::from_millis(250);

/// Records a tool call in the audit trail, in a transaction of its own, whatever its outcome.
pub async fn audit(ctx: &Ctx, op: &Op, caller: &McpCaller, tool: &str, result: &CoreResult<Value>) {
    let (outcome, code) = match result {
        Ok(_) => (Outcome::Success, None),
        Err(e) if matches!(e.code.status(), 401 | 403 | 404) => {
            (Outcome::Denied, Some(e.code.as_str()))
        }
        Err(e) => (Outcome::Failed, Some(e.code.as_str())),
    };
    let event = op.event_with(
        "mcp.tool_called",
        "session",
        Some(caller.session.to_string()),
        outcome,
        json!({ "tool": tool, "workspace_id": caller.workspace.to_string(),
                "user_id": caller.user.to_string(), "error": code }),
    );
    // A read leaves nothing else behind: its event is appended in the next batch. A change
    // (or a refusal) is appended before the agent hears back.
    let read = READS.contains(&tool) && result.is_ok();
    if read {
        ctx.audit_batch.push(event);
        return;
    }
    let written = async {
        let mut tx = ctx.store.begin().await?;
        tx.record(&ctx.audit_key, &event).await?;
        tx.commit().await
    }
    .await;
    if let Err(e) = written {
        tracing::error!(error = %e, "cannot record an MCP tool call");
    }
}

/// The tools that only read.
const READS: &[&str] = &[
    "search_tickets",
    "get_ticket_details",
    "get_session_details",
    "read_plan",
];

async fn scoped(ctx: &Ctx, caller: &McpCaller, p: Permission) -> CoreResult<WorkspaceTx> {
    let grant = caller.grant(ctx, p).await?;
    Ok(ctx.store.scoped(&grant).await?)
}

/// The session a tool names must be the token's own; any other is "not found".
fn own_session(caller: &McpCaller, named: Option<&str>) -> CoreResult<Uuid> {
    match named {
        None => Ok(caller.session),
        Some(s) if s.parse::<Uuid>().ok() == Some(caller.session) => Ok(caller.session),
        Some(_) => Err(Code::NotFound.into()),
    }
}

fn to_value<T: serde::Serialize>(v: &T) -> CoreResult<Value> {
    serde_json::to_value(v).map_err(|e| CoreError::internal(&e))
}

/// `search_tickets`: the workspace's tickets matching words, a status or a label.
pub async fn search_tickets(
    ctx: &Ctx,
    caller: &McpCaller,
    query: Option<&str>,
    status: Option<&str>,
    label: Option<&str>,
    limit: Option<i64>,
) -> CoreResult<Value> {
    let search = Search::parse(query, status, label, limit.or(Some(20)))?;
    let grant = caller.grant(ctx, Permission::TICKETS_READ).await?;
    let found = tickets::list(ctx, &grant, &search).await?;
    let summaries: Vec<Value> = found
        .iter()
        .map(|t| {
            json!({ "id": t.id, "number": t.number, "title": t.title, "status": t.status,
                    "labels": t.labels, "updated_at": t.updated_at })
        })
        .collect();
    Ok(json!({ "tickets": summaries }))
}

/// `get_ticket_details`: one ticket (by number or id) with its body and sessions.
pub async fn get_ticket_details(ctx: &Ctx, caller: &McpCaller, ticket: &str) -> CoreResult<Value> {
    let grant = caller.grant(ctx, Permission::TICKETS_READ).await?;
    let detail = tickets::get(ctx, &grant, ticket).await?;
    let mut v = to_value(&detail.ticket)?;
    v["session_ids"] = to_value(&detail.session_ids)?;
    Ok(v)
}

/// `create_ticket`: writes a ticket into the backlog, linked to the calling session.
pub async fn create_ticket(
    ctx: &Ctx,
    op: &Op,
    caller: &McpCaller,
    title: &str,
    body: &str,
    labels: &[String],
) -> CoreResult<Value> {
    let input = TicketInput::parse(title, body, labels, None)?;
    let mut tx = scoped(ctx, caller, Permission::TICKETS_CREATE).await?;
    let row = tickets::create_in(ctx, op, &mut tx, input).await?;
    tx.link_ticket_session(row.id, caller.session, op.now_us())
        .await?;
    tx.commit().await?;
    Ok(json!({ "id": row.id, "number": row.number, "status": row.status }))
}

/// `get_session_details`: the calling session — status, provider, prompt, its tickets.
pub async fn get_session_details(
    ctx: &Ctx,
    caller: &McpCaller,
    session: Option<&str>,
) -> CoreResult<Value> {
    let session = own_session(caller, session)?;
    let mut tx = scoped(ctx, caller, Permission::SESSIONS_READ).await?;
    let row = tx.session(session).await?.ok_or(Code::NotFound)?;
    let linked = tx.session_tickets(session).await?;
    tx.commit().await?;
    Ok(json!({
        "id": row.id, "workspace_id": row.workspace_id, "status": row.status,
        "provider": row.provider, "mode": row.mode, "prompt": row.prompt,
        "created_at": crate::op::rfc3339(row.created_at),
        "started_at": row.started_at.map(crate::op::rfc3339),
        "tickets": linked.iter().map(|t| json!({ "number": t.number, "title": t.title,
                                                  "status": t.status })).collect::<Vec<_>>(),
    }))
}

/// `send_message`: a message to the session's owner (shown on the session's page).
pub async fn send_message(
    ctx: &Ctx,
    op: &Op,
    caller: &McpCaller,
    message: &str,
) -> CoreResult<Value> {
    check_text("message", message)?;
    let mut tx = scoped(ctx, caller, Permission::SESSIONS_UPDATE).await?;
    let id = Uuid::now_v7();
    tx.insert_session_message(id, caller.session, "message", message, None, op.now_us())
        .await?;
    tx.commit().await?;
    Ok(json!({ "id": id, "sent": true }))
}

/// `ask_user_question`: puts a question to the session's owner and waits for the answer —
/// at most `timeout_secs` (default 300, at most 900), and no longer than the session runs.
pub async fn ask_user_question(
    ctx: &Ctx,
    op: &Op,
    caller: &McpCaller,
    question: &str,
    timeout_secs: Option<u64>,
) -> CoreResult<Value> {
    check_text("question", question)?;
    let secs = timeout_secs.unwrap_or(ASK_DEFAULT_SECS);
    if !(1..=ASK_MAX_SECS).contains(&secs) {
        return Err(CoreError::invalid(
            "timeout_seconds",
            "must be 1 to 900 seconds",
        ));
    }
    let wait_us = i64::try_from(secs)
        .unwrap_or(i64::MAX)
        .saturating_mul(1_000_000);
    let id = Uuid::now_v7();
    let mut tx = scoped(ctx, caller, Permission::SESSIONS_UPDATE).await?;
    tx.insert_session_message(
        id,
        caller.session,
        "question",
        question,
        Some(op.now_us() + wait_us),
        op.now_us(),
    )
    .await?;
    tx.commit().await?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        tokio::time::sleep(ASK_POLL).await;
        let mut tx = scoped(ctx, caller, Permission::SESSIONS_READ).await?;
        let row = tx
            .session_message(caller.session, id)
            .await?
            .ok_or(Code::NotFound)?;
        let session = tx.session(caller.session).await?.ok_or(Code::NotFound)?;
        tx.commit().await?;
        if let Some(answer) = row.answer {
            return Ok(json!({ "answered": true, "answer": answer }));
        }
        let ended = SessionStatus::parse(&session.status).is_none_or(SessionStatus::is_final);
        if ended {
            return Err(Code::SessionEnded.into());
        }
        if tokio::time::Instant::now() >= deadline {
            return Ok(json!({ "answered": false,
                              "answer": null,
                              "note": format!("no answer within {secs} seconds") }));
        }
    }
}

/// `read_plan`: the session's plan document.
pub async fn read_plan(ctx: &Ctx, caller: &McpCaller) -> CoreResult<Value> {
    let mut tx = scoped(ctx, caller, Permission::SESSIONS_READ).await?;
    let plan = messages::plan_in(&mut tx, caller.session).await?;
    tx.commit().await?;
    to_value(&plan)
}

/// `write_plan`: replaces the session's plan document (at most 256 KiB).
pub async fn write_plan(
    ctx: &Ctx,
    op: &Op,
    caller: &McpCaller,
    content: &str,
) -> CoreResult<Value> {
    if content.len() > PLAN_MAX || content.contains('\0') {
        return Err(CoreError::invalid(
            "content",
            "must be at most 256 KiB of text, without NUL",
        ));
    }
    let mut tx = scoped(ctx, caller, Permission::SESSIONS_UPDATE).await?;
    tx.set_session_plan(caller.session, content, op.now_us())
        .await?;
    tx.commit().await?;
    Ok(json!({ "saved": true, "bytes": content.len() }))
}
