//! The signed-in user: who they are, their devices, their password.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::routes;
use uuid::Uuid;
use warden_domain::access::Access;
use warden_domain::audit::Outcome;
use warden_domain::identity::check_password;
use warden_store::identity::SessionRow;

use crate::audit::request::RequestMeta;
use crate::http::json::ApiJson;
use crate::http::problem::ApiError;
use crate::http::routes::Routes;
use crate::identity::flows::{self, Refusal};
use crate::identity::users::policy_error;
use crate::identity::{Caller, now_us};
use crate::state::AppState;

pub(crate) fn routes() -> Routes<AppState> {
    Routes::new()
        .add_recovery(Access::SignedIn, routes!(me))
        .add(Access::SignedIn, routes!(my_permissions))
        .add(Access::SignedIn, routes!(devices))
        .add(Access::SignedIn, routes!(revoke_device))
        .add(Access::SignedIn, routes!(revoke_other_devices))
        .add(Access::SignedIn, routes!(change_password))
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
    let email = state
        .identity
        .user_email(&state.store, caller.principal.user_id)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .ok_or_else(|| ApiError::from_status(StatusCode::UNAUTHORIZED))?;
    Ok(Json(Me {
        id: caller.principal.user_id.to_string(),
        email,
        session_id: caller.principal.session_id.to_string(),
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
    let set = state
        .store
        .platform_permissions(caller.principal.user_id)
        .await
        .map_err(|e| ApiError::internal(&e))?;
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

pub(crate) fn device(s: SessionRow, current: Uuid) -> Device {
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

pub(crate) async fn active_sessions(
    state: &AppState,
    user: Option<Uuid>,
) -> Result<Vec<SessionRow>, ApiError> {
    let now = now_us(state.clock.as_ref());
    let idle = i64::try_from(state.identity.config.session_idle.as_micros()).unwrap_or(i64::MAX);
    let mut tx = state
        .store
        .begin_read()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let rows = tx
        .active_sessions(user, now, now - idle)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    tx.commit().await.map_err(|e| ApiError::internal(&e))?;
    Ok(rows)
}

pub(crate) fn refusal(r: Refusal) -> ApiError {
    match r {
        Refusal::Internal(cause) => ApiError::internal(&cause),
        Refusal::Busy => ApiError::busy(),
        _ => ApiError::from_status(StatusCode::UNAUTHORIZED),
    }
}

/// The signed-in user's active device sessions.
#[utoipa::path(get, path = "/api/v1/me/devices", tag = "me",
    responses(
        (status = 200, description = "Active sessions", body = Vec<Device>),
        (status = 401, description = "Not signed in", content_type = "application/problem+json")))]
pub(crate) async fn devices(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Device>>, ApiError> {
    let rows = active_sessions(&state, Some(caller.principal.user_id)).await?;
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
    meta: RequestMeta,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let not_found = || ApiError::from_status(StatusCode::NOT_FOUND);
    let id: Uuid = id.parse().map_err(|_| not_found())?;
    let rows = active_sessions(&state, Some(caller.principal.user_id)).await?;
    if !rows.iter().any(|s| s.id == id) {
        return Err(not_found());
    }
    flows::revoke(&state, &meta, caller.actor(), &[id], "user_revoked_device")
        .await
        .map_err(refusal)?;
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
    meta: RequestMeta,
    caller: Caller,
) -> Result<Json<Revoked>, ApiError> {
    let others = other_sessions(&state, &caller).await?;
    let revoked = flows::revoke(
        &state,
        &meta,
        caller.actor(),
        &others,
        "user_revoked_others",
    )
    .await
    .map_err(refusal)?;
    Ok(Json(Revoked {
        revoked: revoked.len(),
    }))
}

async fn other_sessions(state: &AppState, caller: &Caller) -> Result<Vec<Uuid>, ApiError> {
    let mut tx = state
        .store
        .begin_read()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let ids = tx
        .live_session_ids(caller.principal.user_id, Some(caller.principal.session_id))
        .await
        .map_err(|e| ApiError::internal(&e))?;
    tx.commit().await.map_err(|e| ApiError::internal(&e))?;
    Ok(ids)
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

/// What a password change's audit event keeps: that it changed, never the values.
#[derive(Debug, Serialize)]
pub struct PasswordChanged {
    /// Masked.
    pub password: &'static str,
}
warden_domain::audited!(PasswordChanged { password: Changed });

/// Changes the signed-in user's password and ends every other session of theirs.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "me", request_body = ChangePassword,
    responses(
        (status = 204, description = "Changed; other sessions ended"),
        (status = 401, description = "Wrong current password", content_type = "application/problem+json"),
        (status = 422, description = "New password refused by the policy", content_type = "application/problem+json")))]
pub(crate) async fn change_password(
    State(state): State<AppState>,
    meta: RequestMeta,
    caller: Caller,
    ApiJson(input): ApiJson<ChangePassword>,
) -> Result<StatusCode, ApiError> {
    let user = caller.principal.user_id;
    let mut tx = state
        .store
        .begin_read()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let row = tx
        .user_by_id(user)
        .await
        .map_err(|e| ApiError::internal(&e))?
        .ok_or_else(|| ApiError::from_status(StatusCode::UNAUTHORIZED))?;
    tx.commit().await.map_err(|e| ApiError::internal(&e))?;
    check_password(&input.new_password, &row.email).map_err(|p| policy_error(&p))?;
    let stored = row.password_hash.clone().unwrap_or_default();
    let current = input.current_password;
    let new = input.new_password;
    let hashed = warden_core::costly::passwords()
        .run(move |scratch| {
            let ok =
                warden_crypto::password::verify_in(&current, &stored, scratch).unwrap_or(false);
            ok.then(|| warden_crypto::password::hash_in(&new, scratch))
        })
        .await?;
    let now = state.clock.now();
    let Some(hash) = hashed else {
        let mut tx = state
            .store
            .begin()
            .await
            .map_err(|e| ApiError::internal(&e))?;
        let event = meta.event(
            now,
            caller.actor(),
            "user.password_changed",
            "user",
            Some(user.to_string()),
            Outcome::Denied,
            json!({"reason": "wrong_current_password"}),
        );
        tx.record(&state.audit_key, &event)
            .await
            .map_err(|e| ApiError::internal(&e))?;
        tx.commit().await.map_err(|e| ApiError::internal(&e))?;
        return Err(ApiError(warden_core::CoreError::with_detail(
            warden_core::Code::InvalidCredentials,
            "The current password is not correct.",
        )));
    };
    let hash = hash.map_err(|e| ApiError::internal(&e))?;
    let now_us = now_us(state.clock.as_ref());
    let mut tx = state
        .store
        .begin()
        .await
        .map_err(|e| ApiError::internal(&e))?;
    tx.set_password(user, &hash, now_us)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let others = tx
        .live_session_ids(user, Some(caller.principal.session_id))
        .await
        .map_err(|e| ApiError::internal(&e))?;
    let revoked = flows::revoke_in_tx(
        &mut tx,
        &state,
        &meta,
        &caller.actor(),
        &others,
        "password_changed",
    )
    .await
    .map_err(|e| ApiError::internal(&e))?;
    let summary = warden_domain::audit::summarize(&PasswordChanged { password: "x" })
        .unwrap_or_else(|_| json!({}));
    let mut summary = summary;
    if let Some(obj) = summary.as_object_mut() {
        obj.insert("sessions_revoked".to_owned(), json!(revoked.len()));
    }
    let event = meta.event(
        now,
        caller.actor(),
        "user.password_changed",
        "user",
        Some(user.to_string()),
        Outcome::Success,
        summary,
    );
    tx.record(&state.audit_key, &event)
        .await
        .map_err(|e| ApiError::internal(&e))?;
    tx.commit().await.map_err(|e| ApiError::internal(&e))?;
    state
        .identity
        .propagate(&state.store, state.clock.as_ref())
        .await;
    Ok(StatusCode::NO_CONTENT)
}
