//! One automation run, as a queue job: record the run, wait for a free slot under the
//! workspace's concurrency limit, check that the person it acts for may still start sessions,
//! render the prompt, start the session. The session's id is chosen when the run is first
//! recorded, so an attempt that follows a crash finds the session an earlier attempt started
//! rather than starting a second one.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;
use warden_domain::access::Permission;
use warden_domain::audit::{Actor, Outcome};
use warden_domain::identity::Principal;
use warden_domain::tenancy::WorkspaceId;
use warden_store::automations::{AutomationRow, JobsTx, RunRow};
use warden_store::jobs::ClaimedJob;

use super::template::{self, RunInput};
use crate::jobs::{Done, Failed};
use crate::op::unix_us;
use crate::sessions::StartSession;
use crate::{Code, Ctx, Op, Origin};

/// The job kind.
pub const KIND: &str = "automation.run";

/// How long a run waits for a slot before looking again.
const SLOT_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Deserialize)]
struct Payload {
    automation_id: Uuid,
    trigger: String,
    #[serde(default)]
    event_id: Option<Uuid>,
    #[serde(default)]
    scheduled_for: Option<i64>,
}

fn db(e: impl std::fmt::Display) -> Failed {
    tracing::warn!(error = %e, "an automation run could not reach the database");
    Failed::retry("the database was not available")
}

/// Runs job `job`.
pub async fn run(ctx: &Arc<Ctx>, job: &ClaimedJob) -> Result<Done, Failed> {
    let p: Payload = serde_json::from_str(&job.payload)
        .map_err(|_| Failed::permanent("the job does not describe an automation run"))?;
    let now = unix_us(ctx.clock.now());
    let mut tx = ctx.store.begin_jobs().await.map_err(db)?;
    let Some(automation) = tx.automation(p.automation_id).await.map_err(db)? else {
        // Deleted since: nothing to run.
        return Ok(Done::Finished);
    };
    let run = match tx.run_of_job(job.id).await.map_err(db)? {
        Some(r) if r.status != "queued" => return Ok(Done::Finished),
        Some(r) => r,
        None => {
            let r = RunRow {
                id: Uuid::now_v7(),
                workspace_id: automation.workspace_id,
                automation_id: automation.id,
                job_id: job.id,
                trigger: p.trigger.clone(),
                scheduled_for: p.scheduled_for,
                event_id: p.event_id,
                session_id: Some(Uuid::now_v7()),
                status: "queued".to_owned(),
                error: None,
                created_at: now,
                started_at: None,
                ended_at: None,
            };
            tx.insert_run(&r).await.map_err(db)?;
            r
        }
    };
    if p.trigger != "manual" && !automation.enabled {
        let why = "the automation was disabled before this run started";
        end_run(ctx, tx, &automation, &run, "skipped", Some(why)).await?;
        return Ok(Done::Finished);
    }
    if tx.running_runs(automation.workspace_id).await.map_err(db)?
        >= ctx.automations.max_concurrent_runs
    {
        tx.commit().await.map_err(db)?;
        return Ok(Done::Later(SLOT_WAIT));
    }
    let body = match p.event_id {
        Some(e) => tx.event_body(e).await.map_err(db)?,
        None => None,
    };
    tx.commit().await.map_err(db)?;

    // Acts for run_as, whose permission is checked now, not when the automation was saved.
    let who = Principal::for_job(automation.run_as, automation.id);
    let workspace = WorkspaceId::from_uuid(automation.workspace_id);
    let Ok(grant) = ctx
        .store
        .authorize(&who, workspace, Permission::SESSIONS_CREATE)
        .await
    else {
        let why = "the person this automation acts for may no longer start sessions here";
        return fail(ctx, &automation, &run, why).await;
    };
    if let Some(done) = start_workflow(ctx, &automation, &run, &grant).await? {
        return Ok(done);
    }
    let template_text = match &automation.prompt_name {
        None => automation.prompt.clone(),
        Some(name) => {
            let mut wtx = ctx.store.scoped(&grant).await.map_err(db)?;
            let stored = wtx.prompt(name).await.map_err(db)?;
            wtx.commit().await.map_err(db)?;
            match stored {
                Some(p) => p.template,
                None => {
                    return fail(ctx, &automation, &run, "its stored prompt was deleted").await;
                }
            }
        }
    };
    let event_type = body.as_ref().and_then(|b| {
        serde_json::from_slice::<serde_json::Value>(b)
            .ok()
            .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
    });
    let prompt = match template::render(
        &template_text,
        &RunInput {
            automation: &automation.name,
            trigger: &p.trigger,
            event_type: event_type.as_deref(),
            event_body: body.as_deref(),
        },
    ) {
        Ok(p) => p,
        Err(why) => return fail(ctx, &automation, &run, why).await,
    };
    let command: Vec<String> = automation
        .command
        .as_deref()
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or_default();
    let host = automation.host_id.map(|h| h.to_string());
    let input = match StartSession::parse(
        &automation.provider,
        prompt,
        Some(&automation.mode),
        command,
        host.as_deref(),
    ) {
        Ok(i) => i,
        Err(e) => return fail(ctx, &automation, &run, e.detail).await,
    };
    let session_id = run.session_id.unwrap_or_else(Uuid::now_v7);
    let op = Op::new(Actor::system(), Origin::default(), ctx.clock.as_ref());
    match crate::sessions::start(ctx, &op, &grant, input.with_id(session_id)).await {
        Ok(session) => {
            let mut tx = ctx.store.begin_jobs().await.map_err(db)?;
            let status = if session.ended_at.is_some() {
                "failed"
            } else {
                "running"
            };
            tx.set_run_status(run.id, status, session.error.as_deref(), unix_us(op.now))
                .await
                .map_err(db)?;
            let mut event = op.event(
                "automation.run_started",
                "automation",
                Some(automation.id.to_string()),
                json!({ "run_id": run.id.to_string(), "session_id": session_id.to_string(),
                        "trigger": p.trigger, "acting_for": automation.run_as.to_string() }),
            );
            event.workspace_id = Some(automation.workspace_id.to_string());
            tx.tx().record(&ctx.audit_key, &event).await.map_err(db)?;
            tx.commit().await.map_err(db)?;
            Ok(Done::Finished)
        }
        Err(e)
            if matches!(
                e.code,
                Code::NoHostAvailable | Code::HostNotConnected | Code::Unavailable | Code::Internal
            ) =>
        {
            if job.attempts >= job.max_attempts {
                return fail(ctx, &automation, &run, e.detail).await;
            }
            Err(Failed::retry(e.detail))
        }
        Err(e) => fail(ctx, &automation, &run, e.detail).await,
    }
}

/// When the automation starts a workflow: starts its run (the automation run's session id
/// names it, so a retried job finds it) and ends the automation run.
async fn start_workflow(
    ctx: &Ctx,
    automation: &AutomationRow,
    run: &RunRow,
    grant: &warden_store::tenancy::WorkspaceGrant,
) -> Result<Option<Done>, Failed> {
    let mut tx = ctx.store.begin_jobs().await.map_err(db)?;
    let linked = tx.wf_of_automation(automation.id).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    let Some(workflow) = linked else {
        return Ok(None);
    };
    if !ctx
        .license
        .feature(warden_domain::license::Feature::Workflows)
    {
        fail(
            ctx,
            automation,
            run,
            "the licence does not include workflows",
        )
        .await?;
        return Ok(Some(Done::Finished));
    }
    let op = Op::new(Actor::system(), Origin::default(), ctx.clock.as_ref());
    let id = run.session_id.unwrap_or(run.id);
    match crate::workflows::start_for_automation(ctx, &op, grant, &workflow, id).await {
        Ok(_) => {
            let tx = ctx.store.begin_jobs().await.map_err(db)?;
            end_run(ctx, tx, automation, run, "done", None).await?;
            Ok(Some(Done::Finished))
        }
        Err(e) => {
            fail(ctx, automation, run, e.detail).await?;
            Ok(Some(Done::Finished))
        }
    }
}

/// Ends a run that could not start, and lets a loop go on.
async fn fail(
    ctx: &Ctx,
    automation: &AutomationRow,
    run: &RunRow,
    why: &str,
) -> Result<Done, Failed> {
    let tx = ctx.store.begin_jobs().await.map_err(db)?;
    end_run(ctx, tx, automation, run, "failed", Some(why)).await?;
    Ok(Done::Finished)
}

/// Records a run's end (audited), schedules a loop's next run, commits.
async fn end_run(
    ctx: &Ctx,
    mut tx: JobsTx,
    automation: &AutomationRow,
    run: &RunRow,
    status: &str,
    why: Option<&str>,
) -> Result<(), Failed> {
    let op = Op::new(Actor::system(), Origin::default(), ctx.clock.as_ref());
    let now = op.now_us();
    tx.set_run_status(run.id, status, why, now)
        .await
        .map_err(db)?;
    if let Some(next) = loop_next(automation, now) {
        tx.schedule_automation(automation.id, Some(next))
            .await
            .map_err(db)?;
    }
    let mut event = op.event_with(
        "automation.run_ended",
        "automation",
        Some(automation.id.to_string()),
        if status == "failed" {
            Outcome::Failed
        } else {
            Outcome::Success
        },
        json!({ "run_id": run.id.to_string(), "status": status, "reason": why,
                "session_id": run.session_id.map(|s| s.to_string()) }),
    );
    event.workspace_id = Some(automation.workspace_id.to_string());
    tx.tx().record(&ctx.audit_key, &event).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    ctx.scheduler.wake();
    Ok(())
}

/// When a loop starts again after a run that ended at `now`, if it does.
fn loop_next(a: &AutomationRow, now: i64) -> Option<i64> {
    if a.kind != "loop" || !a.enabled {
        return None;
    }
    let (interval, max) = (a.loop_interval_secs?, a.loop_max?);
    (a.runs_started < max).then_some(now + interval * 1_000_000)
}

/// A session ended: if an automation started it, its run ends with it.
pub async fn session_ended(ctx: &Ctx, session_id: Uuid, failed: bool) {
    let result: Result<(), Failed> = async {
        let mut tx = ctx.store.begin_jobs().await.map_err(db)?;
        let Some(run) = tx.run_of_session(session_id).await.map_err(db)? else {
            return Ok(());
        };
        if !matches!(run.status.as_str(), "running" | "queued") {
            return Ok(());
        }
        let Some(automation) = tx.automation(run.automation_id).await.map_err(db)? else {
            return Ok(());
        };
        let status = if failed { "failed" } else { "done" };
        end_run(ctx, tx, &automation, &run, status, None).await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(reason = %e.reason, "cannot record the end of an automation run");
    }
}
