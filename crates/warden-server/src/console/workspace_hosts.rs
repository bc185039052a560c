//! Console → a workspace's own Hosts: the hosts registered for this workspace alone (they
//! serve only it, and wait for an administrator's approval like any host), registering one
//! (its key shown once) and deleting one. Through `warden_core::hosts::admin` with the
//! workspace scope, as the API.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use utoipa_axum::routes;
use warden_core::hosts::admin::{self, Scope};
use warden_domain::access::{Access, Permission};

use super::hosts::{HostItem, item, register_from};
use super::workspaces::Place;
use super::{Done, Frame, frame, render};
use crate::http::authz::{UserOp, WorkspaceAccess};
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::identity::Caller;
use crate::state::AppState;

pub(super) fn routes() -> Routes<AppState> {
    use Access::Workspace;
    Routes::new()
        .add(Workspace(Permission::HOSTS_READ), routes!(hosts_page))
        .add(Workspace(Permission::HOSTS_CREATE), routes!(register))
        .add(Workspace(Permission::HOSTS_DELETE), routes!(delete))
}

#[derive(Template)]
#[template(path = "console/workspace_hosts.html")]
struct HostsPage {
    frame: Frame,
    place: Place,
    hosts: Vec<HostItem>,
    may_register: bool,
    may_delete: bool,
}

/// The workspace's own hosts, and the form that registers one.
#[utoipa::path(get, path = "/console/workspaces/{workspace_id}/hosts", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"), Done),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 404, description = "No such workspace for this person", content_type = "text/html")))]
pub(crate) async fn hosts_page(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    UserOp(op): UserOp,
    caller: Caller,
    ApiQuery(done): ApiQuery<Done>,
) -> Result<Response, ApiError> {
    let now = op.now_us();
    let hosts = admin::list(&state.ctx, Scope::Workspace(&grant))
        .await?
        .into_iter()
        .map(|h| item(h, now))
        .collect();
    let place = Place::of(&state, &grant, "hosts").await?;
    let page = HostsPage {
        frame: frame(
            &state,
            &caller,
            "workspaces",
            super::notice(done.done.as_deref()),
        )
        .await?,
        may_register: grant.holds(Permission::HOSTS_CREATE) && !place.archived,
        may_delete: grant.holds(Permission::HOSTS_DELETE) && !place.archived,
        place,
        hosts,
    };
    Ok(render(&page, StatusCode::OK))
}

/// Registers a host of this workspace's own (`name`, `kind`, `allow_list`) and shows its key
/// once.
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/hosts", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "Registered: the key, shown once", content_type = "text/html")))]
pub(crate) async fn register(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    UserOp(op): UserOp,
    caller: Caller,
    body: Bytes,
) -> Result<Response, ApiError> {
    let back = Place::url(&grant, "/hosts");
    register_from(
        &state,
        &op,
        &caller,
        Scope::Workspace(&grant),
        &body,
        "workspaces",
        |_| back,
    )
    .await
}

/// Deletes one of the workspace's own hosts.
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/hosts/{host_id}/delete", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("host_id" = String, Path, description = "Host id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Deleted: back to the workspace's hosts")))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    UserOp(op): UserOp,
    Path(path): Path<(String, String)>,
) -> Result<Response, ApiError> {
    admin::delete(&state.ctx, &op, Scope::Workspace(&grant), &path.1).await?;
    Ok(Redirect::to(&Place::url(&grant, "/hosts?done=host-deleted")).into_response())
}
