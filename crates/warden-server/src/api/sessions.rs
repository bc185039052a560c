//! Agent sessions in a workspace: create (the session goes to an approved host this workspace
//! may use, connected to this node), list, read, follow the output from any position, stop.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use uuid::Uuid;
use warden_core::sessions::{self, StartSession};
use warden_domain::access::{Access, Permission};
use warden_store::sessions::{OutputRow, SessionRow};
use warden_store::tenancy::WorkspaceGrant;

use super::me::rfc3339;
use crate::http::authz::{UserOp, WorkspaceAccess};
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    use Access::Workspace;
    Routes::new()
        .add(
            Workspace(Permission::SESSIONS_CREATE),
            routes!(create_session),
        )
        .add(Workspace(Permission::SESSIONS_READ), routes!(list_sessions))
        .add(Workspace(Permission::SESSIONS_READ), routes!(get_session))
        .add(
            Workspace(Permission::SESSIONS_READ),
            routes!(session_output),
        )
        .add(
            Workspace(Permission::SESSIONS_UPDATE),
            routes!(stop_session),
        )
        .add(
            Workspace(Permission::SESSIONS_UPDATE),
            routes!(close_session),
        )
        .add(
            Workspace(Permission::SESSIONS_READ),
            routes!(stream_session),
        )
}

/// A session.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// Id.
    pub id: String,
    /// Workspace.
    pub workspace_id: String,
    /// The host running it.
    pub host_id: Option<String>,
    /// Provider.
    pub provider: String,
    /// `chat`, `develop` or `bot`.
    pub mode: String,
    /// `waiting`, `running`, `done`, `failed`, `canceled` or `lost`.
    pub status: String,
    /// What the agent was asked (for an automation's run, its rendered template).
    pub prompt: String,
    /// Who started it (for an automation's run, whom the automation acts for).
    pub created_by: String,
    /// The branch its worktree is on.
    pub branch: String,
    /// The isolation the host gave it (`landlock`, `landlock-partial`, `basic`).
    pub isolation: Option<String>,
    /// Exit code.
    pub exit_code: Option<i32>,
    /// Why it failed.
    pub error: Option<String>,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Started (RFC 3339).
    pub started_at: Option<String>,
    /// Ended (RFC 3339).
    pub ended_at: Option<String>,
    /// Closed (RFC 3339): its worktree and branch are gone.
    pub archived_at: Option<String>,
}

fn view(r: SessionRow) -> SessionView {
    SessionView {
        branch: format!("warden/{}", r.id),
        id: r.id.to_string(),
        workspace_id: r.workspace_id.to_string(),
        host_id: r.host_id.map(|h| h.to_string()),
        provider: r.provider,
        mode: r.mode,
        status: r.status,
        prompt: r.prompt,
        created_by: r.created_by.to_string(),
        isolation: r.isolation,
        exit_code: r.exit_code,
        error: r.error,
        created_at: rfc3339(r.created_at),
        started_at: r.started_at.map(rfc3339),
        ended_at: r.ended_at.map(rfc3339),
        archived_at: r.archived_at.map(rfc3339),
    }
}

/// A new session.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSessionInput {
    /// `claude-code`, `gemini-cli`, `codex`, `opencode`, `kilo-cli`, `qwen-code`, or
    /// `command` (runs `command` as given).
    pub provider: String,
    /// What to ask the agent (one argument to the provider; never seen by a shell).
    #[serde(default)]
    pub prompt: String,
    /// `chat`, `develop` (default: the worktree goes when the session closes) or `bot`.
    #[serde(default)]
    pub mode: Option<String>,
    /// For the `command` provider: program and arguments.
    #[serde(default)]
    pub command: Vec<String>,
    /// A particular host (default: any approved host this workspace may use).
    #[serde(default)]
    pub host_id: Option<String>,
}

/// Opens a session: a host this workspace may use prepares a worktree on a branch of its own
/// and runs the provider there, confined.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/sessions", tag = "sessions",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = NewSessionInput, example = json!({"provider": "command", "command": ["make", "test"], "mode": "develop"})),
    responses((status = 201, description = "Created and sent to its host", body = SessionView),
        (status = 409, description = "No repository, or no host available", content_type = "application/problem+json"),
        (status = 422, description = "Invalid input", content_type = "application/problem+json")))]
pub(crate) async fn create_session(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    ApiJson(input): ApiJson<NewSessionInput>,
) -> Result<(StatusCode, Json<SessionView>), ApiError> {
    let start = StartSession::parse(
        &input.provider,
        input.prompt,
        input.mode.as_deref(),
        input.command,
        input.host_id.as_deref(),
    )?;
    let row = sessions::start(&state.ctx, &op, &grant, start).await?;
    Ok((StatusCode::CREATED, Json(view(row))))
}

/// The workspace's sessions, newest first.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/sessions", tag = "sessions",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses((status = 200, description = "Sessions", body = Vec<SessionView>)))]
pub(crate) async fn list_sessions(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    let rows = sessions::list(&state.ctx, &grant).await?;
    Ok(Json(rows.into_iter().map(view).collect()))
}

/// One session.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/sessions/{session_id}", tag = "sessions",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("session_id" = String, Path, description = "Session id")),
    responses((status = 200, description = "The session", body = SessionView),
        (status = 404, description = "No such session in this workspace", content_type = "application/problem+json")))]
pub(crate) async fn get_session(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<Json<SessionView>, ApiError> {
    Ok(Json(view(
        sessions::get(&state.ctx, &grant, &path.1).await?,
    )))
}

/// Where to resume the output.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OutputQuery {
    /// Return chunks after this sequence number (default: from the start).
    pub after: Option<i64>,
    /// At most this many chunks (default 500); below 1 counts as 1, above 1000 as 1000.
    pub limit: Option<i64>,
}

/// A chunk of output.
#[derive(Debug, Serialize, ToSchema)]
pub struct Chunk {
    /// Sequence number (resume after the last one seen).
    pub seq: i64,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// Text.
    pub data: String,
}

/// Output from a position, and where the session stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct OutputPage {
    /// The chunks, in order.
    pub chunks: Vec<Chunk>,
    /// The session's status (once final and `chunks` is empty, there is no more).
    pub status: String,
    /// Pass as `after` for the next page.
    pub next_after: i64,
}

/// A session's output after a given sequence number: a client that lost its place resumes
/// from the last chunk it saw.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/sessions/{session_id}/output", tag = "sessions",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("session_id" = String, Path, description = "Session id"), OutputQuery),
    responses((status = 200, description = "Output", body = OutputPage),
        (status = 404, description = "No such session in this workspace", content_type = "application/problem+json")))]
pub(crate) async fn session_output(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiQuery(q): ApiQuery<OutputQuery>,
) -> Result<Json<OutputPage>, ApiError> {
    let id = sessions::parse_id(&path.1)?;
    let after = q.after.unwrap_or(-1);
    let limit = q.limit.unwrap_or(500).clamp(1, 1000);
    let (row, chunks) = sessions::output(&state.ctx, &grant, id, after, limit).await?;
    let next_after = chunks.last().map_or(after, |c| c.seq);
    Ok(Json(OutputPage {
        chunks: chunks.into_iter().map(chunk).collect(),
        status: row.status,
        next_after,
    }))
}

/// Stops a session: a waiting one is canceled at once; a running one's host ends its whole
/// process group and reports it canceled.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/sessions/{session_id}/stop", tag = "sessions",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("session_id" = String, Path, description = "Session id")),
    responses((status = 202, description = "Stopping", body = SessionView),
        (status = 404, description = "No such session in this workspace", content_type = "application/problem+json"),
        (status = 409, description = "Already ended, or its host is not connected here", content_type = "application/problem+json")))]
pub(crate) async fn stop_session(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<(StatusCode, Json<SessionView>), ApiError> {
    let row = sessions::stop(&state.ctx, &op, &grant, &path.1).await?;
    Ok((StatusCode::ACCEPTED, Json(view(row))))
}

fn chunk(c: OutputRow) -> Chunk {
    Chunk {
        seq: c.seq,
        stream: c.stream,
        data: c.data,
    }
}

/// Where a stream resumes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Send chunks after this sequence number (or send `Last-Event-ID`); default: all.
    pub after: Option<i64>,
}

struct Follow {
    state: AppState,
    grant: WorkspaceGrant,
    id: Uuid,
    after: i64,
    feed: tokio::sync::watch::Receiver<u64>,
    queue: std::collections::VecDeque<axum::response::sse::Event>,
    done: bool,
    /// The last read filled a page: more is waiting, read again without waiting.
    more: bool,
}

/// Chunks read at a time.
const FOLLOW_PAGE: i64 = 500;

impl Follow {
    /// Reads what is new; at the end, the final status.
    async fn fill(&mut self) -> Result<(), ApiError> {
        let (row, chunks) = sessions::output(
            &self.state.ctx,
            &self.grant,
            self.id,
            self.after,
            FOLLOW_PAGE,
        )
        .await?;
        let empty = chunks.is_empty();
        self.more = i64::try_from(chunks.len()).unwrap_or(i64::MAX) >= FOLLOW_PAGE;
        for c in chunks {
            self.after = c.seq;
            let seq = c.seq;
            let data = serde_json::to_string(&chunk(c)).unwrap_or_default();
            self.queue.push_back(
                axum::response::sse::Event::default()
                    .id(seq.to_string())
                    .event("output")
                    .data(data),
            );
        }
        if empty && !matches!(row.status.as_str(), "waiting" | "running") {
            self.queue.push_back(
                axum::response::sse::Event::default()
                    .event("end")
                    .data(json!({"status": row.status, "exit_code": row.exit_code}).to_string()),
            );
            self.done = true;
        }
        Ok(())
    }
}

/// Follows a session's output as server-sent events: `output` events (id = sequence number,
/// data `{seq, stream, data}`) as the host reports them, then one `end` event with the final
/// status. Resumes after `after` or the `Last-Event-ID` header. Membership is checked again
/// at every read: a member removed meanwhile stops receiving.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/sessions/{session_id}/stream", tag = "sessions",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("session_id" = String, Path, description = "Session id"), StreamQuery),
    responses((status = 200, description = "text/event-stream of output, then end"),
        (status = 404, description = "No such session in this workspace", content_type = "application/problem+json")))]
pub(crate) async fn stream_session(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiQuery(q): ApiQuery<StreamQuery>,
    headers: axum::http::HeaderMap,
) -> Result<
    axum::response::sse::Sse<
        impl futures_util::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
    >,
    ApiError,
> {
    let id = sessions::parse_id(&path.1)?;
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    let feed = state.ctx.session_feeds.subscribe(id);
    let mut follow = Follow {
        after: last.or(q.after).unwrap_or(-1),
        state,
        grant,
        id,
        feed,
        queue: std::collections::VecDeque::new(),
        done: false,
        more: false,
    };
    // The first read answers 404 for another workspace's session, before any stream starts.
    follow.fill().await?;
    let stream = futures_util::stream::unfold(follow, |mut f| async move {
        loop {
            if let Some(event) = f.queue.pop_front() {
                return Some((Ok(event), f));
            }
            if f.done {
                return None;
            }
            if !f.more {
                let wait = std::time::Duration::from_secs(1);
                let _ = tokio::time::timeout(wait, f.feed.changed()).await;
            }
            if f.fill().await.is_err() {
                return None;
            }
        }
    });
    Ok(axum::response::sse::Sse::new(stream).keep_alive(axum::response::sse::KeepAlive::default()))
}

/// Closes an ended session: its host removes the worktree and branch (a chat or bot session
/// keeps them until now; a develop session's are gone already). The record and output stay.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/sessions/{session_id}/close", tag = "sessions",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("session_id" = String, Path, description = "Session id")),
    responses((status = 200, description = "Closed", body = SessionView),
        (status = 404, description = "No such session in this workspace", content_type = "application/problem+json"),
        (status = 409, description = "Still running, or already closed", content_type = "application/problem+json")))]
pub(crate) async fn close_session(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<Json<SessionView>, ApiError> {
    Ok(Json(view(
        sessions::close(&state.ctx, &op, &grant, &path.1).await?,
    )))
}
