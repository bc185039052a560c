//! Workflows: a workspace's named, versioned step sequences (`warden_domain::workflows`
//! checks a definition; each save is a new version) and their runs — started by hand, or by a
//! ticket moving to the status a workflow names — which the work queue advances step by step
//! ([`runner`]). People approve or reject approval steps here, and cancel runs. Every change
//! and every step is audited.

pub mod runner;

use serde::Serialize;
use serde_json::{Value, json};
use uuid::Uuid;
use warden_domain::workflows::{Definition, check_name};
use warden_store::jobs::NewJob;
use warden_store::tenancy::{WorkspaceGrant, WorkspaceTx};
use warden_store::workflows::{RunRow, StepRow, WorkflowRow};

use crate::op::rfc3339;
use crate::{Code, CoreError, CoreResult, Ctx, Op};

/// A workflow as read.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Workflow {
    /// Id.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Current version.
    pub version: i64,
    /// Current definition.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub definition: Value,
    /// The ticket status that starts it.
    pub on_ticket: Option<String>,
    /// Last changed (RFC 3339).
    pub updated_at: String,
}

impl Workflow {
    fn from_row(r: WorkflowRow) -> Self {
        Self {
            id: r.id,
            definition: serde_json::from_str(&r.definition).unwrap_or(Value::Null),
            name: r.name,
            version: r.version,
            on_ticket: r.on_ticket,
            updated_at: rfc3339(r.updated_at),
        }
    }
}

/// A run as read.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Run {
    /// Id.
    pub id: Uuid,
    /// The workflow.
    pub workflow_id: Uuid,
    /// Its name when the run started.
    pub name: String,
    /// The version it runs.
    pub version: i64,
    /// `running`, `waiting` (for an approval), `succeeded`, `failed`, `canceled`.
    pub status: String,
    /// Who started it (its sessions act for them).
    pub started_by: Uuid,
    /// The ticket it works on.
    pub ticket_id: Option<Uuid>,
    /// Started (RFC 3339).
    pub created_at: String,
    /// Ended (RFC 3339).
    pub ended_at: Option<String>,
}

impl Run {
    pub(crate) fn from_row(r: &RunRow) -> Self {
        Self {
            id: r.id,
            workflow_id: r.workflow_id,
            name: r.name.clone(),
            version: r.version,
            status: r.status.clone(),
            started_by: r.started_by,
            ticket_id: r.ticket_id,
            created_at: rfc3339(r.created_at),
            ended_at: r.ended_at.map(rfc3339),
        }
    }
}

/// A step of a run as read.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunStep {
    /// Its place in the run.
    pub seq: i64,
    /// Its id in the definition.
    pub step_id: String,
    /// `agent`, `command`, `approval`, `condition`.
    pub kind: String,
    /// `running`, `waiting`, `succeeded`, `failed`.
    pub status: String,
    /// Its session.
    pub session_id: Option<Uuid>,
    /// Who approved or rejected it.
    pub decided_by: Option<Uuid>,
    /// Why.
    pub reason: Option<String>,
    /// Started (RFC 3339).
    pub started_at: String,
    /// Ended (RFC 3339).
    pub ended_at: Option<String>,
}

fn step_view(s: StepRow) -> RunStep {
    RunStep {
        seq: s.seq,
        step_id: s.step_id,
        kind: s.kind,
        status: s.status,
        session_id: s.session_id,
        decided_by: s.decided_by,
        reason: s.reason,
        started_at: rfc3339(s.started_at),
        ended_at: s.ended_at.map(rfc3339),
    }
}

/// A run with its steps.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunDetail {
    /// The run.
    #[serde(flatten)]
    pub run: Run,
    /// Its steps, in the order they ran.
    pub steps: Vec<RunStep>,
}

/// The longest definition accepted as text.
const DEFINITION_TEXT_MAX: usize = 64 * 1024;

/// A definition as a document: given as one, or as text — JSON, or YAML (parsed by
/// `serde-saphyr` with its budgets against alias bombs; duplicate keys refused).
fn definition_document(definition: &Value) -> CoreResult<Value> {
    let Value::String(text) = definition else {
        return Ok(definition.clone());
    };
    let noted = |note: String| CoreError::noted(Code::InvalidWorkflow, "definition", note);
    if text.len() > DEFINITION_TEXT_MAX {
        return Err(noted("a definition is at most 64 KiB of text".into()));
    }
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return Ok(v);
    }
    serde_saphyr::from_str_with_options::<Value>(
        text,
        serde_saphyr::options! { with_snippet: false },
    )
    .map_err(|e| noted(format!("the definition is neither JSON nor YAML: {e}")))
}

fn parse_definition(definition: &Value) -> CoreResult<(Definition, String)> {
    let definition = &definition_document(definition)?;
    let def = Definition::parse(definition)
        .map_err(|e| CoreError::noted(Code::InvalidWorkflow, "definition", e.0))?;
    let text = serde_json::to_string(&def).map_err(|e| CoreError::internal(&e))?;
    Ok((def, text))
}

fn id_of(text: &str) -> CoreResult<Uuid> {
    text.parse().map_err(|_| Code::NotFound.into())
}

/// Saves a new workflow (version 1).
pub async fn create(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    name: &str,
    definition: &Value,
) -> CoreResult<Workflow> {
    let name = check_name(name)?;
    let (def, text) = parse_definition(definition)?;
    let mut tx = ctx.store.scoped(grant).await?;
    if tx.workflow_name_taken(&name, None).await? {
        return Err(Code::WorkflowExists.into());
    }
    let row = WorkflowRow {
        id: Uuid::now_v7(),
        workspace_id: tx.workspace().uuid(),
        name,
        version: 1,
        definition: text,
        on_ticket: def.on_ticket.clone(),
        created_by: grant.user_id(),
        created_at: op.now_us(),
        updated_at: op.now_us(),
    };
    tx.insert_workflow(&row).await?;
    let event = op.event(
        "workflow.created",
        "workflow",
        Some(row.id.to_string()),
        json!({ "name": row.name, "version": 1, "steps": def.steps.len() }),
    );
    tx.record(&ctx.audit_key, event).await?;
    tx.commit().await?;
    Ok(Workflow::from_row(row))
}

/// The workspace's workflows.
pub async fn list(ctx: &Ctx, grant: &WorkspaceGrant) -> CoreResult<Vec<Workflow>> {
    let mut tx = ctx.store.scoped(grant).await?;
    let rows = tx.workflows().await?;
    tx.commit().await?;
    Ok(rows.into_iter().map(Workflow::from_row).collect())
}

/// One workflow.
pub async fn get(ctx: &Ctx, grant: &WorkspaceGrant, id: &str) -> CoreResult<Workflow> {
    let id = id_of(id)?;
    let mut tx = ctx.store.scoped(grant).await?;
    let row = tx.workflow(id).await?.ok_or(Code::NotFound)?;
    tx.commit().await?;
    Ok(Workflow::from_row(row))
}

/// Saves a new version (runs already started keep theirs).
pub async fn update(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    id: &str,
    name: &str,
    definition: &Value,
) -> CoreResult<Workflow> {
    let id = id_of(id)?;
    let name = check_name(name)?;
    let (def, text) = parse_definition(definition)?;
    let mut tx = ctx.store.scoped(grant).await?;
    tx.workflow(id).await?.ok_or(Code::NotFound)?;
    if tx.workflow_name_taken(&name, Some(id)).await? {
        return Err(Code::WorkflowExists.into());
    }
    let version = tx
        .update_workflow(id, &name, &text, def.on_ticket.as_deref(), op.now_us())
        .await?;
    let event = op.event(
        "workflow.updated",
        "workflow",
        Some(id.to_string()),
        json!({ "name": name, "version": version, "steps": def.steps.len() }),
    );
    tx.record(&ctx.audit_key, event).await?;
    let row = tx.workflow(id).await?.ok_or(Code::NotFound)?;
    tx.commit().await?;
    Ok(Workflow::from_row(row))
}

/// Deletes a workflow (its runs stay, with the definition they ran).
pub async fn delete(ctx: &Ctx, op: &Op, grant: &WorkspaceGrant, id: &str) -> CoreResult<()> {
    let id = id_of(id)?;
    let mut tx = ctx.store.scoped(grant).await?;
    let row = tx.workflow(id).await?.ok_or(Code::NotFound)?;
    tx.delete_workflow(id).await?;
    let event = op.event(
        "workflow.deleted",
        "workflow",
        Some(id.to_string()),
        json!({ "name": row.name }),
    );
    tx.record(&ctx.audit_key, event).await?;
    tx.commit().await?;
    Ok(())
}

/// Records a run of `w` and queues its first step, in `tx`.
pub(crate) async fn start_in(
    ctx: &Ctx,
    op: &Op,
    tx: &mut WorkspaceTx,
    w: &WorkflowRow,
    ticket: Option<Uuid>,
    trigger: &str,
    id: Option<Uuid>,
) -> CoreResult<RunRow> {
    if let Some(existing) = match id {
        Some(id) => tx.workflow_run(id).await?,
        None => None,
    } {
        // Started already (a retried automation run): the same run, not a second.
        return Ok(existing);
    }
    let run = RunRow {
        id: id.unwrap_or_else(Uuid::now_v7),
        workspace_id: w.workspace_id,
        workflow_id: w.id,
        name: w.name.clone(),
        version: w.version,
        definition: w.definition.clone(),
        status: "running".to_owned(),
        started_by: tx.user_id(),
        ticket_id: ticket,
        created_at: op.now_us(),
        updated_at: op.now_us(),
        ended_at: None,
    };
    tx.insert_workflow_run(&run).await?;
    let payload = runner::payload(run.id, 0, 0);
    let key = runner::step_key(run.id, 0);
    tx.enqueue_job(&NewJob {
        kind: runner::STEP,
        workspace_id: Some(run.workspace_id),
        dedupe_key: Some(&key),
        payload: &payload,
        max_attempts: runner::ATTEMPTS,
        run_at: op.now_us(),
        now: op.now_us(),
    })
    .await?;
    let event = op.event(
        "workflow.run_started",
        "workflow_run",
        Some(run.id.to_string()),
        json!({ "workflow_id": w.id.to_string(), "name": w.name, "version": w.version,
                "trigger": trigger, "ticket_id": ticket.map(|t| t.to_string()) }),
    );
    tx.record(&ctx.audit_key, event).await?;
    Ok(run)
}

/// Starts a run of a workflow, by hand (optionally on a ticket, by number or id).
pub async fn start(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    id: &str,
    ticket: Option<&str>,
) -> CoreResult<Run> {
    let id = id_of(id)?;
    let mut tx = ctx.store.scoped(grant).await?;
    let w = tx.workflow(id).await?.ok_or(Code::NotFound)?;
    let ticket = match ticket {
        Some(t) => Some(crate::tickets::find(&mut tx, t).await?.id),
        None => None,
    };
    let run = start_in(ctx, op, &mut tx, &w, ticket, "manual", None).await?;
    tx.commit().await?;
    ctx.jobs.wake();
    Ok(Run::from_row(&run))
}

/// Starts the workflows a ticket's move to `status` triggers (inside the move's transaction).
pub(crate) async fn ticket_moved(
    ctx: &Ctx,
    op: &Op,
    tx: &mut WorkspaceTx,
    ticket: Uuid,
    status: &str,
) -> CoreResult<usize> {
    if !ctx
        .license
        .feature(warden_domain::license::Feature::Workflows)
    {
        return Ok(0);
    }
    let started = tx.workflows_on_ticket(status).await?;
    for w in &started {
        start_in(ctx, op, tx, w, Some(ticket), "ticket", None).await?;
    }
    Ok(started.len())
}

/// Makes an automation start a run of a workflow instead of a session (`None`: sessions
/// again). As after any change to an automation, its runs now act for the caller.
pub async fn link_automation(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    automation: &str,
    workflow: Option<&str>,
) -> CoreResult<Option<Workflow>> {
    let automation = id_of(automation)?;
    let workflow = workflow.map(id_of).transpose()?;
    let mut tx = ctx.store.scoped(grant).await?;
    tx.automation(automation).await?.ok_or(Code::NotFound)?;
    crate::automations::check_may_start_sessions(grant)?;
    let target = match workflow {
        Some(w) => Some(tx.workflow(w).await?.ok_or_else(|| {
            CoreError::invalid("workflow_id", "must be a workflow of this workspace")
        })?),
        None => None,
    };
    tx.set_automation_workflow(automation, workflow, op.now_us())
        .await?;
    let event = op.event(
        "automation.workflow_linked",
        "automation",
        Some(automation.to_string()),
        json!({ "workflow_id": workflow.map(|w| w.to_string()),
                "acting_for": grant.user_id().to_string() }),
    );
    tx.record(&ctx.audit_key, event).await?;
    tx.commit().await?;
    Ok(target.map(Workflow::from_row))
}

/// An automation's run starts its workflow (acting for the automation's person, whose grant
/// is `grant`); `id` is the run's id, fixed by the automation run so a retry finds it.
pub(crate) async fn start_for_automation(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    w: &WorkflowRow,
    id: Uuid,
) -> CoreResult<RunRow> {
    let mut tx = ctx.store.scoped(grant).await?;
    let run = start_in(ctx, op, &mut tx, w, None, "automation", Some(id)).await?;
    tx.commit().await?;
    ctx.jobs.wake();
    Ok(run)
}

/// The workspace's runs, newest first (at most 200).
pub async fn runs(ctx: &Ctx, grant: &WorkspaceGrant) -> CoreResult<Vec<Run>> {
    let mut tx = ctx.store.scoped(grant).await?;
    let rows = tx.workflow_runs(200).await?;
    tx.commit().await?;
    Ok(rows.iter().map(Run::from_row).collect())
}

/// One run, step by step.
pub async fn run(ctx: &Ctx, grant: &WorkspaceGrant, id: &str) -> CoreResult<RunDetail> {
    let id = id_of(id)?;
    let mut tx = ctx.store.scoped(grant).await?;
    let row = tx.workflow_run(id).await?.ok_or(Code::NotFound)?;
    let steps = tx.workflow_steps(id).await?;
    tx.commit().await?;
    Ok(RunDetail {
        run: Run::from_row(&row),
        steps: steps.into_iter().map(step_view).collect(),
    })
}

/// Cancels a run that has not ended; a step's running session is stopped.
pub async fn cancel(ctx: &Ctx, op: &Op, grant: &WorkspaceGrant, id: &str) -> CoreResult<Run> {
    let id = id_of(id)?;
    let mut tx = ctx.store.scoped(grant).await?;
    let row = tx.workflow_run(id).await?.ok_or(Code::NotFound)?;
    if !tx.set_workflow_run(id, "canceled", op.now_us()).await? {
        return Err(Code::WorkflowRunEnded.into());
    }
    let running: Vec<Uuid> = tx
        .workflow_steps(id)
        .await?
        .into_iter()
        .filter(|s| s.status == "running")
        .filter_map(|s| s.session_id)
        .collect();
    let event = op.event(
        "workflow.run_canceled",
        "workflow_run",
        Some(id.to_string()),
        json!({ "name": row.name, "stopping": running.len() }),
    );
    tx.record(&ctx.audit_key, event).await?;
    let row = tx.workflow_run(id).await?.ok_or(Code::NotFound)?;
    tx.commit().await?;
    for s in running {
        if let Err(e) = crate::sessions::stop(ctx, op, grant, &s.to_string()).await
            && e.code != Code::SessionEnded
            && e.code != Code::NotFound
        {
            tracing::warn!(session = %s, code = %e.code, "cannot stop a canceled run's session");
        }
    }
    Ok(Run::from_row(&row))
}

/// Approves or rejects the approval step a run waits on. The caller needs the step's
/// permission, and must not be the person who started the run when the step says so.
pub async fn decide(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    id: &str,
    approve: bool,
    reason: Option<&str>,
) -> CoreResult<RunDetail> {
    let id = id_of(id)?;
    let mut tx = ctx.store.scoped(grant).await?;
    let row = tx.workflow_run(id).await?.ok_or(Code::NotFound)?;
    let reason = warden_domain::tickets::check_reason(reason, !approve)?;
    let steps = tx.workflow_steps(id).await?;
    let Some(waiting) = steps.iter().find(|s| s.status == "waiting") else {
        return Err(Code::NothingToApprove.into());
    };
    let def = runner::definition_of(&row).map_err(|e| CoreError::internal(&e.reason))?;
    let index = usize::try_from(waiting.step_index).unwrap_or(usize::MAX);
    let step = def.steps.get(index).ok_or(Code::NothingToApprove)?;
    let needs = Definition::approval_permission(step).ok_or(Code::NothingToApprove)?;
    let others_only = matches!(
        step.kind,
        warden_domain::workflows::StepKind::Approval {
            others_only: true,
            ..
        }
    );
    let refusal = if !grant.holds(needs) {
        Some(Code::ApprovalForbidden)
    } else if others_only && grant.user_id() == row.started_by {
        Some(Code::ApprovalBySelf)
    } else {
        None
    };
    if let Some(code) = refusal {
        tx.commit().await?;
        let mut tx = ctx.store.scoped(grant).await?;
        let event = op.event_with(
            "workflow.step_decided",
            "workflow_run",
            Some(id.to_string()),
            warden_domain::audit::Outcome::Denied,
            json!({ "step": waiting.step_id, "approve": approve, "refused": code.as_str(),
                    "needs": needs.to_string() }),
        );
        tx.record(&ctx.audit_key, event).await?;
        tx.commit().await?;
        return Err(code.into());
    }
    if !tx
        .decide_workflow_step(id, waiting.seq, approve, reason.as_deref(), op.now_us())
        .await?
    {
        return Err(Code::NothingToApprove.into());
    }
    let event = op.event(
        "workflow.step_decided",
        "workflow_run",
        Some(id.to_string()),
        json!({ "step": waiting.step_id, "approved": approve, "reason": reason }),
    );
    tx.record(&ctx.audit_key, event).await?;
    runner::after_decision(ctx, op, &mut tx, &row, &def, waiting, approve).await?;
    let row = tx.workflow_run(id).await?.ok_or(Code::NotFound)?;
    let steps = tx.workflow_steps(id).await?;
    tx.commit().await?;
    ctx.jobs.wake();
    Ok(RunDetail {
        run: Run::from_row(&row),
        steps: steps.into_iter().map(step_view).collect(),
    })
}
