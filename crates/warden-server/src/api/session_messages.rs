//! What agent sessions say to their owners over MCP — questions, messages, the plan — and
//! the workspace's switch that gives new sessions the MCP endpoint.

use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::routes;
use warden_core::mcp::{self, McpSettings};
use warden_core::sessions::messages::{self, Message, Plan};
use warden_domain::access::{Access, Permission};

use crate::http::authz::{UserOp, WorkspaceAccess};
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    use Access::Workspace;
    Routes::new()
        .add(Workspace(Permission::SESSIONS_READ), routes!(list))
        .add(Workspace(Permission::SESSIONS_UPDATE), routes!(answer))
        .add(Workspace(Permission::SESSIONS_READ), routes!(plan))
        .add(Workspace(Permission::SETTINGS_READ), routes!(get_mcp))
        .add(Workspace(Permission::SETTINGS_UPDATE), routes!(put_mcp))
}

/// A session's questions and messages, oldest first.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/sessions/{session_id}/messages", tag = "sessions",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("session_id" = String, Path, description = "Session id")),
    responses((status = 200, description = "Questions and messages", body = Vec<Message>)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<Json<Vec<Message>>, ApiError> {
    Ok(Json(
        messages::list(&state.ctx, &grant, &path.1, op.now_us()).await?,
    ))
}

/// An answer.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerInput {
    /// The answer (at most 16 KiB).
    pub answer: String,
}

/// Answers a session's open question; the agent waiting on `ask_user_question` receives it.
/// Only the session's owner answers.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/sessions/{session_id}/messages/{message_id}/answer", tag = "sessions",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("session_id" = String, Path, description = "Session id"),
           ("message_id" = String, Path, description = "The question's id")),
    request_body(content = AnswerInput, example = json!({"answer": "Use the staging database."})),
    responses(
        (status = 200, description = "Answered", body = Message),
        (status = 403, description = "Not the session's owner", content_type = "application/problem+json"),
        (status = 409, description = "Answered already, or expired", content_type = "application/problem+json")))]
pub(crate) async fn answer(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String, String)>,
    ApiJson(input): ApiJson<AnswerInput>,
) -> Result<Json<Message>, ApiError> {
    Ok(Json(
        messages::answer(&state.ctx, &op, &grant, &path.1, &path.2, &input.answer).await?,
    ))
}

/// A session's plan document (empty until the agent writes one).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/sessions/{session_id}/plan", tag = "sessions",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("session_id" = String, Path, description = "Session id")),
    responses((status = 200, description = "The plan", body = Plan)))]
pub(crate) async fn plan(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<Json<Plan>, ApiError> {
    Ok(Json(messages::plan(&state.ctx, &grant, &path.1).await?))
}

/// Whether the workspace's new sessions get the MCP endpoint, and its address.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/mcp", tag = "workspace settings",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses((status = 200, description = "The setting", body = McpSettings)))]
pub(crate) async fn get_mcp(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
) -> Result<Json<McpSettings>, ApiError> {
    Ok(Json(mcp::settings(&state.ctx, &grant).await?))
}

/// The MCP switch.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct McpInput {
    /// Give new sessions a token and their provider the endpoint.
    pub enabled: bool,
}

/// Turns the MCP endpoint on or off for the workspace's new sessions.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/mcp", tag = "workspace settings",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = McpInput, example = json!({"enabled": true})),
    responses((status = 200, description = "Saved", body = McpSettings)))]
pub(crate) async fn put_mcp(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    ApiJson(input): ApiJson<McpInput>,
) -> Result<Json<McpSettings>, ApiError> {
    Ok(Json(
        mcp::set_enabled(&state.ctx, &op, &grant, input.enabled).await?,
    ))
}
