//! Console → a workspace's own Hosts: the hosts registered for this workspace alone (they
//! serve only it, and wait for an administrator's approval like any host), registering one
//! (its key shown once), a host's page (allow-list, key rotation) and deleting one. Through `warden_core::hosts::admin` with the
//! workspace scope, as the API.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use utoipa_axum::routes;
use warden_core::hosts::admin::{self, Scope};
use warden_domain::access::{Access, Permission};

use super::hosts::{
    HostItem, HostPlace, allow_list_from, item, register_from, rotate_from, show_host,
};
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
        .add(Workspace(Permission::HOSTS_READ), routes!(host_page))
        .add(Workspace(Permission::HOSTS_UPDATE), routes!(allow_list))
        .add(Workspace(Permission::HOSTS_UPDATE), routes!(rotate_key))
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

/// One of the workspace's own hosts: what it reports, its allow-list, key and deletion.
#[utoipa::path(get, path = "/console/workspaces/{workspace_id}/hosts/{host_id}", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("host_id" = String, Path, description = "Host id"), Done),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 404, description = "No such host in this workspace", content_type = "text/html")))]
pub(crate) async fn host_page(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    UserOp(op): UserOp,
    caller: Caller,
    Path(path): Path<(String, String)>,
    ApiQuery(done): ApiQuery<Done>,
) -> Result<Response, ApiError> {
    let id = path.1;
    let h = admin::get(&state.ctx, Scope::Workspace(&grant), &id).await?;
    let place = HostPlace {
        base: Place::url(&grant, &format!("/hosts/{id}")),
        back: Place::url(&grant, "/hosts"),
        section: "workspaces",
        may_update: grant.holds(Permission::HOSTS_UPDATE),
        may_delete: grant.holds(Permission::HOSTS_DELETE),
    };
    let notice = super::notice(done.done.as_deref());
    show_host(&state, &op, &caller, h, place, None, false, notice).await
}

/// Replaces the allow-list of one of the workspace's own hosts (`allow_list`).
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/hosts/{host_id}/allow-list", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("host_id" = String, Path, description = "Host id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Saved: back to the host")))]
pub(crate) async fn allow_list(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    UserOp(op): UserOp,
    Path(path): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = path.1;
    allow_list_from(&state, &op, Scope::Workspace(&grant), &id, &body).await?;
    Ok(Redirect::to(&Place::url(
        &grant,
        &format!("/hosts/{id}?done=allow-list-saved"),
    ))
    .into_response())
}

/// Issues a new key for one of the workspace's own hosts (`grace_minutes`) and shows it once.
#[utoipa::path(post, path = "/console/workspaces/{workspace_id}/hosts/{host_id}/rotate-key", tag = "console",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("host_id" = String, Path, description = "Host id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 200, description = "The new key, shown once", content_type = "text/html")))]
pub(crate) async fn rotate_key(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
    UserOp(op): UserOp,
    caller: Caller,
    Path(path): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id = path.1;
    let back = Place::url(&grant, &format!("/hosts/{id}"));
    rotate_from(
        &state,
        &op,
        &caller,
        Scope::Workspace(&grant),
        &id,
        &body,
        ("workspaces", back),
    )
    .await
}
