//! Console → a workspace's agent sessions: the list and the form that starts one (the
//! workspace's start page), a session's page (its output, followed live by
//! `/assets/session.js` over the API's event stream, resuming after a reconnect), stop and
//! close, the worktree's files (view, edit) and its diff against the base branch. All through
//! `warden_core::sessions` with the workspace grant, as the API.
//!
//! Output is the provider's text: the template engine escapes it, and terminal escape
//! sequences are removed (by `strip-ansi-escapes`) so it reads as plain text.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use utoipa_axum::routes;
use warden_core::sessions::{self, StartSession, files, messages};
use warden_domain::access::{Access, Permission};
use warden_store::sessions::SessionRow;
use warden_store::tenancy::WorkspaceGrant;

use super::workspaces::Place;
use super::{Done, Fields, Frame, frame, render, when};
use crate::http::authz::{UserOp, WorkspaceAccess};
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::identity::Caller;
use crate::state::AppState;

pub(super) fn routes() -> Routes<AppState> {
    use Access::Workspace;
    let read = Workspace(Permission::SESSIONS_READ);
    let update = Workspace(Permission::SESSIONS_UPDATE);
    Routes::new()
        .add(read, routes!(workspace_home))
        .add(Workspace(Permission::SESSIONS_CREATE), routes!(start))
        .add(read, routes!(session_page))
        .add(update, routes!(stop))
        .add(update, routes!(close))
        .add(update, routes!(answer))
        .add(read, routes!(files_page))
        .add(read, routes!(file_page))
        .add(update, routes!(save_file))
        .add(update, routes!(delete_file))
        .add(read, routes!(diff_page))
}

/// Terminal output as plain text: escape sequences removed, the rest kept for the template
/// engine to escape.
pub(crate) fn plain(text: &str) -> String {
    strip_ansi_escapes::strip_str(text)
}

struct SessionItem {
    id: String,
    provider: String,
    mode: String,
    status: String,
    prompt: String,
    created_at: String,
}

fn prompt_line(prompt: &str) -> String {
    let line = prompt.lines().next().unwrap_or("").trim();
    let short: String = line.chars().take(90).collect();
    match (
        short.is_empty(),
        short.len() < line.len() || prompt.lines().count() > 1,
    ) {
        (true, _) => "(no prompt)".to_owned(),
        (false, true) => format!("{short}…"),
        (false, false) => short,
    }
}

#[derive(Template)]
#[template(path = "console/workspace_sessions.html")]
struct WorkspaceHome {
    frame: Frame,
    place: Place,
    sessions: Vec<SessionItem>,
    may_start: bool,
    providers: &'static [&'static str],
}

const PROVIDERS: &[&str] = &[
    "claude-code",
    "codex",
    "gemini-cli",
    "opencode",
    "kilo-cli",
    "qwen-code",
    "command",
];

/// A workspace's start page: its sessions, newest first, and the form that starts one.
#[utoipa::path(get, path = "/console/workspaces/{workspace_id}", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"), Done),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 404, description = "No such workspace for this person", content_type = "text/html")))]
pub(crate) async fn workspace_home(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    caller: Caller,
    ApiQuery(done): ApiQuery<Done>,
) -> Result<Response, ApiError> {
    let sessions = sessions::list(&state.ctx, &grant)
        .await?
        .into_iter()
        .map(|s| SessionItem {
            id: s.id.to_string(),
            prompt: prompt_line(&s.prompt),
            provider: s.provider,
            mode: s.mode,
            status: s.status,
            created_at: when(s.created_at),
        })
        .collect();
    let place = Place::of(&state, &grant, "sessions").await?;
    let page = WorkspaceHome {
        frame: frame(
            &state,
            &caller,
            "workspaces",
            super::notice(done.done.as_deref()),
        )
        .await?,
        may_start: grant.holds(Permission::SESSIONS_CREATE) && !place.archived,
        place,
        sessions,
        providers: PROVIDERS,
    };
    Ok(render(&page, StatusCode::OK))
}

/// Starts a session (`provider`, `prompt`, `mode`; for `command`, `command` with one argument
/// per line) and opens its page.
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/sessions", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Started: to its page")))]
pub(crate) async fn start(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form = Fields::parse(&body);
    let command: Vec<String> = form
        .text("command")
        .lines()
        .map(|l| l.trim_end_matches('\r').to_owned())
        .filter(|l| !l.is_empty())
        .collect();
    let input = StartSession::parse(
        form.text("provider"),
        form.text("prompt").replace("\r\n", "\n"),
        form.given("mode"),
        command,
        form.given("host_id"),
    )?;
    let row = sessions::start(&state.ctx, &op, &grant, input).await?;
    Ok(Redirect::to(&Place::url(&grant, &format!("/sessions/{}", row.id))).into_response())
}

struct Line {
    stream: String,
    text: String,
}

#[derive(Template)]
#[template(path = "console/session.html")]
struct SessionPage {
    frame: Frame,
    place: Place,
    s: SessionFacts,
    lines: Vec<Line>,
    after: i64,
    live: bool,
    may_update: bool,
    messages: Vec<MessageItem>,
    plan: String,
    may_answer: bool,
    waiting: bool,
}

/// A question or message from the session's agent.
struct MessageItem {
    id: String,
    question: bool,
    body: String,
    state: String,
    answer: String,
    at: String,
}

struct SessionFacts {
    id: String,
    provider: String,
    mode: String,
    status: String,
    branch: String,
    host: String,
    isolation: String,
    prompt: String,
    created_at: String,
    started_at: String,
    ended_at: String,
    exit_code: Option<i32>,
    error: Option<String>,
    closed: bool,
    ended: bool,
}

fn facts(r: SessionRow) -> SessionFacts {
    let ended = !matches!(r.status.as_str(), "waiting" | "running");
    SessionFacts {
        id: r.id.to_string(),
        branch: format!("warden/{}", r.id),
        host: r
            .host_id
            .map_or_else(|| "none".to_owned(), |h| h.to_string()),
        isolation: r.isolation.unwrap_or_else(|| "not reported yet".to_owned()),
        provider: r.provider,
        mode: r.mode,
        status: r.status,
        prompt: r.prompt,
        created_at: when(r.created_at),
        started_at: r.started_at.map_or_else(|| "not yet".to_owned(), when),
        ended_at: r.ended_at.map_or_else(|| "not yet".to_owned(), when),
        exit_code: r.exit_code,
        error: r.error.map(|e| plain(&e)),
        closed: r.archived_at.is_some(),
        ended,
    }
}

/// The most output a page shows at once; the rest follows live.
const PAGE_CHUNKS: i64 = 2000;

/// A session: what it is, its output (then followed live), and what may be done with it.
#[utoipa::path(get, path = "/console/workspaces/{workspace_id}/sessions/{session_id}", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("session_id" = String, Path, description = "Session id"), Done),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 404, description = "No such session for this person", content_type = "text/html")))]
pub(crate) async fn session_page(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    caller: Caller,
    Path(path): Path<(String, String)>,
    ApiQuery(done): ApiQuery<Done>,
) -> Result<Response, ApiError> {
    let id = path.1;
    let id = sessions::parse_id(&id)?;
    let (row, chunks) = sessions::output(&state.ctx, &grant, id, -1, PAGE_CHUNKS).await?;
    let after = chunks.last().map_or(-1, |c| c.seq);
    let lines = chunks
        .into_iter()
        .map(|c| Line {
            text: plain(&c.data),
            stream: c.stream,
        })
        .collect();
    let owner = row.created_by == grant.user_id();
    let now = warden_core::op::unix_us(state.ctx.clock.now());
    let said = messages::list(&state.ctx, &grant, &row.id.to_string(), now).await?;
    let plan = messages::plan(&state.ctx, &grant, &row.id.to_string()).await?;
    let s = facts(row);
    let messages: Vec<MessageItem> = said
        .into_iter()
        .map(|m| MessageItem {
            id: m.id.to_string(),
            question: m.kind == "question",
            body: m.body,
            state: m.state.unwrap_or_default(),
            answer: m.answer.unwrap_or_default(),
            at: m.created_at.replace('T', " ").chars().take(19).collect(),
        })
        .collect();
    let page = SessionPage {
        waiting: messages.iter().any(|m| m.state == "open"),
        may_answer: owner && grant.holds(Permission::SESSIONS_UPDATE),
        messages,
        plan: plan.content,
        frame: frame(
            &state,
            &caller,
            "workspaces",
            super::notice(done.done.as_deref()),
        )
        .await?,
        place: Place::of(&state, &grant, "sessions").await?,
        live: !s.ended,
        may_update: grant.holds(Permission::SESSIONS_UPDATE),
        s,
        lines,
        after,
    };
    Ok(render(&page, StatusCode::OK))
}

/// Answers an open question of the session's agent (its owner only; the agent waiting on
/// `ask_user_question` receives it).
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/sessions/{session_id}/messages/{message_id}/answer", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("session_id" = String, Path, description = "Session id"),
           ("message_id" = String, Path, description = "The question's id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Back to the session")))]
pub(crate) async fn answer(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    UserOp(op): UserOp,
    Path(path): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let f = Fields::parse(&body);
    messages::answer(&state.ctx, &op, &grant, &path.1, &path.2, f.text("answer")).await?;
    Ok(back_to(&grant, &path.1, "answer-sent"))
}

fn back_to(grant: &WorkspaceGrant, id: &str, done: &str) -> Response {
    Redirect::to(&Place::url(grant, &format!("/sessions/{id}?done={done}"))).into_response()
}

/// Stops a session (a waiting one is canceled at once; a running one's process group ends).
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/sessions/{session_id}/stop", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("session_id" = String, Path, description = "Session id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Back to the session")))]
pub(crate) async fn stop(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = path.1;
    sessions::stop(&state.ctx, &op, &grant, &id).await?;
    Ok(back_to(&grant, &id, "session-stopping"))
}

/// Closes an ended session: its host removes the worktree and branch.
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/sessions/{session_id}/close", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("session_id" = String, Path, description = "Session id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Back to the session")))]
pub(crate) async fn close(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = path.1;
    sessions::close(&state.ctx, &op, &grant, &id).await?;
    Ok(back_to(&grant, &id, "session-closed"))
}

/// Which file or directory of the worktree.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FileQuery {
    /// Relative to the worktree's root (default: the root).
    pub path: Option<String>,
    /// `file-saved` after a save.
    pub done: Option<String>,
}

struct Entry {
    name: String,
    href: String,
    kind: String,
    size: u64,
}

struct Crumb {
    name: String,
    href: String,
}

#[derive(Template)]
#[template(path = "console/session_files.html")]
struct FilesPage {
    frame: Frame,
    place: Place,
    session: String,
    base: String,
    crumbs: Vec<Crumb>,
    entries: Vec<Entry>,
}

fn query_path(path: &str) -> String {
    form_urlencoded::byte_serialize(path.as_bytes()).collect()
}

/// The links from the worktree's root down to `path`.
fn crumbs(base: &str, path: &str) -> Vec<Crumb> {
    let mut out = vec![Crumb {
        name: "worktree".to_owned(),
        href: format!("{base}/files"),
    }];
    let mut so_far = String::new();
    for part in path.split('/').filter(|p| !p.is_empty()) {
        if !so_far.is_empty() {
            so_far.push('/');
        }
        so_far.push_str(part);
        out.push(Crumb {
            name: part.to_owned(),
            href: format!("{base}/files?path={}", query_path(&so_far)),
        });
    }
    out
}

/// A directory of the session's worktree.
#[utoipa::path(get, path = "/console/workspaces/{workspace_id}/sessions/{session_id}/files", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("session_id" = String, Path, description = "Session id"), FileQuery),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 404, description = "No such session or directory", content_type = "text/html")))]
pub(crate) async fn files_page(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    caller: Caller,
    Path(path): Path<(String, String)>,
    ApiQuery(q): ApiQuery<FileQuery>,
) -> Result<Response, ApiError> {
    let id = path.1;
    let dir = q.path.unwrap_or_default();
    let at = Some(dir.clone()).filter(|d| !d.is_empty());
    let mut listed = files::list(&state.ctx, &op, &grant, &id, at).await?;
    listed.sort_by(|a, b| (a.kind != "dir", &a.name).cmp(&(b.kind != "dir", &b.name)));
    let base = Place::url(&grant, &format!("/sessions/{id}"));
    let entries = listed
        .into_iter()
        .map(|e| {
            let full = if dir.is_empty() {
                e.name.clone()
            } else {
                format!("{}/{}", dir.trim_end_matches('/'), e.name)
            };
            let page = if e.kind == "dir" { "files" } else { "file" };
            Entry {
                href: format!("{base}/{page}?path={}", query_path(&full)),
                name: e.name,
                kind: e.kind,
                size: e.size,
            }
        })
        .collect();
    let page = FilesPage {
        frame: frame(&state, &caller, "workspaces", None).await?,
        place: Place::of(&state, &grant, "sessions").await?,
        crumbs: crumbs(&base, &dir),
        session: id,
        base,
        entries,
    };
    Ok(render(&page, StatusCode::OK))
}

#[derive(Template)]
#[template(path = "console/session_file.html")]
struct FilePage {
    frame: Frame,
    place: Place,
    session: String,
    base: String,
    crumbs: Vec<Crumb>,
    path: String,
    content: String,
    may_edit: bool,
}

/// A file of the session's worktree (at most 48 KiB), editable by those who may update
/// sessions.
#[utoipa::path(get, path = "/console/workspaces/{workspace_id}/sessions/{session_id}/file", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("session_id" = String, Path, description = "Session id"), FileQuery),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 404, description = "No such session or file", content_type = "text/html")))]
pub(crate) async fn file_page(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    caller: Caller,
    Path(path): Path<(String, String)>,
    ApiQuery(q): ApiQuery<FileQuery>,
) -> Result<Response, ApiError> {
    let id = path.1;
    let path = q.path.unwrap_or_default();
    let content = files::read(&state.ctx, &op, &grant, &id, Some(path.clone())).await?;
    let base = Place::url(&grant, &format!("/sessions/{id}"));
    let page = FilePage {
        frame: frame(
            &state,
            &caller,
            "workspaces",
            super::notice(q.done.as_deref()),
        )
        .await?,
        place: Place::of(&state, &grant, "sessions").await?,
        crumbs: crumbs(&base, &path),
        may_edit: grant.holds(Permission::SESSIONS_UPDATE),
        session: id,
        base,
        path,
        content,
    };
    Ok(render(&page, StatusCode::OK))
}

/// Saves a file of the worktree (`path`, `content`).
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/sessions/{session_id}/file", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("session_id" = String, Path, description = "Session id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Saved: back to the file")))]
pub(crate) async fn save_file(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = path.1;
    let form = Fields::parse(&body);
    let path = form.text("path").to_owned();
    // A browser sends a textarea's line breaks as CRLF; the file keeps the worktree's LF.
    let content = form.text("content").replace("\r\n", "\n");
    files::write(&state.ctx, &op, &grant, &id, Some(path.clone()), content).await?;
    Ok(Redirect::to(&Place::url(
        &grant,
        &format!(
            "/sessions/{id}/file?path={}&done=file-saved",
            query_path(&path)
        ),
    ))
    .into_response())
}

struct DiffLine {
    class: &'static str,
    text: String,
}

#[derive(Template)]
#[template(path = "console/session_diff.html")]
struct DiffPage {
    frame: Frame,
    place: Place,
    session: String,
    base: String,
    lines: Vec<DiffLine>,
}

/// The worktree's changes against the branch it started from.
#[utoipa::path(get, path = "/console/workspaces/{workspace_id}/sessions/{session_id}/diff", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("session_id" = String, Path, description = "Session id")),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 404, description = "No such session", content_type = "text/html")))]
pub(crate) async fn diff_page(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    caller: Caller,
    Path(path): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let id = path.1;
    let diff = files::diff(&state.ctx, &op, &grant, &id).await?;
    let lines = diff
        .lines()
        .map(|l| DiffLine {
            class: match l.as_bytes().first() {
                _ if l.starts_with("+++") || l.starts_with("---") => "file",
                Some(b'+') => "add",
                Some(b'-') => "del",
                Some(b'@') => "hunk",
                _ if l.starts_with("diff ") => "file",
                _ => "ctx",
            },
            text: plain(l),
        })
        .collect();
    let base = Place::url(&grant, &format!("/sessions/{id}"));
    let page = DiffPage {
        frame: frame(&state, &caller, "workspaces", None).await?,
        place: Place::of(&state, &grant, "sessions").await?,
        session: id,
        base,
        lines,
    };
    Ok(render(&page, StatusCode::OK))
}

/// Deletes a file of the worktree (`path`), then shows its directory.
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/sessions/{session_id}/file/delete", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("session_id" = String, Path, description = "Session id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Deleted: to its directory")))]
pub(crate) async fn delete_file(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = path.1;
    let file = Fields::parse(&body).text("path").to_owned();
    files::delete(&state.ctx, &op, &grant, &id, Some(file.clone())).await?;
    let dir = file.rsplit_once('/').map_or("", |(d, _)| d);
    Ok(Redirect::to(&Place::url(
        &grant,
        &format!("/sessions/{id}/files?path={}", query_path(dir)),
    ))
    .into_response())
}
