//! Automations and their runs. Every route needs the licence's `automations` module.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;
use warden_core::automations::{self, AutomationInput};
use warden_domain::access::{Access, Permission};
use warden_domain::license::Feature;
use warden_store::automations::{AutomationRow, RunRow};

use super::me::rfc3339;
use crate::http::authz::{UserOp, WorkspaceAccess};
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    use Access::Workspace;
    let f = Feature::Automations;
    Routes::new()
        .add_feature(Workspace(Permission::AUTOMATIONS_READ), f, routes!(list))
        .add_feature(
            Workspace(Permission::AUTOMATIONS_CREATE),
            f,
            routes!(create),
        )
        .add_feature(Workspace(Permission::AUTOMATIONS_READ), f, routes!(get))
        .add_feature(
            Workspace(Permission::AUTOMATIONS_UPDATE),
            f,
            routes!(update),
        )
        .add_feature(
            Workspace(Permission::AUTOMATIONS_DELETE),
            f,
            routes!(delete),
        )
        .add_feature(
            Workspace(Permission::AUTOMATIONS_UPDATE),
            f,
            routes!(run_now),
        )
}

/// An automation: what starts, and when.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutomationBody {
    /// Name, unique in the workspace.
    pub name: String,
    /// `manual` (only when asked), `once` (at `run_at`), `cron` (`cron` in `timezone`),
    /// `loop` (again `loop_interval_secs` after each run ends, `loop_max` runs) or `trigger`
    /// (when an event source pointed at it receives a matching delivery).
    pub kind: String,
    /// For `once`: RFC 3339, in the future.
    pub run_at: Option<String>,
    /// For `cron`: five fields (minute hour day-of-month month day-of-week).
    pub cron: Option<String>,
    /// For `cron`: IANA time zone (default UTC).
    pub timezone: Option<String>,
    /// For `loop`: seconds between the end of a run and the next start (1–604800).
    pub loop_interval_secs: Option<i64>,
    /// For `loop`: most runs (1–100000).
    pub loop_max: Option<i64>,
    /// The prompt template. `{{ event.… }}` reads the triggering delivery's JSON body;
    /// every value is inserted JSON-escaped. Give this or `prompt_name`.
    pub prompt: Option<String>,
    /// The name of one of the workspace's stored prompt templates.
    pub prompt_name: Option<String>,
    /// `claude-code`, `gemini-cli`, `codex`, `opencode`, `kilo-cli`, `qwen-code` or `command`.
    pub provider: String,
    /// For `command`: program and arguments.
    #[serde(default)]
    pub command: Vec<String>,
    /// `chat`, `develop` (default) or `bot`.
    pub mode: Option<String>,
    /// Run on this host only.
    pub host_id: Option<String>,
    /// Schedule instants missed while no node ran: `skip` (default) or `run_once`.
    pub missed: Option<String>,
    /// Default true.
    pub enabled: Option<bool>,
}

impl From<AutomationBody> for AutomationInput {
    fn from(b: AutomationBody) -> Self {
        Self {
            name: b.name,
            kind: b.kind,
            run_at: b.run_at,
            cron: b.cron,
            timezone: b.timezone,
            loop_interval_secs: b.loop_interval_secs,
            loop_max: b.loop_max,
            prompt: b.prompt,
            prompt_name: b.prompt_name,
            provider: b.provider,
            command: b.command,
            mode: b.mode,
            host_id: b.host_id,
            missed: b.missed,
            enabled: b.enabled,
        }
    }
}

/// An automation as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct AutomationView {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: String,
    /// For `once`.
    pub run_at: Option<String>,
    /// For `cron`.
    pub cron: Option<String>,
    /// For `cron`.
    pub timezone: Option<String>,
    /// For `loop`.
    pub loop_interval_secs: Option<i64>,
    /// For `loop`.
    pub loop_max: Option<i64>,
    /// Inline prompt template.
    pub prompt: Option<String>,
    /// Stored prompt template used instead.
    pub prompt_name: Option<String>,
    /// Provider.
    pub provider: String,
    /// For `command`.
    pub command: Vec<String>,
    /// Mode.
    pub mode: String,
    /// Host, if one is chosen.
    pub host_id: Option<String>,
    /// Missed-run policy.
    pub missed: String,
    /// Whether it runs.
    pub enabled: bool,
    /// When its schedule fires next (RFC 3339).
    pub next_run_at: Option<String>,
    /// Runs its schedule started.
    pub runs_started: i64,
    /// The user its runs act for (who created or last changed it).
    pub run_as: String,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Last changed (RFC 3339).
    pub updated_at: String,
}

pub(crate) fn view(a: AutomationRow) -> AutomationView {
    AutomationView {
        id: a.id.to_string(),
        name: a.name,
        kind: a.kind,
        run_at: a.run_at.map(rfc3339),
        cron: a.cron,
        timezone: a.timezone,
        loop_interval_secs: a.loop_interval_secs,
        loop_max: a.loop_max,
        prompt: (a.prompt_name.is_none()).then_some(a.prompt),
        prompt_name: a.prompt_name,
        provider: a.provider,
        command: a
            .command
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok())
            .unwrap_or_default(),
        mode: a.mode,
        host_id: a.host_id.map(|h| h.to_string()),
        missed: a.missed,
        enabled: a.enabled,
        next_run_at: a.next_run_at.map(rfc3339),
        runs_started: a.runs_started,
        run_as: a.run_as.to_string(),
        created_at: rfc3339(a.created_at),
        updated_at: rfc3339(a.updated_at),
    }
}

/// One run.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunView {
    /// Id.
    pub id: String,
    /// `manual`, `schedule`, `loop` or `event`.
    pub trigger: String,
    /// `queued`, `running`, `done`, `failed` or `skipped`.
    pub status: String,
    /// The schedule instant it is for (RFC 3339).
    pub scheduled_for: Option<String>,
    /// The delivery that triggered it.
    pub event_id: Option<String>,
    /// The agent session it started (`/workspaces/{id}/sessions/{session_id}`).
    pub session_id: Option<String>,
    /// Why it failed or was skipped.
    pub error: Option<String>,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Its session started.
    pub started_at: Option<String>,
    /// Ended.
    pub ended_at: Option<String>,
}

pub(crate) fn run_view(r: RunRow) -> RunView {
    // A run's session id is chosen before the session exists; it names one only once started.
    let started = r.started_at.is_some();
    RunView {
        id: r.id.to_string(),
        trigger: r.trigger,
        status: r.status,
        scheduled_for: r.scheduled_for.map(rfc3339),
        event_id: r.event_id.map(|e| e.to_string()),
        session_id: r.session_id.filter(|_| started).map(|s| s.to_string()),
        error: r.error,
        created_at: rfc3339(r.created_at),
        started_at: r.started_at.map(rfc3339),
        ended_at: r.ended_at.map(rfc3339),
    }
}

/// An automation with its latest runs.
#[derive(Debug, Serialize, ToSchema)]
pub struct AutomationDetail {
    /// The automation.
    pub automation: AutomationView,
    /// Its latest 50 runs, newest first.
    pub runs: Vec<RunView>,
}

/// The workspace's automations.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/automations", tag = "automations",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses((status = 200, description = "Automations, by name", body = Vec<AutomationView>),
        (status = 403, description = "Not allowed, or the licence lacks automations", content_type = "application/problem+json")))]
pub(crate) async fn list(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
) -> Result<Json<Vec<AutomationView>>, ApiError> {
    let rows = automations::list(&state.ctx, &grant).await?;
    Ok(Json(rows.into_iter().map(view).collect()))
}

/// Creates an automation. Its runs act for you: you need `sessions.create` here too.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/automations", tag = "automations",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = AutomationBody, example = json!({
        "name": "nightly review", "kind": "cron", "cron": "30 2 * * *",
        "timezone": "Europe/Berlin", "prompt": "Review yesterday's changes.",
        "provider": "claude-code"})),
    responses((status = 201, description = "Created", body = AutomationView),
        (status = 409, description = "Name taken", content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", content_type = "application/problem+json")))]
pub(crate) async fn create(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    ApiJson(body): ApiJson<AutomationBody>,
) -> Result<(StatusCode, Json<AutomationView>), ApiError> {
    let row = automations::create(&state.ctx, &op, &grant, &body.into()).await?;
    Ok((StatusCode::CREATED, Json(view(row))))
}

/// An automation and its latest runs.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/automations/{automation_id}", tag = "automations",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("automation_id" = String, Path, description = "Automation id")),
    responses((status = 200, description = "The automation", body = AutomationDetail),
        (status = 404, description = "No such automation", content_type = "application/problem+json")))]
pub(crate) async fn get(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<Json<AutomationDetail>, ApiError> {
    let (row, runs) = automations::get(&state.ctx, &grant, &path.1).await?;
    Ok(Json(AutomationDetail {
        automation: view(row),
        runs: runs.into_iter().map(run_view).collect(),
    }))
}

/// Replaces an automation. Its runs now act for you; its schedule restarts from now.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/automations/{automation_id}", tag = "automations",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("automation_id" = String, Path, description = "Automation id")),
    request_body(content = AutomationBody, example = json!({
        "name": "nightly review", "kind": "cron", "cron": "0 3 * * 1-5",
        "timezone": "America/New_York", "prompt": "Review yesterday's changes.",
        "provider": "claude-code", "enabled": false})),
    responses((status = 200, description = "Saved", body = AutomationView),
        (status = 404, description = "No such automation", content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", content_type = "application/problem+json")))]
pub(crate) async fn update(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiJson(body): ApiJson<AutomationBody>,
) -> Result<Json<AutomationView>, ApiError> {
    let row = automations::update(&state.ctx, &op, &grant, &path.1, &body.into()).await?;
    Ok(Json(view(row)))
}

/// Deletes an automation and its runs (the sessions they started stay).
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/automations/{automation_id}", tag = "automations",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("automation_id" = String, Path, description = "Automation id")),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "No such automation", content_type = "application/problem+json")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    automations::delete(&state.ctx, &op, &grant, &path.1).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Queues a run now, whatever the automation's kind.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/automations/{automation_id}/runs", tag = "automations",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("automation_id" = String, Path, description = "Automation id")),
    responses((status = 202, description = "Queued", body = RunView),
        (status = 404, description = "No such automation", content_type = "application/problem+json")))]
pub(crate) async fn run_now(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<(StatusCode, Json<RunView>), ApiError> {
    let run = automations::run_now(&state.ctx, &op, &grant, &path.1).await?;
    Ok((StatusCode::ACCEPTED, Json(run_view(run))))
}
