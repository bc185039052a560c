//! A workspace's ticket sync (licence module `ticket-sync`): how it stands — when it last
//! ran, its last error, the tracker's rate limit — and a request to run it now. What is
//! synced is the workspace's ticket source (its settings); the token is its personal
//! access token.

use axum::Json;
use axum::extract::State;
use utoipa_axum::routes;
use warden_core::tickets::sync::{self, SyncState};
use warden_domain::access::{Access, Permission};
use warden_domain::license::Feature;

use crate::http::authz::{UserOp, WorkspaceAccess};
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    use Access::Workspace;
    let f = Feature::TicketSync;
    Routes::new()
        .add_feature(Workspace(Permission::TICKETS_READ), f, routes!(get))
        .add_feature(Workspace(Permission::TICKETS_UPDATE), f, routes!(run_now))
}

/// How the workspace's ticket sync stands; 404 when its ticket source is not synced.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/ticket-sync", tag = "tickets",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses((status = 200, description = "The sync", body = SyncState),
              (status = 404, description = "The ticket source is not synced", content_type = "application/problem+json")))]
pub(crate) async fn get(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
) -> Result<Json<SyncState>, ApiError> {
    Ok(Json(sync::state(&state.ctx, &grant).await?))
}

/// Runs the sync as soon as the tracker's rate limit allows (it also runs on its own every
/// `tickets.sync_every_secs`).
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/ticket-sync", tag = "tickets",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses((status = 200, description = "Due now", body = SyncState),
              (status = 404, description = "The ticket source is not synced", content_type = "application/problem+json")))]
pub(crate) async fn run_now(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
) -> Result<Json<SyncState>, ApiError> {
    Ok(Json(sync::request(&state.ctx, &op, &grant).await?))
}
