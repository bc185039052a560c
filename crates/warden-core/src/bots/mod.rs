//! Bots: an agent bound to a channel that answers its messages one at a time, in order,
//! keeping the conversation. Each message is answered by a session in `bot` mode, acting for
//! the person who made the bot, whose prompt is the bot's instructions, the conversation so
//! far and the message; the session's output is the answer ([`runner`]). The channel here is
//! the API and the console; messages and answers are audited.

pub mod runner;

use serde::Serialize;
use serde_json::json;
use uuid::Uuid;
use warden_domain::tenancy::Provider;
use warden_domain::workflows::check_name;
use warden_store::bots::{BotMessageRow, BotRow};
use warden_store::jobs::NewJob;
use warden_store::tenancy::WorkspaceGrant;

use crate::op::rfc3339;
use crate::sessions::messages::check_text;
use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// A bot as read.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Bot {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// The coding agent that answers.
    pub provider: String,
    /// What it is told before the conversation.
    pub instructions: String,
    /// Whom its sessions act for.
    pub run_as: Uuid,
    /// Created (RFC 3339).
    pub created_at: String,
}

fn bot_view(b: BotRow) -> Bot {
    Bot {
        id: b.id,
        name: b.name,
        provider: b.provider,
        instructions: b.instructions,
        run_as: b.run_as,
        created_at: rfc3339(b.created_at),
    }
}

/// A message and its answer.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BotMessage {
    /// Id.
    pub id: Uuid,
    /// Where it came from.
    pub channel: String,
    /// The message.
    pub body: String,
    /// `queued`, `answering`, `answered`, `failed`.
    pub status: String,
    /// The answer.
    pub answer: Option<String>,
    /// The session that answered it.
    pub session_id: Option<Uuid>,
    /// Sent (RFC 3339).
    pub created_at: String,
    /// Answered (RFC 3339).
    pub answered_at: Option<String>,
}

fn message_view(m: BotMessageRow) -> BotMessage {
    BotMessage {
        id: m.id,
        channel: m.channel,
        body: m.body,
        status: m.status,
        answer: m.answer,
        session_id: m.session_id,
        created_at: rfc3339(m.created_at),
        answered_at: m.answered_at.map(rfc3339),
    }
}

/// A bot with its conversation (the newest 200 messages, oldest first).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BotDetail {
    /// The bot.
    #[serde(flatten)]
    pub bot: Bot,
    /// Its conversation.
    pub messages: Vec<BotMessage>,
}

fn id_of(text: &str) -> CoreResult<Uuid> {
    text.parse().map_err(|_| Code::NotFound.into())
}

/// Makes a bot; its sessions will act for the caller.
pub async fn create(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    name: &str,
    provider: &str,
    instructions: &str,
) -> CoreResult<Bot> {
    let name = check_name(name)?;
    if Provider::parse(provider).is_none() {
        return Err(CoreError::invalid(
            "provider",
            "must be claude-code, gemini-cli, codex, opencode, kilo-cli or qwen-code",
        ));
    }
    check_text("instructions", instructions)?;
    let mut tx = ctx.store.scoped(grant).await?;
    if tx.bot_name_taken(&name).await? {
        return Err(Code::BotExists.into());
    }
    let row = BotRow {
        id: Uuid::now_v7(),
        workspace_id: tx.workspace().uuid(),
        name,
        provider: provider.to_owned(),
        instructions: instructions.to_owned(),
        run_as: grant.user_id(),
        created_at: op.now_us(),
        updated_at: op.now_us(),
    };
    tx.insert_bot(&row).await?;
    let event = op.event(
        "bot.created",
        "bot",
        Some(row.id.to_string()),
        json!({ "name": row.name, "provider": row.provider }),
    );
    tx.record(&ctx.audit_key, event).await?;
    tx.commit().await?;
    Ok(bot_view(row))
}

/// The workspace's bots.
pub async fn list(ctx: &Ctx, grant: &WorkspaceGrant) -> CoreResult<Vec<Bot>> {
    let mut tx = ctx.store.scoped(grant).await?;
    let rows = tx.bots().await?;
    tx.commit().await?;
    Ok(rows.into_iter().map(bot_view).collect())
}

/// One bot and its conversation.
pub async fn get(ctx: &Ctx, grant: &WorkspaceGrant, id: &str) -> CoreResult<BotDetail> {
    let id = id_of(id)?;
    let mut tx = ctx.store.scoped(grant).await?;
    let bot = tx.bot(id).await?.ok_or(Code::NotFound)?;
    let messages = tx.bot_messages(id, 200).await?;
    tx.commit().await?;
    Ok(BotDetail {
        bot: bot_view(bot),
        messages: messages.into_iter().map(message_view).collect(),
    })
}

/// Deletes a bot and its conversation.
pub async fn delete(ctx: &Ctx, op: &Op, grant: &WorkspaceGrant, id: &str) -> CoreResult<()> {
    let id = id_of(id)?;
    let mut tx = ctx.store.scoped(grant).await?;
    let bot = tx.bot(id).await?.ok_or(Code::NotFound)?;
    tx.delete_bot(id).await?;
    let event = op.event(
        "bot.deleted",
        "bot",
        Some(id.to_string()),
        json!({ "name": bot.name }),
    );
    tx.record(&ctx.audit_key, event).await?;
    tx.commit().await?;
    Ok(())
}

/// Sends a bot a message: it is queued behind the ones before it and answered in turn.
pub async fn say(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    id: &str,
    body: &str,
) -> CoreResult<BotMessage> {
    let id = id_of(id)?;
    let mut tx = ctx.store.scoped(grant).await?;
    let bot = tx.bot(id).await?.ok_or(Code::NotFound)?;
    check_text("message", body)?;
    let row = BotMessageRow {
        id: Uuid::now_v7(),
        bot_id: bot.id,
        workspace_id: bot.workspace_id,
        channel: "console".to_owned(),
        body: body.to_owned(),
        status: "queued".to_owned(),
        answer: None,
        session_id: None,
        created_by: Some(grant.user_id()),
        created_at: op.now_us(),
        answered_at: None,
    };
    tx.insert_bot_message(&row).await?;
    let payload = runner::payload(bot.id);
    tx.enqueue_job(&NewJob {
        kind: runner::TURN,
        workspace_id: Some(bot.workspace_id),
        dedupe_key: None,
        payload: &payload,
        max_attempts: 5,
        run_at: op.now_us(),
        now: op.now_us(),
    })
    .await?;
    let event = op.event(
        "bot.message_received",
        "bot",
        Some(bot.id.to_string()),
        json!({ "message_id": row.id.to_string(), "channel": "console",
                "bytes": body.len() }),
    );
    tx.record(&ctx.audit_key, event).await?;
    tx.commit().await?;
    ctx.jobs.wake();
    Ok(message_view(row))
}

/// Makes an event source's deliveries messages to a bot (`None`: no more): the webhook
/// channel. A delivery's body (as text, at most 16 KiB) is the message.
pub async fn link_source(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    source: &str,
    bot: Option<&str>,
) -> CoreResult<Option<Bot>> {
    let source = id_of(source)?;
    let bot = bot.map(id_of).transpose()?;
    let mut tx = ctx.store.scoped(grant).await?;
    tx.event_source(source).await?.ok_or(Code::NotFound)?;
    let target = match bot {
        Some(b) => Some(
            tx.bot(b)
                .await?
                .ok_or_else(|| CoreError::invalid("bot_id", "must be a bot of this workspace"))?,
        ),
        None => None,
    };
    tx.set_source_bot(source, bot, op.now_us()).await?;
    let event = op.event(
        "event_source.bot_linked",
        "event_source",
        Some(source.to_string()),
        json!({ "bot_id": bot.map(|b| b.to_string()) }),
    );
    tx.record(&ctx.audit_key, event).await?;
    tx.commit().await?;
    Ok(target.map(bot_view))
}

/// Queues webhook deliveries as messages to the bot their source names (in the intake's
/// transaction); whether any was queued.
pub(crate) async fn from_webhook(
    ctx: &Ctx,
    tx: &mut warden_store::automations::JobsTx,
    source: Uuid,
    bodies: &[&[u8]],
    now: i64,
) -> Result<bool, warden_store::StoreError> {
    if bodies.is_empty() || !ctx.license.feature(warden_domain::license::Feature::Bots) {
        return Ok(false);
    }
    let Some(bot) = tx.bot_of_source(source).await? else {
        return Ok(false);
    };
    for body in bodies {
        let text = String::from_utf8_lossy(body);
        let text: String = text.chars().take(16 * 1024).collect();
        tx.insert_bot_message(&BotMessageRow {
            id: Uuid::now_v7(),
            bot_id: bot.id,
            workspace_id: bot.workspace_id,
            channel: "webhook".to_owned(),
            body: text.replace('\0', ""),
            status: "queued".to_owned(),
            answer: None,
            session_id: None,
            created_by: None,
            created_at: now,
            answered_at: None,
        })
        .await?;
    }
    let payload = runner::payload(bot.id);
    tx.tx()
        .enqueue_job(&NewJob {
            kind: runner::TURN,
            workspace_id: Some(bot.workspace_id),
            dedupe_key: None,
            payload: &payload,
            max_attempts: 5,
            run_at: now,
            now,
        })
        .await?;
    Ok(true)
}
