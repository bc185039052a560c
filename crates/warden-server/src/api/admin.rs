//! Platform administration: users and everyone's sessions.

use crate::http::query::ApiQuery;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::routes;
use uuid::Uuid;
use warden_domain::access::{Access, Permission, may_manage};
use warden_store::tenancy::PlatformGrant;

use crate::http::authz::PlatformAccess;
use warden_domain::audit::Outcome;
use warden_domain::identity::check_password;

use super::me::{Device, active_sessions, device, refusal};
use crate::audit::request::RequestMeta;
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::identity::flows;
use crate::identity::users::{UserView, policy_error};
use crate::identity::{Caller, now_us};
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    use Access::Platform;
    Routes::new()
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
pub struct SessionFilter {
    /// Only this user's sessions.
    pub user_id: Option<String>,
}

/// Every active device session, optionally of one user.
#[utoipa::path(get, path = "/api/v1/admin/sessions", tag = "admin", params(SessionFilter),
    responses(
        (status = 200, description = "Active sessions", body = Vec<Device>),
        (status = 403, description = "Not a platform administrator", content_type = "application/problem+json")))]
pub(crate) async fn list_sessions(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(filter): ApiQuery<SessionFilter>,
) -> Result<Json<Vec<Device>>, ApiError> {
    let user = match filter.user_id.as_deref() {
        None => None,
        Some(u) => Some(
            u.parse::<Uuid>()
                .map_err(|_| ApiError::from_status(StatusCode::BAD_REQUEST))?,
        ),
    };
    let rows = active_sessions(&state, user).await?;
    Ok(Json(
        rows.into_iter()
            .map(|s| device(s, caller.principal.session_id))
            .collect(),
    ))
}

/// Ends any device session, at once, on every node.
#[utoipa::path(delete, path = "/api/v1/admin/sessions/{id}", tag = "admin",
    params(("id" = String, Path, description = "Session id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "No such active session", content_type = "application/problem+json")))]
pub(crate) async fn revoke_session(
    State(state): State<AppState>,
    meta: RequestMeta,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id: Uuid = id
        .parse()
        .map_err(|_| ApiError::from_status(StatusCode::NOT_FOUND))?;
    let revoked = flows::revoke(&state, &meta, caller.actor(), &[id], "admin_revoked")
        .await
        .map_err(refusal)?;
    if revoked.is_empty() {
        return Err(ApiError::from_status(StatusCode::NOT_FOUND));
    }
    Ok(StatusCode::NO_CONTENT)
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
    meta: RequestMeta,
    caller: Caller,
    PlatformAccess(grant): PlatformAccess,
    ApiJson(input): ApiJson<NewUser>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let role = input.platform_role.as_deref().unwrap_or("member");
    super::roles::may_grant_role(&state, &grant, role).await?;
    let user = crate::identity::users::create(
        &state,
        &meta,
        caller.actor(),
        &input.email,
        input.password,
        role,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Refuses acting on an account whose platform role grants anything the caller lacks (404
/// for no such user).
pub(crate) async fn may_act_on(
    state: &AppState,
    grant: &PlatformGrant,
    target: Uuid,
) -> Result<(), ApiError> {
    match state
        .store
        .role_grants_of(target)
        .await
        .map_err(|e| ApiError::internal(&e))?
    {
        None => Err(ApiError::from_status(StatusCode::NOT_FOUND)),
        Some(t) if may_manage(grant.platform(), t) => Ok(()),
        Some(_) => Err(above_your_role()),
    }
}

pub(crate) fn above_your_role() -> ApiError {
    ApiError::from(warden_core::Code::AboveYourRole)
}

pub(crate) fn last_admin() -> ApiError {
    ApiError::from(warden_core::Code::LastAdmin)
}

async fn set_active(
    state: &AppState,
    meta: &RequestMeta,
    caller: &Caller,
    grant: &PlatformGrant,
    id: &str,
    active: bool,
) -> Result<StatusCode, ApiError> {
    let not_found = || ApiError::from_status(StatusCode::NOT_FOUND);
    let id: Uuid = id.parse().map_err(|_| not_found())?;
    may_act_on(state, grant, id).await?;
    let now = state.clock.now();
    let now_us = now_us(state.clock.as_ref());
    let mut tx = state
        .store
        .begin()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    if tx
        .user_by_id(id)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .is_none()
    {
        return Err(not_found());
    }
    if !active
        && tx
            .user_by_id(id)
            .await
            .map_err(|e| ApiError::internal(&e))?
            .is_some_and(|u| u.active && u.platform_role == "admin")
        && tx
            .count_admins()
            .await
            .map_err(|e| ApiError::internal(&e))?
            <= 1
    {
        return Err(last_admin());
    }
    if active {
        crate::identity::users::admit_user(&state.license, &mut tx).await?;
    }
    let changed = tx
        .set_active(id, active, now_us)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    if changed {
        let mut revoked = 0;
        if active {
            tx.log_revocation("user_reactivated", id, now_us)
                .await
                .map_err(|e| ApiError::internal(&e))?;
        } else {
            tx.log_revocation("user_deactivated", id, now_us)
                .await
                .map_err(|e| ApiError::internal(&e))?;
            let live = tx
                .live_session_ids(id, None)
                .await
                .map_err(|e| ApiError::internal(&e))?;
            revoked = flows::revoke_in_tx(
                &mut tx,
                state,
                meta,
                &caller.actor(),
                &live,
                "user_deactivated",
            )
            .await
            .map_err(|e| ApiError::internal(&e))?
            .len();
        }
        let event = meta.event(
            now,
            caller.actor(),
            if active {
                "user.reactivated"
            } else {
                "user.deactivated"
            },
            "user",
            Some(id.to_string()),
            Outcome::Success,
            json!({ "sessions_revoked": revoked }),
        );
        tx.record(&state.audit_key, &event)
            .await
            .map_err(|e| ApiError::internal(&e))?;
    }
    tx.commit().await.map_err(|e| ApiError::internal(&e))?;
    if changed {
        state
            .identity
            .propagate(&state.store, state.clock.as_ref())
            .await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Deactivates a user: every grant they hold ends at once, on every node.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/deactivate", tag = "admin",
    params(("id" = String, Path, description = "User id")),
    responses((status = 204, description = "Deactivated"), (status = 404, description = "No such user")))]
pub(crate) async fn deactivate_user(
    State(state): State<AppState>,
    meta: RequestMeta,
    caller: Caller,
    PlatformAccess(grant): PlatformAccess,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    set_active(&state, &meta, &caller, &grant, &id, false).await
}

/// Reactivates a user. Their old sessions stay ended.
#[utoipa::path(post, path = "/api/v1/admin/users/{id}/reactivate", tag = "admin",
    params(("id" = String, Path, description = "User id")),
    responses((status = 204, description = "Reactivated"), (status = 404, description = "No such user")))]
pub(crate) async fn reactivate_user(
    State(state): State<AppState>,
    meta: RequestMeta,
    caller: Caller,
    PlatformAccess(grant): PlatformAccess,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    set_active(&state, &meta, &caller, &grant, &id, true).await
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
    meta: RequestMeta,
    caller: Caller,
    PlatformAccess(grant): PlatformAccess,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<ResetPassword>,
) -> Result<StatusCode, ApiError> {
    let not_found = || ApiError::from_status(StatusCode::NOT_FOUND);
    let internal = |e: &dyn std::fmt::Display| ApiError::internal(&e.to_string());
    let id: Uuid = id.parse().map_err(|_| not_found())?;
    may_act_on(&state, &grant, id).await?;
    let mut tx = state.store.begin_read().await.map_err(|e| internal(&e))?;
    let user = tx
        .user_by_id(id)
        .await
        .map_err(|e| internal(&e))?
        .ok_or_else(not_found)?;
    tx.commit().await.map_err(|e| internal(&e))?;
    check_password(&input.new_password, &user.email).map_err(|p| policy_error(&p))?;
    let new = input.new_password;
    let hash = warden_core::costly::passwords()
        .hash(new)
        .await?
        .map_err(|e| internal(&e))?;
    let now = state.clock.now();
    let now_us = now_us(state.clock.as_ref());
    let mut tx = state.store.begin().await.map_err(|e| internal(&e))?;
    tx.set_password(id, &hash, now_us)
        .await
        .map_err(|e| internal(&e))?;
    let live = tx
        .live_session_ids(id, None)
        .await
        .map_err(|e| internal(&e))?;
    let revoked = flows::revoke_in_tx(
        &mut tx,
        &state,
        &meta,
        &caller.actor(),
        &live,
        "password_reset",
    )
    .await
    .map_err(|e| internal(&e))?;
    let event = meta.event(
        now,
        caller.actor(),
        "user.password_reset",
        "user",
        Some(id.to_string()),
        Outcome::Success,
        json!({ "password": warden_domain::audit::MASK, "sessions_revoked": revoked.len() }),
    );
    tx.record(&state.audit_key, &event)
        .await
        .map_err(|e| internal(&e))?;
    tx.commit().await.map_err(|e| internal(&e))?;
    state
        .identity
        .propagate(&state.store, state.clock.as_ref())
        .await;
    Ok(StatusCode::NO_CONTENT)
}
