//! Agent sessions in a workspace: create (the session goes to an approved host this workspace
//! may use, connected to this node), list, read, follow the output from any position, stop.

use crate::http::query::ApiQuery;
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
use warden_domain::sessions::{SessionMode, provider_argv};
use warden_domain::tenancy::{Provider, Repository};
use warden_protocol::ServerMessage;
use warden_store::sessions::{NewSession, SessionRow};

use super::me::rfc3339;
use super::workspaces::db;
use crate::audit::request::RequestMeta;
use crate::http::authz::WorkspaceAccess;
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::identity::Caller;
use crate::state::AppState;
use warden_core::identity::now_us;

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

pub(super) fn not_found() -> ApiError {
    ApiError::from_status(StatusCode::NOT_FOUND)
}

pub(super) fn invalid(field: &'static str, detail: &'static str) -> ApiError {
    ApiError(warden_core::CoreError::invalid(field, detail))
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
    meta: RequestMeta,
    caller: Caller,
    access: WorkspaceAccess,
    ApiJson(input): ApiJson<NewSessionInput>,
) -> Result<(StatusCode, Json<SessionView>), ApiError> {
    let mode = match input.mode.as_deref() {
        None => SessionMode::Develop,
        Some(m) => {
            SessionMode::parse(m).ok_or_else(|| invalid("mode", "must be chat, develop or bot"))?
        }
    };
    if input.prompt.len() > 100_000 || input.prompt.contains('\0') {
        return Err(invalid(
            "prompt",
            "must be at most 100,000 bytes, without NUL",
        ));
    }
    let (provider, argv) = if input.provider == "command" {
        if input.command.is_empty()
            || input.command.len() > 256
            || input
                .command
                .iter()
                .any(|a| a.len() > 4096 || a.contains('\0'))
            || input.command[0].is_empty()
        {
            return Err(invalid(
                "command",
                "must be a program and its arguments: 1 to 256 items of at most 4096 bytes, \
                 without NUL",
            ));
        }
        (None, input.command.clone())
    } else {
        let p = Provider::parse(&input.provider).ok_or_else(|| {
            invalid(
                "provider",
                "must be claude-code, gemini-cli, codex, opencode, kilo-cli, qwen-code or command",
            )
        })?;
        if !input.command.is_empty() {
            return Err(invalid(
                "command",
                "only the command provider takes a command",
            ));
        }
        (Some(p), provider_argv(p, &input.prompt))
    };
    let wanted = match &input.host_id {
        None => None,
        Some(h) => Some(
            h.parse::<Uuid>()
                .map_err(|_| invalid("host_id", "must be a host id"))?,
        ),
    };

    let mut tx = access.open(&state).await?;
    let workspace = tx.get().await.map_err(db)?;
    let repository = workspace
        .repository
        .as_deref()
        .and_then(|r| serde_json::from_str::<Repository>(r).ok())
        .ok_or(ApiError::from(warden_core::Code::NoRepository))?;
    let hooks: warden_domain::tenancy::Hooks =
        serde_json::from_str(&workspace.hooks).unwrap_or_default();
    let here = state.connections.session_hosts();
    let host = tx
        .usable_hosts()
        .await
        .map_err(db)?
        .into_iter()
        .filter(|h| here.contains(h))
        .find(|h| wanted.is_none_or(|w| w == *h))
        .ok_or(ApiError::from(warden_core::Code::NoHostAvailable))?;
    let secrets = crate::sessions::secrets_for(&state, &mut tx, provider)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let id = Uuid::now_v7();
    let provider_name = provider.map_or("command", Provider::as_str);
    tx.insert_session(&NewSession {
        id,
        host_id: host,
        provider: provider_name,
        mode: mode.as_str(),
        prompt: &input.prompt,
        now: now_us(state.clock.as_ref()),
    })
    .await
    .map_err(db)?;
    let event = meta.event(
        state.clock.now(),
        caller.actor(),
        "session.created",
        "session",
        Some(id.to_string()),
        Outcome::Success,
        json!({ "provider": provider_name, "mode": mode.as_str(), "host_id": host.to_string(),
                "prompt_bytes": input.prompt.len(),
                "variables": secrets.env.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>() }),
    );
    tx.record(&state.audit_key, event).await.map_err(db)?;
    let row = tx.session(id).await.map_err(db)?.ok_or_else(not_found)?;
    tx.commit().await.map_err(db)?;

    let start = ServerMessage::StartSession {
        session_id: id.to_string(),
        workspace_id: workspace.id.to_string(),
        repository: match repository {
            Repository::Url(u) => warden_protocol::Repository::Url(u),
            Repository::Path(p) => warden_protocol::Repository::Path(p),
        },
        mode: mode.as_str().to_owned(),
        argv,
        env: secrets.env,
        pat: secrets.pat,
        hooks_pre: hooks.pre_session,
        hooks_post: hooks.post_session,
    };
    if !state.connections.send(host, start) {
        // The host left between the choice and now.
        let mut tx = access.open(&state).await?;
        tx.end_waiting_session(
            id,
            "failed",
            Some("the host disconnected before the session started"),
            now_us(state.clock.as_ref()),
        )
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
    }
    Ok((StatusCode::CREATED, Json(view(row))))
}

/// The workspace's sessions, newest first.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/sessions", tag = "sessions",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses((status = 200, description = "Sessions", body = Vec<SessionView>)))]
pub(crate) async fn list_sessions(
    State(state): State<AppState>,
    access: WorkspaceAccess,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    let mut tx = access.open(&state).await?;
    let rows = tx.sessions(200).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    Ok(Json(rows.into_iter().map(view).collect()))
}

pub(super) fn session_id(path: &(String, String)) -> Result<Uuid, ApiError> {
    path.1.parse().map_err(|_| not_found())
}

/// One session.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/sessions/{session_id}", tag = "sessions",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("session_id" = String, Path, description = "Session id")),
    responses((status = 200, description = "The session", body = SessionView),
        (status = 404, description = "No such session in this workspace", content_type = "application/problem+json")))]
pub(crate) async fn get_session(
    State(state): State<AppState>,
    access: WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<Json<SessionView>, ApiError> {
    let id = session_id(&path)?;
    let mut tx = access.open(&state).await?;
    let row = tx.session(id).await.map_err(db)?.ok_or_else(not_found)?;
    tx.commit().await.map_err(db)?;
    Ok(Json(view(row)))
}

/// Where to resume the output.
#[derive(Debug, Deserialize, IntoParams)]
pub struct OutputQuery {
    /// Return chunks after this sequence number (default: from the start).
    pub after: Option<i64>,
    /// At most this many chunks (1–1000, default 500).
    #[param(minimum = 1, maximum = 1000)]
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
    access: WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiQuery(q): ApiQuery<OutputQuery>,
) -> Result<Json<OutputPage>, ApiError> {
    let id = session_id(&path)?;
    let after = q.after.unwrap_or(-1);
    let limit = q.limit.unwrap_or(500).clamp(1, 1000);
    let mut tx = access.open(&state).await?;
    let row = tx.session(id).await.map_err(db)?.ok_or_else(not_found)?;
    let chunks = tx.session_output(id, after, limit).await.map_err(db)?;
    tx.commit().await.map_err(db)?;
    let next_after = chunks.last().map_or(after, |c| c.seq);
    Ok(Json(OutputPage {
        chunks: chunks
            .into_iter()
            .map(|c| Chunk {
                seq: c.seq,
                stream: c.stream,
                data: c.data,
            })
            .collect(),
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
    meta: RequestMeta,
    caller: Caller,
    access: WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<(StatusCode, Json<SessionView>), ApiError> {
    let id = session_id(&path)?;
    let mut tx = access.open(&state).await?;
    let row = tx.session(id).await.map_err(db)?.ok_or_else(not_found)?;
    if !matches!(row.status.as_str(), "waiting" | "running") {
        return Err(ApiError::from(warden_core::Code::SessionEnded));
    }
    let sent = row.host_id.is_some_and(|h| {
        state.connections.send(
            h,
            ServerMessage::StopSession {
                session_id: id.to_string(),
            },
        )
    });
    if !sent && row.status == "running" {
        return Err(ApiError::from(warden_core::Code::HostNotConnected));
    }
    if !sent {
        tx.end_waiting_session(id, "canceled", None, now_us(state.clock.as_ref()))
            .await
            .map_err(db)?;
    }
    let event = meta.event(
        state.clock.now(),
        caller.actor(),
        "session.stopped",
        "session",
        Some(id.to_string()),
        Outcome::Success,
        json!({ "status_before": row.status }),
    );
    tx.record(&state.audit_key, event).await.map_err(db)?;
    let row = tx.session(id).await.map_err(db)?.ok_or_else(not_found)?;
    tx.commit().await.map_err(db)?;
    Ok((StatusCode::ACCEPTED, Json(view(row))))
}

/// Where a stream resumes.
#[derive(Debug, Deserialize, IntoParams)]
pub struct StreamQuery {
    /// Send chunks after this sequence number (or send `Last-Event-ID`); default: all.
    pub after: Option<i64>,
}

struct Follow {
    state: AppState,
    access: WorkspaceAccess,
    id: Uuid,
    after: i64,
    feed: tokio::sync::watch::Receiver<u64>,
    queue: std::collections::VecDeque<axum::response::sse::Event>,
    done: bool,
}

impl Follow {
    /// Reads what is new; at the end, the final status.
    async fn fill(&mut self) -> Result<(), ApiError> {
        let mut tx = self.access.open(&self.state).await?;
        let row = tx
            .session(self.id)
            .await
            .map_err(db)?
            .ok_or_else(not_found)?;
        let chunks = tx
            .session_output(self.id, self.after, 500)
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let empty = chunks.is_empty();
        for c in chunks {
            self.after = c.seq;
            let data = serde_json::to_string(&Chunk {
                seq: c.seq,
                stream: c.stream,
                data: c.data,
            })
            .unwrap_or_default();
            self.queue.push_back(
                axum::response::sse::Event::default()
                    .id(c.seq.to_string())
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
    access: WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiQuery(q): ApiQuery<StreamQuery>,
    headers: axum::http::HeaderMap,
) -> Result<
    axum::response::sse::Sse<
        impl futures_util::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
    >,
    ApiError,
> {
    let id = session_id(&path)?;
    let last = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i64>().ok());
    let feed = state.session_feeds.subscribe(id);
    let mut follow = Follow {
        after: last.or(q.after).unwrap_or(-1),
        state,
        access,
        id,
        feed,
        queue: std::collections::VecDeque::new(),
        done: false,
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
            let _ = tokio::time::timeout(std::time::Duration::from_secs(1), f.feed.changed()).await;
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
    meta: RequestMeta,
    caller: Caller,
    access: WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<Json<SessionView>, ApiError> {
    let id = session_id(&path)?;
    let mut tx = access.open(&state).await?;
    let row = tx.session(id).await.map_err(db)?.ok_or_else(not_found)?;
    if !tx
        .archive_session(id, now_us(state.clock.as_ref()))
        .await
        .map_err(db)?
    {
        return Err(ApiError::from(warden_core::Code::SessionNotClosable));
    }
    let event = meta.event(
        state.clock.now(),
        caller.actor(),
        "session.closed",
        "session",
        Some(id.to_string()),
        Outcome::Success,
        json!({ "mode": row.mode, "status": row.status }),
    );
    tx.record(&state.audit_key, event).await.map_err(db)?;
    let row = tx.session(id).await.map_err(db)?.ok_or_else(not_found)?;
    tx.commit().await.map_err(db)?;
    if let Some(host) = row.host_id {
        state.connections.send(
            host,
            ServerMessage::ArchiveSession {
                session_id: id.to_string(),
                workspace_id: row.workspace_id.to_string(),
            },
        );
    }
    Ok(Json(view(row)))
}
