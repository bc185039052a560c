//! Platform roles (built-in and custom) and who holds them. Nobody grants more than they hold:
//! a role can only be defined or assigned by someone whose own role covers it.

use crate::http::query::ApiQuery;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::routes;
use uuid::Uuid;
use warden_domain::access::{Access, Permission, PermissionSet, RoleName, may_manage};
use warden_domain::audit::Outcome;
use warden_store::roles::{RoleRow, UserListRow};
use warden_store::tenancy::PlatformGrant;

use super::admin::{above_your_role, last_admin, may_act_on};
use super::me::rfc3339;
use crate::audit::request::RequestMeta;
use crate::http::authz::PlatformAccess;
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::identity::{Caller, now_us};
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

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::internal(&e)
}

/// Refuses a role the caller could not hold themselves, or one that does not exist.
pub(crate) async fn may_grant_role(
    state: &AppState,
    grant: &PlatformGrant,
    role: &str,
) -> Result<(), ApiError> {
    let mut tx = state.store.begin_read().await.map_err(internal)?;
    let row = tx.role(role).await.map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    let row = row.ok_or(ApiError(
        warden_core::CoreError::with_detail(
            warden_core::Code::UnknownRole,
            "no platform role has this name",
        )
        .on_field("platform_role"),
    ))?;
    if may_manage(grant.platform(), row.grants()) {
        Ok(())
    } else {
        Err(above_your_role())
    }
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
    ApiQuery(q): ApiQuery<UserQuery>,
) -> Result<Json<UserPage>, ApiError> {
    let limit = q.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(ApiError::from(warden_core::Code::InvalidLimit));
    }
    let mut tx = state.store.begin_read().await.map_err(internal)?;
    let rows = tx
        .list_users(q.cursor.as_deref(), limit)
        .await
        .map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    let full = i64::try_from(rows.len()).unwrap_or(0) == limit;
    let next_cursor = rows.last().filter(|_| full).map(|u| u.email.clone());
    Ok(Json(UserPage {
        items: rows.into_iter().map(user_entry).collect(),
        next_cursor,
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
    meta: RequestMeta,
    caller: Caller,
    PlatformAccess(grant): PlatformAccess,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<PlatformRoleChange>,
) -> Result<StatusCode, ApiError> {
    let id: Uuid = id
        .parse()
        .map_err(|_| ApiError::from_status(StatusCode::NOT_FOUND))?;
    may_act_on(&state, &grant, id).await?;
    may_grant_role(&state, &grant, &input.platform_role).await?;
    let mut tx = state.store.begin().await.map_err(internal)?;
    let user = tx
        .user_by_id(id)
        .await
        .map_err(internal)?
        .ok_or(ApiError::from_status(StatusCode::NOT_FOUND))?;
    if user.platform_role == input.platform_role {
        return Ok(StatusCode::NO_CONTENT);
    }
    if user.platform_role == "admin"
        && user.active
        && tx.count_admins().await.map_err(internal)? <= 1
    {
        return Err(last_admin());
    }
    if !tx
        .set_platform_role(id, &input.platform_role, now_us(state.clock.as_ref()))
        .await
        .map_err(internal)?
    {
        return Err(ApiError::from_status(StatusCode::NOT_FOUND));
    }
    let event = meta.event(
        state.clock.now(),
        caller.actor(),
        "user.role_changed",
        "user",
        Some(id.to_string()),
        Outcome::Success,
        json!({ "platform_role": { "old": user.platform_role, "new": input.platform_role } }),
    );
    tx.record(&state.audit_key, &event)
        .await
        .map_err(internal)?;
    tx.commit().await.map_err(internal)?;
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
pub(crate) async fn list_roles(State(state): State<AppState>) -> Result<Json<RoleList>, ApiError> {
    let mut tx = state.store.begin_read().await.map_err(internal)?;
    let rows = tx.roles().await.map_err(internal)?;
    tx.commit().await.map_err(internal)?;
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

fn checked_set(grant: &PlatformGrant, def: &RoleDefinition) -> Result<PermissionSet, ApiError> {
    let invalid = |detail| ApiError(warden_core::CoreError::invalid("permissions", detail));
    let set = PermissionSet::parse(def.permissions.iter().map(String::as_str))
        .map_err(|_| invalid("unknown permission name; GET /api/v1/admin/roles lists them"))?;
    if def.description.chars().count() > 200 || def.description.chars().any(char::is_control) {
        return Err(ApiError(warden_core::CoreError::invalid(
            "description",
            "at most 200 characters, no control characters",
        )));
    }
    if !may_manage(grant.platform(), set) {
        return Err(above_your_role());
    }
    Ok(set)
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
    meta: RequestMeta,
    caller: Caller,
    PlatformAccess(grant): PlatformAccess,
    ApiJson(def): ApiJson<RoleDefinition>,
) -> Result<(StatusCode, Json<RoleView>), ApiError> {
    let name = RoleName::parse(def.name.as_deref().unwrap_or_default())
        .map_err(|detail| ApiError(warden_core::CoreError::invalid("name", detail)))?;
    let set = checked_set(&grant, &def)?;
    let perms = set.names().join(" ");
    let mut tx = state.store.begin().await.map_err(internal)?;
    if tx.role(name.as_str()).await.map_err(internal)?.is_some() {
        return Err(ApiError::from(warden_core::Code::RoleExists));
    }
    tx.create_role(
        name.as_str(),
        &perms,
        &def.description,
        now_us(state.clock.as_ref()),
    )
    .await
    .map_err(internal)?;
    let event = meta.event(
        state.clock.now(),
        caller.actor(),
        "role.created",
        "role",
        Some(name.as_str().to_owned()),
        Outcome::Success,
        json!({ "permissions": set.names() }),
    );
    tx.record(&state.audit_key, &event)
        .await
        .map_err(internal)?;
    let row = tx
        .role(name.as_str())
        .await
        .map_err(internal)?
        .ok_or_else(|| internal("role vanished"))?;
    tx.commit().await.map_err(internal)?;
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
    meta: RequestMeta,
    caller: Caller,
    PlatformAccess(grant): PlatformAccess,
    Path(name): Path<String>,
    ApiJson(def): ApiJson<RoleDefinition>,
) -> Result<Json<RoleView>, ApiError> {
    let set = checked_set(&grant, &def)?;
    let mut tx = state.store.begin().await.map_err(internal)?;
    let before = tx
        .role(&name)
        .await
        .map_err(internal)?
        .filter(|r| !r.builtin)
        .ok_or(ApiError::from_status(StatusCode::NOT_FOUND))?;
    // Changing a role someone more powerful could not have is fine; widening one past the
    // caller's own grants is not (checked above); narrowing one the caller could not define
    // would let them strip a more powerful role, so that is refused too.
    if !may_manage(grant.platform(), before.grants()) {
        return Err(above_your_role());
    }
    tx.update_role(
        &name,
        &set.names().join(" "),
        &def.description,
        now_us(state.clock.as_ref()),
    )
    .await
    .map_err(internal)?;
    let event = meta.event(
        state.clock.now(),
        caller.actor(),
        "role.updated",
        "role",
        Some(name.clone()),
        Outcome::Success,
        json!({ "permissions": { "old": before.grants().names(), "new": set.names() } }),
    );
    tx.record(&state.audit_key, &event)
        .await
        .map_err(internal)?;
    let row = tx
        .role(&name)
        .await
        .map_err(internal)?
        .ok_or_else(|| internal("role vanished"))?;
    tx.commit().await.map_err(internal)?;
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
    meta: RequestMeta,
    caller: Caller,
    PlatformAccess(grant): PlatformAccess,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let mut tx = state.store.begin().await.map_err(internal)?;
    let role = tx
        .role(&name)
        .await
        .map_err(internal)?
        .filter(|r| !r.builtin)
        .ok_or(ApiError::from_status(StatusCode::NOT_FOUND))?;
    if !may_manage(grant.platform(), role.grants()) {
        return Err(above_your_role());
    }
    let holders = tx.role_holders(&name).await.map_err(internal)?;
    if holders > 0 || !tx.delete_role(&name).await.map_err(internal)? {
        return Err(ApiError::from(warden_core::Code::RoleInUse));
    }
    let event = meta.event(
        state.clock.now(),
        caller.actor(),
        "role.deleted",
        "role",
        Some(name),
        Outcome::Success,
        json!({ "permissions": role.grants().names() }),
    );
    tx.record(&state.audit_key, &event)
        .await
        .map_err(internal)?;
    tx.commit().await.map_err(internal)?;
    Ok(StatusCode::NO_CONTENT)
}
