//! Automations: agent sessions that start without a person asking — by hand from a saved
//! definition (`manual`), once at an instant (`once`), on a cron schedule in a time zone
//! (`cron`), again a while after the previous run ended (`loop`), or when an event source
//! receives a matching delivery (`trigger`).
//!
//! Each run is a job on the durable queue ([`runner`]); the schedule fires from every node's
//! [`scheduler`], and a cron instant becomes exactly one job across the cluster. A run acts
//! for the person who created or last changed the automation: their permission to start
//! sessions in the workspace is checked again at every run, so a run stops working the
//! moment they lose it.

pub mod runner;
pub mod schedule;
pub mod scheduler;
pub mod template;

use serde_json::json;
use uuid::Uuid;
use warden_domain::access::Permission;
use warden_domain::tenancy::PromptName;
use warden_store::automations::{AutomationRow, AutomationSpec, RunRow};
use warden_store::jobs::NewJob;
use warden_store::tenancy::WorkspaceGrant;

use crate::sessions::StartSession;
use crate::{Code, CoreError, CoreResult, Ctx, Op};
use schedule::{Missed, Recurring};

/// What a person sends to create or change an automation.
#[derive(Debug, Clone, Default)]
pub struct AutomationInput {
    /// Name, unique in the workspace.
    pub name: String,
    /// `manual`, `once`, `cron`, `loop` or `trigger`.
    pub kind: String,
    /// For `once`: RFC 3339.
    pub run_at: Option<String>,
    /// For `cron`: five fields.
    pub cron: Option<String>,
    /// For `cron`: an IANA zone (default UTC).
    pub timezone: Option<String>,
    /// For `loop`: seconds between a run's end and the next start.
    pub loop_interval_secs: Option<i64>,
    /// For `loop`: most runs.
    pub loop_max: Option<i64>,
    /// An inline prompt template …
    pub prompt: Option<String>,
    /// … or the name of one of the workspace's stored prompt templates.
    pub prompt_name: Option<String>,
    /// Provider (or `command`).
    pub provider: String,
    /// For `command`.
    pub command: Vec<String>,
    /// Session mode (default `develop`).
    pub mode: Option<String>,
    /// A particular host.
    pub host_id: Option<String>,
    /// `skip` (default) or `run_once`.
    pub missed: Option<String>,
    /// Default on.
    pub enabled: Option<bool>,
}

const KINDS: [&str; 5] = ["manual", "once", "cron", "loop", "trigger"];
/// The longest loop interval: a week.
const LOOP_INTERVAL_MAX: i64 = 7 * 24 * 3600;
/// The most runs a loop may make.
const LOOP_MAX: i64 = 100_000;

fn check_name(name: &str) -> CoreResult<()> {
    if name.trim().is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(CoreError::invalid(
            "name",
            "must be 1 to 100 characters without control characters",
        ));
    }
    Ok(())
}

/// Checks an input and works out when it first fires (µs), as of `now`.
fn spec_of(input: &AutomationInput, now: i64) -> CoreResult<AutomationSpec> {
    check_name(&input.name)?;
    let kind = input.kind.as_str();
    if !KINDS.contains(&kind) {
        return Err(CoreError::invalid(
            "kind",
            "must be manual, once, cron, loop or trigger",
        ));
    }
    // The session part: checked exactly as a person's session request would be.
    StartSession::parse(
        &input.provider,
        "automation".to_owned(),
        input.mode.as_deref(),
        input.command.clone(),
        input.host_id.as_deref(),
    )?;
    let host_id = input
        .host_id
        .as_deref()
        .map(|h| h.parse::<Uuid>())
        .transpose()
        .map_err(|_| CoreError::invalid("host_id", "must be a host id"))?;
    let (prompt, prompt_name) = match (&input.prompt, &input.prompt_name) {
        (Some(p), None) => {
            if p.trim().is_empty() || p.len() > warden_domain::tenancy::PROMPT_MAX {
                return Err(CoreError::invalid(
                    "prompt",
                    "must be 1 byte to 64 KiB of text",
                ));
            }
            template::check(p)?;
            (p.clone(), None)
        }
        (None, Some(n)) => (
            String::new(),
            Some(PromptName::parse(n)?.as_str().to_owned()),
        ),
        _ => {
            return Err(CoreError::invalid(
                "prompt",
                "give either prompt (a template) or prompt_name (a stored prompt), not both",
            ));
        }
    };
    let missed = match input.missed.as_deref() {
        None => Missed::Skip,
        Some(m) => Missed::parse(m)
            .ok_or_else(|| CoreError::invalid("missed", "must be skip or run_once"))?,
    };
    let enabled = input.enabled.unwrap_or(true);
    let mut spec = AutomationSpec {
        name: input.name.trim().to_owned(),
        kind: kind.to_owned(),
        run_at: None,
        cron: None,
        timezone: None,
        loop_interval_secs: None,
        loop_max: None,
        prompt,
        prompt_name,
        provider: input.provider.clone(),
        command: (!input.command.is_empty())
            .then(|| serde_json::to_string(&input.command).unwrap_or_default()),
        mode: input.mode.clone().unwrap_or_else(|| "develop".to_owned()),
        host_id,
        missed: missed.as_str().to_owned(),
        enabled,
        next_run_at: None,
    };
    match kind {
        "once" => {
            let text = input.run_at.as_deref().ok_or_else(|| {
                CoreError::invalid("run_at", "a one-time automation needs run_at")
            })?;
            let at =
                time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                    .map_err(|_| CoreError::invalid("run_at", "must be an RFC 3339 time"))?;
            let at = crate::op::unix_us(at);
            if at <= now {
                return Err(CoreError::invalid("run_at", "must be in the future"));
            }
            spec.run_at = Some(at);
            spec.next_run_at = Some(at);
        }
        "cron" => {
            let expr = input
                .cron
                .as_deref()
                .ok_or_else(|| CoreError::invalid("cron", "a recurring automation needs cron"))?;
            let zone = input.timezone.as_deref().unwrap_or("UTC");
            let recurring = Recurring::parse(expr, zone)?;
            spec.cron = Some(expr.trim().to_owned());
            spec.timezone = Some(zone.to_owned());
            spec.next_run_at = recurring.next_after(now);
        }
        "loop" => {
            let interval = input.loop_interval_secs.ok_or_else(|| {
                CoreError::invalid("loop_interval_secs", "a loop needs loop_interval_secs")
            })?;
            if !(1..=LOOP_INTERVAL_MAX).contains(&interval) {
                return Err(CoreError::invalid(
                    "loop_interval_secs",
                    "must be 1 to 604800 seconds",
                ));
            }
            let max = input
                .loop_max
                .ok_or_else(|| CoreError::invalid("loop_max", "a loop needs loop_max"))?;
            if !(1..=LOOP_MAX).contains(&max) {
                return Err(CoreError::invalid("loop_max", "must be 1 to 100000 runs"));
            }
            spec.loop_interval_secs = Some(interval);
            spec.loop_max = Some(max);
            spec.next_run_at = Some(now);
        }
        _ => {}
    }
    if !enabled {
        spec.next_run_at = None;
    }
    Ok(spec)
}

/// A stored prompt named by an automation must exist when it is saved.
async fn check_prompt_exists(
    tx: &mut warden_store::tenancy::WorkspaceTx,
    spec: &AutomationSpec,
) -> CoreResult<()> {
    if let Some(name) = &spec.prompt_name
        && tx.prompt(name).await?.is_none()
    {
        return Err(CoreError::invalid(
            "prompt_name",
            "names no prompt template of this workspace",
        ));
    }
    Ok(())
}

/// A run acts for whoever saves the automation: they must be able to start sessions here.
pub(crate) fn check_may_start_sessions(grant: &WorkspaceGrant) -> CoreResult<()> {
    if grant.holds(Permission::SESSIONS_CREATE) {
        Ok(())
    } else {
        Err(CoreError::with_detail(
            Code::PermissionNotHeld,
            "An automation's runs start sessions for you: you need sessions.create in this workspace.",
        ))
    }
}

fn automation_id(id: &str) -> CoreResult<Uuid> {
    id.parse().map_err(|_| Code::NotFound.into())
}

fn summary(spec: &AutomationSpec) -> serde_json::Value {
    json!({ "name": spec.name, "kind": spec.kind, "cron": spec.cron, "timezone": spec.timezone,
            "provider": spec.provider, "mode": spec.mode, "enabled": spec.enabled })
}

/// Creates an automation.
pub async fn create(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    input: &AutomationInput,
) -> CoreResult<AutomationRow> {
    check_may_start_sessions(grant)?;
    let spec = spec_of(input, op.now_us())?;
    let mut tx = ctx.store.scoped(grant).await?;
    check_prompt_exists(&mut tx, &spec).await?;
    let id = Uuid::now_v7();
    if !tx.insert_automation(id, &spec, op.now_us()).await? {
        return Err(Code::AutomationExists.into());
    }
    let event = op.event(
        "automation.created",
        "automation",
        Some(id.to_string()),
        summary(&spec),
    );
    tx.record(&ctx.audit_key, event).await?;
    let row = tx.automation(id).await?.ok_or(Code::NotFound)?;
    tx.commit().await?;
    ctx.scheduler.wake();
    Ok(row)
}

/// The workspace's automations.
pub async fn list(ctx: &Ctx, grant: &WorkspaceGrant) -> CoreResult<Vec<AutomationRow>> {
    let mut tx = ctx.store.scoped(grant).await?;
    let rows = tx.automations().await?;
    tx.commit().await?;
    Ok(rows)
}

/// One automation with its latest runs (at most 50).
pub async fn get(
    ctx: &Ctx,
    grant: &WorkspaceGrant,
    id: &str,
) -> CoreResult<(AutomationRow, Vec<RunRow>)> {
    let id = automation_id(id)?;
    let mut tx = ctx.store.scoped(grant).await?;
    let row = tx.automation(id).await?.ok_or(Code::NotFound)?;
    let runs = tx.automation_runs(id, 50).await?;
    tx.commit().await?;
    Ok((row, runs))
}

/// Changes an automation; its runs now act for the caller, and its schedule starts again
/// from now.
pub async fn update(
    ctx: &Ctx,
    op: &Op,
    grant: &WorkspaceGrant,
    id: &str,
    input: &AutomationInput,
) -> CoreResult<AutomationRow> {
    let id = automation_id(id)?;
    check_may_start_sessions(grant)?;
    let spec = spec_of(input, op.now_us())?;
    let mut tx = ctx.store.scoped(grant).await?;
    tx.automation(id).await?.ok_or(Code::NotFound)?;
    check_prompt_exists(&mut tx, &spec).await?;
    if !tx.update_automation(id, &spec, op.now_us()).await? {
        return Err(Code::AutomationExists.into());
    }
    let event = op.event(
        "automation.changed",
        "automation",
        Some(id.to_string()),
        summary(&spec),
    );
    tx.record(&ctx.audit_key, event).await?;
    let row = tx.automation(id).await?.ok_or(Code::NotFound)?;
    tx.commit().await?;
    ctx.scheduler.wake();
    Ok(row)
}

/// Deletes an automation and its runs (sessions it started stay).
pub async fn delete(ctx: &Ctx, op: &Op, grant: &WorkspaceGrant, id: &str) -> CoreResult<()> {
    let id = automation_id(id)?;
    let mut tx = ctx.store.scoped(grant).await?;
    let row = tx.automation(id).await?.ok_or(Code::NotFound)?;
    tx.delete_automation(id).await?;
    let event = op.event(
        "automation.deleted",
        "automation",
        Some(id.to_string()),
        json!({ "name": row.name }),
    );
    tx.record(&ctx.audit_key, event).await?;
    tx.commit().await?;
    Ok(())
}

/// Queues a run now (any kind of automation, even a disabled one: someone asked). The run
/// acts for the automation's owner, whose permission is checked when it starts; asking for
/// it needs only `automations.update`.
pub async fn run_now(ctx: &Ctx, op: &Op, grant: &WorkspaceGrant, id: &str) -> CoreResult<RunRow> {
    let id = automation_id(id)?;
    let mut tx = ctx.store.scoped(grant).await?;
    tx.automation(id).await?.ok_or(Code::NotFound)?;
    let now = op.now_us();
    let payload = json!({ "automation_id": id, "trigger": "manual",
                          "requested_by": grant.user_id() })
    .to_string();
    let job_id = tx
        .enqueue_job(&NewJob {
            kind: runner::KIND,
            workspace_id: Some(grant.workspace().uuid()),
            dedupe_key: None,
            payload: &payload,
            max_attempts: ctx.automations.job_attempts,
            run_at: now,
            now,
        })
        .await?
        .ok_or_else(|| CoreError::internal(&"a job without a dedupe key was not enqueued"))?;
    let run = RunRow {
        id: Uuid::now_v7(),
        workspace_id: grant.workspace().uuid(),
        automation_id: id,
        job_id,
        trigger: "manual".to_owned(),
        scheduled_for: None,
        event_id: None,
        session_id: Some(Uuid::now_v7()),
        status: "queued".to_owned(),
        error: None,
        created_at: now,
        started_at: None,
        ended_at: None,
    };
    tx.insert_run(&run).await?;
    let event = op.event(
        "automation.run_requested",
        "automation",
        Some(id.to_string()),
        json!({ "run_id": run.id.to_string() }),
    );
    tx.record(&ctx.audit_key, event).await?;
    tx.commit().await?;
    ctx.jobs.wake();
    Ok(run)
}
