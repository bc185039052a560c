//! What an agent session says to its owner besides its output: questions that wait for an
//! answer, messages, and a plan document. Agents write them through the MCP endpoint
//! (`crate::mcp`); people read them and answer questions here. Only the session's owner
//! answers its questions.

use serde::Serialize;
use serde_json::json;
use uuid::Uuid;
use warden_store::mcp::MessageRow;
use warden_store::tenancy::{WorkspaceGrant, WorkspaceTx};

use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// The longest question, message or answer, in bytes.
pub const TEXT_MAX: usize = 16 * 1024;
/// The longest plan document, in bytes.
pub const PLAN_MAX: usize = 256 * 1024;

/// A question or message from a session.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    /// Id.
    pub id: Uuid,
    /// The session.
    pub session_id: Uuid,
    /// `question` or `message`.
    pub kind: String,
    /// What the agent said (plain text: pages show it as text).
    pub body: String,
    /// For a question: `open`, `answered` or `expired`.
    pub state: Option<String>,
    /// The answer, once given.
    pub answer: Option<String>,
    /// Who answered.
    pub answered_by: Option<Uuid>,
    /// When it was answered (RFC 3339).
    pub answered_at: Option<String>,
    /// Until when a question waits (RFC 3339).
    pub expires_at: Option<String>,
    /// When it was sent (RFC 3339).
    pub created_at: String,
}

impl Message {
    pub(crate) fn from_row(row: MessageRow, now: i64) -> Self {
        let state = (row.kind == "question").then(|| {
            if row.answer.is_some() {
                "answered"
            } else if row.expires_at.is_some_and(|e| e <= now) {
                "expired"
            } else {
                "open"
            }
            .to_owned()
        });
        Self {
            id: row.id,
            session_id: row.session_id,
            kind: row.kind,
            body: row.body,
            state,
            answer: row.answer,
            answered_by: row.answered_by,
            answered_at: row.answered_at.map(crate::op::rfc3339),
            expires_at: row.expires_at.map(crate::op::rfc3339),
            created_at: crate::op::rfc3339(row.created_at),
        }
    }
}

/// A session's plan document.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Plan {
    /// The text (empty when the agent wrote none).
    pub content: String,
    /// When it was last written (RFC 3339).
    pub updated_at: Option<String>,
}

/// Checks a text an agent or a person sends: 1 byte to 16 KiB, without NUL.
pub fn check_text(field: &'static str, text: &str) -> CoreResult<()> {
    if text.trim().is_empty() || text.len() > TEXT_MAX || text.contains('\0') {
        return Err(CoreError::invalid(
            field,
            "must be 1 byte to 16 KiB of text, without NUL",
        ));
    }
    Ok(())
}

async fn existing_session(tx: &mut WorkspaceTx, session: Uuid) -> CoreResult<()> {
    tx.session(session).await?.ok_or(Code::NotFound)?;
    Ok(())
}

/// A session's questions and messages, oldest first.
pub async fn list(
    ctx: &Ctx,
    grant: &WorkspaceGrant,
    session: &str,
    now: i64,
) -> CoreResult<Vec<Message>> {
    let session = super::parse_id(session)?;
    let mut tx = ctx.store.scoped(grant).await?;
    existing_session(&mut tx, session).await?;
    let rows = tx.session_messages(session).await?;
    tx.commit().await?;
    Ok(rows
        .into_iter()
        .map(|r| Message::from_row(r, now))
        .collect())
}

/// Answers a session's open question. Only the session's owner may.
pub async fn answer(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    session: &str,
    message: &str,
    answer: &str,
) -> CoreResult<Message> {
    let session = super::parse_id(session)?;
    let message: Uuid = message.parse().map_err(|_| Code::NotFound)?;
    let mut tx = ctx.store.scoped(grant).await?;
    let row = tx.session(session).await?.ok_or(Code::NotFound)?;
    tx.session_message(session, message)
        .await?
        .ok_or(Code::NotFound)?;
    check_text("answer", answer)?;
    if row.created_by != grant.user_id() {
        return Err(CoreError::with_detail(
            Code::Forbidden,
            "Only the session's owner answers its questions.",
        ));
    }
    if !tx
        .answer_question(session, message, answer, op.now_us())
        .await?
    {
        return Err(Code::QuestionClosed.into());
    }
    let event = op.event(
        "session.question_answered",
        "session",
        Some(session.to_string()),
        json!({ "message_id": message.to_string(), "answer_bytes": answer.len() }),
    );
    tx.record(&ctx.audit_key, event).await?;
    let row = tx
        .session_message(session, message)
        .await?
        .ok_or(Code::NotFound)?;
    tx.commit().await?;
    Ok(Message::from_row(row, op.now_us()))
}

/// A session's plan document.
pub async fn plan(ctx: &Ctx, grant: &WorkspaceGrant, session: &str) -> CoreResult<Plan> {
    let session = super::parse_id(session)?;
    let mut tx = ctx.store.scoped(grant).await?;
    existing_session(&mut tx, session).await?;
    let plan = plan_in(&mut tx, session).await?;
    tx.commit().await?;
    Ok(plan)
}

pub(crate) async fn plan_in(tx: &mut WorkspaceTx, session: Uuid) -> CoreResult<Plan> {
    Ok(match tx.session_plan(session).await? {
        Some((content, at)) => Plan {
            content,
            updated_at: Some(crate::op::rfc3339(at)),
        },
        None => Plan {
            content: String::new(),
            updated_at: None,
        },
    })
}
