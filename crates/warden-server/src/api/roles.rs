//! Platform roles (built-in and custom) and who holds them. Nobody grants more than they hold:
//! a role can only be defined or assigned by someone whose own role covers it.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use warden_core::CoreError;
use warden_core::admin::roles::{self, Definition};
use warden_core::admin::users;
use warden_domain::access::{Access, Permission, PermissionSet, RoleName};
use warden_store::roles::{RoleRow, UserListRow};

use super::me::rfc3339;
use crate::http::authz::{PlatformAccess, UserOp};
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    use Access::Platform;
    Routes::new()
        .add(Platform(Permission::USERS_READ), routes!(list_users))
        .add(Platform(Permission::USERS_UPDATE), routes!(set_user_role))
        .add(Platform(Permission::ADMIN_READ), routes!(list_roles))
        .add(Platform(Permission::ADMIN_CREATE), routes!(create_role))
        .add(Platform(Permission::ADMIN_UPDATE), routes!(update_role))
        .add(Platform(Permission::ADMIN_DELETE), routes!(delete_role))
}

/// A user, as administrators see them.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserEntry {
    /// Id.
    pub id: String,
    /// Email.
    pub email: String,
    /// Platform role.
    pub platform_role: String,
    /// Deactivated users cannot sign in.
    pub active: bool,
    /// Created (RFC 3339).
    pub created_at: String,
}

fn user_entry(u: UserListRow) -> UserEntry {
    UserEntry {
        id: u.id.to_string(),
        email: u.email,
        platform_role: u.platform_role,
        active: u.active,
        created_at: rfc3339(u.created_at),
    }
}

/// Paging through users.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Page size, 1–200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<i64>,
}

/// One page of users.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserPage {
    /// Users by email.
    pub items: Vec<UserEntry>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// Every user, by email.
#[utoipa::path(get, path = "/api/v1/admin/users", tag = "admin", params(UserQuery),
    responses((status = 200, description = "Users", body = UserPage)))]
pub(crate) async fn list_users(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> Result<Json<UserPage>, ApiError> {
    let page = users::list(&state.ctx, &grant, q.cursor.as_deref(), q.limit).await?;
    Ok(Json(UserPage {
        items: page.items.into_iter().map(user_entry).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// A user's new platform role.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlatformRoleChange {
    /// `admin`, `member`, `auditor` or a custom role.
    pub platform_role: String,
}

/// Changes a user's platform role. Effective on their next request, on every node.
#[utoipa::path(put, path = "/api/v1/admin/users/{id}/role", tag = "admin",
    params(("id" = String, Path, description = "User id")),
    request_body(content = PlatformRoleChange, example = json!({"platform_role": "auditor"})),
    responses((status = 204, description = "Changed"),
        (status = 403, description = "The role, or the user's current one, grants more than the caller holds", content_type = "application/problem+json"),
        (status = 404, description = "No such user"),
        (status = 409, description = "Would leave no active administrator", content_type = "application/problem+json")))]
pub(crate) async fn set_user_role(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<PlatformRoleChange>,
) -> Result<StatusCode, ApiError> {
    users::set_role(&state.ctx, &op, &grant, &id, &input.platform_role).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A platform role.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleView {
    /// Name.
    pub name: String,
    /// Built in (cannot be changed or deleted).
    pub builtin: bool,
    /// What it grants, everywhere.
    pub permissions: Vec<String>,
    /// What it is for.
    pub description: String,
}

fn role_view(r: &RoleRow) -> RoleView {
    RoleView {
        name: r.name.clone(),
        builtin: r.builtin,
        permissions: r.grants().names(),
        description: r.description.clone(),
    }
}

/// The roles, and every permission a custom role may grant.
#[derive(Debug, Serialize, ToSchema)]
pub struct RoleList {
    /// Built-in roles first, then custom roles by name.
    pub roles: Vec<RoleView>,
    /// Every permission name.
    pub permissions: Vec<String>,
}

/// Every platform role.
#[utoipa::path(get, path = "/api/v1/admin/roles", tag = "admin",
    responses((status = 200, description = "Roles", body = RoleList)))]
pub(crate) async fn list_roles(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
) -> Result<Json<RoleList>, ApiError> {
    let rows = roles::list(&state.ctx, &grant).await?;
    Ok(Json(RoleList {
        roles: rows.iter().map(role_view).collect(),
        permissions: PermissionSet::all().names(),
    }))
}

/// A custom role's definition.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RoleDefinition {
    /// Name (creation only; ignored by update): 2–40 of a-z, 0-9, '-'.
    #[serde(default)]
    pub name: Option<String>,
    /// What it is for (at most 200 characters).
    #[serde(default)]
    pub description: String,
    /// Permission names (`area.verb`).
    pub permissions: Vec<String>,
}

/// Defines a custom platform role.
#[utoipa::path(post, path = "/api/v1/admin/roles", tag = "admin",
    request_body(content = RoleDefinition, example = json!({"name": "helpdesk",
        "description": "Reads users and sessions", "permissions": ["users.read", "sessions.read"]})),
    responses((status = 201, description = "Created", body = RoleView),
        (status = 409, description = "Name taken", content_type = "application/problem+json"),
        (status = 422, description = "Bad name or permission", content_type = "application/problem+json")))]
pub(crate) async fn create_role(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    ApiJson(def): ApiJson<RoleDefinition>,
) -> Result<(StatusCode, Json<RoleView>), ApiError> {
    let name = RoleName::parse(def.name.as_deref().unwrap_or_default())
        .map_err(|detail| CoreError::invalid("name", detail))?;
    let def = Definition::parse(&grant, &def.permissions, def.description)?;
    let row = roles::create(&state.ctx, &op, &name, &def).await?;
    Ok((StatusCode::CREATED, Json(role_view(&row))))
}

/// Replaces a custom role's permissions and description. Holders are affected on their next
/// request.
#[utoipa::path(put, path = "/api/v1/admin/roles/{name}", tag = "admin",
    params(("name" = String, Path, description = "Role name")),
    request_body(content = RoleDefinition, example = json!({
        "description": "Reads users", "permissions": ["users.read"]})),
    responses((status = 200, description = "Updated", body = RoleView),
        (status = 404, description = "No such custom role")))]
pub(crate) async fn update_role(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    Path(name): Path<String>,
    ApiJson(def): ApiJson<RoleDefinition>,
) -> Result<Json<RoleView>, ApiError> {
    let def = Definition::parse(&grant, &def.permissions, def.description)?;
    let row = roles::update(&state.ctx, &op, &grant, &name, &def).await?;
    Ok(Json(role_view(&row)))
}

/// Deletes a custom role that nobody holds.
#[utoipa::path(delete, path = "/api/v1/admin/roles/{name}", tag = "admin",
    params(("name" = String, Path, description = "Role name")),
    responses((status = 204, description = "Deleted"),
        (status = 404, description = "No such custom role"),
        (status = 409, description = "Still held by someone", content_type = "application/problem+json")))]
pub(crate) async fn delete_role(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    roles::delete(&state.ctx, &op, &grant, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
