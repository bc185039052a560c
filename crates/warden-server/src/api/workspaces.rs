//! Workspaces, the tenant boundary, and their members.

use crate::http::query::ApiQuery;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use warden_core::workspaces::members::{self, Newcomer, parse_role};
use warden_core::workspaces::{self as core, Listing, Workspace};
use warden_domain::access::{Access, Permission};
use warden_domain::tenancy::{Hooks, Repository, WorkspaceName};
use warden_store::tenancy::MemberRow;

use super::me::rfc3339;
use crate::http::authz::{PlatformAccess, UserOp, WorkspaceAccess};
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::identity::Caller;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    use Access::Workspace;
    Routes::new()
        .add(Access::SignedIn, routes!(list_workspaces))
        .add(
            Access::Platform(Permission::WORKSPACES_CREATE),
            routes!(create_workspace),
        )
        .add(
            Workspace(Permission::WORKSPACES_READ),
            routes!(get_workspace),
        )
        .add(
            Workspace(Permission::WORKSPACES_UPDATE),
            routes!(rename_workspace),
        )
        .add(
            Workspace(Permission::WORKSPACES_DELETE),
            routes!(archive_workspace),
        )
        .add(
            Workspace(Permission::WORKSPACES_READ),
            routes!(list_members),
        )
        .add(
            Workspace(Permission::WORKSPACES_MEMBERS),
            routes!(add_member),
        )
        .add(
            Workspace(Permission::WORKSPACES_MEMBERS),
            routes!(change_member),
        )
        .add(
            Workspace(Permission::WORKSPACES_MEMBERS),
            routes!(remove_member),
        )
}

/// A workspace.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspaceView {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Where its code lives.
    #[schema(value_type = Option<Object>)]
    pub repository: Option<Repository>,
    /// Commands run around each agent session.
    #[schema(value_type = Object)]
    pub hooks: Hooks,
    /// Ticket source configuration.
    #[schema(value_type = Option<Object>)]
    pub ticket_config: Option<serde_json::Value>,
    /// Creator's user id.
    pub created_by: String,
    /// Created (RFC 3339).
    pub created_at: String,
    /// Last changed (RFC 3339).
    pub updated_at: String,
    /// Archived (RFC 3339); archived workspaces are read-only.
    pub archived_at: Option<String>,
    /// The caller's role in it, if a member.
    pub my_role: Option<String>,
}

pub(crate) fn view(w: Workspace) -> WorkspaceView {
    WorkspaceView {
        id: w.id.to_string(),
        name: w.name,
        repository: w.repository,
        hooks: w.hooks,
        ticket_config: w.ticket_config,
        created_by: w.created_by.to_string(),
        created_at: rfc3339(w.created_at),
        updated_at: rfc3339(w.updated_at),
        archived_at: w.archived_at.map(rfc3339),
        my_role: w.my_role,
    }
}

/// Listing options.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Every workspace, not only the caller's (platform `workspaces.read`; audited).
    #[serde(default)]
    pub all: bool,
    /// Include archived workspaces.
    #[serde(default)]
    pub archived: bool,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// One page of workspaces.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkspacePage {
    /// Workspaces, oldest first.
    pub items: Vec<WorkspaceView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// The caller's workspaces, or with `all=true` every workspace (platform `workspaces.read`).
#[utoipa::path(get, path = "/api/v1/workspaces", tag = "workspaces", params(ListQuery),
    responses(
        (status = 200, description = "Workspaces", body = WorkspacePage),
        (status = 403, description = "all=true without platform workspaces.read", content_type = "application/problem+json")))]
pub(crate) async fn list_workspaces(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<WorkspacePage>, ApiError> {
    let listing = Listing {
        all: q.all,
        archived: q.archived,
        cursor: q.cursor,
        limit: q.limit,
    };
    let page = core::list(&state.ctx, &op, &caller.principal, listing).await?;
    Ok(Json(WorkspacePage {
        items: page.items.into_iter().map(view).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// A new workspace.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWorkspace {
    /// Display name, 1–100 characters.
    pub name: String,
}

/// Creates a workspace; the caller becomes its owner.
#[utoipa::path(post, path = "/api/v1/workspaces", tag = "workspaces",
    request_body(content = NewWorkspace, example = json!({"name": "Payments"})),
    responses(
        (status = 201, description = "Created", body = WorkspaceView),
        (status = 422, description = "Invalid name", content_type = "application/problem+json")))]
pub(crate) async fn create_workspace(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    ApiJson(input): ApiJson<NewWorkspace>,
) -> Result<(StatusCode, Json<WorkspaceView>), ApiError> {
    let name = WorkspaceName::parse(&input.name)?;
    let created = core::create(&state.ctx, &op, &grant, &name).await?;
    Ok((StatusCode::CREATED, Json(view(created))))
}

/// A workspace, with its settings (never its secret values).
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}", tag = "workspaces",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "The workspace", body = WorkspaceView),
        (status = 404, description = "No such workspace visible to the caller", content_type = "application/problem+json")))]
pub(crate) async fn get_workspace(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
) -> Result<Json<WorkspaceView>, ApiError> {
    Ok(Json(view(core::get(&state.ctx, &grant).await?)))
}

/// A workspace's new name.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rename {
    /// Display name, 1–100 characters.
    pub name: String,
}

/// Renames a workspace.
#[utoipa::path(patch, path = "/api/v1/workspaces/{workspace_id}", tag = "workspaces",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = Rename, example = json!({"name": "Payments (EU)"})),
    responses(
        (status = 200, description = "Renamed", body = WorkspaceView),
        (status = 404, description = "No such workspace visible to the caller", content_type = "application/problem+json")))]
pub(crate) async fn rename_workspace(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    ApiJson(input): ApiJson<Rename>,
) -> Result<Json<WorkspaceView>, ApiError> {
    let name = WorkspaceName::parse(&input.name)?;
    Ok(Json(view(
        core::rename(&state.ctx, &op, &grant, &name).await?,
    )))
}

/// Archives a workspace: it stays readable, and nothing in it can change.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/archive", tag = "workspaces",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses(
        (status = 204, description = "Archived"),
        (status = 404, description = "No such workspace visible to the caller", content_type = "application/problem+json"),
        (status = 409, description = "Already archived", content_type = "application/problem+json")))]
pub(crate) async fn archive_workspace(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
) -> Result<StatusCode, ApiError> {
    core::archive(&state.ctx, &op, &grant).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A member of a workspace.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    /// User id.
    pub user_id: String,
    /// Email.
    pub email: String,
    /// Role here: owner, maintainer, member or viewer.
    pub role: String,
    /// Who added them.
    pub added_by: String,
    /// When (RFC 3339).
    pub added_at: String,
    /// Granted through a mapped directory group (the directory changes and removes it; a
    /// person's change makes it theirs).
    pub from_directory: bool,
}

fn member_view(m: MemberRow) -> MemberView {
    MemberView {
        user_id: m.user_id.to_string(),
        email: m.email,
        role: m.role,
        added_by: m.added_by.to_string(),
        added_at: rfc3339(m.added_at),
        from_directory: m.via_directory,
    }
}

/// A workspace's members.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/members", tag = "workspaces",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "Members", body = Vec<MemberView>),
        (status = 404, description = "No such workspace visible to the caller", content_type = "application/problem+json")))]
pub(crate) async fn list_members(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
) -> Result<Json<Vec<MemberView>>, ApiError> {
    let rows = members::list(&state.ctx, &grant).await?;
    Ok(Json(rows.into_iter().map(member_view).collect()))
}

/// A new member, by email or user id.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMember {
    /// The user's email.
    pub email: Option<String>,
    /// Or the user's id.
    pub user_id: Option<String>,
    /// owner, maintainer, member or viewer.
    pub role: String,
}

/// Adds a member.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/members", tag = "workspaces",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = NewMember, example = json!({"email": "dev@example.test", "role": "member"})),
    responses(
        (status = 201, description = "Added", body = MemberView),
        (status = 409, description = "Already a member", content_type = "application/problem+json"),
        (status = 422, description = "No such active user, or bad role", content_type = "application/problem+json")))]
pub(crate) async fn add_member(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    ApiJson(input): ApiJson<NewMember>,
) -> Result<(StatusCode, Json<MemberView>), ApiError> {
    let role = parse_role(&input.role)?;
    let who = Newcomer::parse(input.email, input.user_id)?;
    let row = members::add(&state.ctx, &op, &grant, who, role).await?;
    Ok((StatusCode::CREATED, Json(member_view(row))))
}

/// A member's new role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    /// owner, maintainer, member or viewer.
    pub role: String,
}

/// Changes a member's role. The last owner cannot be demoted.
#[utoipa::path(patch, path = "/api/v1/workspaces/{workspace_id}/members/{user_id}", tag = "workspaces",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("user_id" = String, Path, description = "Member's user id")),
    request_body(content = RoleChange, example = json!({"role": "viewer"})),
    responses(
        (status = 200, description = "Changed", body = MemberView),
        (status = 404, description = "No such member", content_type = "application/problem+json"),
        (status = 409, description = "Would leave no owner", content_type = "application/problem+json")))]
pub(crate) async fn change_member(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiJson(input): ApiJson<RoleChange>,
) -> Result<Json<MemberView>, ApiError> {
    let role = parse_role(&input.role)?;
    let row = members::change_role(&state.ctx, &op, &grant, &path.1, role).await?;
    Ok(Json(member_view(row)))
}

/// Removes a member. The last owner cannot be removed.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/members/{user_id}", tag = "workspaces",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("user_id" = String, Path, description = "Member's user id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "No such member", content_type = "application/problem+json"),
        (status = 409, description = "Would leave no owner", content_type = "application/problem+json")))]
pub(crate) async fn remove_member(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    members::remove(&state.ctx, &op, &grant, &path.1).await?;
    Ok(StatusCode::NO_CONTENT)
}
