//! The files of an agent session's worktree, reached through its host: list, read, write,
//! delete and diff. Every path is checked here first (and again on the host); refusals are
//! audited; the host's answer is mapped to one stable problem each.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use uuid::Uuid;
use warden_domain::access::{Access, Permission};
use warden_domain::audit::Outcome;
use warden_protocol::ServerMessage;

use super::sessions::{invalid, not_found, session_id};
use super::workspaces::db;
use crate::audit::request::RequestMeta;
use crate::http::authz::WorkspaceAccess;
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::identity::Caller;
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

struct FileCall<'a> {
    state: &'a AppState,
    meta: &'a RequestMeta,
    caller: &'a Caller,
    access: &'a WorkspaceAccess,
    session: Uuid,
}

impl FileCall<'_> {
    /// Records a refused path (denied, with the path as given) outside the workspace's
    /// transaction, which may be read-only.
    async fn refused(&self, op: &str, path: &str, reason: &str) -> Result<(), ApiError> {
        let mut event = self.meta.event(
            self.state.clock.now(),
            self.caller.actor(),
            "session.path_refused",
            "session",
            Some(self.session.to_string()),
            Outcome::Denied,
            json!({ "op": op, "path": path, "reason": reason }),
        );
        event.workspace_id = Some(self.access.0.workspace().to_string());
        let mut tx = self.state.store.begin().await.map_err(db)?;
        tx.record(&self.state.audit_key, &event).await.map_err(db)?;
        tx.commit().await.map_err(db)
    }

    /// Records a change the host made (in the workspace's own transaction).
    async fn changed(
        &self,
        action: &'static str,
        summary: serde_json::Value,
    ) -> Result<(), ApiError> {
        let mut tx = self.access.open(self.state).await?;
        let event = self.meta.event(
            self.state.clock.now(),
            self.caller.actor(),
            action,
            "session",
            Some(self.session.to_string()),
            Outcome::Success,
            summary,
        );
        tx.record(&self.state.audit_key, event).await.map_err(db)?;
        tx.commit().await.map_err(db)
    }

    async fn run(
        &self,
        op: &'static str,
        path: Option<String>,
        content: Option<String>,
    ) -> Result<warden_protocol::AgentMessage, ApiError> {
        // The session first: another workspace's session is not found, whatever else is wrong.
        let mut tx = self.access.open(self.state).await?;
        let row = tx
            .session(self.session)
            .await
            .map_err(db)?
            .ok_or_else(not_found)?;
        if path.is_none() && matches!(op, "read" | "write" | "delete") {
            return Err(invalid("path", "name the file"));
        }
        if let Some(p) = &path
            && let Err(why) = warden_domain::sessions::WorktreePath::parse(p)
        {
            drop(tx);
            self.refused(op, p, why.code()).await?;
            return Err(ApiError(warden_core::CoreError::with_detail(
                warden_core::Code::PathRefused,
                why.message(),
            )));
        }
        tx.commit().await.map_err(db)?;
        let host = row
            .host_id
            .ok_or_else(|| ApiError::from(warden_core::Code::HostNotConnected))?;
        let (session_id, workspace_id) = (row.id.to_string(), row.workspace_id.to_string());
        let sent_path = path.clone();
        let rx = self
            .state
            .connections
            .request(host, move |request_id| ServerMessage::FileRequest {
                request_id,
                session_id,
                workspace_id,
                op: op.to_owned(),
                path: sent_path,
                content,
            })
            .ok_or_else(|| ApiError::from(warden_core::Code::HostNotConnected))?;
        let answer = tokio::time::timeout(std::time::Duration::from_secs(15), rx)
            .await
            .map_err(|_| ApiError::from(warden_core::Code::HostTimeout))?
            .map_err(|_| ApiError::internal(&"the host's answer was lost"))?;
        let warden_protocol::AgentMessage::FileResponse { outcome, .. } = &answer else {
            return Err(ApiError::internal(&"unexpected answer"));
        };
        let shown = path.as_deref().unwrap_or("");
        match outcome.as_str() {
            "ok" => Ok(answer),
            "escape" => {
                self.refused(op, shown, "escape").await?;
                Err(ApiError::from(warden_core::Code::PathEscape))
            }
            "refused" => {
                self.refused(op, shown, "refused-by-host").await?;
                Err(ApiError::from(warden_core::Code::PathRefused))
            }
            "not-found" => Err(not_found()),
            "too-large" => Err(ApiError::from(warden_core::Code::FileTooLarge)),
            "not-a-file" => Err(ApiError::from(warden_core::Code::NotAFile)),
            "no-worktree" => Err(ApiError::from(warden_core::Code::NoWorktree)),
            _ => Err(ApiError::internal(&"the host could not access the file")),
        }
    }
}

/// Lists a directory of the session's worktree (without `.git`).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/sessions/{session_id}/files", tag = "sessions",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("session_id" = String, Path, description = "Session id"), FileQuery),
    responses((status = 200, description = "Entries", body = Vec<FileEntryView>),
        (status = 400, description = "Path refused", content_type = "application/problem+json"),
        (status = 403, description = "Path leads outside the worktree", content_type = "application/problem+json")))]
pub(crate) async fn list_files(
    State(state): State<AppState>,
    meta: RequestMeta,
    caller: Caller,
    access: WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiQuery(q): ApiQuery<FileQuery>,
) -> Result<Json<Vec<FileEntryView>>, ApiError> {
    let call = FileCall {
        session: session_id(&path)?,
        state: &state,
        meta: &meta,
        caller: &caller,
        access: &access,
    };
    let answer = call.run("list", q.path, None).await?;
    let warden_protocol::AgentMessage::FileResponse { entries, .. } = answer else {
        return Err(ApiError::internal(&"unexpected answer"));
    };
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
        (status = 403, description = "Path leads outside the worktree", content_type = "application/problem+json")))]
pub(crate) async fn read_file(
    State(state): State<AppState>,
    meta: RequestMeta,
    caller: Caller,
    access: WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiQuery(q): ApiQuery<FileQuery>,
) -> Result<Json<FileText>, ApiError> {
    let call = FileCall {
        session: session_id(&path)?,
        state: &state,
        meta: &meta,
        caller: &caller,
        access: &access,
    };
    let answer = call.run("read", q.path, None).await?;
    let warden_protocol::AgentMessage::FileResponse { content, .. } = answer else {
        return Err(ApiError::internal(&"unexpected answer"));
    };
    Ok(Json(FileText {
        content: content.unwrap_or_default(),
    }))
}

/// Writes (creates or replaces) a file of the session's worktree. Never into `.git`, never
/// through a symlink.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/sessions/{session_id}/file", tag = "sessions",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("session_id" = String, Path, description = "Session id"), FileQuery),
    request_body(content = FileContent, example = json!({"content": "fn main() {}\n"})),
    responses((status = 204, description = "Written"),
        (status = 400, description = "Path refused", content_type = "application/problem+json"),
        (status = 403, description = "Path leads outside the worktree", content_type = "application/problem+json")))]
pub(crate) async fn write_file(
    State(state): State<AppState>,
    meta: RequestMeta,
    caller: Caller,
    access: WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiQuery(q): ApiQuery<FileQuery>,
    ApiJson(body): ApiJson<FileContent>,
) -> Result<StatusCode, ApiError> {
    let session = session_id(&path)?;
    let call = FileCall {
        session,
        state: &state,
        meta: &meta,
        caller: &caller,
        access: &access,
    };
    let bytes = body.content.len();
    call.run("write", q.path.clone(), Some(body.content))
        .await?;
    let p = q.path.unwrap_or_default();
    call.changed("session.file_written", json!({ "path": p, "bytes": bytes }))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a file of the session's worktree.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/sessions/{session_id}/file", tag = "sessions",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("session_id" = String, Path, description = "Session id"), FileQuery),
    responses((status = 204, description = "Deleted"),
        (status = 400, description = "Path refused", content_type = "application/problem+json"),
        (status = 403, description = "Path leads outside the worktree", content_type = "application/problem+json")))]
pub(crate) async fn delete_file(
    State(state): State<AppState>,
    meta: RequestMeta,
    caller: Caller,
    access: WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiQuery(q): ApiQuery<FileQuery>,
) -> Result<StatusCode, ApiError> {
    let session = session_id(&path)?;
    let call = FileCall {
        session,
        state: &state,
        meta: &meta,
        caller: &caller,
        access: &access,
    };
    call.run("delete", q.path.clone(), None).await?;
    let p = q.path.unwrap_or_default();
    call.changed("session.file_deleted", json!({ "path": p }))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The worktree's changes against the branch it started from (tracked files).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/sessions/{session_id}/diff", tag = "sessions",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("session_id" = String, Path, description = "Session id")),
    responses((status = 200, description = "Unified diff (at most 48 KiB)", body = FileText)))]
pub(crate) async fn session_diff(
    State(state): State<AppState>,
    meta: RequestMeta,
    caller: Caller,
    access: WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<Json<FileText>, ApiError> {
    let call = FileCall {
        session: session_id(&path)?,
        state: &state,
        meta: &meta,
        caller: &caller,
        access: &access,
    };
    let answer = call.run("diff", None, None).await?;
    let warden_protocol::AgentMessage::FileResponse { content, .. } = answer else {
        return Err(ApiError::internal(&"unexpected answer"));
    };
    Ok(Json(FileText {
        content: content.unwrap_or_default(),
    }))
}
