//! The files of an agent session's worktree, reached through its host: list, read, write,
//! delete and diff. Every path is checked here first (and again on the host); refusals are
//! audited; the host's answer is mapped to one stable problem each.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use warden_core::sessions::files;
use warden_domain::access::{Access, Permission};

use crate::http::authz::{UserOp, WorkspaceAccess};
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    use Access::Workspace;
    Routes::new()
        .add(Workspace(Permission::SESSIONS_READ), routes!(list_files))
        .add(Workspace(Permission::SESSIONS_READ), routes!(read_file))
        .add(Workspace(Permission::SESSIONS_UPDATE), routes!(write_file))
        .add(Workspace(Permission::SESSIONS_UPDATE), routes!(delete_file))
        .add(Workspace(Permission::SESSIONS_READ), routes!(session_diff))
}

/// Which file.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FileQuery {
    /// Path inside the worktree, `/`-separated (for a listing: a directory; default the root).
    pub path: Option<String>,
}

/// A file's new content.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileContent {
    /// Text, at most 48 KiB.
    pub content: String,
}

/// A file's content (or the diff).
#[derive(Debug, Serialize, ToSchema)]
pub struct FileText {
    /// Text.
    pub content: String,
}

/// One entry of a listing.
#[derive(Debug, Serialize, ToSchema)]
pub struct FileEntryView {
    /// Name.
    pub name: String,
    /// `file`, `dir` or `symlink`.
    pub kind: String,
    /// Size in bytes.
    pub size: u64,
}

#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/sessions/{session_id}/files", tag = "sessions",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("session_id" = String, Path, description = "Session id"), FileQuery),
    responses((status = 200, description = "Entries", body = Vec<FileEntryView>),
        (status = 400, description = "Path refused", content_type = "application/problem+json"),
        (status = 403, description = "Path leads outside the worktree", content_type = "application/problem+json"),
        (status = 409, description = "The session's host is connected to no node, it has no worktree for the session, or the path names a directory", content_type = "application/problem+json"),
        (status = 503, description = "The node holding the host's connection cannot be reached (`Retry-After`)", content_type = "application/problem+json"),
        (status = 504, description = "The host did not answer in time", content_type = "application/problem+json")))]
pub(crate) async fn list_files(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiQuery(q): ApiQuery<FileQuery>,
) -> Result<Json<Vec<FileEntryView>>, ApiError> {
    let entries = files::list(&state.ctx, &op, &grant, &path.1, q.path).await?;
    Ok(Json(
        entries
            .into_iter()
            .map(|e| FileEntryView {
                name: e.name,
                kind: e.kind,
                size: e.size,
            })
            .collect(),
    ))
}

/// Reads a file of the session's worktree.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/sessions/{session_id}/file", tag = "sessions",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("session_id" = String, Path, description = "Session id"), FileQuery),
    responses((status = 200, description = "Content", body = FileText),
        (status = 400, description = "Path refused", content_type = "application/problem+json"),
        (status = 403, description = "Path leads outside the worktree", content_type = "application/problem+json"),
        (status = 409, description = "The session's host is connected to no node, it has no worktree for the session, or the path names a directory", content_type = "application/problem+json"),
        (status = 503, description = "The node holding the host's connection cannot be reached (`Retry-After`)", content_type = "application/problem+json"),
        (status = 504, description = "The host did not answer in time", content_type = "application/problem+json")))]
pub(crate) async fn read_file(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiQuery(q): ApiQuery<FileQuery>,
) -> Result<Json<FileText>, ApiError> {
    let content = files::read(&state.ctx, &op, &grant, &path.1, q.path).await?;
    Ok(Json(FileText { content }))
}

/// Writes (creates or replaces) a file of the session's worktree. Never into `.git`, never
/// through a symlink.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/sessions/{session_id}/file", tag = "sessions",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("session_id" = String, Path, description = "Session id"), FileQuery),
    request_body(content = FileContent, example = json!({"content": "fn main() {}\n"})),
    responses((status = 204, description = "Written"),
        (status = 400, description = "Path refused", content_type = "application/problem+json"),
        (status = 403, description = "Path leads outside the worktree", content_type = "application/problem+json"),
        (status = 409, description = "The session's host is connected to no node, it has no worktree for the session, or the path names a directory", content_type = "application/problem+json"),
        (status = 503, description = "The node holding the host's connection cannot be reached (`Retry-After`)", content_type = "application/problem+json"),
        (status = 504, description = "The host did not answer in time", content_type = "application/problem+json")))]
pub(crate) async fn write_file(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiQuery(q): ApiQuery<FileQuery>,
    ApiJson(body): ApiJson<FileContent>,
) -> Result<StatusCode, ApiError> {
    files::write(&state.ctx, &op, &grant, &path.1, q.path, body.content).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a file of the session's worktree.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/sessions/{session_id}/file", tag = "sessions",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("session_id" = String, Path, description = "Session id"), FileQuery),
    responses((status = 204, description = "Deleted"),
        (status = 400, description = "Path refused", content_type = "application/problem+json"),
        (status = 403, description = "Path leads outside the worktree", content_type = "application/problem+json"),
        (status = 409, description = "The session's host is connected to no node, it has no worktree for the session, or the path names a directory", content_type = "application/problem+json"),
        (status = 503, description = "The node holding the host's connection cannot be reached (`Retry-After`)", content_type = "application/problem+json"),
        (status = 504, description = "The host did not answer in time", content_type = "application/problem+json")))]
pub(crate) async fn delete_file(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiQuery(q): ApiQuery<FileQuery>,
) -> Result<StatusCode, ApiError> {
    files::delete(&state.ctx, &op, &grant, &path.1, q.path).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The worktree's changes against the branch it started from (tracked files).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/sessions/{session_id}/diff", tag = "sessions",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("session_id" = String, Path, description = "Session id")),
    responses((status = 200, description = "Unified diff (at most 48 KiB)", body = FileText),
        (status = 409, description = "The session's host is connected to no node, it has no worktree for the session, or the path names a directory", content_type = "application/problem+json"),
        (status = 503, description = "The node holding the host's connection cannot be reached (`Retry-After`)", content_type = "application/problem+json"),
        (status = 504, description = "The host did not answer in time", content_type = "application/problem+json")))]
pub(crate) async fn session_diff(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<Json<FileText>, ApiError> {
    let content = files::diff(&state.ctx, &op, &grant, &path.1).await?;
    Ok(Json(FileText { content }))
}
