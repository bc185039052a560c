//! Directory groups that grant workspace membership: a workspace maps a SCIM group with a
//! role, and the directory's changes to the group then add, re-role and remove members (the
//! rules live in `warden_core::scim::workspaces`).

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use warden_core::scim::workspaces::{self as core, Synced};
use warden_core::workspaces::members::parse_role;
use warden_domain::access::{Access, Permission};
use warden_store::scim::mappings::GroupMappingRow;

use super::me::rfc3339;
use crate::http::authz::{PlatformAccess, UserOp, WorkspaceAccess};
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    use Access::Workspace;
    Routes::new()
        .add(
            Access::Platform(Permission::USERS_READ),
            routes!(list_groups),
        )
        .add(Workspace(Permission::WORKSPACES_READ), routes!(list))
        .add(Workspace(Permission::WORKSPACES_MEMBERS), routes!(put))
        .add(Workspace(Permission::WORKSPACES_MEMBERS), routes!(put_sso))
        .add(Workspace(Permission::WORKSPACES_MEMBERS), routes!(remove))
}

/// A directory group mapped to a workspace.
#[derive(Debug, Serialize, ToSchema)]
pub struct DirectoryGroupView {
    /// The group's id (a SCIM group's, or a single sign-on group's).
    pub group_id: String,
    /// Its display name (a single sign-on group's: the name its provider asserts).
    pub display_name: String,
    /// For a single sign-on group: the provider (slug) whose sign-ins fill it. Absent for a
    /// SCIM group.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The role its members get here: owner, maintainer, member or viewer.
    pub role: String,
    /// Who saved the mapping (the directory's changes act for them).
    pub configured_by: String,
    /// When (RFC 3339).
    pub configured_at: String,
    /// How many members the group has.
    pub members: i64,
}

fn view(m: GroupMappingRow) -> DirectoryGroupView {
    DirectoryGroupView {
        group_id: m.group_id.to_string(),
        display_name: m.display_name,
        provider: m.provider,
        role: m.role,
        configured_by: m.configured_by.to_string(),
        configured_at: rfc3339(m.configured_at),
        members: m.members,
    }
}

/// What a synchronisation changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct SyncedView {
    /// Memberships added.
    pub added: usize,
    /// Roles changed.
    pub changed: usize,
    /// Memberships removed.
    pub removed: usize,
    /// Changes not made (the audit log says why).
    pub skipped: usize,
}

fn synced(s: Synced) -> SyncedView {
    SyncedView {
        added: s.added,
        changed: s.changed,
        removed: s.removed,
        skipped: s.skipped,
    }
}

/// A mapping as saved, and what saving it changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct MappedView {
    /// The mapping.
    pub mapping: DirectoryGroupView,
    /// What the synchronisation changed.
    pub synced: SyncedView,
}

/// The directory groups mapped to a workspace.
#[utoipa::path(get, path = "/api/v1/workspaces/{workspace_id}/directory-groups", tag = "workspaces",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    responses(
        (status = 200, description = "Mapped groups, by name", body = Vec<DirectoryGroupView>),
        (status = 404, description = "No such workspace visible to the caller", content_type = "application/problem+json")))]
pub(crate) async fn list(
    State(state): State<AppState>,
    WorkspaceAccess(grant): WorkspaceAccess,
) -> Result<Json<Vec<DirectoryGroupView>>, ApiError> {
    let rows = core::list(&state.ctx, &grant).await?;
    Ok(Json(rows.into_iter().map(view).collect()))
}

/// The role a mapped group's members get.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MappingRole {
    /// owner, maintainer, member or viewer (owner only by an owner or platform administrator).
    pub role: String,
}

/// Maps a directory group to the workspace (or changes its role), then adds, re-roles and
/// removes the group's members to match. Saving it again resynchronises.
#[utoipa::path(put, path = "/api/v1/workspaces/{workspace_id}/directory-groups/{group_id}", tag = "workspaces",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("group_id" = String, Path, description = "The SCIM group's id")),
    request_body(content = MappingRole, example = json!({"role": "member"})),
    responses(
        (status = 200, description = "Mapped and synchronised", body = MappedView),
        (status = 403, description = "Only an owner or platform administrator maps a group as owners", content_type = "application/problem+json"),
        (status = 404, description = "No such workspace or directory group", content_type = "application/problem+json"),
        (status = 422, description = "Not a role", content_type = "application/problem+json")))]
pub(crate) async fn put(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
    ApiJson(input): ApiJson<MappingRole>,
) -> Result<Json<MappedView>, ApiError> {
    let role = parse_role(&input.role)?;
    let (mapping, s) = core::put(&state.ctx, &op, &grant, &path.1, role).await?;
    Ok(Json(MappedView {
        mapping: view(mapping),
        synced: synced(s),
    }))
}

/// A single sign-on provider's group to map.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SsoGroupMapping {
    /// The SAML provider's slug.
    pub provider: String,
    /// The group as the provider asserts it (Entra ID: the group's object id; Okta: its name).
    pub group: String,
    /// owner, maintainer, member or viewer (owner only by an owner or platform administrator).
    pub role: String,
}

/// Maps a group a SAML provider asserts to the workspace (or changes its role): from then on,
/// each sign-in through the provider makes whoever it says is in the group a member here, and
/// ends the membership when it no longer says so. Its members so far are synchronised now.
#[utoipa::path(post, path = "/api/v1/workspaces/{workspace_id}/directory-groups", tag = "workspaces",
    params(("workspace_id" = String, Path, description = "Workspace id")),
    request_body(content = SsoGroupMapping,
        example = json!({"provider": "okta", "group": "Engineering", "role": "member"})),
    responses(
        (status = 200, description = "Mapped and synchronised", body = MappedView),
        (status = 403, description = "Only an owner or platform administrator maps a group as owners", content_type = "application/problem+json"),
        (status = 404, description = "No such workspace", content_type = "application/problem+json"),
        (status = 422, description = "Not a role, a SAML provider or a group name", content_type = "application/problem+json")))]
pub(crate) async fn put_sso(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    ApiJson(input): ApiJson<SsoGroupMapping>,
) -> Result<Json<MappedView>, ApiError> {
    let role = parse_role(&input.role)?;
    let (mapping, s) =
        core::put_sso(&state.ctx, &op, &grant, &input.provider, &input.group, role).await?;
    Ok(Json(MappedView {
        mapping: view(mapping),
        synced: synced(s),
    }))
}

/// Removes a group's mapping: the memberships it alone granted end.
#[utoipa::path(delete, path = "/api/v1/workspaces/{workspace_id}/directory-groups/{group_id}", tag = "workspaces",
    params(("workspace_id" = String, Path, description = "Workspace id"),
           ("group_id" = String, Path, description = "The group's id (SCIM or single sign-on)")),
    responses(
        (status = 200, description = "Removed; what that changed", body = SyncedView),
        (status = 404, description = "No such workspace or mapping", content_type = "application/problem+json")))]
pub(crate) async fn remove(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    WorkspaceAccess(grant): WorkspaceAccess,
    Path(path): Path<(String, String)>,
) -> Result<Json<SyncedView>, ApiError> {
    Ok(Json(synced(
        core::remove(&state.ctx, &op, &grant, &path.1).await?,
    )))
}

/// A page of the directory's groups.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GroupPage {
    /// How many to skip (default 0).
    pub offset: Option<i64>,
    /// How many to return, 1–200 (default 100).
    pub limit: Option<i64>,
}

/// A directory group.
#[derive(Debug, Serialize, ToSchema)]
pub struct DirectoryGroup {
    /// The SCIM group's id (what a mapping names).
    pub id: String,
    /// Its display name.
    pub display_name: String,
    /// The directory's own id for it.
    pub external_id: Option<String>,
}

/// The directory's groups.
#[derive(Debug, Serialize, ToSchema)]
pub struct DirectoryGroups {
    /// How many groups there are.
    pub total: i64,
    /// This page, oldest first.
    pub groups: Vec<DirectoryGroup>,
}

/// The groups a directory provisioned over SCIM, to choose one to map to a workspace.
#[utoipa::path(get, path = "/api/v1/scim/groups", tag = "scim",
    params(GroupPage),
    responses((status = 200, description = "Groups", body = DirectoryGroups)))]
pub(crate) async fn list_groups(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    ApiQuery(page): ApiQuery<GroupPage>,
) -> Result<Json<DirectoryGroups>, ApiError> {
    let found = core::directory_groups(
        &state.ctx,
        &grant,
        page.offset.unwrap_or(0),
        page.limit.unwrap_or(warden_core::scim::DEFAULT_COUNT),
    )
    .await?;
    Ok(Json(DirectoryGroups {
        total: found.total,
        groups: found
            .rows
            .into_iter()
            .map(|g| DirectoryGroup {
                id: g.id.to_string(),
                display_name: g.display_name,
                external_id: g.external_id,
            })
            .collect(),
    }))
}
