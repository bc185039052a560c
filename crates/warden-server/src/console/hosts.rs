//! Console → Hosts: every host, those waiting for approval first, approved or rejected by a
//! form (platform `hosts.approve`), through `warden_core::hosts::admin` as the API does.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use warden_core::hosts::admin::{self, Scope};
use warden_domain::access::Permission;
use warden_domain::hosts::HostStatus;

use super::{Done, Frame, frame, render, when};
use crate::http::authz::{PlatformAccess, UserOp};
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::identity::Caller;
use crate::state::AppState;

pub(super) struct HostItem {
    id: String,
    name: String,
    kind: String,
    status: String,
    online: bool,
    detail: String,
}

#[derive(Template)]
#[template(path = "console/hosts.html")]
struct HostsPage {
    frame: Frame,
    pending: Vec<HostItem>,
    others: Vec<HostItem>,
    may_decide: bool,
}

/// The hosts, waiting ones first.
#[utoipa::path(get, path = "/console/hosts", tag = "console", params(Done),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 303, description = "Not signed in: to /sign-in"),
              (status = 403, description = "Without hosts.read", content_type = "text/html")))]
pub(crate) async fn hosts(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    UserOp(op): UserOp,
    caller: Caller,
    ApiQuery(done): ApiQuery<Done>,
) -> Result<Response, ApiError> {
    let now = op.now_us();
    let frame = frame(
        &state,
        &caller,
        "hosts",
        super::notice(done.done.as_deref()),
    )
    .await?;
    let may_decide = frame.may.contains(Permission::HOSTS_APPROVE);
    let (mut pending, mut others) = (Vec::new(), Vec::new());
    for h in admin::list(&state.ctx, Scope::Platform(&grant)).await? {
        let online = admin::online(&h, now);
        let mut detail = Vec::new();
        if let Some(host) = &h.hostname {
            detail.push(format!("reports {host}"));
        }
        if let Some(os) = &h.os {
            detail.push(os.clone());
        }
        if let Some(ip) = &h.last_ip {
            detail.push(format!("from {ip}"));
        }
        detail.push(match h.last_seen_at {
            Some(t) => format!("last seen {}", when(t)),
            None => "never connected".to_owned(),
        });
        if h.workspace_id.is_some() {
            detail.push("one workspace's own".to_owned());
        }
        let item = HostItem {
            id: h.id.to_string(),
            name: h.name,
            kind: h.kind,
            status: h.status.clone(),
            online,
            detail: detail.join(" · "),
        };
        if h.status == HostStatus::Pending.as_str() {
            pending.push(item);
        } else {
            others.push(item);
        }
    }
    let page = HostsPage {
        frame,
        pending,
        others,
        may_decide,
    };
    Ok(render(&page, StatusCode::OK))
}

async fn decide(
    state: &AppState,
    grant: &warden_store::tenancy::PlatformGrant,
    op: &warden_core::Op,
    id: &str,
    status: HostStatus,
) -> Result<Response, ApiError> {
    admin::decide(&state.ctx, op, grant, id, status).await?;
    let done = if status == HostStatus::Approved {
        "host-approved"
    } else {
        "host-rejected"
    };
    Ok(Redirect::to(&format!("/console/hosts?done={done}")).into_response())
}

/// Approves a host (it may receive work).
#[utoipa::path(post, path = "/console/hosts/{host_id}/approve", tag = "console",
    params(("host_id" = String, Path, description = "Host id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Back to the hosts")))]
pub(crate) async fn approve(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    UserOp(op): UserOp,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    decide(&state, &grant, &op, &id, HostStatus::Approved).await
}

/// Rejects a host (it gets no work; its connection ends).
#[utoipa::path(post, path = "/console/hosts/{host_id}/reject", tag = "console",
    params(("host_id" = String, Path, description = "Host id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Back to the hosts")))]
pub(crate) async fn reject(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    UserOp(op): UserOp,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    decide(&state, &grant, &op, &id, HostStatus::Rejected).await
}
