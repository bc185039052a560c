//! Console → Admin: Users (invite, change the platform role, deactivate and reactivate;
//! pending invitations, revoke) and Roles (built-in and custom, the permission matrix; define
//! and delete custom roles). Through `warden_core::admin` and `warden_core::invitations` with
//! the platform grant, as the API: the same rules (no role above your own, the last
//! administrator stays) answer here.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use utoipa_axum::routes;
use warden_core::CoreError;
use warden_core::admin::roles::{self, Definition};
use warden_core::admin::users;
use warden_core::invitations;
use warden_domain::access::{Access, Permission, PermissionSet, RoleName};

use super::{Fields, Frame, frame, render, when};
use crate::http::authz::{PlatformAccess, UserOp};
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::identity::Caller;
use crate::state::AppState;

pub(super) fn routes() -> Routes<AppState> {
    use Access::Platform;
    Routes::new()
        .add(Platform(Permission::USERS_READ), routes!(users_page))
        .add(Platform(Permission::USERS_CREATE), routes!(invite))
        .add(
            Platform(Permission::USERS_UPDATE),
            routes!(revoke_invitation),
        )
        .add(Platform(Permission::USERS_UPDATE), routes!(set_role))
        .add(Platform(Permission::USERS_UPDATE), routes!(deactivate))
        .add(Platform(Permission::USERS_UPDATE), routes!(reactivate))
        .add(Platform(Permission::USERS_UPDATE), routes!(reset_password))
        .add(
            Platform(Permission::SESSIONS_DELETE),
            routes!(sign_out_everywhere),
        )
        .add(Platform(Permission::ADMIN_READ), routes!(roles_page))
        .add(Platform(Permission::ADMIN_CREATE), routes!(create_role))
        .add(Platform(Permission::ADMIN_DELETE), routes!(delete_role))
        .add(Platform(Permission::ADMIN_UPDATE), routes!(update_role))
}

/// Users: which page, and the notice after a change.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsersQuery {
    /// The `next` link of the previous page.
    pub after: Option<String>,
    /// A fixed notice (see the console's `notice`).
    pub done: Option<String>,
}

struct UserItem {
    id: String,
    email: String,
    role: String,
    active: bool,
    created_at: String,
    me: bool,
    /// Whether the role is one this administrator may hand out (the select offers it).
    listed: bool,
}

struct InvitationItem {
    id: String,
    email: String,
    role: String,
    expires_at: String,
}

#[derive(Template)]
#[template(path = "console/admin_users.html")]
struct UsersPage {
    frame: Frame,
    users: Vec<UserItem>,
    next: Option<String>,
    invitations: Vec<InvitationItem>,
    roles: Vec<String>,
    may_update: bool,
    may_invite: bool,
    may_sign_out: bool,
}

const USERS_PER_PAGE: i64 = 100;

/// Every user, by email, a hundred at a time; pending invitations; the invitation form.
#[utoipa::path(get, path = "/console/admin/users", tag = "console", params(UsersQuery),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 403, description = "Without users.read", content_type = "text/html")))]
pub(crate) async fn users_page(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    UserOp(op): UserOp,
    caller: Caller,
    ApiQuery(q): ApiQuery<UsersQuery>,
) -> Result<Response, ApiError> {
    let now = op.now_us();
    let page = users::list(&state.ctx, &grant, q.after.as_deref(), Some(USERS_PER_PAGE)).await?;
    let me = caller.principal.user_id;
    // The roles this administrator may hand out: those within their own permissions.
    let roles = grantable_roles(&state, &grant).await?;
    let users = page
        .items
        .into_iter()
        .map(|u| UserItem {
            me: u.id == me,
            listed: roles.contains(&u.platform_role),
            id: u.id.to_string(),
            email: u.email,
            role: u.platform_role,
            active: u.active,
            created_at: when(u.created_at),
        })
        .collect();
    let next = page
        .next_cursor
        .map(|c| form_urlencoded::byte_serialize(c.as_bytes()).collect());
    let invitations = invitations::list(&state.ctx, &grant, None, Some(200))
        .await?
        .items
        .into_iter()
        .filter(|i| i.accepted_at.is_none() && i.revoked_at.is_none() && i.expires_at > now)
        .map(|i| InvitationItem {
            id: i.id.to_string(),
            email: i.email,
            role: i.platform_role,
            expires_at: when(i.expires_at),
        })
        .collect();
    let frame = frame(&state, &caller, "users", super::notice(q.done.as_deref())).await?;
    let page = UsersPage {
        may_update: frame.may.contains(Permission::USERS_UPDATE),
        may_invite: frame.may.contains(Permission::USERS_CREATE),
        may_sign_out: frame.may.contains(Permission::SESSIONS_DELETE),
        frame,
        users,
        next,
        invitations,
        roles,
    };
    Ok(render(&page, StatusCode::OK))
}

async fn grantable_roles(
    state: &AppState,
    grant: &warden_store::tenancy::PlatformGrant,
) -> Result<Vec<String>, ApiError> {
    Ok(roles::list(&state.ctx, grant)
        .await?
        .into_iter()
        .filter(|r| warden_domain::access::may_manage(grant.platform(), r.grants()))
        .map(|r| r.name)
        .collect())
}

fn to_users(done: &str) -> Response {
    Redirect::to(&format!("/console/admin/users?done={done}")).into_response()
}

/// Invites an address (`email`, `platform_role`): an email with a link that creates the
/// account.
#[utoipa::path(post, path = "/console/admin/users/invite", tag = "console",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Sent: back to the users")))]
pub(crate) async fn invite(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form = Fields::parse(&body);
    invitations::send(
        &state.ctx,
        &op,
        &grant,
        form.text("email"),
        form.given("platform_role"),
    )
    .await?;
    Ok(to_users("invitation-sent"))
}

/// Revokes a pending invitation: its link stops working.
#[utoipa::path(post, path = "/console/admin/invitations/{id}/revoke", tag = "console",
    params(("id" = String, Path, description = "Invitation id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Back to the users")))]
pub(crate) async fn revoke_invitation(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    invitations::revoke(&state.ctx, &op, &grant, &id).await?;
    Ok(to_users("invitation-revoked"))
}

/// Changes a user's platform role (`platform_role`).
#[utoipa::path(post, path = "/console/admin/users/{id}/role", tag = "console",
    params(("id" = String, Path, description = "User id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Back to the users")))]
pub(crate) async fn set_role(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form = Fields::parse(&body);
    users::set_role(&state.ctx, &op, &grant, &id, form.text("platform_role")).await?;
    Ok(to_users("role-changed"))
}

/// Deactivates a user: every sign-in of theirs ends at once.
#[utoipa::path(post, path = "/console/admin/users/{id}/deactivate", tag = "console",
    params(("id" = String, Path, description = "User id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Back to the users")))]
pub(crate) async fn deactivate(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    users::set_active(&state.ctx, &op, &grant, &id, false).await?;
    Ok(to_users("user-deactivated"))
}

/// Reactivates a user (their old sessions stay ended).
#[utoipa::path(post, path = "/console/admin/users/{id}/reactivate", tag = "console",
    params(("id" = String, Path, description = "User id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Back to the users")))]
pub(crate) async fn reactivate(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    users::set_active(&state.ctx, &op, &grant, &id, true).await?;
    Ok(to_users("user-reactivated"))
}

struct RoleColumn {
    name: String,
    builtin: bool,
    description: String,
    /// The permission names it grants, for the edit form.
    grants: Vec<String>,
}

/// A row of the matrix: a permission, and whether each role (in column order) grants it.
struct PermissionRow {
    name: String,
    granted: Vec<bool>,
}

#[derive(Template)]
#[template(path = "console/admin_roles.html")]
struct RolesPage {
    frame: Frame,
    roles: Vec<RoleColumn>,
    matrix: Vec<PermissionRow>,
    may_create: bool,
    may_delete: bool,
    may_edit: bool,
}

/// The platform roles and what each grants, as a matrix; the form that defines a role.
#[utoipa::path(get, path = "/console/admin/roles", tag = "console", params(super::Done),
    responses((status = 200, description = "Page", content_type = "text/html"),
              (status = 403, description = "Without admin.read", content_type = "text/html")))]
pub(crate) async fn roles_page(
    State(state): State<AppState>,
    PlatformAccess(grant): PlatformAccess,
    caller: Caller,
    ApiQuery(done): ApiQuery<super::Done>,
) -> Result<Response, ApiError> {
    let rows = roles::list(&state.ctx, &grant).await?;
    let grants: Vec<PermissionSet> = rows.iter().map(|r| r.grants()).collect();
    let matrix = Permission::ALL
        .iter()
        .map(|p| PermissionRow {
            name: p.to_string(),
            granted: grants.iter().map(|g| g.contains(*p)).collect(),
        })
        .collect();
    let roles = rows
        .into_iter()
        .map(|r| RoleColumn {
            grants: r.grants().names(),
            name: r.name,
            builtin: r.builtin,
            description: r.description,
        })
        .collect();
    let frame = frame(
        &state,
        &caller,
        "roles",
        super::notice(done.done.as_deref()),
    )
    .await?;
    let page = RolesPage {
        may_create: frame.may.contains(Permission::ADMIN_CREATE),
        may_delete: frame.may.contains(Permission::ADMIN_DELETE),
        may_edit: frame.may.contains(Permission::ADMIN_UPDATE),
        frame,
        roles,
        matrix,
    };
    Ok(render(&page, StatusCode::OK))
}

/// Defines a custom role (`name`, `description`, one `permission` field per permission).
#[utoipa::path(post, path = "/console/admin/roles", tag = "console",
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Created: back to the roles")))]
pub(crate) async fn create_role(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form = Fields::parse(&body);
    let name =
        RoleName::parse(form.text("name").trim()).map_err(|d| CoreError::invalid("name", d))?;
    let permissions: Vec<String> = form.all("permission").map(str::to_owned).collect();
    let def = Definition::parse(&grant, &permissions, form.text("description").to_owned())?;
    roles::create(&state.ctx, &op, &name, &def).await?;
    Ok(Redirect::to("/console/admin/roles?done=role-created").into_response())
}

/// Deletes a custom role that nobody holds.
#[utoipa::path(post, path = "/console/admin/roles/{name}/delete", tag = "console",
    params(("name" = String, Path, description = "Role name")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Deleted: back to the roles")))]
pub(crate) async fn delete_role(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    roles::delete(&state.ctx, &op, &grant, &name).await?;
    Ok(Redirect::to("/console/admin/roles?done=role-deleted").into_response())
}

/// Sets a user's password (`new_password`, checked against the policy) and signs them out
/// everywhere.
#[utoipa::path(post, path = "/console/admin/users/{id}/password", tag = "console",
    params(("id" = String, Path, description = "User id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Back to the users")))]
pub(crate) async fn reset_password(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let password = Fields::parse(&body).text("new_password").to_owned();
    users::reset_password(&state.ctx, &op, &grant, &id, password).await?;
    Ok(to_users("password-reset"))
}

/// Ends every session and personal access token of a user, at once, on every node.
#[utoipa::path(post, path = "/console/admin/users/{id}/sign-out", tag = "console",
    params(("id" = String, Path, description = "User id")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Back to the users")))]
pub(crate) async fn sign_out_everywhere(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    warden_core::identity::tokens::revoke_everything(&state.ctx, &op, &grant, &id).await?;
    Ok(to_users("signed-out-everywhere"))
}

/// Replaces a custom role's permissions and description (`description`, one `permission`
/// field each); its holders are affected on their next request.
#[utoipa::path(post, path = "/console/admin/roles/{name}", tag = "console",
    params(("name" = String, Path, description = "Role name")),
    request_body(content = String, content_type = "application/x-www-form-urlencoded"),
    responses((status = 303, description = "Saved: back to the roles")))]
pub(crate) async fn update_role(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let form = Fields::parse(&body);
    let permissions: Vec<String> = form.all("permission").map(str::to_owned).collect();
    let def = Definition::parse(&grant, &permissions, form.text("description").to_owned())?;
    roles::update(&state.ctx, &op, &grant, &name, &def).await?;
    Ok(Redirect::to("/console/admin/roles?done=role-saved").into_response())
}
