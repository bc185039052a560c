//! Console → a workspace's Tickets: search and write tickets; a page per ticket with its body
//! (Markdown rendered by the core, raw HTML shown as text), its sessions, and a button for
//! each move the person may make from its status — moving into development can open the
//! agent session on the ticket. Through `warden_core::tickets`, exactly as the API.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::routes;
use warden_core::sessions::StartSession;
use warden_core::tickets::comments::{self, TicketComment};
use warden_core::tickets::sync::{self, SyncState};
use warden_core::tickets::{self, Move, Search, TicketInput};
use warden_domain::access::{Access, Permission};
use warden_domain::license::Feature;
use warden_domain::tickets::{TicketStatus, transition};
use warden_store::tenancy::WorkspaceGrant;

use super::workspaces::Place;
use super::{Fields, Frame, frame, render};
use crate::http::authz::{UserOp, WorkspaceAccess};
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::identity::Caller;
use crate::state::AppState;

pub(super) fn routes() -> Routes<AppState> {
    use Access::Workspace;
    Routes::new()
        .add(Workspace(Permission::TICKETS_READ), routes!(page))
        .add(Workspace(Permission::TICKETS_CREATE), routes!(create))
        .add(Workspace(Permission::TICKETS_READ), routes!(ticket_page))
        .add(Workspace(Permission::TICKETS_UPDATE), routes!(move_ticket))
        .add(Workspace(Permission::TICKETS_UPDATE), routes!(comment))
        .add_feature(
            Workspace(Permission::TICKETS_UPDATE),
            Feature::TicketSync,
            routes!(sync_now),
        )
}

/// A status as people read it.
fn label(status: &str) -> &'static str {
    match TicketStatus::parse(status) {
        Some(TicketStatus::Backlog) => "Backlog",
        Some(TicketStatus::ReadyForDevelopment) => "Ready for development",
        Some(TicketStatus::InDevelopment) => "In development",
        Some(TicketStatus::ReadyForQa) => "Ready for QA",
        Some(TicketStatus::Done) => "Done",
        Some(TicketStatus::Rejected) => "Rejected",
        None => "Unknown",
    }
}

struct TicketItem {
    number: i64,
    title: String,
    status: &'static str,
    labels: Vec<String>,
    updated: String,
}

/// The list's filters (and the notice after a form).
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct Filter {
    /// Words in the title or body.
    q: Option<String>,
    /// Only this status.
    status: Option<String>,
    /// A fixed notice key.
    done: Option<String>,
}

#[derive(Template)]
#[template(path = "console/tickets.html")]
struct TicketsPage {
    frame: Frame,
    place: Place,
    tickets: Vec<TicketItem>,
    q: String,
    status: String,
    statuses: Vec<(&'static str, &'static str)>,
    may_create: bool,
    sync: Option<SyncState>,
    may_sync: bool,
}

/// The workspace's ticket sync, when its source is synced and the licence has the module.
async fn sync_state(
    state: &AppState,
    grant: &WorkspaceGrant,
) -> Result<Option<SyncState>, ApiError> {
    if !state.ctx.license.feature(Feature::TicketSync) {
        return Ok(None);
    }
    match sync::state(&state.ctx, grant).await {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.code == warden_core::Code::NotFound => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The workspace's tickets, with a search and the form that writes one.
#[utoipa::path(get, path = "/console/workspaces/{workspace_id}/tickets", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"), Filter),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 404, description = "No such workspace for this person", content_type = "text/html")))]
pub(crate) async fn page(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    caller: Caller,
    ApiQuery(filter): ApiQuery<Filter>,
) -> Result<Response, ApiError> {
    let status = filter.status.as_deref().filter(|s| !s.is_empty());
    let search = Search::parse(filter.q.as_deref(), status, None, Some(200))?;
    let rows = tickets::list(&state.ctx, &grant, &search).await?;
    let place = Place::of(&state, &grant, "tickets").await?;
    let sync = sync_state(&state, &grant).await?;
    let page = TicketsPage {
        may_sync: !place.archived && grant.holds(Permission::TICKETS_UPDATE),
        sync,
        frame: frame(
            &state,
            &caller,
            "workspaces",
            super::notice(filter.done.as_deref()),
        )
        .await?,
        may_create: !place.archived && grant.holds(Permission::TICKETS_CREATE),
        tickets: rows
            .into_iter()
            .map(|t| TicketItem {
                number: t.number,
                status: label(&t.status),
                labels: t.labels,
                updated: t.updated_at.replace('T', " ").chars().take(16).collect(),
                title: t.title,
            })
            .collect(),
        q: filter.q.unwrap_or_default(),
        status: status.unwrap_or_default().to_owned(),
        statuses: TicketStatus::ALL
            .iter()
            .map(|s| (s.as_str(), label(s.as_str())))
            .collect(),
        place,
    };
    Ok(render(&page, StatusCode::OK))
}

/// Writes a ticket from the form.
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/tickets", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Written: to its page")))]
pub(crate) async fn create(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    UserOp(op): UserOp,
    body: Bytes,
) -> Result<Response, ApiError> {
    let f = Fields::parse(&body);
    let labels: Vec<String> = f
        .text("labels")
        .split(',')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    let input = TicketInput::parse(f.text("title"), f.text("body"), &labels, None)?;
    let t = tickets::create(&state.ctx, &op, &grant, input).await?;
    Ok(Redirect::to(&Place::url(
        &grant,
        &format!("/tickets/{}?done=ticket-created", t.number),
    ))
    .into_response())
}

/// What the button of a move says.
fn move_label(from: TicketStatus, to: TicketStatus) -> &'static str {
    use TicketStatus::*;
    match (from, to) {
        (Backlog, ReadyForDevelopment) => "Approve for development",
        (ReadyForDevelopment, Backlog) => "Back to the backlog",
        (ReadyForDevelopment, InDevelopment) => "Start development",
        (InDevelopment, ReadyForQa) => "Hand over to QA",
        (ReadyForQa, Done) => "Approve: done",
        (ReadyForQa, InDevelopment) => "Send back to development",
        (_, Done) => "Skip to done",
        (_, Rejected) => "Reject",
        (_, Backlog) => "Reopen",
        _ => label(to.as_str()),
    }
}

/// A move the person may make from the ticket's status.
struct MoveChoice {
    to: &'static str,
    label: &'static str,
    reason: bool,
    start: bool,
}

#[derive(Template)]
#[template(path = "console/ticket.html")]
struct TicketPage {
    frame: Frame,
    place: Place,
    number: i64,
    title: String,
    status: &'static str,
    labels: Vec<String>,
    body_html: String,
    sessions: Vec<String>,
    created: String,
    moves: Vec<MoveChoice>,
    external_url: Option<String>,
    comments: Vec<TicketComment>,
    may_comment: bool,
}

/// One ticket: its body, its sessions, and the moves this person may make.
#[utoipa::path(get, path = "/console/workspaces/{workspace_id}/tickets/{ticket}", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("ticket" = String, Path, description = "Number or id"), super::Done),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 404, description = "No such ticket", content_type = "text/html")))]
pub(crate) async fn ticket_page(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    caller: Caller,
    Path(path): Path<(String, String)>,
    ApiQuery(done): ApiQuery<super::Done>,
) -> Result<Response, ApiError> {
    let d = tickets::get(&state.ctx, &grant, &path.1).await?;
    let comments = comments::list(&state.ctx, &grant, &path.1).await?;
    let place = Place::of(&state, &grant, "tickets").await?;
    let from = TicketStatus::parse(&d.ticket.status);
    let moves = match from {
        Some(from) if !place.archived => TicketStatus::ALL
            .iter()
            .filter_map(|to| {
                let rule = transition(from, *to)?;
                grant.holds(rule.needs).then_some(MoveChoice {
                    to: to.as_str(),
                    label: move_label(from, *to),
                    reason: rule.needs_reason,
                    start: *to == TicketStatus::InDevelopment
                        && grant.holds(Permission::SESSIONS_CREATE),
                })
            })
            .collect(),
        _ => Vec::new(),
    };
    let page = TicketPage {
        frame: frame(
            &state,
            &caller,
            "workspaces",
            super::notice(done.done.as_deref()),
        )
        .await?,
        number: d.ticket.number,
        title: d.ticket.title,
        status: label(&d.ticket.status),
        labels: d.ticket.labels,
        body_html: d.body_html,
        sessions: d.session_ids.iter().map(ToString::to_string).collect(),
        created: d
            .ticket
            .created_at
            .replace('T', " ")
            .chars()
            .take(16)
            .collect(),
        moves,
        external_url: d.ticket.external_url,
        comments,
        may_comment: !place.archived && grant.holds(Permission::TICKETS_UPDATE),
        place,
    };
    Ok(render(&page, StatusCode::OK))
}

/// Moves a ticket from its page's form (with a reason, and the agent to start).
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/tickets/{ticket}/move", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("ticket" = String, Path, description = "Number or id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Moved: back to the ticket")))]
pub(crate) async fn move_ticket(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    UserOp(op): UserOp,
    Path(path): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let f = Fields::parse(&body);
    let start = match f.given("provider") {
        Some(p) => StartSession::parse(p, String::new(), None, Vec::new(), None).map(Some),
        None => Ok(None),
    };
    let m = match start.and_then(|s| Move::parse(f.text("to"), f.given("reason"), s)) {
        Ok(m) => m,
        Err(e) => {
            // A ticket that is not there is "not found", whatever the form said.
            tickets::get(&state.ctx, &grant, &path.1).await?;
            return Err(e.into());
        }
    };
    let moved = tickets::move_to(&state.ctx, &op, &grant, &path.1, m).await?;
    Ok(Redirect::to(&Place::url(
        &grant,
        &format!("/tickets/{}?done=ticket-moved", moved.ticket.number),
    ))
    .into_response())
}

/// Writes a comment from the ticket's page.
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/tickets/{ticket}/comments", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("ticket" = String, Path, description = "Number or id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Written: back to the ticket")))]
pub(crate) async fn comment(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    UserOp(op): UserOp,
    Path(path): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let f = Fields::parse(&body);
    let c = comments::add(&state.ctx, &op, &grant, &path.1, f.text("body")).await?;
    let t = tickets::get(&state.ctx, &grant, &c.ticket_id.to_string()).await?;
    Ok(Redirect::to(&Place::url(
        &grant,
        &format!(
            "/tickets/{}?done=comment-written#comments-h",
            t.ticket.number
        ),
    ))
    .into_response())
}

/// Runs the ticket sync now (as soon as the tracker's rate limit allows).
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/ticket-sync", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Asked: back to the tickets")))]
pub(crate) async fn sync_now(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    UserOp(op): UserOp,
) -> Result<Response, ApiError> {
    sync::request(&state.ctx, &op, &grant).await?;
    Ok(Redirect::to(&Place::url(&grant, "/tickets?done=sync-requested")).into_response())
}
