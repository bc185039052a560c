//! The signed-in user: who they are, their devices, their password.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::routes;
use uuid::Uuid;
use warden_domain::access::Access;
use warden_store::identity::DeviceRow;

use warden_core::identity::account;

use crate::http::authz::UserOp;
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::identity::Caller;
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    Routes::new()
        .add_recovery(Access::SignedIn, routes!(me))
        .add(Access::SignedIn, routes!(my_permissions))
        .add(Access::SignedIn, routes!(devices))
        .add(Access::SignedIn, routes!(revoke_device))
        .add(Access::SignedIn, routes!(revoke_other_devices))
        .add(Access::SignedIn, routes!(change_password))
        .add(Access::SignedIn, routes!(set_name))
}

/// The signed-in user.
#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    /// User id.
    pub id: String,
    /// Email.
    pub email: String,
    /// This device session.
    pub session_id: String,
    /// The licence's modules that are on (`automations`, `workflows`, …, and
    /// `multiple-active-sessions`): front ends hide what is off. Every module on when Warden
    /// runs unlicensed.
    pub capabilities: Vec<String>,
}

/// Who is signed in.
#[utoipa::path(get, path = "/api/v1/me", tag = "me",
    responses(
        (status = 200, description = "The signed-in user", body = Me),
        (status = 401, description = "Not signed in", content_type = "application/problem+json")))]
pub(crate) async fn me(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Me>, ApiError> {
    let email = account::email(&state.ctx, &caller.principal).await?;
    Ok(Json(Me {
        id: caller.principal.user_id.to_string(),
        email,
        session_id: caller.principal.session_id.to_string(),
        capabilities: warden_domain::license::Feature::ALL
            .iter()
            .filter(|f| state.ctx.license.feature(**f))
            .map(|f| f.as_str().to_owned())
            .collect(),
    }))
}

/// What the signed-in user's platform role grants, everywhere.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyPermissions {
    /// Permission names (`area.verb`).
    pub platform: Vec<String>,
}

/// The signed-in user's platform permissions, as of now.
#[utoipa::path(get, path = "/api/v1/me/permissions", tag = "me",
    responses(
        (status = 200, description = "Platform permissions", body = MyPermissions),
        (status = 401, description = "Not signed in", content_type = "application/problem+json")))]
pub(crate) async fn my_permissions(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<MyPermissions>, ApiError> {
    let set = warden_core::access::platform_permissions(&state.ctx, &caller.principal).await?;
    Ok(Json(MyPermissions {
        platform: set.names(),
    }))
}

/// A device session.
#[derive(Debug, Serialize, ToSchema)]
pub struct Device {
    /// Session id.
    pub id: String,
    /// Owner.
    pub user_id: String,
    /// User agent at sign-in.
    pub user_agent: Option<String>,
    /// Address at sign-in.
    pub first_ip: Option<String>,
    /// Address at the last refresh.
    pub last_ip: Option<String>,
    /// Started (RFC 3339).
    pub created_at: String,
    /// Last refreshed (RFC 3339).
    pub last_used_at: String,
    /// The session this request belongs to.
    pub current: bool,
}

pub(crate) use warden_core::op::rfc3339;

pub(crate) fn device(s: DeviceRow, current: Uuid) -> Device {
    Device {
        id: s.id.to_string(),
        user_id: s.user_id.to_string(),
        user_agent: s.user_agent,
        first_ip: s.first_ip,
        last_ip: s.last_ip,
        created_at: rfc3339(s.created_at),
        last_used_at: rfc3339(s.last_used_at),
        current: s.id == current,
    }
}

/// The signed-in user's active device sessions.
#[utoipa::path(get, path = "/api/v1/me/devices", tag = "me",
    responses(
        (status = 200, description = "Active sessions", body = Vec<Device>),
        (status = 401, description = "Not signed in", content_type = "application/problem+json")))]
pub(crate) async fn devices(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
) -> Result<Json<Vec<Device>>, ApiError> {
    let user = Some(caller.principal.user_id);
    let rows = account::active_devices(&state.ctx, &op, user).await?;
    Ok(Json(
        rows.into_iter()
            .map(|s| device(s, caller.principal.session_id))
            .collect(),
    ))
}

/// Ends one of the signed-in user's device sessions, at once, on every node.
#[utoipa::path(delete, path = "/api/v1/me/devices/{id}", tag = "me",
    params(("id" = String, Path, description = "Session id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such session of yours", content_type = "application/problem+json")))]
pub(crate) async fn revoke_device(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    account::revoke_device(&state.ctx, &op, &caller.principal, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// How many sessions a bulk revocation ended.
#[derive(Debug, Serialize, ToSchema)]
pub struct Revoked {
    /// Number of sessions ended.
    pub revoked: usize,
}

/// Ends every other device session of the signed-in user ("sign out everywhere else").
#[utoipa::path(post, path = "/api/v1/me/devices/revoke-others", tag = "me",
    responses((status = 200, description = "Revoked", body = Revoked)))]
pub(crate) async fn revoke_other_devices(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
) -> Result<Json<Revoked>, ApiError> {
    let revoked = account::revoke_others(&state.ctx, &op, &caller.principal).await?;
    Ok(Json(Revoked { revoked }))
}

/// A password change.
#[derive(Deserialize, ToSchema)]
pub struct ChangePassword {
    /// The password now.
    pub current_password: String,
    /// The new password.
    pub new_password: String,
}

impl std::fmt::Debug for ChangePassword {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChangePassword([redacted])")
    }
}

/// Changes the signed-in user's password and ends every other session of theirs.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "me", request_body = ChangePassword,
    responses(
        (status = 204, description = "Changed; other sessions ended"),
        (status = 401, description = "Wrong current password", content_type = "application/problem+json"),
        (status = 422, description = "New password refused by the policy", content_type = "application/problem+json")))]
pub(crate) async fn change_password(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
    ApiJson(input): ApiJson<ChangePassword>,
) -> Result<StatusCode, ApiError> {
    let (current, new) = (input.current_password, input.new_password);
    account::change_password(&state.ctx, &op, &caller.principal, current, new).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A display name.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisplayName {
    /// 1 to 100 characters without control characters; blank (or null) clears it.
    pub name: Option<String>,
}

/// Sets the signed-in user's display name (shown beside their email in the console).
#[utoipa::path(put, path = "/api/v1/me/name", tag = "me", request_body = DisplayName,
    responses(
        (status = 200, description = "The name now", body = DisplayName),
        (status = 422, description = "Too long or with control characters", content_type = "application/problem+json")))]
pub(crate) async fn set_name(
    State(state): State<AppState>,
    UserOp(op): UserOp,
    caller: Caller,
    ApiJson(input): ApiJson<DisplayName>,
) -> Result<Json<DisplayName>, ApiError> {
    let name = input.name.unwrap_or_default();
    let name = account::set_display_name(&state.ctx, &op, &caller.principal, &name).await?;
    Ok(Json(DisplayName { name }))
}
