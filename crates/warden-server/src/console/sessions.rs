//! Console → Active sessions: every signed-in device of every user (platform
//! `sessions.read`), each signed out by a form (`sessions.delete`), through
//! `warden_core::admin::users` as the API does.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use warden_core::admin::users;
use warden_domain::access::Permission;

use super::{Done, Frame, agent, frame, render, when};
use crate::http::authz::{PlatformAccess, UserOp};
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::identity::Caller;
use crate::state::AppState;

struct SessionItem {
    id: String,
    email: String,
    agent: String,
    current: bool,
    created_at: String,
    last_used_at: String,
    last_ip: Option<String>,
}

#[derive(Template)]
#[template(path = "console/sessions.html")]
struct SessionsPage {
    frame: Frame,
    devices: Vec<SessionItem>,
    may_revoke: bool,
}

/// Every signed-in device, most recently used first.
#[utoipa::path(get, path = "/console/sessions", tag = "console", params(Done),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 303, description = "Not signed in: to /sign-in"),
              (status = 403, description = "Without sessions.read", content_type = "text/html")))]
pub(crate) async fn sessions(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    UserOp(op): UserOp,
    caller: Caller,
    ApiQuery(done): ApiQuery<Done>,
) -> Result<Response, ApiError> {
    let frame = frame(
        &state,
        &caller,
        "sessions",
        super::notice(done.done.as_deref()),
    )
    .await?;
    let may_revoke = frame.may.contains(Permission::SESSIONS_DELETE);
    let mut rows = users::devices(&state.ctx, &op, &grant, None).await?;
    rows.sort_by_key(|d| std::cmp::Reverse(d.last_used_at));
    let mut devices = Vec::with_capacity(rows.len());
    for d in rows {
        let email = super::email_of(&state, d.user_id).await?;
        devices.push(SessionItem {
            id: d.id.to_string(),
            email,
            agent: agent(d.user_agent.as_deref()),
            current: d.id == caller.principal.session_id,
            created_at: when(d.created_at),
            last_used_at: when(d.last_used_at),
            last_ip: d.last_ip,
        });
    }
    let page = SessionsPage {
        frame,
        devices,
        may_revoke,
    };
    Ok(render(&page, StatusCode::OK))
}

/// Signs a device out, at once, on every node.
#[utoipa::path(post, path = "/console/sessions/{id}/revoke", tag = "console",
    params(("id" = String, Path, description = "Device session id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Back to the sessions, or to /sign-in for this browser")))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    UserOp(op): UserOp,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    users::revoke_device(&state.ctx, &op, &grant, &id).await?;
    if id == caller.principal.session_id.to_string() {
        return Ok(Redirect::to("/sign-in").into_response());
    }
    Ok(Redirect::to("/console/sessions?done=device-signed-out").into_response())
}
