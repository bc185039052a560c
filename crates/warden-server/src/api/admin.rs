//! Platform administration: users and everyone's sessions.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;
use warden_core::admin::users;
use warden_core::identity::users::CreatedUser;
use warden_domain::access::{Access, Permission};

use super::me::{Device, device};
use crate::http::authz::{PlatformAccess, UserOp};
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::query::ApiQuery;
use crate::http::routes::Routes;
use crate::identity::Caller;
use crate::state::AppState;

// The former `/admin/sessions` routes are registered on purpose (existing clients).
#[allow(deprecated)]
pub(crate) fn routes() -> Routes<AppState> {
    use Access::Platform;
    Routes::new()
        .add(Platform(Permission::SESSIONS_READ), routes!(list_devices))
        .add(
            Platform(Permission::SESSIONS_DELETE),
            routes!(revoke_device),
        )
        .add(Platform(Permission::SESSIONS_READ), routes!(list_sessions))
        .add(
            Platform(Permission::SESSIONS_DELETE),
            routes!(revoke_session),
        )
        .add(Platform(Permission::USERS_CREATE), routes!(create_user))
        .add(Platform(Permission::USERS_UPDATE), routes!(deactivate_user))
        .add(Platform(Permission::USERS_UPDATE), routes!(reactivate_user))
        .add(Platform(Permission::USERS_UPDATE), routes!(reset_password))
}

/// Filter for the session list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SessionFilter {
    /// Only this user's sessions.
    pub user_id: Option<String>,
}

/// Every signed-in device, optionally of one user.
#[utoipa::path(get, path = "/api/v1/admin/devices", tag = "admin", params(SessionFilter),
    responses(
        (status = 200, description = "Signed-in devices", body = Vec<Device>),
        (status = 403, description = "Not a platform administrator", content_type = "application/problem+json")))]
pub(crate) async fn list_devices(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
    PlatformAccess(grant): PlatformAccess,
    ApiQuery(filter): ApiQuery<SessionFilter>,
) -> Result<Json<Vec<Device>>, ApiError> {
    let user = filter.user_id.as_deref();
    let rows = users::devices(&state.ctx, &op, &grant, user).await?;
    Ok(Json(
        rows.into_iter()
            .map(|s| device(s, caller.principal.session_id))
            .collect(),
    ))
}

/// Signs a device out, at once, on every node.
#[utoipa::path(delete, path = "/api/v1/admin/devices/{id}", tag = "admin",
    params(("id" = String, Path, description = "Device (sign-in session) id")),
    responses(
        (status = 204, description = "Signed out"),
        (status = 404, description = "No such signed-in device", content_type = "application/problem+json")))]
pub(crate) async fn revoke_device(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    users::revoke_device(&state.ctx, &op, &grant, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The former name of `GET /api/v1/admin/devices`, kept for existing clients.
#[utoipa::path(get, path = "/api/v1/admin/sessions", tag = "admin", params(SessionFilter),
    responses(
        (status = 200, description = "Signed-in devices", body = Vec<Device>),
        (status = 403, description = "Not a platform administrator", content_type = "application/problem+json")))]
#[deprecated(note = "use GET /api/v1/admin/devices")]
pub(crate) async fn list_sessions(
    state: State<AppState>,
    op: UserOp,
    caller: Caller,
    grant: PlatformAccess,
    filter: ApiQuery<SessionFilter>,
) -> Result<Json<Vec<Device>>, ApiError> {
    list_devices(state, op, caller, grant, filter).await
}

/// The former name of `DELETE /api/v1/admin/devices/{id}`, kept for existing clients.
#[utoipa::path(delete, path = "/api/v1/admin/sessions/{id}", tag = "admin",
    params(("id" = String, Path, description = "Device (sign-in session) id")),
    responses(
        (status = 204, description = "Signed out"),
        (status = 404, description = "No such signed-in device", content_type = "application/problem+json")))]
#[deprecated(note = "use DELETE /api/v1/admin/devices/{id}")]
pub(crate) async fn revoke_session(
    state: State<AppState>,
    op: UserOp,
    grant: PlatformAccess,
    id: Path<String>,
) -> Result<StatusCode, ApiError> {
    revoke_device(state, op, grant, id).await
}

/// A new user.
#[derive(Deserialize, ToSchema)]
pub struct NewUser {
    /// Email.
    pub email: String,
    /// Initial password.
    pub password: String,
    /// Platform role (`admin`, `member`, `auditor` or a custom role); `member` when absent.
    #[serde(default)]
    pub platform_role: Option<String>,
}

impl std::fmt::Debug for NewUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUser")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// Creates a user.
#[utoipa::path(post, path = "/api/v1/admin/users", tag = "admin", request_body = NewUser,
    responses(
        (status = 201, description = "Created", body = UserView),
        (status = 409, description = "Email taken", content_type = "application/problem+json"),
        (status = 422, description = "Invalid email or weak password", content_type = "application/problem+json")))]
pub(crate) async fn create_user(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    ApiJson(input): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let role = input.platform_role.as_deref();
    let user = users::create(&state.ctx, &op, &grant, &input.email, input.password, role).await?;
    Ok((StatusCode::CREATED, Json(UserView::from(user))))
}

/// Deactivates a user: every grant they hold ends at once, on every node.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/deactivate", tag = "admin",
    params(("id" = String, Path, description = "User id")),
    responses((status = 204, description = "Deactivated"), (status = 404, description = "No such user"),
        (status = 409, description = "The last active administrator (`last-admin`)", content_type = "application/problem+json")))]
pub(crate) async fn deactivate_user(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    users::set_active(&state.ctx, &op, &grant, &id, false).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reactivates a user. Their old sessions stay ended.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/reactivate", tag = "admin",
    params(("id" = String, Path, description = "User id")),
    responses((status = 204, description = "Reactivated"), (status = 404, description = "No such user")))]
pub(crate) async fn reactivate_user(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    users::set_active(&state.ctx, &op, &grant, &id, true).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An administrator's password reset.
#[derive(Deserialize, ToSchema)]
pub struct ResetPassword {
    /// The new password (give it to the user through a safe channel).
    pub new_password: String,
}

impl std::fmt::Debug for ResetPassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ResetPassword([redacted])")
    }
}

/// Sets a user's password and signs them out everywhere, at once, on every node.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/password", tag = "admin",
    params(("id" = String, Path, description = "User id")),
    request_body = ResetPassword,
    responses((status = 204, description = "Reset; every session of the user ended"),
              (status = 404, description = "No such user"),
              (status = 422, description = "Password refused by the policy")))]
pub(crate) async fn reset_password(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    PlatformAccess(grant): PlatformAccess,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<ResetPassword>,
) -> Result<StatusCode, ApiError> {
    users::reset_password(&state.ctx, &op, &grant, &id, input.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A created user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// Id.
    pub id: String,
    /// Email.
    pub email: String,
    /// Platform role.
    pub platform_role: String,
}

impl From<CreatedUser> for UserView {
    fn from(u: CreatedUser) -> Self {
        Self {
            id: u.id.to_string(),
            email: u.email,
            platform_role: u.platform_role,
        }
    }
}
