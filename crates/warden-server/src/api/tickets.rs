//! A workspace's tickets: write, search, read (with the body rendered as safe HTML), edit,
//! delete, and move through the workflow. A move's route needs `tickets.update`; the use case
//! then checks the permission that particular move needs (`tickets.approve_dev`,
//! `tickets.approve_qa`, `tickets.skip_to_merge`) and audits a refusal.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use warden_core::sessions::StartSession;
use warden_core::tickets::comments::{self, TicketComment};
use warden_core::tickets::{self, Move, Moved, Search, Ticket, TicketDetail, TicketInput};
use warden_domain::access::{Access, Permission};

use super::sessions::NewSessionInput;
use crate::http::authz::{UserOp, WorkspaceAccess};
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    use Access::Workspace;
    Routes::new()
        .add(Workspace(Permission::TICKETS_READ), routes!(list))
        .add(Workspace(Permission::TICKETS_CREATE), routes!(create))
        .add(Workspace(Permission::TICKETS_READ), routes!(get))
        .add(Workspace(Permission::TICKETS_UPDATE), routes!(update))
        .add(Workspace(Permission::TICKETS_DELETE), routes!(delete))
        .add(Workspace(Permission::TICKETS_UPDATE), routes!(move_ticket))
        .add(Workspace(Permission::TICKETS_READ), routes!(comments))
        .add(Workspace(Permission::TICKETS_UPDATE), routes!(comment))
}

/// What a search asks for.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SearchQuery {
    /// Words in the title or body.
    q: Option<String>,
    /// Only this status.
    status: Option<String>,
    /// Only tickets with this label.
    label: Option<String>,
    /// At most this many (1–200, default 50).
    limit: Option<i64>,
}

/// The workspace's tickets, newest first.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/tickets", tag = "tickets",
    params(("workspace_id" = String, Path, description = "Workspace id"), SearchQuery),
    responses((status = 200, description = "Tickets", body = Vec<Ticket>)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<Json<Vec<Ticket>>, ApiError> {
    let search = Search::parse(
        q.q.as_deref(),
        q.status.as_deref(),
        q.label.as_deref(),
        q.limit,
    )?;
    Ok(Json(tickets::list(&state.ctx, &grant, &search).await?))
}

/// A ticket's text.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketText {
    /// 1 to 200 characters on one line.
    pub title: String,
    /// Markdown, at most 64 KiB.
    #[serde(default)]
    pub body: String,
    /// At most 20 labels.
    #[serde(default)]
    pub labels: Vec<String>,
    /// A member of the workspace who works on it.
    #[serde(default)]
    pub assignee_id: Option<String>,
}

fn parse(t: &TicketText) -> Result<TicketInput, ApiError> {
    Ok(TicketInput::parse(
        &t.title,
        &t.body,
        &t.labels,
        t.assignee_id.as_deref(),
    )?)
}

/// Writes a ticket into the backlog.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/tickets", tag = "tickets",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = TicketText, example = json!({"title": "Login page loses the next link",
        "body": "After signing in, `?next=` is ignored.", "labels": ["bug"]})),
    responses(
        (status = 201, description = "Written", body = Ticket),
        (status = 422, description = "Invalid ticket", content_type = "application/problem+json")))]
pub(crate) async fn create(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    ApiJson(input): ApiJson<TicketText>,
) -> Result<(StatusCode, Json<Ticket>), ApiError> {
    let ticket = tickets::create(&state.ctx, &op, &grant, parse(&input)?).await?;
    Ok((StatusCode::CREATED, Json(ticket)))
}

/// One ticket (by number or id), its body rendered as safe HTML, with its sessions.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/tickets/{ticket}", tag = "tickets",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("ticket" = String, Path, description = "Number in the workspace, or id")),
    responses((status = 200, description = "The ticket", body = TicketDetail),
              (status = 404, description = "No such ticket", content_type = "application/problem+json")))]
pub(crate) async fn get(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<Json<TicketDetail>, ApiError> {
    Ok(Json(tickets::get(&state.ctx, &grant, &path.1).await?))
}

/// Replaces a ticket's title, body, labels and assignee.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/tickets/{ticket}", tag = "tickets",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("ticket" = String, Path, description = "Number in the workspace, or id")),
    request_body(content = TicketText, example = json!({"title": "Login page loses the next link",
        "body": "After signing in, `?next=` is ignored.", "labels": ["bug", "auth"]})),
    responses((status = 200, description = "Saved", body = Ticket)))]
pub(crate) async fn update(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiJson(input): ApiJson<TicketText>,
) -> Result<Json<Ticket>, ApiError> {
    Ok(Json(
        tickets::update(&state.ctx, &op, &grant, &path.1, parse(&input)?).await?,
    ))
}

/// Deletes a ticket.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/tickets/{ticket}", tag = "tickets",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("ticket" = String, Path, description = "Number in the workspace, or id")),
    responses((status = 204, description = "Deleted")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    tickets::delete(&state.ctx, &op, &grant, &path.1).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A move through the workflow.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveInput {
    /// The status to move to.
    pub to: String,
    /// Why (needed to reject, to send work back from QA and to reopen).
    #[serde(default)]
    pub reason: Option<String>,
    /// When moving into development: the agent session to open for the ticket (its prompt
    /// is the workspace's `development` prompt followed by the ticket).
    #[serde(default)]
    pub session: Option<NewSessionInput>,
}

/// Moves a ticket: backlog → ready_for_development (`tickets.approve_dev`) → in_development
/// (`tickets.update`, optionally opening a session) → ready_for_qa → done
/// (`tickets.approve_qa`); rejected with a reason; straight to done with
/// `tickets.skip_to_merge`.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/tickets/{ticket}/move", tag = "tickets",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("ticket" = String, Path, description = "Number in the workspace, or id")),
    request_body(content = MoveInput, example = json!({"to": "in_development",
        "session": {"provider": "claude-code"}})),
    responses(
        (status = 200, description = "Moved", body = Moved),
        (status = 403, description = "The move needs a permission the caller lacks", content_type = "application/problem+json"),
        (status = 409, description = "No such move from the ticket's status", content_type = "application/problem+json")))]
pub(crate) async fn move_ticket(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiJson(input): ApiJson<MoveInput>,
) -> Result<Json<Moved>, ApiError> {
    let start = input
        .session
        .map(|s| {
            StartSession::parse(
                &s.provider,
                s.prompt,
                s.mode.as_deref(),
                s.command,
                s.host_id.as_deref(),
            )
        })
        .transpose()?;
    let m = Move::parse(&input.to, input.reason.as_deref(), start)?;
    Ok(Json(
        tickets::move_to(&state.ctx, &op, &grant, &path.1, m).await?,
    ))
}

/// A ticket's comments, oldest first: written here, or imported from the tracker a synced
/// ticket mirrors (`from_tracker`).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/tickets/{ticket}/comments", tag = "tickets",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("ticket" = String, Path, description = "Number in the workspace, or id")),
    responses((status = 200, description = "Comments", body = Vec<TicketComment>),
              (status = 404, description = "No such ticket", content_type = "application/problem+json")))]
pub(crate) async fn comments(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<Json<Vec<TicketComment>>, ApiError> {
    Ok(Json(comments::list(&state.ctx, &grant, &path.1).await?))
}

/// A comment to write.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentInput {
    /// Markdown, 1 byte to 64 KiB.
    pub body: String,
}

/// Writes a comment on a ticket; on a synced ticket it goes to the tracker with the next
/// sync.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/tickets/{ticket}/comments", tag = "tickets",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("ticket" = String, Path, description = "Number in the workspace, or id")),
    request_body(content = CommentInput, example = json!({"body": "Reproduced on main."})),
    responses((status = 201, description = "Written", body = TicketComment),
              (status = 404, description = "No such ticket", content_type = "application/problem+json"),
              (status = 422, description = "Empty or too long", content_type = "application/problem+json")))]
pub(crate) async fn comment(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiJson(input): ApiJson<CommentInput>,
) -> Result<(StatusCode, Json<TicketComment>), ApiError> {
    let c = comments::add(&state.ctx, &op, &grant, &path.1, &input.body).await?;
    Ok((StatusCode::CREATED, Json(c)))
}
