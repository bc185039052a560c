//! A bot's turns on the work queue (`bot.turn`): with the bot's row locked, the runner takes
//! its oldest waiting message — unless one is being answered, which keeps the bot to one at a
//! time in order — and opens a `bot`-mode session for it, acting for the bot's person, whose
//! prompt is the instructions, the conversation so far and the message. When that session
//! ends, its output becomes the answer and the next turn is queued.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;
use warden_domain::access::Permission;
use warden_domain::audit::{Actor, Outcome};
use warden_domain::identity::Principal;
use warden_domain::license::Feature;
use warden_domain::tenancy::WorkspaceId;
use warden_store::automations::JobsTx;
use warden_store::bots::{BotMessageRow, BotRow};
use warden_store::jobs::{ClaimedJob, NewJob};

use crate::jobs::{Done, Failed};
use crate::sessions::StartSession;
use crate::{Ctx, Op, Origin};

/// The job that answers a bot's next message.
pub const TURN: &str = "bot.turn";
/// How much of the conversation a prompt carries (messages, with their answers).
const REMEMBERED: i64 = 20;
/// The longest answer kept, in bytes.
const ANSWER_MAX: usize = 64 * 1024;

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    bot_id: Uuid,
}

/// A turn job's input.
pub fn payload(bot_id: Uuid) -> String {
    serde_json::to_string(&Payload { bot_id }).unwrap_or_default()
}

fn db(e: impl std::fmt::Display) -> Failed {
    tracing::warn!(error = %e, "a bot turn could not reach the database");
    Failed::retry("the database was not available")
}

fn system_op(ctx: &Ctx) -> Op {
    Op::new(Actor::system(), Origin::default(), ctx.clock.as_ref())
}

async fn queue_turn(tx: &mut JobsTx, op: &Op, bot: &BotRow) -> Result<(), Failed> {
    let p = payload(bot.id);
    tx.tx()
        .enqueue_job(&NewJob {
            kind: TURN,
            workspace_id: Some(bot.workspace_id),
            dedupe_key: None,
            payload: &p,
            max_attempts: 5,
            run_at: op.now_us(),
            now: op.now_us(),
        })
        .await
        .map_err(db)?;
    Ok(())
}

/// The prompt of one turn: instructions, the conversation so far, the message.
fn prompt(bot: &BotRow, before: &[BotMessageRow], message: &str) -> String {
    let mut p = bot.instructions.clone();
    let answered: Vec<&BotMessageRow> = before.iter().filter(|m| m.status == "answered").collect();
    if !answered.is_empty() {
        p.push_str("\n\nThe conversation so far:\n");
        for m in answered {
            let said: String = m.body.chars().take(4000).collect();
            let answer: String = m
                .answer
                .as_deref()
                .unwrap_or("")
                .chars()
                .take(4000)
                .collect();
            p.push_str(&format!("\nUser: {said}\nYou: {answer}\n"));
        }
    }
    p.push_str(&format!("\n\nAnswer this message:\nUser: {message}"));
    p
}

/// Runs a `bot.turn` job.
pub async fn run_turn(ctx: &Arc<Ctx>, job: &ClaimedJob) -> Result<Done, Failed> {
    let p: Payload = serde_json::from_str(&job.payload)
        .map_err(|_| Failed::permanent("the job does not name a bot"))?;
    if !ctx.license.feature(Feature::Bots) {
        return Err(Failed::permanent("the licence does not include bots"));
    }
    let op = system_op(ctx);
    let mut tx = ctx.store.begin_jobs().await.map_err(db)?;
    let Some(bot) = tx.lock_bot(p.bot_id).await.map_err(db)? else {
        return Ok(Done::Finished);
    };
    let Some(next) = tx.bot_next_message(bot.id).await.map_err(db)? else {
        tx.commit().await.map_err(db)?;
        return Ok(Done::Finished);
    };
    if next.status == "answering" {
        // One at a time: the end of that answer queues the next turn.
        tx.commit().await.map_err(db)?;
        return Ok(Done::Finished);
    }
    let session = Uuid::now_v7();
    if !tx
        .bot_message_answering(next.id, session)
        .await
        .map_err(db)?
    {
        tx.commit().await.map_err(db)?;
        return Ok(Done::Finished);
    }
    let before: Vec<BotMessageRow> = tx
        .bot_conversation(bot.id, REMEMBERED + 1)
        .await
        .map_err(db)?
        .into_iter()
        .filter(|m| m.id != next.id && m.created_at <= next.created_at)
        .collect();
    tx.commit().await.map_err(db)?;

    let who = Principal::for_job(bot.run_as, bot.id);
    let started = async {
        let grant = ctx
            .store
            .authorize(
                &who,
                WorkspaceId::from_uuid(bot.workspace_id),
                Permission::SESSIONS_CREATE,
            )
            .await
            .map_err(|_| "the person this bot acts for may no longer start sessions here")?;
        let input = StartSession::parse(
            &bot.provider,
            prompt(&bot, &before, &next.body),
            Some("bot"),
            Vec::new(),
            None,
        )
        .map_err(|e| e.detail)?
        .with_id(session);
        crate::sessions::start(ctx, &op, &grant, input)
            .await
            .map_err(|e| e.detail)
    }
    .await;
    if let Err(why) = started {
        finish(ctx, &bot, &next, "failed", Some(why)).await?;
    }
    Ok(Done::Finished)
}

/// Records how a message ended (audited) and queues the bot's next turn.
async fn finish(
    ctx: &Ctx,
    bot: &BotRow,
    message: &BotMessageRow,
    status: &str,
    answer: Option<&str>,
) -> Result<(), Failed> {
    let op = system_op(ctx);
    let mut tx = ctx.store.begin_jobs().await.map_err(db)?;
    if tx
        .bot_message_done(message.id, status, answer, op.now_us())
        .await
        .map_err(db)?
    {
        let mut event = op.event_with(
            "bot.message_answered",
            "bot",
            Some(bot.id.to_string()),
            if status == "answered" {
                Outcome::Success
            } else {
                Outcome::Failed
            },
            json!({ "message_id": message.id.to_string(), "status": status,
                    "session_id": message.session_id.map(|s| s.to_string()),
                    "answer_bytes": answer.map_or(0, str::len) }),
        );
        event.workspace_id = Some(bot.workspace_id.to_string());
        tx.tx().record(&ctx.audit_key, &event).await.map_err(db)?;
        queue_turn(&mut tx, &op, bot).await?;
    }
    tx.commit().await.map_err(db)?;
    ctx.jobs.wake();
    Ok(())
}

/// The answer in a session's standard output: the final `result` of a stream of JSON events
/// (Claude Code's `stream-json`), or the text as it came.
fn answer_of(stdout: &str) -> String {
    let result = stdout.lines().rev().find_map(|l| {
        let v: serde_json::Value = serde_json::from_str(l.trim()).ok()?;
        (v["type"] == "result").then(|| v["result"].as_str().map(str::to_owned))?
    });
    let mut text = result.unwrap_or_else(|| stdout.trim().to_owned());
    if text.len() > ANSWER_MAX {
        let mut cut = ANSWER_MAX;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// A session ended: if it answered a bot's message, its output is the answer.
pub async fn session_ended(ctx: &Ctx, session_id: Uuid, failed: bool) {
    let result: Result<(), Failed> = async {
        let mut tx = ctx.store.begin_jobs().await.map_err(db)?;
        let Some(message) = tx.bot_message_of_session(session_id).await.map_err(db)? else {
            return Ok(());
        };
        let Some(bot) = tx.lock_bot(message.bot_id).await.map_err(db)? else {
            return Ok(());
        };
        tx.commit().await.map_err(db)?;
        let who = Principal::for_job(bot.run_as, bot.id);
        let stdout = match ctx
            .store
            .authorize(
                &who,
                WorkspaceId::from_uuid(bot.workspace_id),
                Permission::SESSIONS_READ,
            )
            .await
        {
            Ok(grant) => crate::sessions::output(ctx, &grant, session_id, -1, 10_000)
                .await
                .map(|(_, chunks)| {
                    chunks
                        .into_iter()
                        .filter(|c| c.stream == "stdout")
                        .map(|c| c.data)
                        .collect::<String>()
                })
                .unwrap_or_default(),
            Err(_) => String::new(),
        };
        let answer = answer_of(&stdout);
        let status = if failed { "failed" } else { "answered" };
        finish(ctx, &bot, &message, status, Some(&answer)).await?;
        // The conversation lives here, not in the worktree: the turn's worktree goes.
        if let Ok(grant) = ctx
            .store
            .authorize(
                &who,
                WorkspaceId::from_uuid(bot.workspace_id),
                Permission::SESSIONS_UPDATE,
            )
            .await
            && let Err(e) =
                crate::sessions::close(ctx, &system_op(ctx), &grant, &session_id.to_string()).await
        {
            tracing::debug!(code = %e.code, "a bot's finished turn was not closed");
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(reason = %e.reason, "cannot record a bot's answer");
    }
}

#[cfg(test)]
mod tests {
    use super::answer_of;

    #[test]
    fn the_answer_is_the_final_result_of_a_json_stream_or_the_text() {
        let stream = "{\"type\":\"system\"}\n{\"type\":\"assistant\",\"message\":{}}\n\
                      {\"type\":\"result\",\"result\":\"Use SQLite.\"}\n";
        assert_eq!(answer_of(stream), "Use SQLite.");
        assert_eq!(answer_of("  plain words\n"), "plain words");
        assert_eq!(answer_of(&"é".repeat(40_000)).len(), 64 * 1024);
    }
}
