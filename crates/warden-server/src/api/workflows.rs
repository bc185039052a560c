//! A workspace's workflows and their runs: definitions (JSON, checked; each save a new
//! version), runs started by hand, step by step, approvals and cancellation. Every route
//! needs the licence's `workflows` module.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::routes;
use warden_core::workflows::{self, Run, RunDetail, Workflow};
use warden_domain::access::{Access, Permission};
use warden_domain::license::Feature;

use crate::http::authz::{UserOp, WorkspaceAccess};
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    use Access::Workspace;
    let f = Feature::Workflows;
    Routes::new()
        .add_feature(Workspace(Permission::WORKFLOWS_READ), f, routes!(list))
        .add_feature(Workspace(Permission::WORKFLOWS_CREATE), f, routes!(create))
        .add_feature(Workspace(Permission::WORKFLOWS_READ), f, routes!(get))
        .add_feature(Workspace(Permission::WORKFLOWS_UPDATE), f, routes!(update))
        .add_feature(Workspace(Permission::WORKFLOWS_DELETE), f, routes!(delete))
        .add_feature(Workspace(Permission::SESSIONS_CREATE), f, routes!(start))
        .add_feature(Workspace(Permission::WORKFLOWS_READ), f, routes!(runs))
        .add_feature(Workspace(Permission::WORKFLOWS_READ), f, routes!(run))
        .add_feature(Workspace(Permission::SESSIONS_UPDATE), f, routes!(cancel))
        .add_feature(Workspace(Permission::WORKFLOWS_UPDATE), f, routes!(decide))
        .add_feature(
            Workspace(Permission::AUTOMATIONS_UPDATE),
            f,
            routes!(link_automation),
        )
}

/// A workflow's name and definition.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkflowInput {
    /// 1 to 100 characters.
    pub name: String,
    /// `{"steps": [...], "on_ticket"?: status}`: steps of kind `agent` (`prompt`,
    /// `provider`, `mode`?), `command` (`command`: program and arguments), `approval`
    /// (`permission`?, `timeout_minutes`?, `others_only`? default true) and `condition`
    /// (`if`: succeeded|failed, `then`?, `else`?: step ids further on). Or the same as text,
    /// JSON or YAML (at most 64 KiB).
    #[schema(value_type = Object)]
    pub definition: serde_json::Value,
}

/// The workspace's workflows.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/workflows", tag = "workflows",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses((status = 200, description = "Workflows", body = Vec<Workflow>)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
) -> Result<Json<Vec<Workflow>>, ApiError> {
    Ok(Json(workflows::list(&state.ctx, &grant).await?))
}

/// Saves a new workflow. A definition that does not hold is refused with 400 naming the step
/// and the problem (an unknown kind, a jump back that would make a cycle, …).
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/workflows", tag = "workflows",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = WorkflowInput, example = json!({"name": "Ship a ticket", "definition": {
        "steps": [
            {"id": "build", "kind": "agent", "prompt": "Implement the ticket.", "provider": "claude-code"},
            {"id": "tests", "kind": "command", "command": ["make", "test"]},
            {"id": "review", "kind": "approval", "permission": "tickets.approve_qa"}],
        "on_ticket": "ready_for_development"}})),
    responses(
        (status = 201, description = "Saved", body = Workflow),
        (status = 400, description = "The definition does not hold", content_type = "application/problem+json"),
        (status = 409, description = "The name is taken", content_type = "application/problem+json")))]
pub(crate) async fn create(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    ApiJson(input): ApiJson<WorkflowInput>,
) -> Result<(StatusCode, Json<Workflow>), ApiError> {
    let w = workflows::create(&state.ctx, &op, &grant, &input.name, &input.definition).await?;
    Ok((StatusCode::CREATED, Json(w)))
}

/// One workflow.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/workflows/{workflow_id}", tag = "workflows",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("workflow_id" = String, Path, description = "Workflow id")),
    responses((status = 200, description = "The workflow", body = Workflow)))]
pub(crate) async fn get(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<Json<Workflow>, ApiError> {
    Ok(Json(workflows::get(&state.ctx, &grant, &path.1).await?))
}

/// Saves a new version of a workflow; runs already started keep theirs.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/workflows/{workflow_id}", tag = "workflows",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("workflow_id" = String, Path, description = "Workflow id")),
    request_body(content = WorkflowInput, example = json!({"name": "Ship a ticket", "definition": {
        "steps": [{"id": "build", "kind": "agent", "prompt": "Implement the ticket.", "provider": "codex"}]}})),
    responses((status = 200, description = "Saved", body = Workflow),
              (status = 400, description = "The definition does not hold", content_type = "application/problem+json")))]
pub(crate) async fn update(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiJson(input): ApiJson<WorkflowInput>,
) -> Result<Json<Workflow>, ApiError> {
    Ok(Json(
        workflows::update(
            &state.ctx,
            &op,
            &grant,
            &path.1,
            &input.name,
            &input.definition,
        )
        .await?,
    ))
}

/// Deletes a workflow; its runs stay.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/workflows/{workflow_id}", tag = "workflows",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("workflow_id" = String, Path, description = "Workflow id")),
    responses((status = 204, description = "Deleted")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    workflows::delete(&state.ctx, &op, &grant, &path.1).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What a run is started with.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartInput {
    /// A ticket (number or id) the run works on: its agent steps get it after their prompt.
    #[serde(default)]
    pub ticket: Option<String>,
}

/// Starts a run; its sessions act for the caller.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/workflows/{workflow_id}/runs", tag = "workflows",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("workflow_id" = String, Path, description = "Workflow id")),
    request_body(content = StartInput, example = json!({"ticket": "12"})),
    responses((status = 201, description = "Started", body = Run)))]
pub(crate) async fn start(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiJson(input): ApiJson<StartInput>,
) -> Result<(StatusCode, Json<Run>), ApiError> {
    let run = workflows::start(&state.ctx, &op, &grant, &path.1, input.ticket.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(run)))
}

/// The workspace's runs, newest first.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/workflow-runs", tag = "workflows",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses((status = 200, description = "Runs", body = Vec<Run>)))]
pub(crate) async fn runs(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
) -> Result<Json<Vec<Run>>, ApiError> {
    Ok(Json(workflows::runs(&state.ctx, &grant).await?))
}

/// One run, step by step.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/workflow-runs/{run_id}", tag = "workflows",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("run_id" = String, Path, description = "Run id")),
    responses((status = 200, description = "The run", body = RunDetail)))]
pub(crate) async fn run(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<Json<RunDetail>, ApiError> {
    Ok(Json(workflows::run(&state.ctx, &grant, &path.1).await?))
}

/// Cancels a run; the session of its running step is stopped.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/workflow-runs/{run_id}/cancel", tag = "workflows",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("run_id" = String, Path, description = "Run id")),
    responses((status = 200, description = "Canceled", body = Run),
              (status = 409, description = "It had ended", content_type = "application/problem+json")))]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<Json<Run>, ApiError> {
    Ok(Json(
        workflows::cancel(&state.ctx, &op, &grant, &path.1).await?,
    ))
}

/// A decision on an approval step.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Approve (true) or reject (false).
    pub approve: bool,
    /// Why (needed to reject).
    #[serde(default)]
    pub reason: Option<String>,
}

/// Approves or rejects the approval step the run waits on: the caller needs
/// `workflows.update` and the step's permission and, unless the step allows it, must not be
/// who started the run.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/workflow-runs/{run_id}/decide", tag = "workflows",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("run_id" = String, Path, description = "Run id")),
    request_body(content = Decision, example = json!({"approve": true})),
    responses((status = 200, description = "Decided", body = RunDetail),
              (status = 403, description = "Not this person's to decide", content_type = "application/problem+json"),
              (status = 409, description = "Nothing waits for a decision", content_type = "application/problem+json")))]
pub(crate) async fn decide(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiJson(input): ApiJson<Decision>,
) -> Result<Json<RunDetail>, ApiError> {
    Ok(Json(
        workflows::decide(
            &state.ctx,
            &op,
            &grant,
            &path.1,
            input.approve,
            input.reason.as_deref(),
        )
        .await?,
    ))
}

/// The workflow an automation starts.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AutomationWorkflow {
    /// A workflow of the workspace; null: the automation starts sessions again.
    pub workflow_id: Option<String>,
}

/// Makes an automation start a run of a workflow (acting for the automation's person)
/// instead of a session; `null` undoes it.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/automations/{automation_id}/workflow", tag = "workflows",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("automation_id" = String, Path, description = "Automation id")),
    request_body(content = AutomationWorkflow, example = json!({"workflow_id": "01939c6e-5f0a-7c3e-9a51-2f4d8b7e1c20"})),
    responses((status = 200, description = "Saved: the workflow it starts, or null", body = Option<Workflow>)))]
pub(crate) async fn link_automation(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiJson(input): ApiJson<AutomationWorkflow>,
) -> Result<Json<Option<Workflow>>, ApiError> {
    Ok(Json(
        workflows::link_automation(
            &state.ctx,
            &op,
            &grant,
            &path.1,
            input.workflow_id.as_deref(),
        )
        .await?,
    ))
}
