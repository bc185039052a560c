//! Workflow runs on the work queue. Each step is one job (`workflow.step`, deduplicated by
//! run and place, so no step is queued twice); what follows a step is decided in the same
//! transaction that records how the step ended — a session's end, a decision, a timeout, a
//! condition — so a run never stalls between two steps and never takes one twice:
//!
//! - an agent or command step records its session's id before starting it, and a retried job
//!   finds that session instead of opening another (a node killed mid-step resumes there);
//!   the step ends when its session does;
//! - an approval step waits (the run shows `waiting`) until a person decides or its timeout
//!   job (`workflow.timeout`) finds it still waiting;
//! - a condition reads the previous step's outcome and jumps.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;
use warden_domain::access::Permission;
use warden_domain::audit::{Actor, Outcome};
use warden_domain::identity::Principal;
use warden_domain::license::Feature;
use warden_domain::tenancy::WorkspaceId;
use warden_domain::workflows::{Definition, Next, StepKind};
use warden_protocol::ServerMessage;
use warden_store::automations::JobsTx;
use warden_store::jobs::{ClaimedJob, NewJob};
use warden_store::tenancy::WorkspaceTx;
use warden_store::workflows::{RunRow, StepRow};

use crate::jobs::{Done, Failed};
use crate::sessions::StartSession;
use crate::{Code, CoreResult, Ctx, Op, Origin};

/// The job that takes one step.
pub const STEP: &str = "workflow.step";
/// The job that ends an approval nobody decided in time.
pub const TIMEOUT: &str = "workflow.timeout";
/// Attempts per step job.
pub const ATTEMPTS: i32 = 10;
/// How long an approval waits by default (minutes).
const APPROVAL_DEFAULT_MINUTES: u32 = 24 * 60;

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    run_id: Uuid,
    seq: i64,
    index: usize,
}

/// A step job's input.
pub fn payload(run_id: Uuid, seq: i64, index: usize) -> String {
    serde_json::to_string(&Payload { run_id, seq, index }).unwrap_or_default()
}

/// The dedupe key of a run's `seq`-th step: one job per place in a run.
pub fn step_key(run_id: Uuid, seq: i64) -> String {
    format!("workflow:{run_id}:{seq}")
}

fn db(e: impl std::fmt::Display) -> Failed {
    tracing::warn!(error = %e, "a workflow step could not reach the database");
    Failed::retry("the database was not available")
}

/// The definition a run pinned.
pub fn definition_of(run: &RunRow) -> Result<Definition, Failed> {
    serde_json::from_str::<serde_json::Value>(&run.definition)
        .ok()
        .and_then(|v| Definition::parse(&v).ok())
        .ok_or_else(|| Failed::permanent("the run's definition cannot be read"))
}

fn system_op(ctx: &Ctx) -> Op {
    Op::new(Actor::system(), Origin::default(), ctx.clock.as_ref())
}

fn run_event(
    op: &Op,
    run: &RunRow,
    action: &'static str,
    outcome: Outcome,
    summary: serde_json::Value,
) -> warden_domain::audit::NewEvent {
    let mut event = op.event_with(
        action,
        "workflow_run",
        Some(run.id.to_string()),
        outcome,
        summary,
    );
    event.workspace_id = Some(run.workspace_id.to_string());
    event
}

/// What follows a step, applied in the transaction that ended it: the next step's job, or
/// the run's end (audited).
enum Then {
    Step { seq: i64, index: usize },
    End { succeeded: bool },
}

fn then_of(next: Next, seq: i64) -> Then {
    match next {
        Next::Step(index) => Then::Step {
            seq: seq + 1,
            index,
        },
        Next::End { succeeded } => Then::End { succeeded },
    }
}

async fn apply_jobs(
    ctx: &Ctx,
    op: &Op,
    tx: &mut JobsTx,
    run: &RunRow,
    then: Then,
) -> Result<(), Failed> {
    match then {
        Then::Step { seq, index } => {
            let key = step_key(run.id, seq);
            let p = payload(run.id, seq, index);
            tx.tx()
                .enqueue_job(&NewJob {
                    kind: STEP,
                    workspace_id: Some(run.workspace_id),
                    dedupe_key: Some(&key),
                    payload: &p,
                    max_attempts: ATTEMPTS,
                    run_at: op.now_us(),
                    now: op.now_us(),
                })
                .await
                .map_err(db)?;
            tx.wf_set_run(run.id, "running", op.now_us())
                .await
                .map_err(db)?;
        }
        Then::End { succeeded } => {
            let status = if succeeded { "succeeded" } else { "failed" };
            if tx
                .wf_set_run(run.id, status, op.now_us())
                .await
                .map_err(db)?
            {
                let outcome = if succeeded {
                    Outcome::Success
                } else {
                    Outcome::Failed
                };
                let event = run_event(
                    op,
                    run,
                    "workflow.run_ended",
                    outcome,
                    json!({ "status": status }),
                );
                tx.tx().record(&ctx.audit_key, &event).await.map_err(db)?;
            }
        }
    }
    Ok(())
}

/// After a person decided an approval step (in the decision's transaction).
pub(crate) async fn after_decision(
    ctx: &Ctx,
    op: &Op,
    tx: &mut WorkspaceTx,
    run: &RunRow,
    def: &Definition,
    step: &StepRow,
    approved: bool,
) -> CoreResult<()> {
    let index = usize::try_from(step.step_index).unwrap_or(usize::MAX);
    match then_of(def.after(index, approved), step.seq) {
        Then::Step { seq, index } => {
            let key = step_key(run.id, seq);
            let p = payload(run.id, seq, index);
            tx.enqueue_job(&NewJob {
                kind: STEP,
                workspace_id: Some(run.workspace_id),
                dedupe_key: Some(&key),
                payload: &p,
                max_attempts: ATTEMPTS,
                run_at: op.now_us(),
                now: op.now_us(),
            })
            .await?;
            tx.set_workflow_run(run.id, "running", op.now_us()).await?;
        }
        Then::End { succeeded } => {
            let status = if succeeded { "succeeded" } else { "failed" };
            if tx.set_workflow_run(run.id, status, op.now_us()).await? {
                let outcome = if succeeded {
                    Outcome::Success
                } else {
                    Outcome::Failed
                };
                tx.record(
                    &ctx.audit_key,
                    run_event(
                        op,
                        run,
                        "workflow.run_ended",
                        outcome,
                        json!({ "status": status }),
                    ),
                )
                .await?;
            }
        }
    }
    Ok(())
}

fn new_step(
    run: &RunRow,
    p: &Payload,
    def: &Definition,
    status: &str,
    session: Option<Uuid>,
    now: i64,
) -> StepRow {
    let step = &def.steps[p.index];
    StepRow {
        run_id: run.id,
        workspace_id: run.workspace_id,
        seq: p.seq,
        step_index: i64::try_from(p.index).unwrap_or(i64::MAX),
        step_id: step.id.clone(),
        kind: step.kind.name().to_owned(),
        status: status.to_owned(),
        session_id: session,
        decided_by: None,
        reason: None,
        started_at: now,
        ended_at: if matches!(status, "succeeded" | "failed") {
            Some(now)
        } else {
            None
        },
    }
}

/// Runs a `workflow.step` job.
pub async fn run_step(ctx: &Arc<Ctx>, job: &ClaimedJob) -> Result<Done, Failed> {
    let p: Payload = serde_json::from_str(&job.payload)
        .map_err(|_| Failed::permanent("the job does not describe a workflow step"))?;
    if !ctx.license.feature(Feature::Workflows) {
        return Err(Failed::permanent("the licence does not include workflows"));
    }
    let op = system_op(ctx);
    let mut tx = ctx.store.begin_jobs().await.map_err(db)?;
    let Some(run) = tx.wf_run(p.run_id).await.map_err(db)? else {
        return Ok(Done::Finished);
    };
    if !matches!(run.status.as_str(), "running" | "waiting") {
        return Ok(Done::Finished);
    }
    let def = definition_of(&run)?;
    let Some(step) = def.steps.get(p.index).cloned() else {
        return Err(Failed::permanent("the step is not in the run's definition"));
    };
    let steps = tx.wf_steps(run.id).await.map_err(db)?;
    let existing = steps.iter().find(|s| s.seq == p.seq).cloned();
    let now = op.now_us();
    let started = |s: &StepRow| {
        run_event(
            &op,
            &run,
            "workflow.step_started",
            Outcome::Success,
            json!({ "step": s.step_id, "kind": s.kind, "seq": s.seq,
                          "session_id": s.session_id.map(|x| x.to_string()) }),
        )
    };
    match &step.kind {
        StepKind::Condition { .. } => {
            if existing.is_some() {
                return Ok(Done::Finished);
            }
            let previous = steps.iter().find(|s| s.seq == p.seq - 1);
            let succeeded = previous.is_some_and(|s| s.status == "succeeded");
            let row = new_step(&run, &p, &def, "succeeded", None, now);
            if tx.wf_insert_step(&row).await.map_err(db)? {
                tx.tx()
                    .record(&ctx.audit_key, &started(&row))
                    .await
                    .map_err(db)?;
                apply_jobs(
                    ctx,
                    &op,
                    &mut tx,
                    &run,
                    then_of(def.branch(p.index, succeeded), p.seq),
                )
                .await?;
            }
            tx.commit().await.map_err(db)?;
            ctx.jobs.wake();
            Ok(Done::Finished)
        }
        StepKind::Approval {
            timeout_minutes, ..
        } => {
            if existing.is_some() {
                return Ok(Done::Finished);
            }
            let row = new_step(&run, &p, &def, "waiting", None, now);
            if tx.wf_insert_step(&row).await.map_err(db)? {
                tx.wf_set_run(run.id, "waiting", now).await.map_err(db)?;
                let minutes = i64::from(timeout_minutes.unwrap_or(APPROVAL_DEFAULT_MINUTES));
                let key = format!("workflow-timeout:{}:{}", run.id, p.seq);
                let payload = payload(run.id, p.seq, p.index);
                tx.tx()
                    .enqueue_job(&NewJob {
                        kind: TIMEOUT,
                        workspace_id: Some(run.workspace_id),
                        dedupe_key: Some(&key),
                        payload: &payload,
                        max_attempts: ATTEMPTS,
                        run_at: now + minutes * 60_000_000,
                        now,
                    })
                    .await
                    .map_err(db)?;
                tx.tx()
                    .record(&ctx.audit_key, &started(&row))
                    .await
                    .map_err(db)?;
            }
            tx.commit().await.map_err(db)?;
            Ok(Done::Finished)
        }
        StepKind::Agent { .. } | StepKind::Command { .. } => {
            let row = match existing {
                Some(r) => r,
                None => {
                    let row = new_step(&run, &p, &def, "running", Some(Uuid::now_v7()), now);
                    if tx.wf_insert_step(&row).await.map_err(db)? {
                        tx.tx()
                            .record(&ctx.audit_key, &started(&row))
                            .await
                            .map_err(db)?;
                    }
                    row
                }
            };
            tx.commit().await.map_err(db)?;
            if row.status != "running" {
                return Ok(Done::Finished);
            }
            // The run's work goes on from the branch its latest session step left.
            let base = steps
                .iter()
                .filter(|s| s.seq < row.seq)
                .filter_map(|s| s.session_id.map(|id| (s.seq, id)))
                .max()
                .map(|(_, id)| id);
            start_session(ctx, job, &run, &def, &row, &step.kind, base).await
        }
    }
}

/// Opens (or, on a retried job, finds) an agent or command step's session, acting for the
/// person who started the run — whose permission is checked now.
async fn start_session(
    ctx: &Arc<Ctx>,
    job: &ClaimedJob,
    run: &RunRow,
    def: &Definition,
    step: &StepRow,
    kind: &StepKind,
    base: Option<Uuid>,
) -> Result<Done, Failed> {
    let Some(session_id) = step.session_id else {
        return Err(Failed::permanent("the step has no session id"));
    };
    let who = Principal::for_job(run.started_by, run.id);
    let Ok(grant) = ctx
        .store
        .authorize(
            &who,
            WorkspaceId::from_uuid(run.workspace_id),
            Permission::SESSIONS_CREATE,
        )
        .await
    else {
        return end_step(
            ctx,
            run,
            def,
            step,
            "running",
            false,
            Some("the person who started the run may no longer start sessions here"),
        )
        .await
        .map(|()| Done::Finished);
    };
    let parsed = match kind {
        StepKind::Agent {
            prompt,
            provider,
            mode,
        } => {
            let prompt = match run.ticket_id {
                Some(t) => with_ticket(ctx, &grant, prompt, t).await,
                None => prompt.clone(),
            };
            StartSession::parse(provider, prompt, mode.as_deref(), Vec::new(), None)
        }
        StepKind::Command { command } => {
            StartSession::parse("command", String::new(), None, command.clone(), None)
        }
        _ => return Err(Failed::permanent("not a session step")),
    };
    let input = match parsed {
        Ok(i) => i.with_id(session_id).in_workflow(base),
        Err(e) => {
            return end_step(ctx, run, def, step, "running", false, Some(e.detail))
                .await
                .map(|()| Done::Finished);
        }
    };
    let op = system_op(ctx);
    match crate::sessions::start(ctx, &op, &grant, input).await {
        Ok(_) => Ok(Done::Finished),
        Err(e)
            if matches!(
                e.code,
                Code::NoHostAvailable | Code::HostNotConnected | Code::Unavailable | Code::Internal
            ) && job.attempts < job.max_attempts =>
        {
            Err(Failed::retry(e.detail))
        }
        Err(e) => end_step(ctx, run, def, step, "running", false, Some(e.detail))
            .await
            .map(|()| Done::Finished),
    }
}

/// The step's prompt followed by the run's ticket.
async fn with_ticket(
    ctx: &Ctx,
    grant: &warden_store::tenancy::WorkspaceGrant,
    prompt: &str,
    ticket: Uuid,
) -> String {
    let found = async {
        let mut tx = ctx.store.scoped(grant).await.ok()?;
        let t = tx.ticket(ticket).await.ok()??;
        tx.commit().await.ok()?;
        Some(t)
    }
    .await;
    match found {
        Some(t) => format!(
            "{prompt}\n\nTicket #{}: {}\n\n{}",
            t.number, t.title, t.body
        ),
        None => prompt.to_owned(),
    }
}

/// Ends a step standing at `from` and moves its run on, in one transaction.
async fn end_step(
    ctx: &Ctx,
    run: &RunRow,
    def: &Definition,
    step: &StepRow,
    from: &str,
    succeeded: bool,
    reason: Option<&str>,
) -> Result<(), Failed> {
    let op = system_op(ctx);
    let mut tx = ctx.store.begin_jobs().await.map_err(db)?;
    let Some(current) = tx.wf_run(run.id).await.map_err(db)? else {
        return Ok(());
    };
    let to = if succeeded { "succeeded" } else { "failed" };
    if tx
        .wf_end_step(step.run_id, step.seq, from, to, reason, op.now_us())
        .await
        .map_err(db)?
    {
        let outcome = if succeeded {
            Outcome::Success
        } else {
            Outcome::Failed
        };
        let event = run_event(
            &op,
            run,
            "workflow.step_ended",
            outcome,
            json!({ "step": step.step_id, "seq": step.seq, "status": to, "reason": reason }),
        );
        tx.tx().record(&ctx.audit_key, &event).await.map_err(db)?;
        if matches!(current.status.as_str(), "running" | "waiting") {
            let index = usize::try_from(step.step_index).unwrap_or(usize::MAX);
            apply_jobs(
                ctx,
                &op,
                &mut tx,
                &current,
                then_of(def.after(index, succeeded), step.seq),
            )
            .await?;
        }
    }
    tx.commit().await.map_err(db)?;
    ctx.jobs.wake();
    Ok(())
}

/// A session ended: if a workflow step opened it, the step ends with it and the run goes on.
pub async fn session_ended(ctx: &Ctx, session_id: Uuid, failed: bool) {
    let result: Result<(), Failed> = async {
        let mut tx = ctx.store.begin_jobs().await.map_err(db)?;
        let Some(step) = tx.wf_step_of_session(session_id).await.map_err(db)? else {
            return Ok(());
        };
        let Some(run) = tx.wf_run(step.run_id).await.map_err(db)? else {
            return Ok(());
        };
        tx.commit().await.map_err(db)?;
        let def = definition_of(&run)?;
        end_step(ctx, &run, &def, &step, "running", !failed, None).await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(reason = %e.reason, "cannot record the end of a workflow step");
    }
}

/// Runs a `workflow.timeout` job: an approval still waiting counts as rejected.
pub async fn run_timeout(ctx: &Arc<Ctx>, job: &ClaimedJob) -> Result<Done, Failed> {
    let p: Payload = serde_json::from_str(&job.payload)
        .map_err(|_| Failed::permanent("the job does not describe a workflow step"))?;
    let mut tx = ctx.store.begin_jobs().await.map_err(db)?;
    let Some(run) = tx.wf_run(p.run_id).await.map_err(db)? else {
        return Ok(Done::Finished);
    };
    let steps = tx.wf_steps(run.id).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    let Some(step) = steps
        .into_iter()
        .find(|s| s.seq == p.seq && s.status == "waiting")
    else {
        return Ok(Done::Finished);
    };
    let def = definition_of(&run)?;
    end_step(
        ctx,
        &run,
        &def,
        &step,
        "waiting",
        false,
        Some("nobody decided in time"),
    )
    .await?;
    Ok(Done::Finished)
}

/// Closes the develop-mode sessions of finished runs (kept while the run went on, for its next
/// step): audited, and their hosts remove the worktrees and branches.
async fn close_finished_sessions(ctx: &Ctx) -> Result<(), Failed> {
    let op = system_op(ctx);
    let mut tx = ctx.store.begin_jobs().await.map_err(db)?;
    let closed = tx
        .wf_close_finished_sessions(op.now_us(), 200)
        .await
        .map_err(db)?;
    for (id, workspace, _) in &closed {
        let mut event = op.event(
            "session.closed",
            "session",
            Some(id.to_string()),
            json!({ "mode": "develop", "via": "workflow" }),
        );
        event.workspace_id = Some(workspace.to_string());
        tx.tx().record(&ctx.audit_key, &event).await.map_err(db)?;
    }
    tx.commit().await.map_err(db)?;
    for (id, workspace, host) in closed {
        if let Some(host) = host {
            crate::cluster::send(
                ctx,
                host,
                ServerMessage::ArchiveSession {
                    session_id: id.to_string(),
                    workspace_id: workspace.to_string(),
                },
            )
            .await;
        }
    }
    Ok(())
}

/// How often the sweep looks for work whose session ended without a host's report.
const SWEEP: std::time::Duration = std::time::Duration::from_secs(5);

/// Every few seconds: a workflow step or a bot's answer whose session ended by another way
/// than its host's report (lost with its host, canceled before it started) ends too, and what
/// waits on it goes on.
pub fn spawn_sweep(ctx: Arc<Ctx>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(SWEEP).await;
            match ctx.store.workflow_sessions_ended(500).await {
                Ok(ended) => {
                    for (session, failed) in ended {
                        session_ended(&ctx, session, failed).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot sweep workflow steps"),
            }
            if let Err(e) = close_finished_sessions(&ctx).await {
                tracing::warn!(reason = %e.reason, "cannot close finished runs' sessions");
            }
            match ctx.store.bot_sessions_ended(500).await {
                Ok(ended) => {
                    for (session, failed) in ended {
                        crate::bots::runner::session_ended(&ctx, session, failed).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot sweep bots' answers"),
            }
        }
    })
}
