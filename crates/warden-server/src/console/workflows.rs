//! Console → a workspace's Workflows: its workflows (a new one from a JSON definition, a run
//! started with a click) and their runs; a page per run, step by step, where a person who may
//! decides the approval it waits on, or cancels it. Through `warden_core::workflows`, exactly
//! as the API; every route needs the licence's `workflows` module.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use utoipa_axum::routes;
use warden_core::workflows;
use warden_domain::access::{Access, Permission};
use warden_domain::license::Feature;

use super::workspaces::Place;
use super::{Done, Fields, Frame, frame, render};
use crate::http::authz::{UserOp, WorkspaceAccess};
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::identity::Caller;
use crate::state::AppState;

pub(super) fn routes() -> Routes<AppState> {
    use Access::Workspace;
    let f = Feature::Workflows;
    Routes::new()
        .add_feature(Workspace(Permission::WORKFLOWS_READ), f, routes!(page))
        .add_feature(Workspace(Permission::WORKFLOWS_CREATE), f, routes!(create))
        .add_feature(Workspace(Permission::SESSIONS_CREATE), f, routes!(start))
        .add_feature(Workspace(Permission::WORKFLOWS_READ), f, routes!(run_page))
        .add_feature(Workspace(Permission::WORKFLOWS_UPDATE), f, routes!(decide))
        .add_feature(Workspace(Permission::SESSIONS_UPDATE), f, routes!(cancel))
}

fn short(rfc3339: &str) -> String {
    rfc3339.replace('T', " ").chars().take(16).collect()
}

struct WorkflowItem {
    id: String,
    name: String,
    version: i64,
    steps: String,
    on_ticket: String,
}

struct RunItem {
    id: String,
    name: String,
    status: String,
    started: String,
}

#[derive(Template)]
#[template(path = "console/workflows.html")]
struct WorkflowsPage {
    frame: Frame,
    place: Place,
    workflows: Vec<WorkflowItem>,
    runs: Vec<RunItem>,
    may_create: bool,
    may_start: bool,
}

/// The workspace's workflows and runs.
#[utoipa::path(get, path = "/console/workspaces/{workspace_id}/workflows", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"), Done),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 404, description = "No such workspace for this person", content_type = "text/html")))]
pub(crate) async fn page(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    caller: Caller,
    ApiQuery(done): ApiQuery<Done>,
) -> Result<Response, ApiError> {
    let list = workflows::list(&state.ctx, &grant).await?;
    let runs = workflows::runs(&state.ctx, &grant).await?;
    let place = Place::of(&state, &grant, "workflows").await?;
    let open = !place.archived;
    let page = WorkflowsPage {
        frame: frame(
            &state,
            &caller,
            "workspaces",
            super::notice(done.done.as_deref()),
        )
        .await?,
        workflows: list
            .into_iter()
            .map(|w| WorkflowItem {
                id: w.id.to_string(),
                steps: w.definition["steps"]
                    .as_array()
                    .map(|s| {
                        s.iter()
                            .map(|x| x["id"].as_str().unwrap_or("?").to_owned())
                            .collect::<Vec<_>>()
                            .join(" → ")
                    })
                    .unwrap_or_default(),
                on_ticket: w.on_ticket.unwrap_or_default(),
                name: w.name,
                version: w.version,
            })
            .collect(),
        runs: runs
            .into_iter()
            .map(|r| RunItem {
                id: r.id.to_string(),
                name: r.name,
                status: r.status,
                started: short(&r.created_at),
            })
            .collect(),
        may_create: open && grant.holds(Permission::WORKFLOWS_CREATE),
        may_start: open && grant.holds(Permission::SESSIONS_CREATE),
        place,
    };
    Ok(render(&page, StatusCode::OK))
}

/// Saves a new workflow from the form (name and definition, JSON or YAML).
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/workflows", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Saved: back to the workflows")))]
pub(crate) async fn create(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    UserOp(op): UserOp,
    body: Bytes,
) -> Result<Response, ApiError> {
    let f = Fields::parse(&body);
    // JSON or YAML text: the use case parses it.
    let definition = serde_json::Value::String(f.text("definition").to_owned());
    workflows::create(&state.ctx, &op, &grant, f.text("name"), &definition).await?;
    Ok(Redirect::to(&Place::url(&grant, "/workflows?done=workflow-saved")).into_response())
}

/// Starts a run of a workflow; to its page.
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/workflows/{workflow_id}/runs", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("workflow_id" = String, Path, description = "Workflow id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Started: to the run")))]
pub(crate) async fn start(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    UserOp(op): UserOp,
    Path(path): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let run = workflows::start(&state.ctx, &op, &grant, &path.1, None).await?;
    Ok(Redirect::to(&Place::url(
        &grant,
        &format!("/workflow-runs/{}?done=run-started", run.id),
    ))
    .into_response())
}

struct StepItem {
    step_id: String,
    kind: String,
    status: String,
    session: Option<String>,
    reason: String,
}

#[derive(Template)]
#[template(path = "console/workflow_run.html")]
struct RunPage {
    frame: Frame,
    place: Place,
    id: String,
    name: String,
    version: i64,
    status: String,
    started: String,
    steps: Vec<StepItem>,
    waiting: bool,
    may_decide: bool,
    may_cancel: bool,
    live: bool,
}

/// One run, step by step.
#[utoipa::path(get, path = "/console/workspaces/{workspace_id}/workflow-runs/{run_id}", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("run_id" = String, Path, description = "Run id"), Done),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 404, description = "No such run", content_type = "text/html")))]
pub(crate) async fn run_page(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    caller: Caller,
    Path(path): Path<(String, String)>,
    ApiQuery(done): ApiQuery<Done>,
) -> Result<Response, ApiError> {
    let d = workflows::run(&state.ctx, &grant, &path.1).await?;
    let place = Place::of(&state, &grant, "workflows").await?;
    let live = matches!(d.run.status.as_str(), "running" | "waiting");
    let page = RunPage {
        frame: frame(
            &state,
            &caller,
            "workspaces",
            super::notice(done.done.as_deref()),
        )
        .await?,
        id: d.run.id.to_string(),
        name: d.run.name,
        version: d.run.version,
        waiting: d.run.status == "waiting",
        status: d.run.status,
        started: short(&d.run.created_at),
        steps: d
            .steps
            .into_iter()
            .map(|s| StepItem {
                step_id: s.step_id,
                kind: s.kind,
                status: s.status,
                session: s.session_id.map(|x| x.to_string()),
                reason: s.reason.unwrap_or_default(),
            })
            .collect(),
        may_decide: !place.archived && grant.holds(Permission::WORKFLOWS_UPDATE),
        may_cancel: live && !place.archived && grant.holds(Permission::SESSIONS_UPDATE),
        live,
        place,
    };
    Ok(render(&page, StatusCode::OK))
}

/// Approves or rejects the step the run waits on (from its page's form).
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/workflow-runs/{run_id}/decide", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("run_id" = String, Path, description = "Run id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Decided: back to the run")))]
pub(crate) async fn decide(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    UserOp(op): UserOp,
    Path(path): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let f = Fields::parse(&body);
    let approve = f.text("decision") == "approve";
    workflows::decide(&state.ctx, &op, &grant, &path.1, approve, f.given("reason")).await?;
    Ok(Redirect::to(&Place::url(
        &grant,
        &format!("/workflow-runs/{}?done=run-decided", path.1),
    ))
    .into_response())
}

/// Cancels the run.
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/workflow-runs/{run_id}/cancel", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("run_id" = String, Path, description = "Run id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Canceled: back to the run")))]
pub(crate) async fn cancel(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    UserOp(op): UserOp,
    Path(path): Path<(String, String)>,
) -> Result<Response, ApiError> {
    workflows::cancel(&state.ctx, &op, &grant, &path.1).await?;
    Ok(Redirect::to(&Place::url(
        &grant,
        &format!("/workflow-runs/{}?done=run-canceled", path.1),
    ))
    .into_response())
}
